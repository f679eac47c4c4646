import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PerError } from '../../src/h323/per/errors.ts';
import type {
  MultimediaSystemControlMessage,
  OpenLogicalChannel,
  TerminalCapabilitySet,
} from '../../src/h323/per/generated/types.ts';
import { h245Codec } from '../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  decodeFastStart,
  encodeCallSignalling,
  tunnelledH245,
} from '../../src/h323/q931/call-signalling.ts';
import { decodeDisplay, decodeQ931, findIe, IE, Q931Error, q931MessageName } from '../../src/h323/q931/q931.ts';
import { TpktFramer } from '../../src/h323/transport/tpkt.ts';
import { readPcap, tcpStreams } from './pcap.ts';

const dir = new URL('../vectors/h323/', import.meta.url).pathname;

interface Pdu {
  frame: number;
  stream: string;
  kind: 'q931' | 'h245';
  bytes: Uint8Array;
}

/** Every TPKT PDU of a capture, reassembled per TCP direction, tagged Q.931 or H.245 by the stream's first PDU. */
function pdus(file: string): Pdu[] {
  const out: Pdu[] = [];
  for (const s of tcpStreams(readPcap(dir + file))) {
    const framer = new TpktFramer();
    let kind: Pdu['kind'] | undefined;
    for (const seg of s.segments) {
      const r = framer.push(seg.data);
      assert.ok(r.ok, `${file} frame ${seg.frame}: ${r.ok ? '' : r.reason}`);
      for (const bytes of r.value) {
        if (!kind) {
          const q = decodeQ931(bytes);
          kind = q.ok && q931MessageName(q.value.messageType) ? 'q931' : 'h245';
        }
        out.push({ frame: seg.frame, stream: s.key, kind, bytes });
      }
    }
    assert.equal(framer.buffered, 0, `${file} ${s.key}: no partial PDU left`);
  }
  return out;
}

/** PDUs that Wireshark also reports as malformed, with the field where both stop. */
const MALFORMED: Record<string, string> = {
  'ndpi-h323.pcap#65':
    'Q931.setup.ies[3](userUser).H323-UserInformation.h323-uu-pdu.h323-message-body.setup.additionalSourceAddresses[0].address: normally small number too large',
};

function roundTrip(file: string): {
  q931: Map<number, CallSignallingMessage[]>;
  h245: Map<number, MultimediaSystemControlMessage[]>;
  count: number;
} {
  const q931 = new Map<number, CallSignallingMessage[]>();
  const h245 = new Map<number, MultimediaSystemControlMessage[]>();
  let count = 0;
  for (const p of pdus(file)) {
    const bad = MALFORMED[`${file}#${p.frame}`];
    if (p.kind === 'q931') {
      const m = decodeCallSignalling(p.bytes);
      if (bad) {
        assert.equal(m.ok, false, `${file} frame ${p.frame} is refused`);
        if (m.ok) continue;
        assert.ok(m.reason instanceof Q931Error);
        assert.ok(m.reason.cause instanceof PerError, 'the PER failure is the cause');
        assert.equal(m.reason.message, bad);
        continue;
      }
      assert.ok(m.ok, `${file} frame ${p.frame}: ${m.ok ? '' : m.reason}`);
      assert.deepEqual(
        Buffer.from(encodeCallSignalling(m.value)),
        Buffer.from(p.bytes),
        `${file} frame ${p.frame} re-encodes`,
      );
      for (const [i, t] of tunnelledH245(m.value.uu!).entries()) {
        assert.ok(t.ok, `${file} frame ${p.frame} tunnelled H.245 #${i}`);
        const raw: Uint8Array = m.value.uu!['h323-uu-pdu'].h245Control![i]!;
        assert.deepEqual(Buffer.from(h245Codec.encode(t.value)), Buffer.from(raw));
        count++;
      }
      for (const fs of decodeFastStart(m.value.uu!)) assert.ok(fs.ok, `${file} frame ${p.frame} fast start`);
      q931.set(p.frame, [...(q931.get(p.frame) ?? []), m.value]);
    } else {
      const m = h245Codec.decode(p.bytes);
      assert.ok(m.ok, `${file} frame ${p.frame}: ${m.ok ? '' : m.reason.message}`);
      assert.deepEqual(
        Buffer.from(h245Codec.encode(m.value)),
        Buffer.from(p.bytes),
        `${file} frame ${p.frame} re-encodes`,
      );
      h245.set(p.frame, [...(h245.get(p.frame) ?? []), m.value]);
    }
    count++;
  }
  return { q931, h245, count };
}

/** The name of the message inside a request/response/command/indication. */
function inner(m: MultimediaSystemControlMessage): string {
  return (m.value as { choice: string }).choice;
}

function h245Names(ms: MultimediaSystemControlMessage[] | undefined): string[] {
  return (ms ?? []).map((m) => `${m.choice}.${(m.value as { choice: string }).choice}`);
}

function body(m: CallSignallingMessage) {
  return m.uu!['h323-uu-pdu']['h323-message-body'];
}

