import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../src/common/log.ts';
import { FakeClock } from '../../src/common/timers.ts';
import { BlockStore } from '../../src/security/block-store.ts';
import { securityConfigSchema } from '../../src/security/config.ts';
import { IntrusionGuard, normalizeAddress } from '../../src/security/intrusion.ts';
import { createIntrusionProtection } from '../../src/security/service.ts';
import { NodeStore } from '../../src/store/database.ts';
import { eventually, makeLayer, request, streamClient, tcpConnect, udpClient } from '../sip/transport/helpers.ts';

const LIMITS = {
  auth: { threshold: 3, windowMs: 10_000, blockMs: 60_000 },
  malformed: { threshold: 2, windowMs: 1000, blockMs: 5000 },
  flood: { threshold: 5, windowMs: 1000, blockMs: 30_000 },
};

function guard(clock = new FakeClock(), exempt: string[] = [], max = 1000) {
  return new IntrusionGuard({ clock, enabled: true, limits: LIMITS, exempt, maxTrackedSources: max });
}

describe('IntrusionGuard', () => {
  it('blocks a source at the threshold within the window, and only that source', () => {
    const clock = new FakeClock();
    const g = guard(clock);
    g.onAuthFailure('192.0.2.1');
    g.onAuthFailure('192.0.2.1');
    assert.equal(g.allows('192.0.2.1'), true);
    g.onAuthFailure('192.0.2.1');
    assert.equal(g.allows('192.0.2.1'), false);
    assert.equal(g.allows('192.0.2.2'), true);
    assert.equal(g.counters.droppedPackets, 1);
    assert.equal(g.blocks()[0]?.category, 'auth');
  });

  it('flood events (requests over a rate limit) block a source by their own threshold, counted apart', () => {
    const clock = new FakeClock();
    const g = guard(clock);
    for (let i = 0; i < 4; i++) g.onFlood('192.0.2.5');
    assert.equal(g.allows('192.0.2.5'), true);
    g.onFlood('192.0.2.5');
    assert.equal(g.allows('192.0.2.5'), false);
    assert.equal(g.blocks()[0]?.category, 'flood');
    assert.equal(g.counters.events.flood, 5);
    assert.equal(g.counters.events.auth, 0);
    clock.advance(30_001);
    assert.equal(g.allows('192.0.2.5'), true);
  });

  it('the window slides: events spread wider than the window never block', () => {
    const clock = new FakeClock();
    const g = guard(clock);
    for (let i = 0; i < 20; i++) {
      g.onAuthFailure('192.0.2.1');
      clock.advance(5001);
    }
    assert.equal(g.allows('192.0.2.1'), true);
  });

  it('a block ends after its duration (checked lazily) and can be cleared early', () => {
    const clock = new FakeClock();
    const g = guard(clock);
    g.onMalformed('192.0.2.9');
    g.onMalformed('192.0.2.9');
    assert.equal(g.allows('192.0.2.9'), false);
    clock.advance(5001);
    assert.equal(g.allows('192.0.2.9'), true);
    for (let i = 0; i < 3; i++) g.onAuthFailure('2001:DB8::1');
    assert.equal(g.allows('2001:db8::1'), false);
    assert.equal(g.clear('2001:db8::1'), true);
    assert.equal(g.allows('2001:db8::1'), true);
    assert.equal(g.clear('2001:db8::1'), false);
  });

  it('exempt networks are never blocked', () => {
    const g = guard(new FakeClock(), ['10.0.0.0/8', '2001:db8::/32']);
    for (let i = 0; i < 10; i++) {
      g.onAuthFailure('10.1.2.3');
      g.onAuthFailure('::ffff:10.1.2.4');
      g.onAuthFailure('2001:db8::5');
    }
    assert.equal(g.allows('10.1.2.3'), true);
    assert.equal(g.allows('10.1.2.4'), true);
    assert.equal(g.allows('2001:db8::5'), true);
    assert.equal(g.blocks().length, 0);
  });

  it('tracks a bounded number of sources', () => {
    const g = guard(new FakeClock(), [], 100);
    for (let i = 0; i < 1000; i++) g.onAuthFailure(`198.51.100.${i % 250}`);
    assert.ok(g.trackedSources <= 100);
  });

  it('normalizes IPv4-mapped and bracketed addresses', () => {
    assert.equal(normalizeAddress('::ffff:192.0.2.1'), '192.0.2.1');
    assert.equal(normalizeAddress('[2001:DB8::1]'), '2001:db8::1');
  });

  it('blocks persist in the store and come back after a restart; expired ones are purged', () => {
    const store = NodeStore.open(':memory:');
    const clock = new FakeClock();
    const config = securityConfigSchema.parse({
      intrusion: { authFailures: { threshold: 2, windowSeconds: 10, blockSeconds: 60 } },
    });
    const a = createIntrusionProtection({ config, store, clock, log: silentLogger });
    a.guard.onAuthFailure('192.0.2.7');
    a.guard.onAuthFailure('192.0.2.7');
    assert.equal(new BlockStore(store).active(clock.wallNow()).length, 1);
    const b = createIntrusionProtection({ config, store, clock, log: silentLogger });
    assert.equal(b.guard.allows('192.0.2.7'), false, 'restored');
    b.guard.clear('192.0.2.7');
    assert.equal(new BlockStore(store).active(clock.wallNow()).length, 0, 'clear reaches the store');
    b.guard.onAuthFailure('192.0.2.8');
    b.guard.onAuthFailure('192.0.2.8');
    clock.advance(61_000);
    assert.equal(new BlockStore(store).active(clock.wallNow()).length, 0, 'expired rows purged');
    assert.equal(createIntrusionProtection({ config, store, clock, log: silentLogger }).guard.blocks().length, 0);
  });
});

