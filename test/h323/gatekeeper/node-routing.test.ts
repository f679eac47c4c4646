import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { aliasFromText, buildSetup, fromH225Address } from '../../../src/h323/api.ts';
import type { RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { encodeCallSignalling } from '../../../src/h323/q931/call-signalling.ts';
import { decodeCause, decodePartyNumber, encodePartyNumber, findIe, IE } from '../../../src/h323/q931/q931.ts';
import { encodeTpkt } from '../../../src/h323/transport/tpkt.ts';
import { startTestNode } from '../../helpers/lab-node.ts';
import { callSignallingReader } from '../../helpers/q931-reader.ts';
import { rasPeer, rrq } from '../../helpers/ras.ts';

/**
 * A lab node with no neighbor zone at all, but with a pre-search transform (strip a leading 9) and a call-policy
 * rule (alice may not call carol): H.323 admissions (ARQ) and Setups on the call-signalling port go through them,
 * as SIP requests do. Before, without a neighbor zone, the gatekeeper's table alone decided.
 */

test('without a neighbor zone, ARQs and Setups go through transforms and call policy', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-routing-'));
  // bob's call-signalling address: the node opens leg B of a routed call here
  const bobLegs: net.Socket[] = [];
  const bob = net.createServer((s) => bobLegs.push(s));
  await new Promise<void>((r) => bob.listen(0, '127.0.0.1', () => r()));
  const bobPort = (bob.address() as net.AddressInfo).port;
  const { socket: ep, port: me, next: nextRas } = await rasPeer(5000); // RAS of the three endpoints
  const next = (choice: RasMessage['choice']) => nextRas(choice, 'admissionReject');
  const node = await startTestNode({
    dataDir,
    h323: { enabled: true },
    routing: {
      transforms: [{ name: 'strip-9', pattern: { type: 'prefix', value: '9' }, action: 'strip' }],
      callPolicy: [{ source: 'alice', destination: 'carol', action: 'reject' }],
    },
  });
  const callers: net.Socket[] = [];
  try {
    const core = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const q931 = node.sockets().find((s) => s.listener === 'h323-q931' && s.node === 'core')!;
    const send = (m: RasMessage) => ep.send(rasCodec.encode(m), core.port, core.address);
    let seq = 0;
    const register = async (aliases: string[], csaPort: number) => {
      send(rrq(++seq, aliases, csaPort, me));
      const rcf = await next('registrationConfirm');
      assert.equal(rcf.choice, 'registrationConfirm');
      return (rcf.value as { endpointIdentifier: string }).endpointIdentifier;
    };
    const alice = await register(['alice'], 11720);
    await register(['bob', '2002'], bobPort);
    await register(['carol'], 11722);
    const arq = async (dest: string) => {
      send({
        choice: 'admissionRequest',
        value: {
          requestSeqNum: ++seq,
          callType: { choice: 'pointToPoint', value: null },
          endpointIdentifier: alice,
          destinationInfo: [aliasFromText(dest)],
          srcInfo: [aliasFromText('alice')],
          bandWidth: 640,
          callReferenceValue: seq,
          conferenceID: new Uint8Array(16).fill(seq),
          activeMC: false,
          answerCall: false,
          callIdentifier: { guid: new Uint8Array(16).fill(seq) },
        },
      });
      return next('admissionConfirm');
    };

    // ARQ: 92002 is 2002 (bob) after the transform; carol is refused by call policy
    const acf = await arq('92002');
    assert.ok(acf.choice === 'admissionConfirm', acf.choice);
    assert.deepEqual(fromH225Address(acf.value.destCallSignalAddress), { ip: q931.address, port: q931.port });
    const arj = await arq('carol');
    assert.ok(arj.choice === 'admissionReject', arj.choice);
    assert.equal(arj.value.rejectReason.choice, 'requestDenied');

    // Setup on the node's call signalling, from alice
    const setup = async (dest: string, cr: number) => {
      const s = net.connect({ host: q931.address, port: q931.port });
      callers.push(s);
      await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
      const read = callSignallingReader(s);
      const m = buildSetup({
        callReference: cr,
        callIdentifier: new Uint8Array(16).fill(cr),
        conferenceID: new Uint8Array(16).fill(cr),
        source: [aliasFromText('alice')],
        destination: [aliasFromText(dest)],
      });
      // the number dialled also in a Q.931 Called party number (unknown type, ISDN plan), as E.164 endpoints send it
      if (/^\d+$/.test(dest))
        m.q931.ies.push({
          id: IE.calledPartyNumber,
          data: encodePartyNumber({ typeOfNumber: 0, numberingPlan: 1, digits: dest }),
        });
      s.write(encodeTpkt(encodeCallSignalling(m)));
      return read;
    };
    const refused = await (await setup('carol', 41))('releaseComplete');
    const body = refused.uu?.['h323-uu-pdu']['h323-message-body'];
    assert.ok(body?.choice === 'releaseComplete');
    assert.equal(body.value.reason?.choice, 'securityDenied');
    const cause = decodeCause(findIe(refused.q931, IE.cause)!.data);
    assert.ok(cause.ok);
    assert.equal(cause.value.value, 21, 'Q.850 cause 21, call rejected');
    assert.equal(bobLegs.length, 0, 'nothing was sent on towards carol or bob');

    // 92002 reaches bob through the transform: the node opens leg B to bob's address with the Setup
    await setup('92002', 42);
    for (let i = 0; i < 50 && bobLegs.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(bobLegs.length, 1, 'leg B opened to bob');
    const atBob = await callSignallingReader(bobLegs[0]!)('setup');
    const out = atBob.uu?.['h323-uu-pdu']['h323-message-body'];
    assert.ok(out?.choice === 'setup');
    assert.deepEqual(fromH225Address(out.value.destCallSignalAddress!), { ip: '127.0.0.1', port: bobPort });
    // bob is asked for the alias the transform made of 92002, in the UUIE and in the Called party number
    assert.deepEqual(out.value.destinationAddress, [{ choice: 'dialledDigits', value: '2002' }]);
    const called = decodePartyNumber(findIe(atBob.q931, IE.calledPartyNumber)!.data);
    assert.ok(called.ok);
    assert.equal(called.value.digits, '2002');
    assert.deepEqual(out.value.sourceAddress, [aliasFromText('alice')], 'the caller unchanged');
    // routing's zones on the call: from a local endpoint, found among the registrations (as SIP names them)
    const live = node.h323.get('core')!.calls!.active();
    assert.deepEqual(
      live.map((c) => [c.sourceZone, c.targetZone]),
      [['LocalZone', 'LocalZone']],
    );
  } finally {
    for (const s of [...callers, ...bobLegs]) s.destroy();
    await node.close();
    bob.close();
    ep.close();
  }
});
