import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { validateConfig } from '../../src/config/load.ts';
import {
  isMuxKeepalive,
  isRtcp,
  latchPacket,
  muxPrefix,
  newLatchState,
  PortAllocator,
  packetSsrc,
  parseMuxAttribute,
  readMuxId,
  resetLatch,
} from '../../src/media/index.ts';
import { computePortPlan } from '../../src/ports/index.ts';

const cfg = { restrictToSignalledIp: false, relatchSilenceMs: 2000, relatchPackets: 3 };

function rtp(ssrc: number, seq = 1): Buffer {
  const b = Buffer.alloc(172);
  b[0] = 0x80;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

describe('port allocator', () => {
  it('hands out even RTP ports with RTCP + 1 from the plan pool, never a demux port, never twice', () => {
    for (const size of ['small', 'large'] as const) {
      const plan = computePortPlan(
        validateConfig({ role: 'edge', size, network: { address: '10.0.0.1' }, traversalZones: [{ name: 'z' }] }),
      );
      const mux = plan.muxPorts('edge')!;
      const alloc = new PortAllocator(plan.mediaPool('edge'));
      assert.equal(alloc.capacity, plan.mediaPool('edge').pairs);
      const seen = new Set<number>();
      for (;;) {
        const p = alloc.allocate();
        if (p === undefined) break;
        assert.equal(p % 2, 0);
        assert.ok(!seen.has(p), `port ${p} allocated twice`);
        assert.ok(!mux.rtp.includes(p) && !mux.rtcp.includes(p) && !mux.rtcp.includes(p + 1));
        assert.ok(p >= 36000 && p + 1 <= 59999);
        seen.add(p);
      }
      assert.equal(seen.size, alloc.capacity);
      assert.equal(alloc.inUse, alloc.capacity);
      assert.equal(alloc.allocate(), undefined, 'exhausted');
    }
  });

  it('release makes a pair available again, refuses double release, and reuses the released pair last', () => {
    const alloc = new PortAllocator({ ranges: [{ from: 40000, to: 40009, step: 1 }] });
    assert.equal(alloc.capacity, 5);
    const a = alloc.allocate()!;
    const b = alloc.allocate()!;
    assert.equal(alloc.release(a), true);
    assert.equal(alloc.release(a), false);
    assert.equal(alloc.release(40001), false, 'not an RTP port of the pool');
    assert.equal(alloc.inUse, 1);
    const next = [alloc.allocate(), alloc.allocate(), alloc.allocate()];
    assert.ok(!next.includes(a), 'round-robin: the released pair comes back last');
    assert.equal(alloc.allocate(), a);
    assert.equal(alloc.allocate(), undefined);
    assert.ok(alloc.isAllocated(b));
  });

  it('a random start and a jump after a taken pair still hand out every pair once', () => {
    const ranges = [{ from: 40000, to: 40999, step: 1 as const }];
    const starts = new Set<number>();
    for (let i = 0; i < 20; i++) starts.add(new PortAllocator({ ranges }, { randomStart: true }).allocate()!);
    assert.ok(starts.size > 1, 'relays in several processes do not all begin at the first pair');
    const alloc = new PortAllocator({ ranges }, { randomStart: true });
    const seen = new Set<number>();
    for (let i = 0; i < alloc.capacity; i++) {
      const p = alloc.allocate()!;
      assert.ok(p % 2 === 0 && p >= 40000 && p <= 40998 && !seen.has(p), `pair ${p}`);
      seen.add(p);
      if (i % 7 === 0) alloc.jump();
    }
    assert.equal(seen.size, 500);
    assert.equal(alloc.allocate(), undefined, 'exhausted');
  });

  it('keeps its count exact over random allocate/release sequences', () => {
    fc.assert(
      fc.property(fc.array(fc.boolean(), { maxLength: 300 }), (ops) => {
        const alloc = new PortAllocator({ ranges: [{ from: 50000, to: 50039, step: 1 }] });
        const held: number[] = [];
        for (const op of ops) {
          if (op) {
            const p = alloc.allocate();
            if (p === undefined) assert.equal(held.length, 20);
            else {
              assert.ok(!held.includes(p));
              held.push(p);
            }
          } else if (held.length > 0) assert.ok(alloc.release(held.shift()!));
          assert.equal(alloc.inUse, held.length);
        }
      }),
    );
  });
});

describe('traversal mux framing', () => {
  it('prefixes the 32-bit big-endian id; reads it back; a 4-byte packet is a keepalive', () => {
    const p = muxPrefix(0xdeadbeef);
    assert.deepEqual([...p], [0xde, 0xad, 0xbe, 0xef]);
    assert.equal(readMuxId(p), 0xdeadbeef);
    assert.ok(isMuxKeepalive(p));
    const framed = Buffer.concat([muxPrefix(7), rtp(1)]);
    assert.equal(readMuxId(framed), 7);
    assert.ok(!isMuxKeepalive(framed));
    assert.equal(readMuxId(Buffer.from([0, 0, 0])), -1, 'too short');
    assert.equal(readMuxId(Buffer.from([0, 0, 0, 0, 1])), -1, 'id 0 is reserved');
    fc.assert(fc.property(fc.integer({ min: 1, max: 0xffffffff }), (id) => readMuxId(muxPrefix(id)) === id));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 20 }), (b) => Number.isInteger(readMuxId(b))));
  });

  it('parses the SDP attribute strictly', () => {
    assert.equal(parseMuxAttribute('12345'), 12345);
    for (const bad of [undefined, '', '0', '-1', 'x1', '4294967296', '1 2'])
      assert.equal(parseMuxAttribute(bad), undefined);
  });

  it('tells RTCP from RTP on a muxed port (RFC 5761 §4) and reads SSRCs', () => {
    const sr = Buffer.from([0x80, 200, 0, 6, 0, 0, 0, 42, 0, 0, 0, 0]);
    assert.ok(isRtcp(sr, 0));
    assert.equal(packetSsrc(sr, 0), 42);
    assert.ok(!isRtcp(rtp(9), 0));
    assert.equal(packetSsrc(rtp(0xfeedface), 0), 0xfeedface);
    assert.equal(packetSsrc(Buffer.from([0x80, 0]), 0), -1);
    assert.equal(packetSsrc(Buffer.alloc(12), 0), -1, 'version 0');
  });
});

