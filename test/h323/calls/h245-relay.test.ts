import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  buildAudioOlc,
  buildCloseLogicalChannel,
  buildOlcAck,
  buildSetup,
  buildTerminalCapabilitySet,
  buildUserInput,
  fromH225Address,
  fromH245Address,
  h225Address,
  h245Address,
  type IpPort,
  olcAddresses,
  rewriteOlcAckAddresses,
  rewriteOlcAddresses,
} from '../../../src/h323/api.ts';
import { codecPolicy } from '../../../src/h323/calls/capabilities.ts';
import { type CallIo, type Leg, RoutedCall, type RoutedCallOptions } from '../../../src/h323/calls/routed-call.ts';
import type {
  Capability,
  H225_TransportAddress,
  MultimediaSystemControlMessage,
  OpenLogicalChannel,
  OpenLogicalChannelAck,
  TerminalCapabilitySet,
} from '../../../src/h323/per/generated/types.ts';
import { h245Codec, openLogicalChannelCodec } from '../../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  encodeCallSignalling,
} from '../../../src/h323/q931/call-signalling.ts';
import { Q931_MESSAGE_TYPES, q931MessageName } from '../../../src/h323/q931/q931.ts';

/**
 * The node's H.245 rules on a routed call, without sockets: where each leg's H.245 goes (tunnel or separate
 * connection), which addresses each leg is given, what the node answers itself on each leg (master/slave
 * determination, capability exchange, round-trip delay), what is rewritten (OLC/OLCAck media addresses) and what
 * passes byte for byte (user input, mode requests, channel close, EndSession).
 */

/** H.245 the node originates or answers on a leg's own session (not relayed from the other leg). */
const SESSION = new Set([
  'masterSlaveDetermination',
  'masterSlaveDeterminationAck',
  'masterSlaveDeterminationReject',
  'terminalCapabilitySet',
  'terminalCapabilitySetAck',
  'terminalCapabilitySetReject',
  'roundTripDelayResponse',
]);
const isSession = (m: MultimediaSystemControlMessage) => m.choice !== '$unknown' && SESSION.has(m.value.choice);
const nameOf = (m: MultimediaSystemControlMessage) => (m.choice === '$unknown' ? '?' : m.value.choice);

const BOB: IpPort = { ip: '198.51.100.8', port: 1720 };
const BOB_H245: IpPort = { ip: '198.51.100.8', port: 3000 };
const NODE = '192.0.2.1';
/** Where our fake relay faces each leg: party a gets 40000/40001, party b 40002/40003. */
const RELAY: Record<Leg, IpPort> = { a: { ip: NODE, port: 40_000 }, b: { ip: NODE, port: 40_002 } };
const guid = new Uint8Array(16).fill(7);

function harness(
  o: {
    relayPorts?: CallIo['relayPorts'];
    timers?: Array<{ ms: number; fn: () => void; cancelled?: boolean }>;
  } & RoutedCallOptions = {},
) {
  const q931: Array<{ leg: Leg; m: CallSignallingMessage }> = [];
  const h245: Array<{ leg: Leg; m: MultimediaSystemControlMessage; bytes: Uint8Array }> = [];
  const h245Connects: Array<{ leg: Leg; to: IpPort }> = [];
  const h245Closed: Leg[] = [];
  const listening: Leg[] = [];
  /** Channels the call told the media side were closed (`<opener>:<channel>`). */
  const closedChannels: string[] = [];
  /** Everything sent, in order: `q931:<leg>:<message>` and `h245:<leg>:<pdu>` (tunnelled H.245 as `h245:<leg>:…`). */
  const order: string[] = [];
  const h245Name = nameOf;
  /** Every H.245 PDU the call sent, on a connection or tunnelled. */
  const sentH245: Array<{ leg: Leg; m: MultimediaSystemControlMessage }> = [];
  /** What the fake relay was told: where each party receives. */
  const remotes: Array<{ party: Leg; role: string; at: IpPort }> = [];
  const anchorTo = (from: Leg) => (at: IpPort, where: { role: 'media' | 'mediaControl' }) => {
    remotes.push({ party: from, role: where.role, at });
    const facing = RELAY[from === 'a' ? 'b' : 'a'];
    return { ip: facing.ip, port: facing.port + (where.role === 'media' ? 0 : 1) };
  };
  const io: CallIo = {
    resolve: () => ({
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
    }),
    connectB: () => {},
    send: (leg, pdu) => {
      const d = decodeCallSignalling(pdu);
      assert.ok(d.ok, 'what the call sends decodes');
      q931.push({ leg, m: d.value });
      order.push(`q931:${leg}:${d.value.uu!['h323-uu-pdu']['h323-message-body'].choice}`);
      for (const c of d.value.uu!['h323-uu-pdu'].h245Control ?? []) {
        const x = h245Codec.decode(c);
        order.push(`h245:${leg}:${x.ok ? h245Name(x.value) : 'malformed'}`);
        if (x.ok) sentH245.push({ leg, m: x.value });
      }
    },
    close: () => {},
    localAddress: { ip: NODE, port: 1720 },
    anchorOlc: async (from, olc) => rewriteOlcAddresses(olc, anchorTo(from)),
    anchorOlcAck: async (from, ack, _session) => rewriteOlcAckAddresses(ack, anchorTo(from)),
    closeChannel: async (from, channel) => closedChannels.push(`${from}:${channel}`),
    ...(o.relayPorts ? { relayPorts: o.relayPorts } : {}),
    ...(o.timers
      ? {
          setTimer: (ms: number, fn: () => void) => {
            const t = { ms, fn, cancelled: false };
            o.timers!.push(t);
            return {
              cancel: () => {
                t.cancelled = true;
              },
            };
          },
        }
      : {}),
    h245: {
      listen: async (leg) => {
        listening.push(leg);
        return { ip: NODE, port: leg === 'a' ? 15_000 : 15_001 };
      },
      connect: (leg, to) => h245Connects.push({ leg, to }),
      send: (leg, bytes) => {
        const d = h245Codec.decode(bytes);
        assert.ok(d.ok, 'H.245 the call sends decodes');
        h245.push({ leg, m: d.value, bytes });
        sentH245.push({ leg, m: d.value });
        order.push(`h245:${leg}:${h245Name(d.value)}`);
      },
      close: (leg) => h245Closed.push(leg),
    },
  };
  // a fixed statusDeterminationNumber unless a test brings its own
  const call = new RoutedCall('c1', io, 900, () => 0, { random: () => 0x123456, ...o });
  /** Every state the call reported (status, records), with the codecs it showed then. */
  const states: Array<{ state: string; codecs: Record<Leg, string[]> }> = [];
  call.onState = (info) => states.push({ state: info.state, codecs: info.codecs });
  /** H.245 sent on separate connections that came from the other leg (the node's own session PDUs left out). */
  const relayed = () => h245.filter((x) => !isSession(x.m));
  /** Every H.245 PDU sent to `leg`, on its connection or tunnelled, decoded, in order. */
  const toLeg = (leg: Leg) => sentH245.filter((e) => e.leg === leg).map((e) => e.m);
  return {
    call,
    q931,
    h245,
    h245Connects,
    h245Closed,
    listening,
    remotes,
    closedChannels,
    order,
    states,
    relayed,
    toLeg,
  };
}

const setup = (tunnelling: boolean, fastStart?: OpenLogicalChannel[]) =>
  encodeCallSignalling(
    buildSetup({
      callReference: 33,
      callIdentifier: guid,
      conferenceID: guid,
      source: [{ choice: 'h323-ID', value: 'alice' }],
      destination: [{ choice: 'h323-ID', value: 'bob' }],
      h245Tunnelling: tunnelling,
      ...(fastStart ? { fastStart } : {}),
    }),
  );

