import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../../src/common/errors.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { aliasFromText, buildAudioOlc, buildSetup, buildTerminalCapabilitySet } from '../../../src/h323/api.ts';
import type { MultimediaSystemControlMessage, OpenLogicalChannel } from '../../../src/h323/per/generated/types.ts';
import { h245Codec, openLogicalChannelCodec, rasCodec } from '../../../src/h323/per/schema.ts';
import { type CallSignallingMessage, encodeCallSignalling } from '../../../src/h323/q931/call-signalling.ts';
import { decodeCause, findIe, IE, Q931_MESSAGE_TYPES } from '../../../src/h323/q931/q931.ts';
import { encodeTpkt } from '../../../src/h323/transport/tpkt.ts';
import { startTestNode } from '../../helpers/lab-node.ts';
import { callSignallingReader } from '../../helpers/q931-reader.ts';
import { rasPeer, rrq } from '../../helpers/ras.ts';

/**
 * `h323.calls` on a started lab node, with scripted endpoints on TCP: the codec policy thins the caller's fast-start
 * proposals and the node's own capability set toward the callee, the node's MasterSlaveDetermination carries the
 * configured terminalType, and a call the callee does not answer in `answerTimeoutSeconds` is released on both legs
 * with Q.850 cause 102. A bad codec name is refused at the field's path.
 */

const h245Of = (m: CallSignallingMessage): MultimediaSystemControlMessage[] =>
  (m.uu?.['h323-uu-pdu'].h245Control ?? []).map((c) => {
    const d = h245Codec.decode(c);
    assert.ok(d.ok);
    return d.value;
  });

const nameOf = (m: MultimediaSystemControlMessage) => (m.choice === '$unknown' ? '?' : m.value.choice);

test('a codec name h323.calls does not know is refused at its path', () => {
  assert.throws(
    () => validateConfig({ h323: { enabled: true, calls: { codecs: ['g711Alaw', 'opus'] } } }),
    (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === 'h323.calls.codecs[1]'),
  );
  assert.throws(
    () => validateConfig({ h323: { calls: { terminalType: 256 } } }),
    (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === 'h323.calls.terminalType'),
  );
});

