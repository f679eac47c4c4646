import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { buildSetup, type IpPort } from '../../../src/h323/api.ts';
import { type CallIo, type Leg, RoutedCall } from '../../../src/h323/calls/routed-call.ts';
import type { H323Target } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  encodeCallSignalling,
} from '../../../src/h323/q931/call-signalling.ts';
import { decodeCause, IE, Q931_MESSAGE_TYPES, q931MessageName } from '../../../src/h323/q931/q931.ts';

const BOB: IpPort = { ip: '198.51.100.8', port: 1720 };
const guid = new Uint8Array(16).fill(7);

function harness(known: boolean) {
  const sent: Array<{ leg: Leg; m: CallSignallingMessage }> = [];
  const closed: Leg[] = [];
  const connects: IpPort[] = [];
  const io: CallIo = {
    resolve: (d): H323Target | undefined =>
      known && d.some((a) => a.value === 'bob')
        ? {
            kind: 'endpoint',
            registration: {
              endpointIdentifier: 'e1',
              aliases: [{ kind: 'h323-ID', value: 'bob' }],
              callSignalAddresses: [BOB],
              rasAddress: BOB,
              timeToLive: 60,
              registeredAt: 0,
              refreshedAt: 0,
              vendor: undefined,
            },
          }
        : undefined,
    connectB: (to) => connects.push(to),
    send: (leg, pdu) => {
      const d = decodeCallSignalling(pdu);
      assert.ok(d.ok, 'what the call sends decodes');
      sent.push({ leg, m: d.value });
    },
    close: (leg) => closed.push(leg),
    localAddress: { ip: '192.0.2.1', port: 1720 },
  };
  const call = new RoutedCall('c1', io, 900, () => 0);
  return { call, sent, closed, connects };
}

const setup = (dest: string) =>
  encodeCallSignalling(
    buildSetup({
      callReference: 33,
      callIdentifier: guid,
      conferenceID: guid,
      source: [{ choice: 'h323-ID', value: 'alice' }],
      destination: [{ choice: 'h323-ID', value: dest }],
    }),
  );

function answer(type: number, callReference: number, body: 'alerting' | 'connect' | 'releaseComplete') {
  const value =
    body === 'releaseComplete'
      ? { protocolIdentifier: '0.0.8.2250.0.7', callIdentifier: { guid } }
      : body === 'alerting'
        ? {
            protocolIdentifier: '0.0.8.2250.0.7',
            destinationInfo: { mc: false, undefinedNode: false },
            callIdentifier: { guid },
          }
        : {
            protocolIdentifier: '0.0.8.2250.0.7',
            destinationInfo: { mc: false, undefinedNode: false },
            conferenceID: guid,
            callIdentifier: { guid },
          };
  return encodeCallSignalling({
    q931: { callReference, fromDestination: true, callReferenceLength: 2, messageType: type, ies: [] },
    uu: { 'h323-uu-pdu': { 'h323-message-body': { choice: body, value } as never, h245Tunnelling: true } },
  });
}

const cause = (m: CallSignallingMessage) => {
  const ie = m.q931.ies.find((i) => i.id === IE.cause);
  const c = ie && decodeCause(ie.data);
  return c?.ok ? c.value.value : undefined;
};
const rcReason = (m: CallSignallingMessage) => {
  const b = m.uu?.['h323-uu-pdu']['h323-message-body'];
  return b?.choice === 'releaseComplete' ? b.value.reason?.choice : undefined;
};

describe('routed call (sans-I/O)', () => {
  it('Setup → leg B opened to the registered callee, Setup out with our call reference; answers mapped back', async () => {
    const h = harness(true);
    h.call.fromA(setup('bob'));
    await h.call.settled();
    assert.deepEqual(h.connects, [BOB]);
    assert.equal(h.call.state, 'routing');
    h.call.bConnected();
    await h.call.settled();
    const out = h.sent[0]!;
    assert.equal(out.leg, 'b');
    assert.equal(q931MessageName(out.m.q931.messageType), 'setup');
    assert.equal(out.m.q931.callReference, 900);
    assert.equal(out.m.q931.fromDestination, false);
    h.call.fromB(answer(Q931_MESSAGE_TYPES.alerting, 900, 'alerting'));
    h.call.fromB(answer(Q931_MESSAGE_TYPES.connect, 900, 'connect'));
    await h.call.settled();
    assert.equal(h.call.state, 'connected');
    const toA = h.sent.filter((s) => s.leg === 'a');
    assert.deepEqual(
      toA.map((s) => [q931MessageName(s.m.q931.messageType), s.m.q931.callReference, s.m.q931.fromDestination]),
      [
        ['alerting', 33, true],
        ['connect', 33, true],
      ],
    );
    h.call.fromA(answer(Q931_MESSAGE_TYPES.releaseComplete, 33, 'releaseComplete'));
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    assert.equal(h.call.info.endReason, 'released by caller');
    assert.deepEqual(h.closed.sort(), ['a', 'b']);
  });

  it('a Setup to an alias nobody registered → ReleaseComplete cause 1, reason calledPartyNotRegistered', async () => {
    const h = harness(false);
    h.call.fromA(setup('nobody'));
    await h.call.settled();
    assert.equal(h.sent.length, 1);
    const rc = h.sent[0]!;
    assert.equal(rc.leg, 'a');
    assert.equal(q931MessageName(rc.m.q931.messageType), 'releaseComplete');
    assert.equal(rc.m.q931.callReference, 33);
    assert.equal(cause(rc.m), 1);
    assert.equal(rcReason(rc.m), 'calledPartyNotRegistered');
    assert.equal(h.call.state, 'released');
    assert.deepEqual(h.connects, []);
  });

  it('leg B unreachable → ReleaseComplete unreachableDestination to the caller', async () => {
    const h = harness(true);
    h.call.fromA(setup('bob'));
    h.call.bFailed('ECONNREFUSED');
    await h.call.settled();
    assert.equal(rcReason(h.sent[0]!.m), 'unreachableDestination');
    assert.equal(h.call.state, 'released');
  });

  it('garbage on either leg ends the call with ReleaseComplete undefinedReason and never throws', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.boolean(), async (junk, afterSetup) => {
        const h = harness(true);
        if (afterSetup) {
          h.call.fromA(setup('bob'));
          h.call.bConnected();
          h.call.fromB(answer(Q931_MESSAGE_TYPES.connect, 900, 'connect'));
          h.call.fromB(junk);
        } else h.call.fromA(junk);
        await h.call.settled();
        if (h.call.state === 'released') {
          const rcs = h.sent.filter((s) => q931MessageName(s.m.q931.messageType) === 'releaseComplete');
          assert.ok(rcs.length >= 1);
        }
      }),
      { numRuns: 500 },
    );
    const h = harness(true);
    h.call.fromA(Uint8Array.of(8, 2, 0, 1, 5));
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    assert.equal(rcReason(h.sent[0]!.m), 'undefinedReason');
  });
});