describe('H.225.0 call signalling and H.245 from captures: decode, key fields, same bytes again', () => {
  it('nDPI: Q.931 Setup…Connect, H.245 on its own connection, two PDUs in one segment, one PDU across two', () => {
    const { q931, h245, count } = roundTrip('ndpi-h323.pcap');
    assert.equal(count, 19); // 7 Q.931 (each captured twice; duplicates dropped by reassembly) + 12 H.245
    const setup = q931.get(6)![0]!;
    assert.equal(q931MessageName(setup.q931.messageType), 'setup');
    assert.equal(decodeDisplay(findIe(setup.q931, IE.display)!.data), 'm.jemec');
    const s = body(setup);
    assert.equal(s.choice, 'setup');
    if (s.choice === 'setup') {
      assert.deepEqual(s.value.sourceAddress, [{ choice: 'h323-ID', value: 'm.jemec' }]);
      const dst = s.value.destCallSignalAddress;
      assert.equal(dst?.choice, 'ipAddress');
      if (dst?.choice === 'ipAddress') assert.deepEqual([...dst.value.ip, dst.value.port], [10, 1, 6, 18, 1720]);
    }
    assert.deepEqual(
      [10, 14, 18, 47, 50, 66].map((f) => q931MessageName(q931.get(f)![0]!.q931.messageType)),
      ['callProceeding', 'alerting', 'connect', 'setup', 'alerting', 'releaseComplete'],
    );
    // frame 32 carries two TPKT PDUs; frames 48/50 split one (its payload arrives with 50)
    assert.deepEqual(h245Names(h245.get(32)), [
      'response.terminalCapabilitySetAck',
      'response.masterSlaveDeterminationAck',
    ]);
    assert.equal(q931.has(48), false);
    assert.deepEqual(h245Names(h245.get(25)), ['request.terminalCapabilitySet']);
    assert.deepEqual(h245Names(h245.get(39)), ['request.openLogicalChannel']);
    assert.deepEqual(h245Names(h245.get(42)), ['response.openLogicalChannelAck']);
  });

  it('ooh323c fast start + tunnelling: OLCs in Setup/Alerting/Connect, TCS/MSD in Facility', () => {
    const { q931, count } = roundTrip('ooh323c-faststart-tunnelled.pcap');
    assert.equal(count, 19); // 12 Q.931 + 7 tunnelled H.245
    const setup = q931.get(4)![0]!;
    assert.equal(decodeDisplay(findIe(setup.q931, IE.display)!.data), 'objsyscall');
    const s = body(setup);
    assert.ok(s.choice === 'setup');
    assert.deepEqual(s.value.sourceAddress, [{ choice: 'h323-ID', value: 'alice' }]);
    const olcs = decodeFastStart(setup.uu!).map((r) =>
      r.ok ? r.value : assert.fail(r.reason),
    ) as OpenLogicalChannel[];
    // Wireshark: 1001 forward nullData / reverse g711Ulaw64k (receive), 1002 forward g711Ulaw64k (transmit)
    assert.deepEqual(
      olcs.map((o) => [
        o.forwardLogicalChannelNumber,
        o.forwardLogicalChannelParameters.dataType.choice,
        o.reverseLogicalChannelParameters?.dataType,
      ]),
      [
        [1001, 'nullData', { choice: 'audioData', value: { choice: 'g711Ulaw64k', value: 240 } }],
        [1002, 'audioData', undefined],
      ],
    );
    assert.deepEqual(
      [12, 14, 16, 18].map((f) =>
        tunnelledH245(q931.get(f)![0]!.uu!).map((t) => (t.ok ? inner(t.value) : t.reason.message)),
      ),
      [
        ['terminalCapabilitySet'],
        ['masterSlaveDetermination'],
        ['terminalCapabilitySetAck'],
        ['masterSlaveDeterminationAck'],
      ],
    );
  });

  it('ooh323c separate H.245: TCS capability names, OLC g711U with its RTCP address', () => {
    const { h245, count } = roundTrip('ooh323c-separate-h245.pcap');
    assert.equal(count, 19); // 5 Q.931 + 14 H.245
    const tcs = h245.get(15)![0]!;
    assert.ok(tcs.choice === 'request' && tcs.value.choice === 'terminalCapabilitySet');
    const caps = (tcs.value.value as TerminalCapabilitySet).capabilityTable!.map((e) => {
      const c = e.capability as { choice: string; value: { choice: string } };
      return `${c.choice}:${c.value.choice}`;
    });
    assert.deepEqual(caps, [
      'receiveAudioCapability:g711Ulaw64k',
      'receiveRTPAudioTelephonyEventCapability:undefined',
      'receiveUserInputCapability:basicString',
      'receiveUserInputCapability:dtmf',
    ]);
    const olc = h245.get(29)![0]!;
    assert.ok(olc.choice === 'request' && olc.value.choice === 'openLogicalChannel');
    const o = olc.value.value as OpenLogicalChannel;
    assert.equal(o.forwardLogicalChannelNumber, 1001);
    const mp = o.forwardLogicalChannelParameters.multiplexParameters;
    assert.ok(mp.choice === 'h2250LogicalChannelParameters');
    assert.equal(mp.value.sessionID, 1);
    const rtcp = mp.value.mediaControlChannel;
    assert.ok(rtcp?.choice === 'unicastAddress' && rtcp.value.choice === 'iPAddress');
    assert.equal(rtcp.value.value.tsapIdentifier, 5001);
    assert.deepEqual(h245Names(h245.get(37)), ['command.endSessionCommand']);
  });

  it('H323Plus via GnuGk to ooh323c: every call-signalling PDU and tunnelled H.245', () => {
    const { q931, count } = roundTrip('h323plus-gnugk-ooh323c.pcap');
    assert.equal(count, 51); // 29 Q.931 + 22 tunnelled H.245
    const names = [...q931.values()].flat().map((m) => q931MessageName(m.q931.messageType));
    for (const n of ['setup', 'callProceeding', 'alerting', 'connect', 'facility', 'releaseComplete'])
      assert.ok(names.includes(n as never), n);
    const tunnelled = [...q931.values()]
      .flat()
      .flatMap((m) => tunnelledH245(m.uu!).map((t) => (t.ok ? inner(t.value) : t.reason.message)));
    for (const n of [
      'terminalCapabilitySet',
      'masterSlaveDetermination',
      'openLogicalChannel',
      'openLogicalChannelAck',
    ])
      assert.ok(tunnelled.includes(n), n);
  });
});