describe('transport source policy (real sockets)', () => {
  it('malformed UDP requests get a source blocked; its later datagrams are dropped before parsing', async () => {
    const clock = new FakeClock();
    const g = guard(clock);
    const t = makeLayer({}, clock);
    t.layer.setSourcePolicy(g);
    const port = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    const c = await udpClient(4);
    try {
      const bad = request().replace('CSeq: ', 'CSeq: x');
      await c.send(bad, port);
      assert.match((await c.next()).toString(), /^SIP\/2.0 400/);
      await c.send(bad, port);
      assert.match((await c.next()).toString(), /^SIP\/2.0 400/);
      assert.equal(g.allows('127.0.0.1'), false, 'blocked after 2 malformed requests');
      const before = t.layer.counters().drops['blocked-source'] ?? 0;
      await c.send(request(), port);
      await c.send(bad, port);
      await eventually(() => (t.layer.counters().drops['blocked-source'] ?? 0) === before + 2, 2000, 'two drops');
      assert.equal(t.inbox.length, 0, 'nothing delivered');
      assert.equal(c.got.length, 0, 'no answer to a blocked source');
      g.clear('127.0.0.1');
      await c.send(request(), port);
      await t.nth(1);
    } finally {
      await c.close();
      await t.layer.close();
    }
  });

  it('a blocked source cannot open TCP connections, and its open connection is closed on its next data', async () => {
    const clock = new FakeClock();
    const g = guard(clock);
    const t = makeLayer({}, clock);
    t.layer.setSourcePolicy(g);
    const port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    const open = streamClient(await tcpConnect(port));
    try {
      await open.write(request({ transport: 'TCP' }));
      await t.nth(1);
      for (let i = 0; i < 3; i++) g.onAuthFailure('127.0.0.1');
      const refused = streamClient(await tcpConnect(port));
      await refused.closed;
      assert.equal(g.counters.refusedConnections, 1);
      await open.write(request({ transport: 'TCP' }));
      await open.closed;
      assert.equal(t.inbox.length, 1);
      assert.ok((t.layer.counters().drops['blocked-source'] ?? 0) >= 2);
    } finally {
      open.socket.destroy();
      await t.layer.close();
    }
  });
});
