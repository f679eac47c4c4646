import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../../../src/h323/api.ts';
import type { RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { callControl } from '../../../src/roles/control.ts';
import { startTestNode, uniqueOffset } from '../../helpers/lab-node.ts';

async function ask(sock: dgram.Socket, m: RasMessage, port: number, ip: string): Promise<RasMessage> {
  const answer = new Promise<RasMessage>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer to ${m.choice}`)), 3000);
    sock.once('message', (b) => {
      clearTimeout(t);
      const d = rasCodec.decode(b);
      if (d.ok) resolve(d.value);
      else reject(new Error(d.reason.message));
    });
  });
  sock.send(rasCodec.encode(m), port, ip);
  return answer;
}

test('a lab node with h323.enabled runs a gatekeeper per node on the plan port; registrations survive a restart', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-'));
  const portOffset = uniqueOffset();
  const input = { dataDir, portOffset, h323: { enabled: true, gatekeeper: { timeToLive: 60 } } };
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const me = sock.address().port;
  const rrq = (over: Record<string, unknown>): RasMessage => ({
    choice: 'registrationRequest',
    value: {
      requestSeqNum: 2,
      protocolIdentifier: H225_PROTOCOL_ID,
      discoveryComplete: true,
      callSignalAddress: [h225Address('127.0.0.1', 11720)],
      rasAddress: [h225Address('127.0.0.1', me)],
      terminalType: { terminal: {}, mc: false, undefinedNode: false },
      terminalAlias: [aliasFromText('alice'), aliasFromText('2001')],
      endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      ...over,
    },
  });
  let node = await startTestNode(input);
  let endpointIdentifier = '';
  try {
    const ras = node.sockets().filter((s) => s.listener === 'h323-ras');
    assert.deepEqual(
      ras.map((s) => s.node),
      ['edge', 'core'],
    );
    const core = ras.find((s) => s.node === 'core')!;
    assert.equal(core.port, 1719 + portOffset);
    const q931 = node.sockets().filter((s) => s.listener === 'h323-q931');
    assert.deepEqual(
      q931.map((s) => [s.node, s.protocol, s.port]),
      [
        ['edge', 'tcp', 1720 + portOffset],
        ['core', 'tcp', 1720 + portOffset],
      ],
    );
    const gcf = await ask(
      sock,
      {
        choice: 'gatekeeperRequest',
        value: {
          requestSeqNum: 1,
          protocolIdentifier: H225_PROTOCOL_ID,
          rasAddress: h225Address('127.0.0.1', me),
          endpointType: { terminal: {}, mc: false, undefinedNode: false },
        },
      },
      core.port,
      core.address,
    );
    assert.equal(gcf.choice, 'gatekeeperConfirm');
    assert.equal((gcf.value as { gatekeeperIdentifier?: string }).gatekeeperIdentifier, 'crossway-core');
    const rcf = await ask(sock, rrq({}), core.port, core.address);
    assert.equal(rcf.choice, 'registrationConfirm');
    endpointIdentifier = (rcf.value as { endpointIdentifier: string }).endpointIdentifier;
    assert.equal((rcf.value as { timeToLive?: number }).timeToLive, 60);
    const listing = (await callControl(dataDir, 'h323.registrations')) as Array<{
      node: string;
      registrations: Array<{ endpointIdentifier: string; aliases: Array<{ value: string }> }>;
    }>;
    const coreList = listing.find((l) => l.node === 'core')!.registrations;
    assert.deepEqual(
      coreList.map((r) => [r.endpointIdentifier, r.aliases.map((a) => a.value)]),
      [[endpointIdentifier, ['alice', '2001']]],
    );
    const status = (await callControl(dataDir, 'h323.status')) as Array<{ node: string; registrations: number }>;
    assert.deepEqual(
      status.map((s) => [s.node, s.registrations]),
      [
        ['edge', 0],
        ['core', 1],
      ],
    );
  } finally {
    await node.close();
  }
  node = await startTestNode(input);
  try {
    const core = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    // H.225.0 §7.9.1: the keep-alive after the restart is recognised (the registration came back from the store)
    const ka = await ask(
      sock,
      rrq({ keepAlive: true, endpointIdentifier, terminalAlias: undefined }),
      core.port,
      core.address,
    );
    assert.equal(ka.choice, 'registrationConfirm', JSON.stringify(ka));
    const unknown = await ask(
      sock,
      rrq({ keepAlive: true, endpointIdentifier: 'not-ours', terminalAlias: undefined }),
      core.port,
      core.address,
    );
    assert.equal(unknown.choice, 'registrationReject');
    assert.equal(
      (unknown.value as { rejectReason: { choice: string } }).rejectReason.choice,
      'fullRegistrationRequired',
    );
  } finally {
    await node.close();
    sock.close();
  }
});
