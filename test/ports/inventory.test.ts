import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { defaultConfig } from '../../src/config/load.ts';
import { compareInventory, computePortPlan, type OpenSocket, parseSs, ports } from '../../src/ports/index.ts';

const LAB = {
  edge: { public: '127.0.0.1', private: '127.0.0.1' },
  core: { public: '127.0.0.2', private: '127.0.0.2' },
};

describe('socket inventory against the plan', () => {
  it('parses ss -lntupH lines for one process', () => {
    const text = [
      'udp   UNCONN 0      0          127.0.0.1:8060       0.0.0.0:*    users:(("node",pid=4242,fd=21))',
      'tcp   LISTEN 0      511        127.0.0.2:8061       0.0.0.0:*    users:(("node",pid=4242,fd=22))',
      'tcp   LISTEN 0      511            [::1]:9000          [::]:*    users:(("node",pid=4242,fd=23))',
      'tcp   LISTEN 0      511                *:9001             *:*    users:(("node",pid=4242,fd=24))',
      'tcp   LISTEN 0      511   127.0.0.1%lo:9002       0.0.0.0:*    users:(("node",pid=4242,fd=25))',
      'tcp   LISTEN 0      511        127.0.0.1:5061       0.0.0.0:*    users:(("node",pid=42421,fd=22))',
      'tcp   LISTEN 0      511        127.0.0.1:99999      0.0.0.0:*    users:(("node",pid=4242,fd=26))',
      'garbage',
    ].join('\n');
    assert.deepEqual(parseSs(text, 4242), [
      { transport: 'udp', address: '127.0.0.1', port: 8060 },
      { transport: 'tcp', address: '127.0.0.2', port: 8061 },
      { transport: 'tcp', address: '::1', port: 9000 },
      { transport: 'tcp', address: '*', port: 9001 },
      { transport: 'tcp', address: '127.0.0.1', port: 9002 },
    ]);
  });

  it('never throws on arbitrary ss output, and keeps only well-formed sockets of the pid', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 20 }), fc.integer({ min: 1, max: 1 << 22 }), (lines, pid) => {
        const text = lines.join('\n');
        const out = parseSs(text, pid);
        for (const s of out) {
          assert.ok(s.transport === 'tcp' || s.transport === 'udp');
          assert.ok(Number.isInteger(s.port) && s.port >= 0 && s.port <= 65535);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('reports what is missing, what is unexpected, and allows pooled ports', () => {
    // Management off: this case is about SIP listeners (HTTPS management is on by default).
    const plan = computePortPlan(
      defaultConfig({ role: 'lab', traversalZones: [{ name: 'z' }], management: { https: false } }),
    );
    const sockets: OpenSocket[] = [
      { transport: 'tcp', address: '127.0.0.1', port: 5061 },
      { transport: 'tcp', address: '127.0.0.1', port: 5062 },
      { transport: 'tcp', address: '0.0.0.0', port: 7001 },
      { transport: 'udp', address: '127.0.0.1', port: 36000 },
      { transport: 'udp', address: '127.0.0.1', port: 36001 },
      { transport: 'udp', address: '127.0.0.2', port: 5060 },
      { transport: 'tcp', address: '127.0.0.2', port: 5060 },
      { transport: 'tcp', address: '127.0.0.2', port: 5061 },
      // core MTLS missing; extras:
      { transport: 'udp', address: '127.0.0.1', port: 40000 }, // a media port: pooled
      { transport: 'udp', address: '127.0.0.1', port: 5060 }, // edge UDP is off by default: unexpected
      { transport: 'tcp', address: '127.0.0.2', port: 7001 }, // the core does not listen on 7001
    ];
    const r = compareInventory(plan, sockets, LAB);
    assert.deepEqual(
      r.missing.map((m) => `${m.listener.node}:${m.listener.id}:${m.port}`),
      ['core:sip-mtls:5062'],
    );
    assert.deepEqual(r.unexpected, [
      { transport: 'udp', address: '127.0.0.1', port: 5060 },
      { transport: 'tcp', address: '127.0.0.2', port: 7001 },
    ]);
    assert.equal(r.pooled, 1);
    assert.equal(r.matched, 8);
  });

  it('TURN relays on turn.additionalRelayAddress are pooled there (however the address is written), nowhere else', () => {
    const turn = { enabled: true, sharedSecret: 'inventory-secret' };
    const config = (extra?: string) =>
      defaultConfig({ role: 'lab', management: { https: false }, turn: { ...turn, additionalRelayAddress: extra } });
    const plan = computePortPlan(config('2001:DB8:0::10'));
    const relay = plan.range('turn-relay', 'edge');
    const listeners = plan.listeners.flatMap((l) =>
      ports(l.ports).map((port) => ({
        transport: l.transport,
        address: l.node === 'edge' ? '127.0.0.1' : '127.0.0.2',
        port,
      })),
    );
    const relays: OpenSocket[] = [
      { transport: 'udp', address: '2001:db8::10', port: relay.from },
      { transport: 'tcp', address: '2001:db8::10', port: relay.from + 1 },
    ];
    const strays: OpenSocket[] = [
      { transport: 'udp', address: '2001:db8::10', port: relay.from - 1 }, // outside the relay range
      { transport: 'udp', address: '2001:db8::11', port: relay.from }, // another address
      { transport: 'udp', address: '2001:db8::10', port: plan.range('media', 'core').from }, // a core pool
    ];
    const r = compareInventory(plan, [...listeners, ...relays, ...strays], LAB);
    assert.deepEqual(r.missing, []);
    assert.equal(r.pooled, 2);
    assert.deepEqual(r.unexpected, strays);
    const without = compareInventory(computePortPlan(config()), [...listeners, ...relays], LAB);
    assert.deepEqual(without.unexpected, relays, 'without the setting they are not the plan');
  });

  it('on a two-address edge, a wildcard bind serves only a listener of both sides', () => {
    const plan = computePortPlan(
      defaultConfig({
        role: 'edge',
        network: { address: '10.1.0.10', publicAddress: '192.0.2.10' },
        traversalZones: [{ name: 'z' }],
        management: { https: false },
      }),
    );
    const sides = { edge: { public: '192.0.2.10', private: '10.1.0.10' } };
    const right: OpenSocket[] = [
      { transport: 'tcp', address: '192.0.2.10', port: 5061 },
      { transport: 'tcp', address: '192.0.2.10', port: 5062 },
      { transport: 'tcp', address: '10.1.0.10', port: 7001 },
      { transport: 'udp', address: '0.0.0.0', port: 36000 }, // mux: both sides
      { transport: 'udp', address: '0.0.0.0', port: 36001 },
    ];
    const ok = compareInventory(plan, right, sides);
    assert.deepEqual([ok.missing, ok.unexpected], [[], []]);
    // 7001 on every address also faces the internet: the private listener is missing and the socket unexpected
    const wide = right.map((s) => (s.port === 7001 ? { ...s, address: '0.0.0.0' } : s));
    const r = compareInventory(plan, wide, sides);
    assert.deepEqual(
      r.missing.map((m) => `${m.listener.id}@${m.address}`),
      ['traversal-sip:1@10.1.0.10'],
    );
    assert.deepEqual(r.unexpected, [{ transport: 'tcp', address: '0.0.0.0', port: 7001 }]);
    // on the wrong side: the same
    const flipped = right.map((s) => (s.port === 5061 ? { ...s, address: '10.1.0.10' } : s));
    assert.deepEqual(
      compareInventory(plan, flipped, sides).missing.map((m) => `${m.listener.id}@${m.address}`),
      ['sip-tls@192.0.2.10'],
    );
  });

  describe('with real sockets and ss', () => {
    const servers: (Server | UdpSocket)[] = [];
    after(async () => {
      for (const s of servers) await new Promise<void>((resolve) => s.close(() => resolve()));
    });

    it('sockets opened from the plan (with a port offset) match it; one more is reported', async (t) => {
      try {
        execFileSync('ss', ['-V'], { stdio: 'ignore' });
      } catch {
        t.skip('ss (iproute2) is not installed');
        return;
      }
      // An offset unlikely to collide with other test files running in parallel.
      const offset = 3000 + ((process.pid * 7) % 2000);
      const plan = computePortPlan(
        defaultConfig({ role: 'lab', portOffset: offset, traversalZones: [{ name: 'z' }], turn: { enabled: true } }),
      );
      for (const n of plan.nodes) {
        for (const l of n.listeners) {
          for (const p of ports(l.ports)) {
            const address = LAB[n.node].private;
            if (l.transport === 'tcp') {
              const s = createServer();
              servers.push(s);
              await new Promise<void>((resolve, reject) => {
                s.once('error', reject);
                s.listen({ host: address, port: p }, () => resolve());
              });
            } else {
              const u = createSocket('udp4');
              servers.push(u);
              await new Promise<void>((resolve, reject) => {
                u.once('error', reject);
                u.bind({ address, port: p }, () => resolve());
              });
            }
          }
        }
      }
      // A socket the plan does not have (10000 + offset is in no listener and no pool of this plan).
      const strayPort = 10_000 + offset;
      assert.ok(!plan.pools.some((p) => p.ports.from <= strayPort && strayPort <= p.ports.to));
      const stray = createServer();
      servers.push(stray);
      await new Promise<void>((resolve) => stray.listen({ host: '127.0.0.2', port: strayPort }, () => resolve()));

      const seen = parseSs(execFileSync('ss', ['-lntupH'], { encoding: 'utf8' }), process.pid);
      const r = compareInventory(plan, seen, LAB);
      assert.deepEqual(r.missing, []);
      assert.equal(
        r.matched,
        plan.listeners.reduce((n, l) => n + ports(l.ports).length, 0),
      );
      assert.deepEqual(r.unexpected, [{ transport: 'tcp', address: '127.0.0.2', port: strayPort }]);
    });
  });
});