function answer(
  body: 'callProceeding' | 'connect' | 'releaseComplete' | 'facility',
  from: Leg,
  o: { tunnelling: boolean; h245Address?: H225_TransportAddress; control?: Uint8Array[] },
) {
  const type = Q931_MESSAGE_TYPES[body];
  const common = { protocolIdentifier: '0.0.8.2250.0.7', callIdentifier: { guid } };
  const value =
    body === 'releaseComplete'
      ? common
      : body === 'facility'
        ? { ...common, reason: { choice: 'transportedInformation', value: null } }
        : body === 'callProceeding'
          ? { ...common, destinationInfo: { mc: false, undefinedNode: false } }
          : {
              ...common,
              destinationInfo: { mc: false, undefinedNode: false },
              conferenceID: guid,
              ...(o.h245Address ? { h245Address: o.h245Address } : {}),
            };
  return encodeCallSignalling({
    q931: {
      callReference: from === 'b' ? 900 : 33,
      fromDestination: from === 'b',
      callReferenceLength: 2,
      messageType: type,
      ies: [],
    },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': { choice: body, value } as never,
        h245Tunnelling: o.tunnelling,
        ...(o.control ? { h245Control: o.control } : {}),
      },
    },
  });
}

const olcMsg = (channel: number, rtcpPort: number, ip: string): MultimediaSystemControlMessage => ({
  choice: 'request',
  value: { choice: 'openLogicalChannel', value: buildAudioOlc(channel, { ip, port: rtcpPort }) },
});

/** An OLCAck without a sessionID (H.245 makes it optional): the node must find the session from the OLC. */
const ackMsg = (channel: number, rtp: IpPort): MultimediaSystemControlMessage => {
  const ack = buildOlcAck(channel, rtp, { ip: rtp.ip, port: rtp.port + 1 });
  const p = ack.forwardMultiplexAckParameters!;
  const noSession: OpenLogicalChannelAck =
    p.choice === 'h2250LogicalChannelAckParameters'
      ? { ...ack, forwardMultiplexAckParameters: { choice: p.choice, value: { ...p.value, sessionID: undefined } } }
      : ack;
  return { choice: 'response', value: { choice: 'openLogicalChannelAck', value: noSession } };
};

const bodyOf = (m: CallSignallingMessage) => m.uu!['h323-uu-pdu']['h323-message-body'];
const h245AddressOf = (m: CallSignallingMessage) => {
  const v = bodyOf(m).value as { h245Address?: H225_TransportAddress };
  return v.h245Address ? fromH225Address(v.h245Address) : undefined;
};

/** Both legs with separate H.245 connections, up: the state after a non-tunnelled Connect. */
async function separateBoth() {
  const h = harness();
  h.call.fromA(setup(false));
  h.call.bConnected();
  h.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
  h.call.h245Up('b');
  h.call.h245Up('a');
  await h.call.settled();
  return h;
}

