import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import type { NodeStatus } from '../../src/calls/status.ts';
import { formatStatus } from '../../src/cli/commands/status.ts';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../../src/h323/api.ts';
import type { RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import { callControl } from '../../src/roles/control.ts';
import { apiLogin, req, setupAdmin, startMgmtNode } from '../management/helpers.ts';

test('H.323 registrations are in the management API registrations listing and count, and in crossway status', async () => {
  const m = await startMgmtNode({ h323: { enabled: true, gatekeeper: { timeToLive: 120 } } });
  const sock = dgram.createSocket('udp4');
  try {
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const me = sock.address().port;
    const ras = m.node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'edge')!;
    const rrq: RasMessage = {
      choice: 'registrationRequest',
      value: {
        requestSeqNum: 1,
        protocolIdentifier: H225_PROTOCOL_ID,
        discoveryComplete: true,
        callSignalAddress: [h225Address('127.0.0.1', 11740)],
        rasAddress: [h225Address('127.0.0.1', me)],
        terminalType: { terminal: {}, mc: false, undefinedNode: false },
        terminalAlias: [aliasFromText('room-1'), aliasFromText('4001')],
        endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
        timeToLive: 90,
      },
    };
    const rcf = await new Promise<RasMessage>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no RCF')), 3000);
      sock.once('message', (b) => {
        clearTimeout(t);
        const d = rasCodec.decode(b);
        if (d.ok) resolve(d.value);
        else reject(new Error('undecodable answer'));
      });
      sock.send(rasCodec.encode(rrq), ras.port, ras.address);
    });
    assert.equal(rcf.choice, 'registrationConfirm');
    const id = (rcf.value as { endpointIdentifier: string }).endpointIdentifier;

    await setupAdmin(m, 'admin', 'a-long-admin-password');
    const { cookie } = await apiLogin(m, 'admin', 'a-long-admin-password');
    const r = await req(`${m.base()}/api/v1/status/registrations`, { ca: m.ca, headers: { cookie } });
    assert.equal(r.status, 200);
    const body = r.json<unknown>();
    const list = (Array.isArray(body) ? body : (body as { registrations: unknown[] }).registrations) as Array<
      Record<string, unknown>
    >;
    const h323 = list.filter((x) => x.protocol === 'h323');
    assert.equal(h323.length, 1, JSON.stringify(body));
    assert.equal(h323[0]!.endpointIdentifier, id);
    assert.deepEqual(h323[0]!.aliases, ['h323-ID:room-1', 'dialledDigits:4001']);
    assert.equal(h323[0]!.callSignalAddress, '127.0.0.1:11740');
    assert.equal(h323[0]!.timeToLive, 90);
    assert.ok((h323[0]!.expiresIn as number) > 80 && (h323[0]!.expiresIn as number) <= 90);
    assert.equal(m.node.management!.nodes.get('edge')!.counts().registrations, 1);

    const status = (await callControl(m.dataDir, 'calls.status')) as NodeStatus[];
    const text = formatStatus(status.find((s) => s.node === 'edge')!);
    assert.match(text, /H\.323 registrations: 1/);
    assert.match(text, new RegExp(`h323-ID:room-1 dialledDigits:4001 {2}id ${id} {2}signalling 127\\.0\\.0\\.1:11740`));
  } finally {
    sock.close();
    await m.node.close();
  }
});