describe('latching rules', () => {
  it('sends to the signalled address until the first packet, then latches to its source (NAT port)', () => {
    const s = newLatchState();
    resetLatch(s, '198.51.100.7', 4000);
    assert.deepEqual([s.address, s.port, s.latched], ['198.51.100.7', 4000, false]);
    assert.equal(latchPacket(s, '203.0.113.9', 61234, 5, 0, cfg), 'latched');
    assert.deepEqual([s.address, s.port, s.latched], ['203.0.113.9', 61234, true]);
    assert.equal(latchPacket(s, '203.0.113.9', 61234, 5, 10, cfg), 'accept');
  });

  it('drops other sources while the latched one talks; re-latches after silence', () => {
    const s = newLatchState();
    resetLatch(s, '198.51.100.7', 4000);
    latchPacket(s, '198.51.100.7', 4000, 5, 0, cfg);
    assert.equal(latchPacket(s, '192.0.2.66', 5555, 999, 100, cfg), 'drop');
    assert.equal(latchPacket(s, '198.51.100.7', 4000, 5, 1000, cfg), 'accept');
    assert.equal(latchPacket(s, '192.0.2.66', 5555, 999, 2999, cfg), 'drop', 'silence 1999 ms < 2000');
    assert.equal(latchPacket(s, '192.0.2.66', 5555, 999, 3000, cfg), 'relatched');
    assert.deepEqual([s.address, s.port], ['192.0.2.66', 5555]);
  });

  it('re-latches after N packets in a row from one new source with the same SSRC (NAT rebinding)', () => {
    const s = newLatchState();
    latchPacket(s, '203.0.113.9', 61234, 77, 0, cfg);
    assert.equal(latchPacket(s, '203.0.113.9', 61300, 77, 1, cfg), 'drop');
    assert.equal(latchPacket(s, '203.0.113.9', 61234, 77, 2, cfg), 'accept', 'old source still talks');
    assert.equal(latchPacket(s, '203.0.113.9', 61300, 77, 3, cfg), 'drop');
    assert.equal(latchPacket(s, '203.0.113.9', 61301, 77, 4, cfg), 'drop', 'another source restarts the count');
    assert.equal(latchPacket(s, '203.0.113.9', 61300, 77, 5, cfg), 'drop');
    assert.equal(latchPacket(s, '203.0.113.9', 61300, 77, 6, cfg), 'drop');
    assert.equal(latchPacket(s, '203.0.113.9', 61300, 77, 7, cfg), 'relatched');
    assert.equal(s.port, 61300);
    // A different SSRC never counts.
    for (let i = 0; i < 10; i++) assert.equal(latchPacket(s, '203.0.113.9', 62000, 78, 8 + i, cfg), 'drop');
  });

  it('restricted to the signalled IP: other IPs never latch, other ports of that IP do', () => {
    const strict = { ...cfg, restrictToSignalledIp: true };
    const s = newLatchState();
    resetLatch(s, '198.51.100.7', 4000);
    assert.equal(latchPacket(s, '192.0.2.66', 4000, 1, 0, strict), 'drop');
    assert.equal(s.latched, false);
    assert.equal(latchPacket(s, '198.51.100.7', 50000, 1, 1, strict), 'latched');
    assert.equal(latchPacket(s, '192.0.2.66', 4000, 1, 10_000, strict), 'drop', 'not even after silence');
  });

  it('a new SDP address re-arms the latch', () => {
    const s = newLatchState();
    latchPacket(s, '203.0.113.9', 61234, 77, 0, cfg);
    resetLatch(s, '198.51.100.8', 4100);
    assert.deepEqual([s.address, s.port, s.latched], ['198.51.100.8', 4100, false]);
    assert.equal(latchPacket(s, '203.0.113.10', 1, 5, 1, cfg), 'latched');
  });
});