describe('H.245 on a routed call (sans-I/O)', () => {
  it("separate H.245: the node connects to the callee's h245Address and gives the caller its own listener instead", async () => {
    const h = await separateBoth();
    assert.deepEqual(h.h245Connects, [{ leg: 'b', to: BOB_H245 }]);
    const setupOut = h.q931.find((s) => s.leg === 'b')!;
    assert.equal(bodyOf(setupOut.m).choice, 'setup');
    assert.equal(h245AddressOf(setupOut.m), undefined, 'no H.245 address in the Setup to B');
    assert.equal(setupOut.m.uu!['h323-uu-pdu'].h245Tunnelling, true, 'tunnelling offered to B');
    const connect = h.q931.find((s) => s.leg === 'a' && bodyOf(s.m).choice === 'connect')!;
    assert.deepEqual(h245AddressOf(connect.m), { ip: NODE, port: 15_000 }, "the caller is given the node's listener");
    assert.equal(connect.m.uu!['h323-uu-pdu'].h245Tunnelling, false);
    assert.deepEqual(h.listening, ['a']);
    assert.deepEqual(h.call.h245Mode('a'), { tunnelling: false, channel: 'up' });
    assert.deepEqual(h.call.h245Mode('b'), { tunnelling: false, channel: 'up' });
  });

  it("an OLC's addresses and its Ack's are rewritten onto the relay, in both directions (Ack session found from the OLC)", async () => {
    const h = await separateBoth();
    // A opens its transmit channel: its RTCP address goes to the relay, B sees the relay's pair facing B
    h.call.fromH245('a', h245Codec.encode(olcMsg(1001, 5001, '203.0.113.2')));
    // B acknowledges with where it receives: the relay sends there, A sees the relay's pair facing A
    h.call.fromH245('b', h245Codec.encode(ackMsg(1001, { ip: '203.0.113.3', port: 6000 })));
    // and the other direction
    h.call.fromH245('b', h245Codec.encode(olcMsg(2001, 6001, '203.0.113.3')));
    h.call.fromH245('a', h245Codec.encode(ackMsg(2001, { ip: '203.0.113.2', port: 5000 })));
    await h.call.settled();
    const [olcToB, ackToA, olcToA, ackToB] = h.relayed();
    assert.equal(olcToB!.leg, 'b');
    assert.equal(ackToA!.leg, 'a');
    assert.equal(olcToA!.leg, 'a');
    assert.equal(ackToB!.leg, 'b');
    const olcAddrs = (x: (typeof h.h245)[number]) => {
      const m = x.m;
      assert.ok(m.choice === 'request' && m.value.choice === 'openLogicalChannel');
      return olcAddresses(m.value.value).map((a) => a.address);
    };
    const ackAddrs = (x: (typeof h.h245)[number]) => {
      const m = x.m;
      assert.ok(m.choice === 'response' && m.value.choice === 'openLogicalChannelAck');
      const p = m.value.value.forwardMultiplexAckParameters!;
      assert.ok(p.choice === 'h2250LogicalChannelAckParameters');
      return p.value;
    };
    assert.deepEqual(olcAddrs(olcToB!), [{ ip: NODE, port: 40_003 }], 'B is given the relay facing B');
    const a1 = ackAddrs(ackToA!);
    assert.equal(a1.sessionID, undefined, 'the Ack is otherwise unchanged');
    assert.deepEqual(
      [a1.mediaChannel, a1.mediaControlChannel].map((a) => a && fromH245Address(a)),
      [
        { ip: NODE, port: 40_000 },
        { ip: NODE, port: 40_001 },
      ],
      'A is told to send to the relay facing A',
    );
    const b1 = ackAddrs(ackToB!);
    assert.deepEqual(
      [b1.mediaChannel, b1.mediaControlChannel].map((a) => a && fromH245Address(a)),
      [
        { ip: NODE, port: 40_002 },
        { ip: NODE, port: 40_003 },
      ],
      'B is told to send to the relay facing B',
    );
    assert.deepEqual(olcAddrs(olcToA!), [{ ip: NODE, port: 40_001 }], 'A is given the relay facing A');
    // the relay learnt where each party receives, from its own leg's PDUs only
    assert.deepEqual(h.remotes, [
      { party: 'a', role: 'mediaControl', at: { ip: '203.0.113.2', port: 5001 } },
      { party: 'b', role: 'media', at: { ip: '203.0.113.3', port: 6000 } },
      { party: 'b', role: 'mediaControl', at: { ip: '203.0.113.3', port: 6001 } },
      { party: 'b', role: 'mediaControl', at: { ip: '203.0.113.3', port: 6001 } },
      { party: 'a', role: 'media', at: { ip: '203.0.113.2', port: 5000 } },
      { party: 'a', role: 'mediaControl', at: { ip: '203.0.113.2', port: 5001 } },
    ]);
    assert.equal(h.call.h245Counters.anchored, 4);
  });

  it("master/slave determination ends at the node on each leg (its terminalType 190 beats a gateway's 60); user input passes byte for byte", async () => {
    const h = await separateBoth();
    // each leg heard the node's own request as soon as its H.245 connection was up
    for (const leg of ['a', 'b'] as const)
      assert.deepEqual(h.toLeg(leg), [msdMsg(190, 0x123456)], `the node's MasterSlaveDetermination on leg ${leg}`);
    // B asks too (both requests cross): the node, of higher type, tells B it is the slave; B confirms ours
    h.call.fromH245('b', h245Codec.encode(msdMsg(60, 12_345)));
    h.call.fromH245('b', h245Codec.encode(msdAckMsg('master')));
    // A only answers the node's request: the node confirms with its own Ack (H.245 §8.2)
    h.call.fromH245('a', h245Codec.encode(msdAckMsg('master')));
    const dtmf = h245Codec.encode(buildUserInput('5'));
    h.call.fromH245('a', dtmf);
    await h.call.settled();
    assert.deepEqual(h.toLeg('b').filter(isSession).slice(1), [msdAckMsg('slave')]);
    assert.deepEqual(h.toLeg('a').filter(isSession).slice(1), [msdAckMsg('slave')]);
    assert.deepEqual(
      h.relayed().map((x) => [x.leg, x.bytes]),
      [['b', dtmf]],
      'nothing of the determination reaches the other leg; the DTMF does',
    );
    assert.deepEqual(h.call.info.masterSlave, { a: 'master', b: 'master' });
    assert.equal(h.call.h245Counters.terminated, 3);
  });

  it('equal terminalTypes: the statusDeterminationNumbers decide; identical numbers make the node try again; a leg refusing every try ends the call', async () => {
    const numbers = [0x100, 0x200, 0x300, 0x400, 0x500, 0x600];
    const h = harness({ terminalType: 60, random: () => numbers.shift() ?? 0x700 });
    h.call.fromA(setup(false));
    h.call.bConnected();
    h.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
    h.call.h245Up('b'); // the node's request to B carries 0x100
    h.call.h245Up('a'); // … to A, 0x200
    await h.call.settled();
    // (theirs − ours) mod 2^24 below 2^23: the node is master; above: slave
    h.call.fromH245('b', h245Codec.encode(msdMsg(60, 0x101)));
    h.call.fromH245('a', h245Codec.encode(msdMsg(60, 0x200 + 0x800001)));
    await h.call.settled();
    assert.deepEqual(h.toLeg('b').at(-1), msdAckMsg('slave'), 'B is the slave');
    assert.deepEqual(h.toLeg('a').at(-1), msdAckMsg('master'), 'A is the master');
    h.call.fromH245('b', h245Codec.encode(msdAckMsg('master')));
    h.call.fromH245('a', h245Codec.encode(msdAckMsg('slave')));
    await h.call.settled();
    assert.deepEqual(h.call.info.masterSlave, { a: 'slave', b: 'master' });

    // identical numbers while the node's request is out: no answer, a new request with a new number
    const t = harness({ terminalType: 60, random: () => numbers.shift() ?? 0x700 });
    t.call.fromA(setup(false));
    t.call.bConnected();
    t.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
    t.call.h245Up('b');
    await t.call.settled();
    const [first] = t.toLeg('b');
    assert.deepEqual(first, msdMsg(60, 0x300));
    t.call.fromH245('b', h245Codec.encode(msdMsg(60, 0x300)));
    await t.call.settled();
    assert.deepEqual(t.toLeg('b'), [msdMsg(60, 0x300), msdMsg(60, 0x400)]);
    assert.equal(t.call.info.masterSlave?.b, 'pending');
    // the leg refuses every request (MasterSlaveDeterminationReject): after three new tries in all the call ends
    const reject = h245Codec.encode({
      choice: 'response',
      value: {
        choice: 'masterSlaveDeterminationReject',
        value: { cause: { choice: 'identicalNumbers', value: null } },
      },
    });
    for (let i = 0; i < 2; i++) t.call.fromH245('b', reject);
    await t.call.settled();
    assert.equal(t.call.state, 'connected', 'still trying');
    assert.deepEqual(
      t.toLeg('b').filter((m) => nameOf(m) === 'masterSlaveDetermination'),
      [0x300, 0x400, 0x500, 0x600].map((n) => msdMsg(60, n)),
      'a new number each time',
    );
    t.call.fromH245('b', reject);
    await t.call.settled();
    assert.equal(t.call.state, 'released');
    assert.match(t.call.info.endReason ?? '', /master\/slave determination/);
    assert.equal(t.call.info.masterSlave?.b, 'failed');
  });

  it("the node's own requests time out after 30 s: an unanswered determination ends the call, an unacknowledged set is released and offered again", async () => {
    const timers: Array<{ ms: number; fn: () => void; cancelled?: boolean }> = [];
    const h = harness({ timers });
    h.call.fromA(setup(false));
    h.call.bConnected();
    h.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
    h.call.h245Up('b');
    h.call.h245Up('a');
    await h.call.settled();
    assert.deepEqual(
      timers.map((t) => t.ms),
      [30_000, 30_000],
      "one response timer per leg for the node's determination",
    );
    // A answers the node's determination; B's capabilities reach A (a set the node now waits on) and B never answers
    h.call.fromH245('a', h245Codec.encode(msdAckMsg('master')));
    h.call.fromH245('b', h245Codec.encode(buildTerminalCapabilitySet(5)));
    await h.call.settled();
    assert.equal(timers.length, 3, 'and one for the set sent to A');
    // the set to A runs out first: released, and sent again with the next sequence number when B's next set comes
    timers[2]!.fn();
    await h.call.settled();
    assert.deepEqual(h.toLeg('a').at(-1), {
      choice: 'indication',
      value: { choice: 'terminalCapabilitySetRelease', value: {} },
    });
    h.call.fromH245('b', h245Codec.encode(buildTerminalCapabilitySet(6)));
    await h.call.settled();
    const sets = h.toLeg('a').filter((m) => nameOf(m) === 'terminalCapabilitySet');
    assert.deepEqual(
      sets.map((m) => tcsOf({ m }).sequenceNumber),
      [0, 1],
      'the same content offered again after its release',
    );
    // A's determination was answered: its timer is a no-op; B's was not: released, and the call ends
    timers[1]!.fn();
    await h.call.settled();
    assert.equal(h.call.state, 'connected');
    timers[0]!.fn();
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    assert.match(h.call.info.endReason ?? '', /leg b: master\/slave determination: no answer/);
    // the call's timers still running at its end are cancelled (the call is not held for their 30 s)
    assert.deepEqual(
      timers.map((t) => t.cancelled),
      [false, false, false, true],
      'only the set sent again to A was still running',
    );
    const toB = h.toLeg('b');
    assert.ok(
      toB.some((m) => m.choice === 'indication' && m.value.choice === 'masterSlaveDeterminationRelease'),
      'B was told the determination is released',
    );
  });

  it('round-trip delay requests are answered by the node on the leg that asks', async () => {
    const h = await separateBoth();
    h.call.fromH245(
      'a',
      h245Codec.encode({ choice: 'request', value: { choice: 'roundTripDelayRequest', value: { sequenceNumber: 9 } } }),
    );
    await h.call.settled();
    assert.deepEqual(h.toLeg('a').at(-1), {
      choice: 'response',
      value: { choice: 'roundTripDelayResponse', value: { sequenceNumber: 9 } },
    });
    assert.deepEqual(h.relayed(), []);
  });

  it("H.245 a leg sends before the other leg's transport exists waits for it, in order", async () => {
    const h = harness();
    h.call.fromA(setup(false));
    h.call.bConnected();
    h.call.fromB(answer('callProceeding', 'b', { tunnelling: false }));
    h.call.h245Up('a'); // A connected to the listener it was given in CallProceeding
    const tcs = h245Codec.encode(buildTerminalCapabilitySet(1));
    const dtmf = h245Codec.encode(buildUserInput('#'));
    h.call.fromH245('a', tcs);
    h.call.fromH245('a', dtmf);
    await h.call.settled();
    assert.deepEqual(h.toLeg('b'), [], 'nothing sent while B has no H.245 connection');
    // A's capabilities are acknowledged by the node at once, on A's own connection
    assert.deepEqual(h.toLeg('a').map(nameOf), ['masterSlaveDetermination', 'terminalCapabilitySetAck']);
    h.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
    h.call.h245Up('b');
    await h.call.settled();
    assert.deepEqual(
      h.relayed().map((x) => [x.leg, x.bytes]),
      [['b', dtmf]],
    );
    // B hears the node's determination and A's capabilities as the node's own set (its own sequence number)
    const toB = h.toLeg('b').filter(isSession);
    assert.deepEqual(toB.map(nameOf), ['masterSlaveDetermination', 'terminalCapabilitySet']);
    const sent = tcsOf({ m: toB[1]! });
    const asked = tcsOf({ m: decoded(tcs) });
    assert.equal(sent.sequenceNumber, 0);
    assert.deepEqual(sent.capabilityTable, asked.capabilityTable);
    const toA = h.q931.filter((s) => s.leg === 'a');
    assert.deepEqual(h245AddressOf(toA[0]!.m), { ip: NODE, port: 15_000 }, 'listener given in the CallProceeding');
    assert.equal(h245AddressOf(toA[1]!.m), undefined, 'and only once');
  });

  it('mixed legs: a tunnelling caller and a callee with its own H.245 connection hear each other', async () => {
    const h = harness();
    const tcsA = h245Codec.encode(buildTerminalCapabilitySet(1));
    const tcsB = h245Codec.encode(buildTerminalCapabilitySet(2));
    h.call.fromA(setup(true));
    h.call.bConnected();
    h.call.fromA(answer('facility', 'a', { tunnelling: true, control: [tcsA] }));
    h.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
    await h.call.settled();
    // the caller's tunnelled TCS waits for B's connection, then goes on it as the node's own set
    assert.equal(h.h245.length, 0);
    h.call.h245Up('b');
    await h.call.settled();
    assert.deepEqual(
      h.h245.map((x) => [x.leg, nameOf(x.m)]),
      [
        ['b', 'masterSlaveDetermination'],
        ['b', 'terminalCapabilitySet'],
      ],
    );
    assert.deepEqual(tcsOf(h.h245[1]!).capabilityTable, tcsOf({ m: decoded(tcsA) }).capabilityTable);
    // the node answered A's tunnelled H.245 itself, piggybacked on the Connect
    const connectToA = h.q931.find((s) => s.leg === 'a' && bodyOf(s.m).choice === 'connect')!;
    assert.deepEqual(
      (connectToA.m.uu!['h323-uu-pdu'].h245Control ?? []).map((c) => nameOf(decoded(c))),
      ['masterSlaveDetermination', 'terminalCapabilitySetAck'],
    );
    // the Facility carrying A's TCS is not relayed to B as such: B does not tunnel
    assert.ok(h.q931.every((s) => s.leg !== 'b' || !s.m.uu?.['h323-uu-pdu'].h245Control));
    // B's H.245 reaches the tunnelling caller in a Facility (transportedInformation)
    h.call.fromH245('b', tcsB);
    await h.call.settled();
    const fac = h.q931.filter((s) => s.leg === 'a').at(-1)!;
    assert.equal(q931MessageName(fac.m.q931.messageType), 'facility');
    assert.equal(fac.m.q931.callReference, 33);
    const body = bodyOf(fac.m);
    assert.ok(body.choice === 'facility' && body.value.reason.choice === 'transportedInformation');
    assert.equal(fac.m.uu!['h323-uu-pdu'].h245Tunnelling, true);
    const carried = (fac.m.uu!['h323-uu-pdu'].h245Control ?? []).map(decoded);
    assert.deepEqual(carried.map(nameOf), ['terminalCapabilitySet'], "B's set, as the node's own");
    assert.deepEqual(tcsOf({ m: carried[0]! }).capabilityTable, tcsOf({ m: decoded(tcsB) }).capabilityTable);
    assert.deepEqual(h.toLeg('b').at(-1), {
      choice: 'response',
      value: { choice: 'terminalCapabilitySetAck', value: { sequenceNumber: 2 } },
    });
    // the Connect to the tunnelling caller carried no H.245 address
    const connect = h.q931.find((s) => s.leg === 'a' && bodyOf(s.m).choice === 'connect')!;
    assert.equal(h245AddressOf(connect.m), undefined);
    assert.equal(connect.m.uu!['h323-uu-pdu'].h245Tunnelling, true);
    assert.deepEqual(h.listening, []);
  });

  it("a tunnelling callee's H.245 rides on the next message to a tunnelling caller (piggybacked); tunnelling wins over an h245Address", async () => {
    const h = harness();
    const tcsB = h245Codec.encode(buildTerminalCapabilitySet(2));
    h.call.fromA(setup(true));
    h.call.bConnected();
    // B tunnels and gives an address as well: tunnelling is preferred, nobody connects to the address
    h.call.fromB(
      answer('connect', 'b', {
        tunnelling: true,
        control: [tcsB],
        h245Address: h225Address(BOB_H245.ip, BOB_H245.port),
      }),
    );
    await h.call.settled();
    const toA = h.q931.filter((s) => s.leg === 'a');
    assert.equal(h245AddressOf(toA[0]!.m), undefined, "B's H.245 address is not passed to A");
    assert.equal(toA.length, 1);
    assert.equal(bodyOf(toA[0]!.m).choice, 'connect');
    // the node opens its H.245 with the caller on the Connect: its determination and B's capabilities
    const carried = (toA[0]!.m.uu!['h323-uu-pdu'].h245Control ?? []).map(decoded);
    assert.deepEqual(carried.map(nameOf), ['masterSlaveDetermination', 'terminalCapabilitySet']);
    assert.deepEqual(tcsOf({ m: carried[1]! }).capabilityTable, tcsOf({ m: decoded(tcsB) }).capabilityTable);
    assert.deepEqual(h.h245Connects, []);
  });

  it('a callee that connects without tunnelling and without an H.245 address is sent Facility startH245', async () => {
    const h = harness();
    h.call.fromA(setup(true));
    h.call.bConnected();
    h.call.fromB(answer('connect', 'b', { tunnelling: false }));
    await h.call.settled();
    assert.deepEqual(h.listening, ['b']);
    const fac = h.q931.filter((s) => s.leg === 'b').at(-1)!;
    assert.equal(q931MessageName(fac.m.q931.messageType), 'facility');
    assert.equal(fac.m.q931.callReference, 900);
    const body = bodyOf(fac.m);
    assert.ok(body.choice === 'facility' && body.value.reason.choice === 'startH245');
    assert.deepEqual(h245AddressOf(fac.m), { ip: NODE, port: 15_001 });
    assert.deepEqual(h.call.info.h245, { a: 'tunnelled', b: 'separate' });
  });

  it('EndSessionCommand passes to the other leg; the ReleaseComplete after it ends the call and closes both H.245', async () => {
    const h = await separateBoth();
    const end: MultimediaSystemControlMessage = {
      choice: 'command',
      value: { choice: 'endSessionCommand', value: { choice: 'disconnect', value: null } },
    };
    h.call.fromH245('a', h245Codec.encode(end));
    await h.call.settled();
    assert.deepEqual(
      h.relayed().map((x) => [x.leg, x.m]),
      [['b', end]],
    );
    h.call.fromA(answer('releaseComplete', 'a', { tunnelling: false }));
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    assert.equal(h.call.info.endReason, 'released by caller');
    const rc = h.q931.at(-1)!;
    assert.equal(rc.leg, 'b');
    assert.equal(q931MessageName(rc.m.q931.messageType), 'releaseComplete');
    assert.deepEqual(h.h245Closed.sort(), ['a', 'b']);
    // H.245 arriving after the end is dropped, not relayed
    h.call.fromH245('b', h245Codec.encode(end));
    await h.call.settled();
    assert.equal(h.relayed().length, 1);
    assert.equal(h.call.h245Counters.dropped, 1);
  });

  it('a malformed H.245 PDU on a separate connection ends the call with ReleaseComplete undefinedReason', async () => {
    const h = await separateBoth();
    h.call.fromH245('b', Uint8Array.of(0xff, 0xff, 0xff));
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    const rcs = h.q931.filter((s) => q931MessageName(s.m.q931.messageType) === 'releaseComplete');
    assert.deepEqual(rcs.map((s) => s.leg).sort(), ['a', 'b']);
    for (const s of rcs) {
      const b = bodyOf(s.m);
      assert.ok(b.choice === 'releaseComplete' && b.value.reason?.choice === 'undefinedReason');
    }
    assert.match(h.call.info.endReason ?? '', /malformed H\.245 from leg b/);
  });

  it('random bytes as H.245 (on a connection or tunnelled) never throw: relayed when they decode, else the call ends', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200 }), fc.boolean(), async (junk, tunnelled) => {
        const h = tunnelled ? harness() : await separateBoth();
        if (tunnelled) {
          h.call.fromA(setup(true));
          h.call.bConnected();
          h.call.fromB(answer('connect', 'b', { tunnelling: true, control: [junk] }));
        } else h.call.fromH245('b', junk);
        await h.call.settled();
        if (h.call.state === 'released') {
          const rcs = h.q931.filter((s) => q931MessageName(s.m.q931.messageType) === 'releaseComplete');
          assert.ok(rcs.length >= 1, 'the call ended with a ReleaseComplete');
        } else {
          assert.ok(h245Codec.decode(junk).ok, 'only a PDU that decodes keeps the call');
          // relayed to the other leg, or handled by the node on the leg's own session
          const { relayed, terminated } = h.call.h245Counters;
          assert.equal(relayed + terminated, 1, 'and it reached the other leg or was answered by the node');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('CloseLogicalChannel is relayed and frees the channel it names (its opener numbers it); a refused OLC too', async () => {
    const h = await separateBoth();
    h.call.fromH245('a', h245Codec.encode(olcMsg(1, 5001, '203.0.113.2')));
    h.call.fromH245('b', h245Codec.encode(ackMsg(1, { ip: '203.0.113.3', port: 6000 })));
    h.call.fromH245('b', h245Codec.encode(olcMsg(1, 6001, '203.0.113.3')));
    h.call.fromH245('a', h245Codec.encode(olcMsg(2, 5003, '203.0.113.2')));
    h.call.fromH245(
      'b',
      h245Codec.encode({
        choice: 'response',
        value: {
          choice: 'openLogicalChannelReject',
          value: { forwardLogicalChannelNumber: 2, cause: { choice: 'dataTypeNotSupported', value: null } },
        },
      }),
    );
    await h.call.settled();
    assert.deepEqual(h.closedChannels, ['a:2'], "B refused A's channel 2: A's channel 2 is freed");
    const clc: MultimediaSystemControlMessage = {
      choice: 'request',
      value: { choice: 'closeLogicalChannel', value: buildCloseLogicalChannel(1) },
    };
    h.call.fromH245('a', h245Codec.encode(clc));
    await h.call.settled();
    assert.deepEqual(h.closedChannels, ['a:2', 'a:1'], "A's own channel 1, not B's channel 1");
    const last = h.relayed().at(-1)!;
    assert.equal(last.leg, 'b');
    assert.deepEqual(last.bytes, h245Codec.encode(clc), 'the CloseLogicalChannel passes byte for byte');
    assert.equal(h.call.h245Counters.channelsClosed, 2);
    assert.equal(h.call.state, 'connected', 'closing a channel does not end the call');
  });

  it('aborting a call: EndSessionCommand on both separate H.245 connections before the ReleaseComplete on each leg', async () => {
    const h = await separateBoth();
    h.call.fromA(Uint8Array.of(0x08, 0x02, 0x00)); // a Q.931 PDU that does not decode
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    for (const leg of ['a', 'b'] as const) {
      const mine = h.order.filter((x) => x.split(':')[1] === leg);
      const end = mine.indexOf(`h245:${leg}:endSessionCommand`);
      const rc = mine.indexOf(`q931:${leg}:releaseComplete`);
      assert.ok(end >= 0 && rc > end, `leg ${leg}: EndSession then ReleaseComplete: ${mine.join(' ')}`);
    }
    const ends = h.h245.filter((x) => x.m.choice === 'command' && x.m.value.choice === 'endSessionCommand');
    assert.deepEqual(
      ends.map((x) => x.m),
      [
        { choice: 'command', value: { choice: 'endSessionCommand', value: { choice: 'disconnect', value: null } } },
        { choice: 'command', value: { choice: 'endSessionCommand', value: { choice: 'disconnect', value: null } } },
      ],
    );
    assert.equal(h.call.h245Counters.endSessionsSent, 2);
    assert.deepEqual(h.h245Closed.sort(), ['a', 'b'], 'both H.245 connections closed after it');
  });

  it("a leg's connection lost: the tunnelling other leg gets EndSessionCommand in a Facility, then its ReleaseComplete", async () => {
    const h = harness();
    h.call.fromA(setup(true));
    h.call.bConnected();
    h.call.fromB(answer('connect', 'b', { tunnelling: true }));
    await h.call.settled();
    const before = h.order.length;
    h.call.closed('a');
    await h.call.settled();
    const toB = h.q931.filter((x) => x.leg === 'b').slice(-2);
    assert.deepEqual(
      toB.map((x) => bodyOf(x.m).choice),
      ['facility', 'releaseComplete'],
    );
    const fac = bodyOf(toB[0]!.m);
    assert.ok(fac.choice === 'facility' && fac.value.reason.choice === 'transportedInformation');
    assert.equal(toB[0]!.m.q931.callReference, 900);
    const [pdu] = toB[0]!.m.uu!['h323-uu-pdu'].h245Control ?? [];
    const d = h245Codec.decode(pdu!);
    assert.ok(d.ok && d.value.choice === 'command' && d.value.value.choice === 'endSessionCommand');
    assert.equal(h.call.info.endReason, 'connection of leg a closed');
    // nothing more to the leg that went away
    assert.deepEqual(
      h.order.slice(before).filter((x) => x.split(':')[1] === 'a'),
      [],
    );
  });

  it('a leg that has no H.245 yet gets no EndSessionCommand (the caller aborts before B answered)', async () => {
    const h = harness();
    h.call.fromA(setup(false));
    h.call.fromA(Uint8Array.of(1, 2, 3));
    await h.call.settled();
    assert.equal(h.call.state, 'released');
    assert.ok(
      h.order.every((x) => !x.includes('endSessionCommand')),
      h.order.join(' '),
    );
    assert.equal(h.call.h245Counters.endSessionsSent, 0);
  });

  it('a TerminalCapabilitySet loses data, non-standard and unknown capabilities; codecs, user input kept; descriptors follow', async () => {
    const h = await separateBoth();
    const ns = { nonStandardIdentifier: { choice: 'object' as const, value: '1.2.3.4' }, data: Uint8Array.of(1, 2) };
    const tcs = capabilitySet(1, [
      [1, { choice: 'receiveAudioCapability', value: { choice: 'g711Ulaw64k', value: 20 } }],
      [2, { choice: 'receiveAudioCapability', value: { choice: 'g711Alaw64k', value: 20 } }],
      [3, { choice: 'receiveAudioCapability', value: { choice: 'g722-64k', value: 20 } }],
      [4, { choice: 'receiveAudioCapability', value: { choice: 'g729AnnexA', value: 2 } }],
      [5, { choice: 'receiveAudioCapability', value: { choice: 'nonStandard', value: ns } }],
      [
        6,
        {
          choice: 'receiveAndTransmitDataApplicationCapability',
          value: {
            application: { choice: 't120', value: { choice: 'separateLANStack', value: null } },
            maxBitRate: 640,
          },
        },
      ],
      [7, { choice: 'nonStandard', value: ns }],
      [8, { choice: 'receiveVideoCapability', value: h264() }],
      [9, { choice: 'receiveUserInputCapability', value: { choice: 'basicString', value: null } }],
      [10, { choice: 'receiveUserInputCapability', value: { choice: 'dtmf', value: null } }],
      [
        11,
        {
          choice: 'receiveRTPAudioTelephonyEventCapability',
          value: { dynamicRTPPayloadType: 101, audioTelephoneEvent: '0-15' },
        },
      ],
    ]);
    tcs.capabilityDescriptors = [
      { capabilityDescriptorNumber: 0, simultaneousCapabilities: [[1, 2, 3, 4, 5], [6], [8, 7], [9, 10, 11]] },
      { capabilityDescriptorNumber: 1, simultaneousCapabilities: [[6, 7]] },
    ];
    h.call.fromH245(
      'a',
      h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcs } }),
    );
    await h.call.settled();
    const out = tcsOf({
      m: h
        .toLeg('b')
        .filter((m) => nameOf(m) === 'terminalCapabilitySet')
        .at(-1)!,
    });
    assert.deepEqual(
      out.capabilityTable!.map((e) => e.capabilityTableEntryNumber),
      [1, 2, 3, 4, 8, 9, 10, 11],
    );
    assert.deepEqual(out.capabilityDescriptors, [
      { capabilityDescriptorNumber: 0, simultaneousCapabilities: [[1, 2, 3, 4], [8], [9, 10, 11]] },
    ]);
    assert.equal(out.sequenceNumber, 0, "the node numbers its own sets on B's session");
    assert.deepEqual(h.toLeg('a').at(-1), {
      choice: 'response',
      value: { choice: 'terminalCapabilitySetAck', value: { sequenceNumber: 1 } },
    });
    assert.deepEqual(out.multiplexCapability, tcs.multiplexCapability);
    assert.equal(h.call.h245Counters.capabilitiesRemoved, 3);
  });

  it("once the other leg's capabilities are known, codecs it lacks are removed (by codec, not parameters); never all of them", async () => {
    const h = await separateBoth();
    const tcsB = capabilitySet(7, [
      [1, { choice: 'receiveAudioCapability', value: { choice: 'g711Alaw64k', value: 30 } }],
      [2, { choice: 'receiveAudioCapability', value: { choice: 'g729', value: 2 } }],
      [3, { choice: 'receiveVideoCapability', value: h264() }],
    ]);
    tcsB.capabilityDescriptors = [{ capabilityDescriptorNumber: 0, simultaneousCapabilities: [[1, 2], [3]] }];
    const tcsA = capabilitySet(1, [
      [1, { choice: 'receiveAudioCapability', value: { choice: 'g711Ulaw64k', value: 20 } }],
      [2, { choice: 'receiveAudioCapability', value: { choice: 'g711Alaw64k', value: 20 } }],
      [3, { choice: 'receiveAudioCapability', value: { choice: 'g729AnnexAwAnnexB', value: 2 } }],
      [4, { choice: 'receiveVideoCapability', value: h261() }],
      [5, { choice: 'receiveUserInputCapability', value: { choice: 'dtmf', value: null } }],
    ]);
    tcsA.capabilityDescriptors = [{ capabilityDescriptorNumber: 0, simultaneousCapabilities: [[1, 2, 3], [4], [5]] }];
    const tcsTo = (leg: Leg) =>
      h
        .toLeg(leg)
        .filter((m) => nameOf(m) === 'terminalCapabilitySet')
        .map((m) => tcsOf({ m }));
    const entries = (t: TerminalCapabilitySet | undefined) =>
      (t?.capabilityTable ?? []).map((e) => e.capabilityTableEntryNumber);
    const encB = h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcsB } });
    h.call.fromH245('b', encB);
    await h.call.settled();
    // B's set reaches A at once, as the node's own (sequence 0), with nothing to intersect yet
    assert.deepEqual(
      tcsTo('a').map((t) => [t.sequenceNumber, entries(t)]),
      [[0, [1, 2, 3]]],
    );
    assert.deepEqual(tcsTo('b'), [], 'B hears nothing before A has said what it can do');
    h.call.fromH245(
      'a',
      h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcsA } }),
    );
    await h.call.settled();
    const out = tcsTo('b')[0]!;
    assert.deepEqual(
      entries(out),
      [2, 3, 5],
      'G.711 µ-law and H.261 removed (B has neither); G.729 annex A/B kept (B has G.729); user input kept',
    );
    assert.deepEqual(out.capabilityDescriptors, [
      { capabilityDescriptorNumber: 0, simultaneousCapabilities: [[2, 3], [5]] },
    ]);
    // A's set is applied to what A was told: B's H.264 goes (A has no H.264), in a new set numbered 1
    assert.deepEqual(
      tcsTo('a').map((t) => [t.sequenceNumber, entries(t)]),
      [
        [0, [1, 2, 3]],
        [1, [1, 2]],
      ],
    );
    assert.deepEqual(tcsTo('a')[1]!.capabilityDescriptors, [
      { capabilityDescriptorNumber: 0, simultaneousCapabilities: [[1, 2]] },
    ]);
    // a later set from A that shares no codec with B: nothing is emptied (policy filtering only), both ways
    const tcsA2 = capabilitySet(2, [
      [1, { choice: 'receiveAudioCapability', value: { choice: 'g722-64k', value: 20 } }],
      [5, { choice: 'receiveUserInputCapability', value: { choice: 'dtmf', value: null } }],
    ]);
    h.call.fromH245(
      'a',
      h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcsA2 } }),
    );
    await h.call.settled();
    assert.deepEqual(
      tcsTo('b')
        .map((t) => [t.sequenceNumber, entries(t)])
        .at(-1),
      [1, [1, 5]],
    );
    assert.deepEqual(
      tcsTo('a')
        .map((t) => [t.sequenceNumber, entries(t)])
        .at(-1),
      [2, [1, 2, 3]],
    );
    // the same set again changes nothing: no new set to either leg
    const counts = [tcsTo('a').length, tcsTo('b').length];
    h.call.fromH245(
      'a',
      h245Codec.encode({
        choice: 'request',
        value: { choice: 'terminalCapabilitySet', value: { ...tcsA2, sequenceNumber: 3 } },
      }),
    );
    await h.call.settled();
    assert.deepEqual([tcsTo('a').length, tcsTo('b').length], counts);
    assert.deepEqual(h.toLeg('a').at(-1), {
      choice: 'response',
      value: { choice: 'terminalCapabilitySetAck', value: { sequenceNumber: 3 } },
    });
    assert.deepEqual(h.relayed(), [], 'no capability set is relayed as the endpoint sent it');
  });

  it('an empty capability set (a pause, H.245 §8.4.6) from one leg reaches the other as an empty set, and a full one after it', async () => {
    const h = await separateBoth();
    const tcsTo = (leg: Leg) =>
      h
        .toLeg(leg)
        .filter((m) => nameOf(m) === 'terminalCapabilitySet')
        .map((m) => tcsOf({ m }));
    const full = capabilitySet(1, [
      [1, { choice: 'receiveAudioCapability', value: { choice: 'g711Ulaw64k', value: 20 } }],
    ]);
    const send = (t: TerminalCapabilitySet) =>
      h.call.fromH245(
        'b',
        h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: t } }),
      );
    send(full);
    send({ sequenceNumber: 2, protocolIdentifier: full.protocolIdentifier });
    send({ ...full, sequenceNumber: 3 });
    await h.call.settled();
    assert.deepEqual(
      tcsTo('a').map((t) => [t.sequenceNumber, t.capabilityTable?.length ?? 0, t.multiplexCapability !== undefined]),
      [
        [0, 1, true],
        [1, 0, false],
        [2, 1, true],
      ],
    );
    assert.equal(h.call.state, 'connected');
  });

  it('codecs the administrator does not allow are left out of capability sets and fast-start proposals', async () => {
    const codecs = codecPolicy(['g711Alaw', 'h263']);
    const h = harness({ codecs });
    const ulaw = buildAudioOlc(1, { ip: '203.0.113.2', port: 5001 });
    const alaw = {
      ...ulaw,
      forwardLogicalChannelNumber: 2,
      forwardLogicalChannelParameters: {
        ...ulaw.forwardLogicalChannelParameters,
        dataType: { choice: 'audioData' as const, value: { choice: 'g711Alaw64k' as const, value: 20 } },
      },
    };
    h.call.fromA(setup(false, [ulaw, alaw]));
    h.call.bConnected();
    h.call.fromB(answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }));
    h.call.h245Up('b');
    h.call.h245Up('a');
    await h.call.settled();
    const setupOut = bodyOf(h.q931.find((x) => x.leg === 'b')!.m);
    assert.ok(setupOut.choice === 'setup');
    const proposed = (setupOut.value.fastStart ?? []).map((b) => {
      const d = openLogicalChannelCodec.decode(b);
      assert.ok(d.ok);
      return d.value.forwardLogicalChannelNumber;
    });
    assert.deepEqual(proposed, [2], 'only the A-law proposal is offered to the callee');
    const tcs = capabilitySet(1, [
      [1, { choice: 'receiveAudioCapability', value: { choice: 'g711Ulaw64k', value: 20 } }],
      [2, { choice: 'receiveAudioCapability', value: { choice: 'g711Alaw64k', value: 20 } }],
      [3, { choice: 'receiveVideoCapability', value: h261() }],
      [4, { choice: 'receiveUserInputCapability', value: { choice: 'dtmf', value: null } }],
    ]);
    h.call.fromH245(
      'a',
      h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcs } }),
    );
    await h.call.settled();
    const toB = h
      .toLeg('b')
      .filter((m) => nameOf(m) === 'terminalCapabilitySet')
      .map((m) => tcsOf({ m }));
    assert.deepEqual(
      toB.at(-1)!.capabilityTable!.map((e) => e.capabilityTableEntryNumber),
      [2, 4],
      'µ-law and H.261 are not allowed; user input is not a codec',
    );
    assert.equal(h.call.h245Counters.capabilitiesRemoved, 2);
    // a Setup that proposes only codecs nobody allows goes without fast start (H.245 decides later)
    const g = harness({ codecs });
    g.call.fromA(setup(false, [ulaw]));
    g.call.bConnected();
    await g.call.settled();
    const bare = bodyOf(g.q931.find((x) => x.leg === 'b')!.m);
    assert.ok(bare.choice === 'setup' && bare.value.fastStart === undefined);
  });

  it('random capability tables never throw, and what is relayed only names entries that are in it or were never removed', async () => {
    const choices: Capability[] = [
      { choice: 'receiveAudioCapability', value: { choice: 'g711Ulaw64k', value: 20 } },
      { choice: 'transmitAudioCapability', value: { choice: 'g722-64k', value: 20 } },
      { choice: 'receiveVideoCapability', value: h261() },
      { choice: 'receiveUserInputCapability', value: { choice: 'hookflash', value: null } },
      {
        choice: 'receiveDataApplicationCapability',
        value: { application: { choice: 't120', value: { choice: 'separateLANStack', value: null } }, maxBitRate: 1 },
      },
      { choice: 'conferenceCapability', value: { chairControlCapability: false } },
      { choice: 'maxPendingReplacementFor', value: 3 },
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.record({ n: fc.integer({ min: 1, max: 40 }), c: fc.integer({ min: 0, max: 6 }) }), {
          selector: (x) => x.n,
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 5 }), {
          minLength: 1,
          maxLength: 4,
        }),
        async (entries, alts) => {
          const h = await separateBoth();
          const tcs = capabilitySet(
            3,
            entries.map((e) => [e.n, choices[e.c]!] as [number, Capability]),
          );
          tcs.capabilityDescriptors = [{ capabilityDescriptorNumber: 0, simultaneousCapabilities: alts }];
          h.call.fromH245(
            'a',
            h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcs } }),
          );
          await h.call.settled();
          assert.equal(h.call.state, 'connected');
          const out = tcsOf(h.h245.at(-1)!);
          const removed = new Set(entries.filter((e) => e.c >= 4).map((e) => e.n));
          const kept = new Set((out.capabilityTable ?? []).map((e) => e.capabilityTableEntryNumber));
          assert.deepEqual(kept, new Set(entries.filter((e) => e.c < 4).map((e) => e.n)));
          for (const d of out.capabilityDescriptors ?? [])
            for (const alt of d.simultaneousCapabilities ?? []) {
              assert.ok(alt.length > 0);
              for (const n of alt) assert.ok(!removed.has(n), `descriptor names removed entry ${n}`);
            }
        },
      ),
      { numRuns: 100 },
    );
  });

  it('RequestMode and its RequestModeAck / RequestModeReject pass between separate H.245 connections byte for byte', async () => {
    const h = await separateBoth();
    // B asks A to send G.711 A-law instead (H.245 §8.9 mode request); A agrees, then refuses a second request
    const rm = (sequenceNumber: number, mode: 'g711Alaw64k' | 'g722-64k'): MultimediaSystemControlMessage => ({
      choice: 'request',
      value: {
        choice: 'requestMode',
        value: {
          sequenceNumber,
          requestedModes: [[{ type: { choice: 'audioMode', value: { choice: mode, value: null } } }]],
        },
      },
    });
    const ack: MultimediaSystemControlMessage = {
      choice: 'response',
      value: {
        choice: 'requestModeAck',
        value: { sequenceNumber: 1, response: { choice: 'willTransmitMostPreferredMode', value: null } },
      },
    };
    const reject: MultimediaSystemControlMessage = {
      choice: 'response',
      value: {
        choice: 'requestModeReject',
        value: { sequenceNumber: 2, cause: { choice: 'modeUnavailable', value: null } },
      },
    };
    const sent = [
      ['b', h245Codec.encode(rm(1, 'g711Alaw64k'))],
      ['a', h245Codec.encode(ack)],
      ['b', h245Codec.encode(rm(2, 'g722-64k'))],
      ['a', h245Codec.encode(reject)],
    ] as const;
    for (const [from, bytes] of sent) h.call.fromH245(from, bytes);
    await h.call.settled();
    assert.deepEqual(
      h.relayed().map((x) => [x.leg, x.bytes]),
      sent.map(([from, bytes]) => [from === 'a' ? 'b' : 'a', bytes]),
    );
    const first = h.relayed()[0]!.m;
    assert.ok(first.choice === 'request' && first.value.choice === 'requestMode');
    assert.deepEqual(first.value.value.requestedModes[0]![0]!.type, {
      choice: 'audioMode',
      value: { choice: 'g711Alaw64k', value: null },
    });
    assert.equal(h.call.state, 'connected');
    assert.equal(h.call.h245Counters.dropped, 0);
  });

  it('RequestMode tunnelled on both legs: in a Facility each way, with its RequestModeAck', async () => {
    const h = harness();
    h.call.fromA(setup(true));
    h.call.bConnected();
    h.call.fromB(answer('connect', 'b', { tunnelling: true }));
    await h.call.settled();
    const rm = h245Codec.encode({
      choice: 'request',
      value: {
        choice: 'requestMode',
        value: {
          sequenceNumber: 7,
          requestedModes: [[{ type: { choice: 'audioMode', value: { choice: 'g711Ulaw64k', value: null } } }]],
        },
      },
    });
    const ack = h245Codec.encode({
      choice: 'response',
      value: {
        choice: 'requestModeAck',
        value: { sequenceNumber: 7, response: { choice: 'willTransmitLessPreferredMode', value: null } },
      },
    });
    h.call.fromB(answer('facility', 'b', { tunnelling: true, control: [rm] }));
    await h.call.settled();
    const carrying = (leg: Leg, pdu: Uint8Array) =>
      h.q931.filter(
        (x) =>
          x.leg === leg &&
          (x.m.uu?.['h323-uu-pdu'].h245Control ?? []).some((c) => Buffer.from(c).equals(Buffer.from(pdu))),
      );
    const toA = carrying('a', rm);
    assert.equal(toA.length, 1, 'the RequestMode reached the caller tunnelled');
    assert.equal(bodyOf(toA[0]!.m).choice, 'facility');
    assert.equal(toA[0]!.m.q931.callReference, 33, "on the caller's call reference");
    h.call.fromA(answer('facility', 'a', { tunnelling: true, control: [ack] }));
    await h.call.settled();
    const toB = carrying('b', ack);
    assert.equal(toB.length, 1, 'the RequestModeAck reached the callee tunnelled');
    assert.equal(toB[0]!.m.q931.callReference, 900, "on the node's call reference toward the callee");
    assert.equal(h.h245.length, 0, 'no separate H.245 connection was used');
  });

  it("the call's status shows the codecs each leg sends (fast start answer, OLC, CLC) and the relay ports it was given", async () => {
    const relay = [{ session: 1, address: NODE, a: { rtp: 40_000, rtcp: 40_001 }, b: { rtp: 40_002, rtcp: 40_003 } }];
    const h = harness({ relayPorts: () => relay });
    // fast start: the caller proposes to send µ-law (1) and to receive A-law (2); the callee accepts both, answering
    // from the caller's point of view as ooh323c does (forward: what the caller sends, reverse: what it receives)
    const send = buildAudioOlc(1, { ip: '203.0.113.2', port: 5001 });
    const receive: typeof send = {
      forwardLogicalChannelNumber: 2,
      forwardLogicalChannelParameters: {
        dataType: { choice: 'nullData', value: null },
        multiplexParameters: { choice: 'none', value: null },
      },
      reverseLogicalChannelParameters: {
        dataType: { choice: 'audioData', value: { choice: 'g711Alaw64k', value: 20 } },
        multiplexParameters: {
          choice: 'h2250LogicalChannelParameters',
          value: { sessionID: 1, mediaControlChannel: h245Address('203.0.113.2', 5001), silenceSuppression: false },
        },
      },
    };
    const s = buildSetup({
      callReference: 33,
      callIdentifier: guid,
      conferenceID: guid,
      source: [{ choice: 'h323-ID', value: 'alice' }],
      destination: [{ choice: 'h323-ID', value: 'bob' }],
      fastStart: [send, receive],
      h245Tunnelling: false,
    });
    h.call.fromA(encodeCallSignalling(s));
    h.call.bConnected();
    await h.call.settled();
    assert.deepEqual(h.call.info.codecs, { a: [], b: [] }, 'proposals are not channels yet');
    const connect = decodeCallSignalling(
      answer('connect', 'b', { tunnelling: false, h245Address: h225Address(BOB_H245.ip, BOB_H245.port) }),
    );
    assert.ok(connect.ok);
    const body = bodyOf(connect.value);
    assert.ok(body.choice === 'connect');
    body.value.fastStart = [send, receive].map((x) => openLogicalChannelCodec.encode(x));
    h.call.fromB(encodeCallSignalling(connect.value));
    h.call.h245Up('b');
    h.call.h245Up('a');
    await h.call.settled();
    assert.deepEqual(h.call.info.codecs, { a: ['audio:g711Ulaw'], b: ['audio:g711Alaw'] });
    assert.deepEqual(h.states.at(-1), {
      state: 'connected',
      codecs: { a: ['audio:g711Ulaw'], b: ['audio:g711Alaw'] },
    });
    assert.deepEqual(h.call.info.relay, relay);
    // a video channel over H.245 from the callee, then closed by it
    const video: MultimediaSystemControlMessage = {
      choice: 'request',
      value: {
        choice: 'openLogicalChannel',
        value: {
          ...buildAudioOlc(3, { ip: '203.0.113.3', port: 6003 }),
          forwardLogicalChannelParameters: {
            ...buildAudioOlc(3, { ip: '203.0.113.3', port: 6003 }).forwardLogicalChannelParameters,
            dataType: {
              choice: 'videoData',
              value: {
                choice: 'h261VideoCapability',
                value: {
                  qcifMPI: 1,
                  temporalSpatialTradeOffCapability: false,
                  maxBitRate: 3840,
                  stillImageTransmission: false,
                },
              },
            },
          },
        },
      },
    };
    h.call.fromH245('b', h245Codec.encode(video));
    await h.call.settled();
    assert.deepEqual(h.call.info.codecs.b, ['audio:g711Alaw', 'video:h261VideoCapability']);
    assert.deepEqual(h.states.at(-1)?.codecs.b, ['audio:g711Alaw', 'video:h261VideoCapability'], 'told at once');
    h.call.fromH245(
      'b',
      h245Codec.encode({
        choice: 'request',
        value: { choice: 'closeLogicalChannel', value: buildCloseLogicalChannel(3) },
      }),
    );
    await h.call.settled();
    assert.deepEqual(h.call.info.codecs, { a: ['audio:g711Ulaw'], b: ['audio:g711Alaw'] });
  });
});

