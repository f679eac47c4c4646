/**
 * The relay on real loopback sockets: plain dgram endpoints exchange RTP through one relay (a leg pair) and through
 * an edge↔core pair with multiplexed traversal media; latching to a source port that differs from the SDP; media
 * timeout; 10,000 offer/delete cycles without leaked sockets or ports.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { FakeClock, systemClock } from '../../src/common/timers.ts';
import {
  type MediaConfig,
  type MediaRelay,
  mediaConfigSchema,
  mediaTotals,
  startMediaRelay,
} from '../../src/media/index.ts';
import { span } from '../../src/ports/index.ts';
import { parseSdp } from '../../src/sdp/index.ts';

const config: MediaConfig = mediaConfigSchema.parse({});
// A window of the media range of its own per test process (files run in parallel); taken ports are skipped anyway.
const base = 40000 + (process.pid % 80) * 240;
let nextWindow = 0;
function pool(pairs = 50) {
  const from = base + nextWindow;
  nextWindow += pairs * 2;
  return { ranges: [span(from, from + pairs * 2 - 1)] };
}
const LO = { bind: '127.0.0.1', advertise: '127.0.0.1' };

function sdp(port: number, extra: string[] = [], address = '127.0.0.1'): string {
  return `${['v=0', `o=- 1 1 IN IP4 ${address}`, 's=-', `c=IN IP4 ${address}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ...extra].join('\r\n')}\r\n`;
}

function mediaPort(text: string): number {
  const p = parseSdp(text);
  assert.ok(p.ok, text);
  return p.value.media[0]!.port;
}

interface Ep {
  sock: Socket;
  port: number;
  got: Buffer[];
  from: Set<string>;
}

async function endpoint(): Promise<Ep> {
  const sock = createSocket('udp4');
  const ep: Ep = { sock, port: 0, got: [], from: new Set() };
  sock.on('message', (m, r) => {
    ep.got.push(m);
    ep.from.add(`${r.address}:${r.port}`);
  });
  await new Promise<void>((res) => sock.bind(0, '127.0.0.1', () => res()));
  ep.port = sock.address().port;
  return ep;
}

function rtp(ssrc: number, seq: number): Buffer {
  const b = Buffer.alloc(172, 0xff);
  b[0] = 0x80;
  b[1] = 0;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(seq * 160, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

async function pump(from: Ep, toPort: number, ssrc: number, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    from.sock.send(rtp(ssrc, i), toPort, '127.0.0.1');
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 2));
  }
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const fds = () => readdirSync('/proc/self/fd').length;

describe('media relay on loopback sockets', () => {
  const relays: MediaRelay[] = [];
  const eps: Ep[] = [];
  after(() => {
    for (const r of relays) r.close();
    for (const e of eps) e.sock.close();
  });
  const ep = async () => {
    const e = await endpoint();
    eps.push(e);
    return e;
  };
  const relay = async (o: Partial<Parameters<typeof startMediaRelay>[0]> = {}) => {
    const r = await startMediaRelay({
      node: 'core',
      config,
      pool: pool(),
      addresses: { endpoint: LO, traversal: LO },
      clock: systemClock,
      ...o,
    });
    relays.push(r);
    return r;
  };

  it('relays RTP both ways between two endpoints through one leg pair; counts match', async () => {
    const r = await relay();
    const a = await ep();
    const b = await ep();
    const off = await r.core.offer({ callId: 'c1', fromTag: 'fa', sdp: sdp(a.port), from: 'endpoint', to: 'endpoint' });
    assert.ok(off.ok);
    const ans = await r.core.answer({ callId: 'c1', fromTag: 'fa', toTag: 'tb', sdp: sdp(b.port) });
    assert.ok(ans.ok);
    const toB = mediaPort(off.value.sdp); // B sends here
    const toA = mediaPort(ans.value.sdp); // A sends here
    assert.notEqual(toA, toB);
    await pump(a, toA, 1, 100);
    await pump(b, toB, 2, 80);
    await until(() => b.got.length === 100 && a.got.length === 80);
    assert.ok(b.got.every((m) => m.readUInt32BE(8) === 1 && m.length === 172));
    assert.deepEqual([...b.from], [`127.0.0.1:${toB}`], 'B hears the relay from the port it sends to (symmetric)');
    assert.deepEqual([...a.from], [`127.0.0.1:${toA}`]);
    const st = r.core.stats('c1')!;
    const [sa, sb] = st.streams[0]!.sides;
    assert.deepEqual([sa.packetsIn, sa.packetsOut, sb.packetsIn, sb.packetsOut], [100, 80, 80, 100]);
    assert.equal(sa.bytesIn, 100 * 172);
    assert.ok(sa.lastInAt > 0 && sb.lastOutAt > 0);
    assert.equal(st.tags[1], 'tb');
    // Per direction for operators: from the caller (fa) and from the callee; a late offer's caller is party 1.
    const wall = (ms: number) => ms + 1_000_000;
    const totals = mediaTotals(st, 'fa', wall);
    assert.deepEqual(
      [totals.fromCaller.packets, totals.fromCaller.bytes, totals.fromCallee.packets, totals.fromCallee.bytes],
      [100, 100 * 172, 80, 80 * 172],
    );
    assert.equal(totals.fromCaller.lastAt, Math.round(sa.lastInAt + 1_000_000));
    assert.deepEqual(mediaTotals(st, 'tb', wall).fromCaller, totals.fromCallee);
    assert.ok(r.core.delete('c1'));
    assert.equal(r.core.portsInUse, 0);
    // The relay-wide totals outlive the call: one call anchored, every packet it forwarded.
    assert.equal(r.core.counters.callsTotal, 1);
    assert.equal(r.core.counters.packetsRelayed, 180);
    assert.equal(r.io.openSockets, 0);
  });

  it('latches to the source port media really comes from (NAT), not the SDP port', async () => {
    const r = await relay();
    const a = await ep(); // A really sends from here…
    const b = await ep();
    const off = await r.core.offer({
      callId: 'nat',
      fromTag: 'fa',
      sdp: sdp(9, [], '127.0.0.1'),
      from: 'endpoint',
      to: 'endpoint',
    }); // …but its SDP says port 9
    assert.ok(off.ok);
    const ans = await r.core.answer({ callId: 'nat', fromTag: 'fa', toTag: 'tb', sdp: sdp(b.port) });
    assert.ok(ans.ok);
    await pump(a, mediaPort(ans.value.sdp), 7, 5);
    await until(() => b.got.length === 5);
    await pump(b, mediaPort(off.value.sdp), 8, 20);
    await until(() => a.got.length === 20);
    const side = r.core.stats('nat')!.streams[0]!.sides[0];
    assert.equal(side.remote, `127.0.0.1:${a.port}`);
    assert.ok(side.latched);
    // An intruder from another port is dropped while A talks.
    const evil = await ep();
    await pump(evil, mediaPort(ans.value.sdp), 99, 10);
    await pump(a, mediaPort(ans.value.sdp), 7, 5);
    await until(() => b.got.length === 10);
    await new Promise((res) => setTimeout(res, 50));
    assert.equal(b.got.length, 10);
    assert.ok(b.got.every((m) => m.readUInt32BE(8) === 7));
    assert.equal(r.core.stats('nat')!.streams[0]!.sides[0].dropped, 10);
    r.core.delete('nat');
  });

  it('carries a call across an edge and a core with multiplexed traversal media; the core sends first', async () => {
    const edge = await relay({ node: 'edge', muxPorts: { rtp: [0], rtcp: [0] } });
    const core = await relay({ node: 'core' });
    assert.equal(edge.muxSockets.length, 2);
    const outside = await ep();
    const inside = await ep();
    // Call from outside to inside: edge (endpoint → traversal), then core (traversal → endpoint).
    const e1 = await edge.core.offer({
      callId: 'x',
      fromTag: 'o',
      sdp: sdp(outside.port, ['a=rtcp-mux']),
      from: 'endpoint',
      to: 'traversal',
    });
    assert.ok(e1.ok);
    assert.match(e1.value.sdp, /a=x-crossway-mux:\d+/);
    assert.equal(mediaPort(e1.value.sdp), edge.muxSockets[0]!.port, 'core is told the demux port');
    const c1 = await core.core.offer({
      callId: 'x',
      fromTag: 'o',
      sdp: e1.value.sdp,
      from: 'traversal',
      to: 'endpoint',
    });
    assert.ok(c1.ok);
    assert.doesNotMatch(c1.value.sdp, /x-crossway-mux/, 'the node-to-node attribute never reaches an endpoint');
    // The core's keepalive reaches the edge before any media: the edge has latched the core's port.
    await until(() => (edge.core.stats('x')?.streams[0]?.sides[1].keepalivesIn ?? 0) >= 1);
    const coreSide = core.core.stats('x')!.streams[0]!.sides[0];
    assert.equal(coreSide.mode, 'mux-client');
    assert.equal(edge.core.stats('x')!.streams[0]!.sides[1].remote, `127.0.0.1:${coreSide.localRtpPort}`);
    const c2 = await core.core.answer({ callId: 'x', fromTag: 'o', toTag: 'i', sdp: sdp(inside.port, ['a=rtcp-mux']) });
    assert.ok(c2.ok);
    const e2 = await edge.core.answer({ callId: 'x', fromTag: 'o', toTag: 'i', sdp: c2.value.sdp });
    assert.ok(e2.ok);
    await pump(outside, mediaPort(e2.value.sdp), 11, 100);
    await pump(inside, mediaPort(c1.value.sdp), 22, 100);
    await until(() => inside.got.length === 100 && outside.got.length === 100);
    assert.ok(
      inside.got.every((m) => m.length === 172 && m.readUInt32BE(8) === 11),
      'mux prefix stripped',
    );
    assert.ok(outside.got.every((m) => m.length === 172 && m.readUInt32BE(8) === 22));
    // RTCP multiplexed on the RTP port (rtcp-mux negotiated) goes the same way.
    const sr = Buffer.from([0x80, 200, 0, 1, 0, 0, 0, 11]);
    outside.sock.send(sr, mediaPort(e2.value.sdp), '127.0.0.1');
    await until(() => inside.got.length === 101);
    assert.deepEqual([...inside.got[100]!], [...sr]);
    const es = edge.core.stats('x')!.streams[0]!.sides;
    assert.deepEqual([es[0].packetsIn, es[1].packetsOut, es[1].packetsIn, es[0].packetsOut], [101, 101, 100, 100]);
    edge.core.delete('x');
    core.core.delete('x');
    assert.equal(edge.core.muxIdCount, 0);
    assert.equal(core.io.openSockets, 0);
    assert.equal(edge.io.openSockets, 2, 'only the demux sockets stay');
  });

  it('a two-interface edge also demultiplexes on its public address; the core side replies from the private one', async () => {
    const edge = await relay({ node: 'edge', muxPorts: { rtp: [0], rtcp: [0] }, muxAlsoOn: ['127.0.0.3'] });
    assert.deepEqual(
      edge.muxSockets.map((m) => `${m.listener}@${m.address}`),
      ['mux-rtp@127.0.0.1', 'mux-rtcp@127.0.0.1', 'mux-rtp@127.0.0.3', 'mux-rtcp@127.0.0.3'],
    );
    const out = await ep();
    const off = await edge.core.offer({
      callId: 'pub',
      fromTag: 'o',
      sdp: sdp(out.port),
      from: 'endpoint',
      to: 'traversal',
    });
    assert.ok(off.ok);
    assert.equal(mediaPort(off.value.sdp), edge.muxSockets[0]!.port, 'SDP toward the core names the private socket');
    const id = Number(/a=x-crossway-mux:(\d+)/.exec(off.value.sdp)![1]);
    const pub = edge.muxSockets[2]!;
    const probe = await ep();
    const ka = Buffer.alloc(4);
    ka.writeUInt32BE(id, 0);
    probe.sock.send(ka, pub.port, pub.address);
    await until(() => (edge.core.stats('pub')?.streams[0]?.sides[1].keepalivesIn ?? 0) === 1);
    edge.core.delete('pub');
  });

  it('releases a call after the media timeout and reports it', async () => {
    const clock = new FakeClock(1000);
    const timeouts: string[] = [];
    const r = await relay({
      clock,
      config: { ...config, timeoutSeconds: 5 },
      onTimeout: (t) => timeouts.push(t.callId),
    });
    const a = await ep();
    const b = await ep();
    const off = await r.core.offer({ callId: 't', fromTag: 'fa', sdp: sdp(a.port), from: 'endpoint', to: 'endpoint' });
    const ans = await r.core.answer({ callId: 't', fromTag: 'fa', toTag: 'tb', sdp: sdp(b.port) });
    assert.ok(off.ok && ans.ok);
    clock.advance(4000);
    await pump(a, mediaPort(ans.value.sdp), 1, 3); // media at t=5000 keeps the call up
    await until(() => b.got.length === 3);
    clock.advance(4000);
    assert.deepEqual(timeouts, []);
    assert.ok(r.core.has('t'));
    clock.advance(1000);
    assert.deepEqual(timeouts, ['t']);
    assert.ok(!r.core.has('t'));
    assert.equal(r.core.portsInUse, 0);
    assert.equal(r.io.openSockets, 0);
  });

  it('10,000 offer/answer/delete cycles leak no socket, port or descriptor', async () => {
    const r = await relay({ pool: pool(20) });
    const fd0 = fds();
    for (let i = 0; i < 10_000; i++) {
      const off = await r.core.offer({
        callId: `k${i}`,
        fromTag: 'a',
        sdp: sdp(4000),
        from: 'endpoint',
        to: 'endpoint',
      });
      assert.ok(off.ok, JSON.stringify(off));
      if (i % 2 === 0)
        assert.ok((await r.core.answer({ callId: `k${i}`, fromTag: 'a', toTag: 'b', sdp: sdp(4002) })).ok);
      assert.ok(r.core.delete(`k${i}`));
    }
    // A pair another process holds (test files run in parallel and bind ports of this range) is skipped and kept out
    // of the pool for 60 s: those, and only those, may still count as in use.
    assert.equal(r.core.portsInUse, r.core.counters.bindFailures);
    assert.equal(r.io.openSockets, 0);
    assert.equal(r.core.callCount, 0);
    assert.ok(fds() <= fd0 + 2, `descriptors ${fd0} → ${fds()}`);
  });
});
