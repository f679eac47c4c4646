/**
 * The offer/answer engine with a fake I/O: what the proxy sees (rewritten SDP, 503 on exhaustion) across the call
 * cases of RFC 3264 — re-offers, hold, added video, early media, forking, offers from the callee.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { FakeClock } from '../../src/common/timers.ts';
import { mediaPathOf } from '../../src/media/call-media.ts';
import { type MediaIo, mediaConfigSchema, PortAllocator, RelayCore } from '../../src/media/index.ts';
import { parseSdp } from '../../src/sdp/index.ts';

class FakeIo implements MediaIo {
  next = 0;
  open = new Set<number>();
  taken = new Set<number>();
  sent: { handle: number; prefix: Buffer | null; data: Buffer; address: string; port: number }[] = [];
  /** While set, binding waits for it (a socket bind that takes its time, as under load). */
  gate: Promise<void> | undefined;
  async openPair(_addr: string, rtpPort: number) {
    if (this.gate) await this.gate;
    if (this.taken.has(rtpPort)) return undefined;
    const rtp = this.next++;
    const rtcp = this.next++;
    this.open.add(rtp).add(rtcp);
    return { rtp, rtcp };
  }
  closeSocket(h: number) {
    this.open.delete(h);
  }
  send(handle: number, prefix: Buffer | null, data: Buffer, offset: number, address: string, port: number) {
    this.sent.push({ handle, prefix, data: data.subarray(offset), address, port });
  }
}

const PUB = { bind: '203.0.113.1', advertise: '203.0.113.1' };
const PRIV = { bind: '10.0.0.1', advertise: '10.0.0.1' };

function setup(pairs = 50, log?: pino.Logger) {
  const io = new FakeIo();
  const clock = new FakeClock();
  const core = new RelayCore({
    node: 'core',
    config: mediaConfigSchema.parse({}),
    allocator: new PortAllocator({ ranges: [{ from: 40000, to: 40000 + pairs * 2 - 1, step: 1 }] }),
    addresses: { endpoint: PUB, traversal: PRIV },
    io,
    clock,
    ...(log ? { log } : {}),
  });
  return { io, clock, core };
}

const sdp = (lines: string[]) => `${['v=0', 'o=- 1 1 IN IP4 192.0.2.1', 's=-', 't=0 0', ...lines].join('\r\n')}\r\n`;
const audio = (addr: string, port: number, ...extra: string[]) => [
  `c=IN IP4 ${addr}`,
  `m=audio ${port} RTP/AVP 0`,
  ...extra,
];

function ports(text: string): number[] {
  const p = parseSdp(text);
  assert.ok(p.ok);
  return p.value.media.map((m) => m.port);
}

async function call(core: RelayCore, id = 'c') {
  const off = await core.offer({
    callId: id,
    fromTag: 'A',
    sdp: sdp(audio('192.0.2.1', 5000)),
    from: 'endpoint',
    to: 'endpoint',
  });
  assert.ok(off.ok);
  const ans = await core.answer({ callId: id, fromTag: 'A', toTag: 'B', sdp: sdp(audio('192.0.2.2', 6000)) });
  assert.ok(ans.ok);
  return { off: off.value.sdp, ans: ans.value.sdp };
}

