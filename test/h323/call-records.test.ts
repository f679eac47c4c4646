import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CallRegistry } from '../../src/calls/call-registry.ts';
import { SqliteCallStore } from '../../src/calls/call-store.ts';
import { buildAudioOlc, buildSetup, type IpPort } from '../../src/h323/api.ts';
import { h323CallRecorder } from '../../src/h323/call-records.ts';
import { type CallIo, RoutedCall } from '../../src/h323/calls/routed-call.ts';
import type { H323Registration, H323Route } from '../../src/h323/gatekeeper/gatekeeper.ts';
import { openLogicalChannelCodec } from '../../src/h323/per/schema.ts';
import { encodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';
import { Q931_MESSAGE_TYPES } from '../../src/h323/q931/q931.ts';
import { NodeStore } from '../../src/store/database.ts';

const BOB: IpPort = { ip: '198.51.100.8', port: 1720 };
const guid = new Uint8Array(16).fill(7);

const bobRegistration: H323Registration = {
  endpointIdentifier: 'e1',
  aliases: [{ kind: 'h323-ID', value: 'bob' }],
  callSignalAddresses: [BOB],
  rasAddress: BOB,
  timeToLive: 60,
  registeredAt: 0,
  refreshedAt: 0,
  vendor: undefined,
};

/**
 * A routed call whose state changes feed a call registry writing to an in-memory store. Without `route` the called
 * aliases are looked up as the gatekeeper's table would (bob only, no routing zones said).
 */
function harness(relayPorts?: CallIo['relayPorts'], route?: CallIo['resolve']) {
  let now = 1_000_000;
  const store = NodeStore.open(':memory:');
  const records = new SqliteCallStore(store);
  const registry = new CallRegistry({ historySize: 10, wallNow: () => now, sink: records });
  const io: CallIo = {
    resolve:
      route ??
      ((d): H323Route | undefined =>
        d.some((a) => a.value === 'bob') ? { kind: 'endpoint', registration: bobRegistration } : undefined),
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
      [['LocalZone', '198.51.100.8:1720', 200]],
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
    assert.deepEqual([r.sourceZone, r.targetZone], ['LocalZone', 'LocalZone'], 'a registration here, as SIP names it');
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

  it('names the routing zones: a call from a neighbor zone to a registration here, and one sent on to a neighbor zone', async () => {
    // routing said: the Setup came from the neighbor zone GnuGk; bob was found in LocalZone
    const fromNeighbour = harness(undefined, () =>
      Promise.resolve<H323Route>({
        kind: 'endpoint',
        registration: bobRegistration,
        found: { zone: 'LocalZone', alias: 'bob', dialled: 'bob' },
        sourceZone: 'GnuGk',
      }),
    );
    fromNeighbour.call.fromA(setup('bob'));
    await fromNeighbour.call.settled();
    assert.equal(fromNeighbour.registry.active()[0]!.sourceZone, 'GnuGk', 'the live call shows it once routed');
    fromNeighbour.call.bConnected();
    fromNeighbour.call.fromB(answer(Q931_MESSAGE_TYPES.connect, 900, 'connect'));
    fromNeighbour.call.fromA(answer(Q931_MESSAGE_TYPES.releaseComplete, 33, 'releaseComplete'));
    await fromNeighbour.call.settled();
    const [r1] = fromNeighbour.records.recent(1);
    assert.deepEqual([r1?.state, r1?.sourceZone, r1?.targetZone], ['ended', 'GnuGk', 'LocalZone']);

    // a registered caller's call found in the neighbor zone GnuGk (an LCF's address)
    const toNeighbour = harness(undefined, () =>
      Promise.resolve<H323Route>({
        kind: 'address',
        address: { ip: '203.0.113.5', port: 1720 },
        zone: 'GnuGk',
        found: { zone: 'GnuGk', alias: 'carol', dialled: 'carol' },
        sourceZone: 'LocalZone',
      }),
    );
    toNeighbour.call.fromA(setup('carol'));
    toNeighbour.call.bConnected();
    toNeighbour.call.fromB(answer(Q931_MESSAGE_TYPES.connect, 900, 'connect'));
    await toNeighbour.call.settled();
    assert.deepEqual(
      toNeighbour.registry.active()[0]!.legs.map((l) => [l.zone, l.target]),
      [['GnuGk', '203.0.113.5:1720']],
    );
    toNeighbour.call.fromA(answer(Q931_MESSAGE_TYPES.releaseComplete, 33, 'releaseComplete'));
    await toNeighbour.call.settled();
    const [r2] = toNeighbour.records.recent(1);
    assert.deepEqual([r2?.state, r2?.sourceZone, r2?.targetZone], ['ended', 'LocalZone', 'GnuGk']);

    // a Setup from the neighbor zone for nobody: failed, its source zone kept, no target zone
    const nobody = harness(undefined, () => Promise.resolve<H323Route>({ kind: 'not-found', sourceZone: 'GnuGk' }));
    nobody.call.fromA(setup('nobody'));
    await nobody.call.settled();
    const [r3] = nobody.records.recent(1);
    assert.deepEqual(
      [r3?.state, r3?.cause, r3?.sourceZone, r3?.targetZone],
      ['failed', 'calledPartyNotRegistered', 'GnuGk', null],
    );
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
