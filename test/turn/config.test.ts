import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import { configSchema } from '../../src/config/schema.ts';
import { longTermKey } from '../../src/stun/integrity.ts';
import { DEFAULT_DENIED_PEERS, defaultTurnConfig, turnConfigSchema } from '../../src/turn/config.ts';
import { ConfigCredentials } from '../../src/turn/credentials.ts';
import { NonceIssuer, SecurityFeature } from '../../src/turn/nonce.ts';
import { PeerPolicy } from '../../src/turn/peer-policy.ts';

describe('TURN configuration', () => {
  it('has safe defaults inside the node configuration', () => {
    const c = configSchema.parse({});
    assert.equal(c.turn.enabled, false);
    assert.equal(c.turn.allowUnauthenticatedBinding, false);
    assert.deepEqual(c.turn.peers.denied, DEFAULT_DENIED_PEERS);
    assert.equal(c.turn.lifetimes.allocationDefaultSeconds, 600);
    assert.equal(c.turn.lifetimes.permissionSeconds, 300);
    assert.equal(c.turn.lifetimes.channelSeconds, 600);
    const r = configSchema.parse({ turn: { relayRange: { from: 24000, to: 24100 } } });
    assert.deepEqual(r.turn.relayRange, { from: 24000, to: 24100 });
  });

  it('refuses bad fields with their path', () => {
    const bad: [unknown, string][] = [
      [{ peers: { allowed: ['10.0.0.0/33'] } }, 'peers.allowed.0'],
      [{ users: [{ username: 'a' }] }, 'users.0'],
      [{ users: [{ username: 'a', password: 'x', ha1: '00'.repeat(16) }] }, 'users.0'],
      [{ sharedSecret: 'short' }, 'sharedSecret'],
      [{ alternateServers: [{ address: 'example.org', port: 3478 }] }, 'alternateServers.0.address'],
      [{ lifetimes: { nonceSeconds: 1 } }, 'lifetimes.nonceSeconds'],
      [{ bogus: true }, ''],
    ];
    for (const [input, path] of bad) {
      const r = turnConfigSchema.safeParse(input);
      assert.equal(r.success, false, JSON.stringify(input));
      assert.equal(r.error!.issues[0]!.path.join('.'), path, JSON.stringify(input));
    }
  });

  it('derives keys for password users, HA1 users (MD5 only) and REST users', () => {
    const clock = new FakeClock();
    const ha1 = longTermKey('bob', 'r', 'pw').toString('hex');
    const cfg = defaultTurnConfig({
      realm: 'r',
      users: [
        { username: 'alice', password: 'pw' },
        { username: 'bob', ha1 },
      ],
      sharedSecret: 'secret-secret',
    });
    const creds = new ConfigCredentials(cfg, clock);
    assert.deepEqual(creds.lookupLongTermKey('alice', 'r'), longTermKey('alice', 'r', 'pw'));
    assert.deepEqual(creds.lookupLongTermKey('alice', 'r', 2), longTermKey('alice', 'r', 'pw', 2));
    assert.equal(creds.lookupLongTermKey('bob', 'r')?.toString('hex'), ha1);
    assert.equal(creds.lookupLongTermKey('bob', 'r', 2), undefined);
    const future = `${Math.floor(clock.wallNow() / 1000) + 10}:carol`;
    assert.ok(creds.lookupLongTermKey(future, 'r'));
    clock.advance(11_000);
    assert.equal(creds.lookupLongTermKey(future, 'r'), undefined, 'expired');
    assert.equal(creds.lookupLongTermKey('nobody', 'r'), undefined);
    assert.equal(creds.lookupLongTermKey('abc:def', 'r'), undefined);
  });

  it('issues nonces with the RFC 8489 cookie that turn stale and are bound to the client', () => {
    const clock = new FakeClock();
    const n = new NonceIssuer(clock, 60, SecurityFeature.passwordAlgorithms);
    const nonce = n.issue('192.0.2.1');
    assert.equal(NonceIssuer.features(nonce), SecurityFeature.passwordAlgorithms);
    assert.equal(n.check(nonce, '192.0.2.1'), 'ok');
    assert.equal(n.check(nonce, '192.0.2.2'), 'invalid');
    assert.equal(n.check(`${nonce}x`, '192.0.2.1'), 'invalid');
    assert.equal(n.check('garbage', '192.0.2.1'), 'invalid');
    clock.advance(61_000);
    assert.equal(n.check(nonce, '192.0.2.1'), 'stale');
  });

  it('judges peers: loopback, own addresses, denied ranges, allow list, IPv4-mapped IPv6', () => {
    const p = new PeerPolicy({ denied: DEFAULT_DENIED_PEERS, allowed: ['10.9.0.0/16'], ownAddresses: ['203.0.113.1'] });
    assert.equal(p.check('127.0.0.5'), 'loopback');
    assert.equal(p.check('::1'), 'loopback');
    assert.equal(p.check('203.0.113.1'), 'own-address');
    assert.equal(p.check('10.1.1.1'), 'denied-range');
    assert.equal(p.check('10.9.1.1'), 'allowed');
    assert.equal(p.check('::ffff:192.168.1.1'), 'denied-range');
    assert.equal(p.check('fe80::1'), 'denied-range');
    assert.equal(p.check('8.8.8.8'), 'allowed');
    assert.equal(p.check('2001:4860::8888'), 'allowed');
    assert.equal(p.check('not-an-ip'), 'not-an-address');
  });
});