describe('offer/answer through the relay', () => {
  it('re-offers of the same call reuse the allocated ports, in either direction', async () => {
    const { core } = setup();
    const first = await call(core);
    assert.equal(core.portsInUse, 2);
    const re = await core.offer({
      callId: 'c',
      fromTag: 'A',
      sdp: sdp(audio('192.0.2.1', 5010)),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(re.ok);
    assert.deepEqual(ports(re.value.sdp), ports(first.off));
    // The callee re-INVITEs (From tag B): its offer goes to A on A's port, A's answer comes back on B's.
    const rev = await core.offer({
      callId: 'c',
      fromTag: 'B',
      sdp: sdp(audio('192.0.2.2', 6010)),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(rev.ok);
    assert.deepEqual(ports(rev.value.sdp), ports(first.ans));
    const revAns = await core.answer({ callId: 'c', fromTag: 'B', toTag: 'A', sdp: sdp(audio('192.0.2.1', 5010)) });
    assert.ok(revAns.ok);
    assert.deepEqual(ports(revAns.value.sdp), ports(first.off));
    assert.equal(core.portsInUse, 2);
    assert.equal(core.stats('c')!.streams[0]!.sides[1].remote, '192.0.2.2:6010');
    const stranger = await core.offer({
      callId: 'c',
      fromTag: 'Z',
      sdp: sdp(audio('192.0.2.9', 1)),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(!stranger.ok && stranger.reason.status === 481);
  });

  it('hold and resume: sendonly and c=0.0.0.0 pass; nothing is sent toward 0.0.0.0; resume restores the address', async () => {
    const { core, io } = setup();
    const first = await call(core);
    const hold = await core.offer({
      callId: 'c',
      fromTag: 'A',
      sdp: sdp(audio('0.0.0.0', 5000, 'a=sendonly')),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(hold.ok);
    assert.match(hold.value.sdp, /c=IN IP4 0\.0\.0\.0/);
    assert.match(hold.value.sdp, /a=sendonly/);
    assert.deepEqual(ports(hold.value.sdp), ports(first.off));
    assert.equal(core.stats('c')!.streams[0]!.sides[0].remote, '', 'no destination while held');
    // B's media now has nowhere to go (counted), until A resumes.
    const bSide = core.stats('c')!.streams[0]!.sides[1];
    core.receive(
      bSide.localRtpPort === 40000 ? 0 : 2,
      Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 5]),
      '192.0.2.2',
      6000,
    );
    assert.equal(io.sent.length, 0);
    assert.equal(core.stats('c')!.streams[0]!.sides[0].unroutable, 1);
    const resume = await core.offer({
      callId: 'c',
      fromTag: 'A',
      sdp: sdp(audio('192.0.2.1', 5000, 'a=sendrecv')),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(resume.ok);
    assert.match(resume.value.sdp, /c=IN IP4 203\.0\.113\.1/);
    assert.equal(core.stats('c')!.streams[0]!.sides[0].remote, '192.0.2.1:5000');
  });

  it('a re-offer adding video allocates for the new m= line only; a removed stream keeps port 0', async () => {
    const { core } = setup();
    await call(core);
    const av = await core.offer({
      callId: 'c',
      fromTag: 'A',
      sdp: sdp([...audio('192.0.2.1', 5000), 'm=video 5002 RTP/AVP 96', 'a=rtpmap:96 H264/90000']),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(av.ok);
    const [pa, pv] = ports(av.value.sdp);
    assert.ok(pa !== pv && pv! % 2 === 0);
    assert.equal(core.portsInUse, 4);
    const drop = await core.offer({
      callId: 'c',
      fromTag: 'A',
      sdp: sdp([...audio('192.0.2.1', 5000), 'm=video 0 RTP/AVP 96']),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(drop.ok);
    assert.equal(ports(drop.value.sdp)[1], 0);
  });

  it('early media and forking: every answer gets the same relay port; the latest to-tag wins', async () => {
    const { core } = setup();
    const off = await core.offer({
      callId: 'f',
      fromTag: 'A',
      sdp: sdp(audio('192.0.2.1', 5000)),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(off.ok);
    const early1 = await core.answer({ callId: 'f', fromTag: 'A', toTag: 'B1', sdp: sdp(audio('192.0.2.21', 7000)) });
    const early2 = await core.answer({ callId: 'f', fromTag: 'A', toTag: 'B2', sdp: sdp(audio('192.0.2.22', 7100)) });
    assert.ok(early1.ok && early2.ok);
    assert.deepEqual(ports(early1.value.sdp), ports(early2.value.sdp), 'the caller keeps one media address');
    let s = core.stats('f')!;
    assert.equal(s.tags[1], 'B2');
    assert.equal(s.streams[0]!.sides[1].remote, '192.0.2.22:7100');
    const final = await core.answer({ callId: 'f', fromTag: 'A', toTag: 'B1', sdp: sdp(audio('192.0.2.21', 7000)) });
    assert.ok(final.ok);
    s = core.stats('f')!;
    assert.equal(s.tags[1], 'B1');
    assert.equal(s.streams[0]!.sides[1].remote, '192.0.2.21:7000');
    assert.equal(core.portsInUse, 2);
  });

  it('rtcp-mux is honoured only when the answer accepts it; a=rtcp follows the relay port', async () => {
    const { core } = setup();
    const off = await core.offer({
      callId: 'm',
      fromTag: 'A',
      sdp: sdp(audio('192.0.2.1', 5000, 'a=rtcp:5001', 'a=rtcp-mux')),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(off.ok);
    const [p] = ports(off.value.sdp);
    assert.match(off.value.sdp, new RegExp(`a=rtcp:${p! + 1}\\r\\na=rtcp-mux`));
    const ans = await core.answer({ callId: 'm', fromTag: 'A', toTag: 'B', sdp: sdp(audio('192.0.2.2', 6000)) });
    assert.ok(ans.ok);
    assert.doesNotMatch(ans.value.sdp, /rtcp-mux/);
  });

  it('port exhaustion answers 503 with a clear code and a log line, and leaks nothing', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(s) });
    const { core, io } = setup(3, log);
    await call(core, 'one');
    const second = await core.offer({
      callId: 'two',
      fromTag: 'A',
      sdp: sdp(audio('192.0.2.1', 5000)),
      from: 'endpoint',
      to: 'endpoint',
    });
    assert.ok(second.ok === false);
    assert.equal(second.reason.status, 503);
    assert.equal(second.reason.code, 'ERR_MEDIA_PORTS_EXHAUSTED');
    assert.ok(lines.some((l) => l.includes('no free media port pair => 503')));
    assert.ok(!core.has('two'));
    assert.equal(core.portsInUse, 2);
    assert.equal(io.open.size, 4);
  });

  it('a delete that crosses an offer still opening its ports wins: the offer answers 481 and nothing stays anchored', async () => {
    const { core, io } = setup();
    let open!: () => void;
    // A first offer (the INVITE) deleted while its sockets bind (the INVITE failed or was cancelled meanwhile).
    io.gate = new Promise((r) => {
      open = r;
    });
    const first = core.offer({
      callId: 'n',
      fromTag: 'A',
      sdp: sdp(audio('192.0.2.1', 5000)),
      from: 'endpoint',
      to: 'endpoint',
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(core.delete('n'), true, 'the call being created is known to delete');
    open();
    const r1 = await first;
    assert.ok(!r1.ok && r1.reason.status === 481);
    assert.deepEqual([core.callCount, core.portsInUse, io.open.size], [0, 0, 0]);

    // A re-offer adding video to an answered call, deleted (BYE) while the video pair binds: every pair goes back.
    io.gate = undefined;
    await call(core);
    io.gate = new Promise((r) => {
      open = r;
    });
    const video = [...audio('192.0.2.1', 5000), 'm=video 5002 RTP/AVP 96', 'a=rtpmap:96 H264/90000'];
    const re = core.offer({ callId: 'c', fromTag: 'A', sdp: sdp(video), from: 'endpoint', to: 'endpoint' });
    await new Promise((r) => setImmediate(r));
    assert.equal(core.delete('c'), true);
    open();
    const r2 = await re;
    assert.ok(!r2.ok && r2.reason.status === 481);
    assert.deepEqual([core.callCount, core.portsInUse, io.open.size], [0, 0, 0]);

    // An in-dialog offer (create: false) queued behind the BYE's delete finds no call and anchors none.
    io.gate = undefined;
    await call(core, 'q');
    const queued = core.offer({
      callId: 'q',
      fromTag: 'B',
      sdp: sdp(audio('192.0.2.2', 6010)),
      from: 'endpoint',
      to: 'endpoint',
      create: false,
    });
    assert.equal(core.delete('q'), true);
    const r3 = await queued;
    assert.ok(!r3.ok && r3.reason.status === 481);
    assert.deepEqual([core.callCount, core.portsInUse, io.open.size], [0, 0, 0]);
    // A first offer (create left true) still anchors a new call.
    await call(core, 'q');
    assert.deepEqual([core.callCount, core.portsInUse], [1, 2]);
    assert.deepEqual(
      core.list().map((c) => [c.callId, c.tags, c.offerer]),
      [['q', ['A', 'B'], 0]],
    );
  });

  it('a pair taken by another process is skipped, not handed out, and quarantined for 60 s with no call', async () => {
    const { core, io, clock } = setup();
    io.taken.add(40000);
    const r = await call(core);
    assert.ok(!ports(r.off).includes(40000) && !ports(r.ans).includes(40000));
    assert.equal(core.counters.bindFailures, 1);
    assert.deepEqual([core.portsInUse, core.portsQuarantined], [3, 1]);
    // The call ends: its two pairs go back; the taken one stays out of the pool, counted in use with no call.
    assert.ok(core.delete('c'));
    assert.deepEqual([core.callCount, core.portsInUse, core.portsQuarantined], [0, 1, 1]);
    clock.advance(59_999);
    assert.deepEqual([core.portsInUse, core.portsQuarantined], [1, 1]);
    clock.advance(1);
    assert.deepEqual([core.portsInUse, core.portsQuarantined], [0, 0]);
  });

  it('a call record media path: codecs of the SDP of each party and the relay ports each party was given', async () => {
    const { core } = setup();
    const offer = sdp([
      'c=IN IP4 192.0.2.1',
      'm=audio 5000 RTP/AVP 0 8 96 101',
      'a=rtpmap:96 opus/48000/2',
      'a=rtpmap:101 telephone-event/8000',
      'm=video 5002 RTP/AVP 99',
      'a=rtpmap:99 H264/90000',
    ]);
    const off = await core.offer({ callId: 'p', fromTag: 'A', sdp: offer, from: 'endpoint', to: 'traversal' });
    assert.ok(off.ok);
    const answer = sdp([
      'c=IN IP4 192.0.2.2',
      'm=audio 6000 RTP/AVP 8 101',
      'a=rtpmap:101 telephone-event/8000',
      'm=video 6002 RTP/AVP 99',
      'a=rtpmap:99 H264/90000',
    ]);
    const ans = await core.answer({ callId: 'p', fromTag: 'A', toTag: 'B', sdp: answer });
    assert.ok(ans.ok);
    // the callee was given the relay's ports in the rewritten offer, the caller in the rewritten answer
    const [toCalleeAudio, toCalleeVideo] = ports(off.value.sdp);
    const [toCallerAudio, toCallerVideo] = ports(ans.value.sdp);
    const want = {
      codecs: {
        caller: ['audio:PCMU', 'audio:PCMA', 'audio:opus', 'audio:telephone-event', 'video:H264'],
        callee: ['audio:PCMA', 'audio:telephone-event', 'video:H264'],
      },
      relay: [
        {
          session: 0,
          address: PUB.advertise,
          calleeAddress: PRIV.advertise,
          caller: { rtp: toCallerAudio!, rtcp: toCallerAudio! + 1 },
          callee: { rtp: toCalleeAudio!, rtcp: toCalleeAudio! + 1 },
        },
        {
          session: 1,
          address: PUB.advertise,
          calleeAddress: PRIV.advertise,
          caller: { rtp: toCallerVideo!, rtcp: toCallerVideo! + 1 },
          callee: { rtp: toCalleeVideo!, rtcp: toCalleeVideo! + 1 },
        },
      ],
    };
    assert.deepEqual(mediaPathOf(core.stats('p')!, 'A'), want);
    // a late-offer call's registry caller is the relay's second party: the sides swap
    const swapped = mediaPathOf(core.stats('p')!, 'B')!;
    assert.deepEqual(swapped.codecs, { caller: want.codecs.callee, callee: want.codecs.caller });
    assert.deepEqual(swapped.relay[0]!.caller, want.relay[0]!.callee);
    assert.deepEqual(swapped.relay[0]!.callee, want.relay[0]!.caller);
    assert.equal(swapped.relay[0]!.address, PRIV.advertise);
    assert.equal(swapped.relay[0]!.calleeAddress, PUB.advertise);
  });

  it('refuses a bad SDP with 488 and an unknown call on answer with 481', async () => {
    const { core } = setup();
    const bad = await core.offer({ callId: 'b', fromTag: 'A', sdp: 'hello', from: 'endpoint', to: 'endpoint' });
    assert.ok(!bad.ok && bad.reason.status === 488);
    const none = await core.answer({ callId: 'nope', fromTag: 'A', toTag: 'B', sdp: sdp(audio('192.0.2.1', 1)) });
    assert.ok(!none.ok && none.reason.status === 481);
  });
});

describe('edge demultiplexing', () => {
  function edge(pairs: number) {
    const io = new FakeIo();
    const core = new RelayCore({
      node: 'edge',
      config: mediaConfigSchema.parse({}),
      allocator: new PortAllocator({ ranges: [{ from: 40000, to: 40999, step: 1 }] }),
      addresses: { endpoint: PUB, traversal: PRIV },
      io,
      clock: new FakeClock(),
    });
    core.attachMuxPairs(
      Array.from({ length: pairs }, (_, i) => ({
        rtpHandle: 1000 + 2 * i,
        rtcpHandle: 1001 + 2 * i,
        rtpPort: 36000 + 2 * i,
        rtcpPort: 36001 + 2 * i,
      })),
    );
    return { io, core };
  }

  it('a large edge spreads calls over its six demux pairs, each with its own mux id', async () => {
    const { core } = edge(6);
    const seen = new Map<number, number>();
    const ids = new Set<string>();
    for (let i = 0; i < 60; i++) {
      const off = await core.offer({
        callId: `l${i}`,
        fromTag: 'A',
        sdp: sdp(audio('198.51.100.1', 5000)),
        from: 'endpoint',
        to: 'traversal',
      });
      assert.ok(off.ok);
      const [p] = ports(off.value.sdp);
      seen.set(p!, (seen.get(p!) ?? 0) + 1);
      const id = /a=x-crossway-mux:(\d+)/.exec(off.value.sdp)?.[1];
      assert.ok(id && !ids.has(id));
      ids.add(id);
      assert.match(off.value.sdp, new RegExp(`a=rtcp:${p! + 1} IN IP4 10\\.0\\.0\\.1`));
      assert.match(off.value.sdp, /c=IN IP4 10\.0\.0\.1/, 'the core is told the private address');
    }
    assert.deepEqual([...seen.keys()].sort(), [36000, 36002, 36004, 36006, 36008, 36010]);
    assert.ok([...seen.values()].every((n) => n === 10));
    assert.equal(core.muxIdCount, 60);
    assert.equal(core.portsInUse, 60, 'only the endpoint sides take pairs from the pool');
  });

  it('an edge without demux ports refuses traversal media with 503', async () => {
    const io = new FakeIo();
    const core = new RelayCore({
      node: 'edge',
      config: mediaConfigSchema.parse({}),
      allocator: new PortAllocator({ ranges: [{ from: 40000, to: 40099, step: 1 }] }),
      addresses: { endpoint: PUB, traversal: PRIV },
      io,
      clock: new FakeClock(),
    });
    const off = await core.offer({
      callId: 'n',
      fromTag: 'A',
      sdp: sdp(audio('198.51.100.1', 5000)),
      from: 'endpoint',
      to: 'traversal',
    });
    assert.ok(!off.ok && off.reason.code === 'ERR_MEDIA_NO_MUX' && off.reason.status === 503);
    assert.equal(core.portsInUse, 0);
  });

  it('never throws on arbitrary datagrams on demux and call sockets; unknown ids are counted, not forwarded', async () => {
    const { core, io } = edge(1);
    const off = await core.offer({
      callId: 'z',
      fromTag: 'A',
      sdp: sdp(audio('198.51.100.1', 5000)),
      from: 'endpoint',
      to: 'traversal',
    });
    assert.ok(off.ok);
    const id = Number(/a=x-crossway-mux:(\d+)/.exec(off.value.sdp)![1]);
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 1000, 1001, 77),
        fc.uint8Array({ maxLength: 64 }),
        fc.boolean(),
        (handle, bytes, withId) => {
          const b = Buffer.from(bytes);
          if (withId && b.length >= 4) b.writeUInt32BE(id, 0);
          core.receive(handle, b, '10.0.0.2', 41000);
        },
      ),
      { numRuns: 2000 },
    );
    assert.ok(core.counters.muxUnknownId + core.counters.muxMalformed > 0);
    assert.ok(core.counters.strayPackets > 0);
    // Whatever was forwarded went to a latched or signalled address, never anywhere else.
    assert.ok(io.sent.every((s) => s.address === '198.51.100.1' || s.address === '10.0.0.2'));
  });
});