test('h323.calls on a started node: codec policy, terminalType, and the answer timer releasing both legs', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-calls-'));
  const bobLegs: net.Socket[] = [];
  const bob = net.createServer((s) => bobLegs.push(s));
  await new Promise<void>((r) => bob.listen(0, '127.0.0.1', () => r()));
  const bobPort = (bob.address() as net.AddressInfo).port;
  const { socket: ep, port: me, next } = await rasPeer(5000);
  const node = await startTestNode({
    dataDir,
    h323: { enabled: true, calls: { codecs: ['g711Alaw'], terminalType: 201, answerTimeoutSeconds: 2 } },
  });
  const callers: net.Socket[] = [];
  try {
    const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const q931 = node.sockets().find((s) => s.listener === 'h323-q931' && s.node === 'core')!;
    ep.send(rasCodec.encode(rrq(1, ['bob'], bobPort, me)), ras.port, ras.address);
    assert.equal((await next('registrationConfirm')).choice, 'registrationConfirm');

    // alice proposes µ-law and A-law in fast start; the node lets only A-law through (policy)
    const ulaw = buildAudioOlc(1, { ip: '127.0.0.1', port: 5001 });
    const alaw: OpenLogicalChannel = {
      ...ulaw,
      forwardLogicalChannelNumber: 2,
      forwardLogicalChannelParameters: {
        ...ulaw.forwardLogicalChannelParameters,
        dataType: { choice: 'audioData', value: { choice: 'g711Alaw64k', value: 20 } },
      },
    };
    const alice = net.connect({ host: q931.address, port: q931.port });
    callers.push(alice);
    await new Promise<void>((r, j) => alice.once('connect', r).once('error', j));
    const atAlice = callSignallingReader(alice);
    const started = Date.now();
    const aliceSetup = buildSetup({
      callReference: 77,
      callIdentifier: new Uint8Array(16).fill(7),
      conferenceID: new Uint8Array(16).fill(7),
      source: [aliasFromText('alice')],
      destination: [aliasFromText('bob')],
      fastStart: [ulaw, alaw],
      h245Tunnelling: true,
    });
    // alice's capabilities tunnelled in the Setup (µ-law and A-law)
    aliceSetup.uu!['h323-uu-pdu'].h245Control = [h245Codec.encode(buildTerminalCapabilitySet(1))];
    alice.write(encodeTpkt(encodeCallSignalling(aliceSetup)));
    for (let i = 0; i < 50 && bobLegs.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(bobLegs.length, 1, 'leg B opened to bob');
    const atBob = callSignallingReader(bobLegs[0]!);
    const setup = await atBob('setup');
    const body = setup.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'setup');
    const proposals = (body.value.fastStart ?? []).map((b) => {
      const d = openLogicalChannelCodec.decode(b);
      assert.ok(d.ok);
      return d.value.forwardLogicalChannelParameters.dataType;
    });
    assert.deepEqual(proposals, [{ choice: 'audioData', value: { choice: 'g711Alaw64k', value: 20 } }]);

    // bob proceeds, tunnelling: the node opens its H.245 with bob (terminalType 201) and gives it alice's set,
    // without µ-law (buildTerminalCapabilitySet lists µ-law and A-law)
    const cr = setup.q931.callReference;
    bobLegs[0]!.write(
      encodeTpkt(
        encodeCallSignalling({
          q931: {
            callReference: cr,
            fromDestination: true,
            callReferenceLength: 2,
            messageType: Q931_MESSAGE_TYPES.callProceeding,
            ies: [],
          },
          uu: {
            'h323-uu-pdu': {
              'h323-message-body': {
                choice: 'callProceeding',
                value: {
                  protocolIdentifier: '0.0.8.2250.0.7',
                  destinationInfo: { mc: false, undefinedNode: false },
                  callIdentifier: { guid: new Uint8Array(16).fill(7) },
                },
              },
              h245Tunnelling: true,
              h245Control: [h245Codec.encode(buildTerminalCapabilitySet(4))],
            },
          },
        }),
      ),
    );
    const fromNode: MultimediaSystemControlMessage[] = [];
    for (let i = 0; i < 30 && !fromNode.some((m) => nameOf(m) === 'terminalCapabilitySet'); i++)
      fromNode.push(...h245Of(await atBob('facility')));
    const msd = fromNode.find((m) => m.choice === 'request' && m.value.choice === 'masterSlaveDetermination');
    assert.ok(msd?.choice === 'request' && msd.value.choice === 'masterSlaveDetermination', JSON.stringify(fromNode));
    assert.equal(msd.value.value.terminalType, 201);
    const tcs = fromNode.find((m) => m.choice === 'request' && m.value.choice === 'terminalCapabilitySet');
    assert.ok(tcs?.choice === 'request' && tcs.value.choice === 'terminalCapabilitySet');
    const audio = (tcs.value.value.capabilityTable ?? []).flatMap((e) =>
      e.capability?.choice === 'receiveAudioCapability' ? [e.capability.value.choice] : [],
    );
    assert.deepEqual(audio, ['g711Alaw64k'], 'only the allowed codec is offered');

    // bob never answers: both legs are released after answerTimeoutSeconds with cause 102
    for (const [who, read] of [
      ['alice', atAlice],
      ['bob', atBob],
    ] as const) {
      const rc = await read('releaseComplete', 8000);
      const cause = decodeCause(findIe(rc.q931, IE.cause)!.data);
      assert.ok(cause.ok);
      assert.equal(cause.value.value, 102, `${who}: recovery on timer expiry`);
    }
    const waited = Date.now() - started;
    assert.ok(waited >= 1500 && waited < 8000, `released after the 2 s answer timer (${waited} ms)`);
    const calls = node.h323.get('core')!.calls!;
    assert.match(calls.ended.at(-1)?.endReason ?? '', /not answered within 2 s/);
  } finally {
    for (const s of [...callers, ...bobLegs]) s.destroy();
    await node.close();
    bob.close();
    ep.close();
  }
});
