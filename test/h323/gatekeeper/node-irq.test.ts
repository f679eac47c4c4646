import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { aliasFromText, fromH225Address, H225_PROTOCOL_ID, h225Address } from '../../../src/h323/api.ts';
import type { RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { callControl } from '../../../src/roles/control.ts';
import { startTestNode } from '../../helpers/lab-node.ts';

/**
 * The control command `h323.irq` on a lab node: the gatekeeper sends an IRQ to the endpoint's RAS address (this
 * test's socket), and the command answers with the calls the endpoint's IRR lists; an endpoint that stays silent
 * gives answered: false, an unknown one is not asked.
 */
test('h323.irq: IRQ to a registered endpoint, its IRR reported; silence and unknown endpoints answered false', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-irq-'));
  const ep = dgram.createSocket('udp4');
  await new Promise<void>((r) => ep.bind(0, '127.0.0.1', () => r()));
  const me = ep.address().port;
  let answerIrq = true;
  const seen: RasMessage[] = [];
  const node = await startTestNode({ dataDir, h323: { enabled: true } });
  try {
    const core = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    let endpointIdentifier = '';
    ep.on('message', (b, from) => {
      const d = rasCodec.decode(b);
      assert.ok(d.ok);
      seen.push(d.value);
      if (d.value.choice === 'registrationConfirm') endpointIdentifier = d.value.value.endpointIdentifier;
      if (d.value.choice !== 'infoRequest' || !answerIrq) return;
      // the endpoint answers with one call in progress
      const irr: RasMessage = {
        choice: 'infoRequestResponse',
        value: {
          requestSeqNum: d.value.value.requestSeqNum,
          endpointType: { terminal: {}, mc: false, undefinedNode: false },
          endpointIdentifier,
          rasAddress: h225Address('127.0.0.1', me),
          callSignalAddress: [h225Address('127.0.0.1', 11760)],
          perCallInfo: [
            {
              callReferenceValue: 77,
              conferenceID: new Uint8Array(16).fill(7),
              h245: {},
              callSignalling: {},
              callType: { choice: 'pointToPoint', value: null },
              bandWidth: 640,
              callModel: { choice: 'gatekeeperRouted', value: null },
            },
          ],
        },
      };
      ep.send(rasCodec.encode(irr), from.port, from.address);
    });
    ep.send(
      rasCodec.encode({
        choice: 'registrationRequest',
        value: {
          requestSeqNum: 1,
          protocolIdentifier: H225_PROTOCOL_ID,
          discoveryComplete: true,
          callSignalAddress: [h225Address('127.0.0.1', 11760)],
          rasAddress: [h225Address('127.0.0.1', me)],
          terminalType: { terminal: {}, mc: false, undefinedNode: false },
          terminalAlias: [aliasFromText('dora')],
          endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
        },
      }),
      core.port,
      core.address,
    );
    for (let i = 0; i < 50 && !endpointIdentifier; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(endpointIdentifier, 'registered');

    const r = (await callControl(dataDir, 'h323.irq', { endpointIdentifier })) as Record<string, unknown>;
    assert.deepEqual(r, { answered: true, node: 'core', calls: [77] });
    const irq = seen.find((m) => m.choice === 'infoRequest');
    assert.ok(irq?.choice === 'infoRequest');
    assert.equal(irq.value.callReferenceValue, 0);
    assert.deepEqual(fromH225Address(irq.value.replyAddress!), { ip: core.address, port: core.port });

    answerIrq = false;
    const silent = (await callControl(dataDir, 'h323.irq', { endpointIdentifier })) as Record<string, unknown>;
    assert.deepEqual(silent, { answered: false, node: 'core', reason: 'no IRR' });
    const unknown = (await callControl(dataDir, 'h323.irq', { endpointIdentifier: 'nobody' })) as Record<
      string,
      unknown
    >;
    assert.deepEqual(unknown, { answered: false, reason: 'not registered' });
    assert.equal(seen.filter((m) => m.choice === 'infoRequest').length, 2, 'the unknown endpoint was not asked');
  } finally {
    await node.close();
    ep.close();
  }
});
