import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallRegistry } from '../../src/calls/call-registry.ts';
import { SqliteCallStore } from '../../src/calls/call-store.ts';
import { buildAudioOlc, buildSetup, type IpPort } from '../../src/h323/api.ts';
import { h323CallRecorder } from '../../src/h323/call-records.ts';
import { type CallIo, RoutedCall } from '../../src/h323/calls/routed-call.ts';
import type { H323Target } from '../../src/h323/gatekeeper/gatekeeper.ts';
import { openLogicalChannelCodec } from '../../src/h323/per/schema.ts';
import { encodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';
import { Q931_MESSAGE_TYPES } from '../../src/h323/q931/q931.ts';
import { NodeStore } from '../../src/store/database.ts';

const BOB: IpPort = { ip: '198.51.100.8', port: 1720 };
const guid = new Uint8Array(16).fill(7);

/** A routed call whose state changes feed a call registry writing to an in-memory store. */
function harness(relayPorts?: CallIo['relayPorts']) {
  let now = 1_000_000;
  const store = NodeStore.open(':memory:');
  const records = new SqliteCallStore(store);
  const registry = new CallRegistry({ historySize: 10, wallNow: () => now, sink: records });
  const io: CallIo = {
    resolve: (d): H323Target | undefined =>
      d.some((a) => a.value === 'bob')
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
    connectB: () => {},
    send: () => {},
    close: () => {},
    localAddress: { ip: '192.0.2.1', port: 1720 },
    ...(relayPorts ? { relayPorts } : {}),
  };
  const call = new RoutedCall('c1', io, 900, () => now);
  call.onState = h323CallRecorder(registry);
  return { call, registry, records, advance: (ms: number) => (now += ms) };
}

const setup = (dest: string) =>
  encodeCallSignalling(
    buildSetup({
      callReference: 33,
      callIdentifier: guid,
      conferenceID: guid,
      source: [
        { choice: 'h323-ID', value: 'alice' },
        { choice: 'dialledDigits', value: '2001' },
      ],
      destination: [{ choice: 'h323-ID', value: dest }],
    }),
  );

function answer(type: number, callReference: number, body: 'connect' | 'releaseComplete', fastStart?: Uint8Array[]) {
  const value =
    body === 'releaseComplete'
      ? { protocolIdentifier: '0.0.8.2250.0.7', callIdentifier: { guid } }
      : {
          protocolIdentifier: '0.0.8.2250.0.7',
          destinationInfo: { mc: false, undefinedNode: false },
          conferenceID: guid,
          callIdentifier: { guid },
          ...(fastStart ? { fastStart } : {}),
        };
  return encodeCallSignalling({
    q931: { callReference, fromDestination: true, callReferenceLength: 2, messageType: type, ies: [] },
    uu: { 'h323-uu-pdu': { 'h323-message-body': { choice: body, value } as never, h245Tunnelling: true } },
  });
}

describe('H.323 call records', () => {
  it('an answered routed call is an active h323 call while up, then one record with both sides, cause and duration', async () => {
    const h = harness();
    h.call.fromA(setup('bob'));
    await h.call.settled();
    const routing = h.registry.active();
    assert.equal(routing.length, 1);
    assert.equal(routing[0]!.protocol, 'h323');
    assert.equal(routing[0]!.from, 'h323-ID:alice,dialledDigits:2001');
    assert.equal(routing[0]!.to, 'h323-ID:bob');
    h.call.bConnected();
    h.call.fromB(answer(Q931_MESSAGE_TYPES.connect, 900, 'connect'));
    await h.call.settled();
    const up = h.registry.active()[0]!;
    assert.equal(up.state, 'active');
    assert.deepEqual(
      up.legs.map((l) => [l.zone, l.target, l.status]),
      [['h323', '198.51.100.8:1720', 200]],
    );
    h.advance(42_000);
    h.call.fromA(answer(Q931_MESSAGE_TYPES.releaseComplete, 33, 'releaseComplete'));
    await h.call.settled();
    assert.equal(h.registry.activeCount, 0);
    const [r] = h.records.recent(5);
    assert.ok(r);
    assert.equal(r.protocol, 'h323');
    assert.equal(r.state, 'ended');
    assert.equal(r.from, 'h323-ID:alice,dialledDigits:2001');
    assert.equal(r.to, 'h323-ID:bob');
    assert.equal(r.status, 200);
    assert.equal(r.cause, 'released by caller');
    assert.equal(r.endedAt - (r.answeredAt ?? 0), 42_000);
    assert.equal(r.legs, 1);
  });

  it('the active call shows its media path (codecs each side sends, relay ports facing each), kept in the history and the stored record', async () => {
    const relay = [
      { session: 1, address: '192.0.2.1', a: { rtp: 36_000, rtcp: 36_001 }, b: { rtp: 36_002, rtcp: 36_003 } },
    ];
    const h = harness(() => relay);
    h.call.fromA(setup('bob'));
    h.call.bConnected();
    await h.call.settled();
    assert.equal(h.registry.active()[0]!.mediaPath, undefined, 'nothing known before the answer');
    // the callee accepts the caller's G.711 µ-law channel in its Connect (fast start)
    const olc = openLogicalChannelCodec.encode(buildAudioOlc(1, { ip: '198.51.100.8', port: 5001 }));
    const connect = answer(Q931_MESSAGE_TYPES.connect, 900, 'connect', [olc]);
    h.call.fromB(connect);
    await h.call.settled();
    const want = {
      codecs: { caller: ['audio:g711Ulaw'], callee: [] },
      relay: [
        {
          session: 1,
          address: '192.0.2.1',
          caller: { rtp: 36_000, rtcp: 36_001 },
          callee: { rtp: 36_002, rtcp: 36_003 },
        },
      ],
    };
    assert.deepEqual(h.registry.active()[0]!.mediaPath, want);
    h.call.fromA(answer(Q931_MESSAGE_TYPES.releaseComplete, 33, 'releaseComplete'));
    await h.call.settled();
    assert.deepEqual(h.registry.history(1)[0]!.mediaPath, want);
    // and the stored record keeps it (the store behind call history, read after the in-memory ring is gone)
    const [stored] = h.records.recent(1);
    assert.equal(stored?.protocol, 'h323');
    assert.deepEqual(stored?.mediaPath, want);
  });

  it('a call to an alias nobody registered is recorded as failed with calledPartyNotRegistered', async () => {
    const h = harness();
    h.call.fromA(setup('nobody'));
    await h.call.settled();
    assert.equal(h.registry.activeCount, 0);
    const [r] = h.records.recent(5);
    assert.equal(r?.state, 'failed');
    assert.equal(r?.to, 'h323-ID:nobody');
    assert.equal(r?.cause, 'calledPartyNotRegistered');
    assert.equal(r?.legs, 0);
    assert.equal(r?.mediaPath, null, 'no media path for a call that never reached the callee');
  });

  it('a connection that never sent a Setup leaves no record', async () => {
    const h = harness();
    h.call.fromA(Uint8Array.of(8, 2, 0, 1, 5));
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    assert.equal(h.records.recent(5).length, 0);
    assert.equal(h.registry.counters.started, 0);
  });
});