function capabilitySet(sequenceNumber: number, entries: Array<[number, Capability]>): TerminalCapabilitySet {
  const base = buildTerminalCapabilitySet(sequenceNumber);
  assert.ok(base.choice === 'request' && base.value.choice === 'terminalCapabilitySet');
  return {
    ...base.value.value,
    capabilityTable: entries.map(([n, capability]) => ({ capabilityTableEntryNumber: n, capability })),
    capabilityDescriptors: undefined,
  };
}

function tcsOf(x: { m: MultimediaSystemControlMessage }): TerminalCapabilitySet {
  assert.ok(x.m.choice === 'request' && x.m.value.choice === 'terminalCapabilitySet');
  return x.m.value.value;
}

const h264 = (): Extract<Capability, { choice: 'receiveVideoCapability' }>['value'] => ({
  choice: 'genericVideoCapability',
  value: { capabilityIdentifier: { choice: 'standard', value: '0.0.8.241.0.0.1' }, maxBitRate: 3840 },
});

const h261 = (): Extract<Capability, { choice: 'receiveVideoCapability' }>['value'] => ({
  choice: 'h261VideoCapability',
  value: {
    qcifMPI: 1,
    cifMPI: 1,
    temporalSpatialTradeOffCapability: false,
    maxBitRate: 3840,
    stillImageTransmission: false,
  },
});

function decoded(bytes: Uint8Array): MultimediaSystemControlMessage {
  const d = h245Codec.decode(bytes);
  assert.ok(d.ok, 'decodes');
  return d.value;
}

const msdMsg = (terminalType: number, statusDeterminationNumber: number): MultimediaSystemControlMessage => ({
  choice: 'request',
  value: { choice: 'masterSlaveDetermination', value: { terminalType, statusDeterminationNumber } },
});

const msdAckMsg = (decision: 'master' | 'slave'): MultimediaSystemControlMessage => ({
  choice: 'response',
  value: { choice: 'masterSlaveDeterminationAck', value: { decision: { choice: decision, value: null } } },
});
