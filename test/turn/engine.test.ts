import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LocalCredentialStore } from '../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../src/store/database.ts';
import { encodeFirstByteOf4, readAddress, readText, readUnknownAttributes } from '../../src/stun/attributes.ts';
import { StunBuilder } from '../../src/stun/builder.ts';
import { Attr, Limits, Method, NONCE_COOKIE, StunClass } from '../../src/stun/constants.ts';
import { longTermKey, userHash } from '../../src/stun/integrity.ts';
import { decodeStun, findAttribute, findAttributes } from '../../src/stun/message.ts';
import { channelData, sendIndication, TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { NonceIssuer, SecurityFeature } from '../../src/turn/nonce.ts';
import { StoreCredentials } from '../../src/turn/store-credentials.ts';
import { fakePeer, harness, PEER } from './harness.ts';

const S = 1000;

describe('TURN engine: authentication (RFC 8489 §9.2)', () => {
  it('challenges an unauthenticated Binding with REALM, a cookie NONCE and PASSWORD-ALGORITHMS', async () => {
    const h = harness();
    const c = h.client();
    const s = new TurnClientSession('alice', 'wonderland');
    const a = await h.exchange(c, s, s.request(Method.binding));
    assert.equal(a?.error, 401);
    assert.equal(s.realm, 'crossway.test');
    assert.ok(s.nonce?.startsWith(`${NONCE_COOKIE}gAAA`), s.nonce);
    assert.ok(findAttribute(a!.msg, Attr.PASSWORD_ALGORITHMS));
    assert.equal(h.engine.counters.authFailures, 1);
    const b = await h.exchange(c, s, s.request(Method.binding));
    assert.equal(b?.error, undefined);
    assert.equal(b?.integrity, true);
    assert.deepEqual(b?.mapped, c.transport.remote);
  });

  it('answers an unauthenticated Binding only when configured to', async () => {
    const h = harness({ allowUnauthenticatedBinding: true });
    const c = h.client();
    const s = new TurnClientSession('x', 'y');
    const a = await h.exchange(c, s, s.request(Method.binding));
    assert.equal(a?.error, undefined);
    assert.equal(a?.msg.cls, StunClass.success);
    assert.deepEqual(a?.mapped, c.transport.remote);
    assert.equal(a?.msg.integrityOffset, -1);
  });

  it('refuses a wrong password, an unknown user and a foreign realm with 401', async () => {
    const h = harness();
    for (const [user, pw] of [
      ['alice', 'bad'],
      ['mallory', 'x'],
    ] as const) {
      const s = new TurnClientSession(user, pw);
      const a = await h.allocate(h.client(), s);
      assert.equal(a.a.error, 401, `${user}`);
    }
    const s = new TurnClientSession('alice', 'wonderland');
    const c = h.client();
    await h.exchange(c, s, s.request(Method.allocate, [turnAttr.udpTransport()]));
    s.realm = 'elsewhere';
    const a = await h.exchange(c, s, s.request(Method.allocate, [turnAttr.udpTransport()]));
    assert.equal(a?.error, 401);
    assert.equal(h.engine.size, 0);
  });

  it('answers 438 Stale Nonce once the nonce expires, with a fresh nonce that works', async () => {
    const h = harness({ lifetimes: { nonceSeconds: 60 } });
    const { c, session, a } = await h.allocate();
    assert.equal(a.error, undefined);
    const old = session.nonce;
    h.clock.advance(61 * S);
    const r = await h.authed(c, session, Method.refresh);
    assert.equal(r.error, 438);
    assert.notEqual(session.nonce, old);
    const r2 = await h.authed(c, session, Method.refresh);
    assert.equal(r2.error, undefined);
  });

  it('refuses a nonce issued to another client address (400 never, 438 with a new one)', async () => {
    const h = harness();
    const s = new TurnClientSession('alice', 'wonderland');
    await h.exchange(h.client(1), s, s.request(Method.binding));
    const other = h.client(2);
    (other.transport as { remote: unknown }).remote = { family: 4, address: '203.0.113.99', port: 2 };
    const a = await h.exchange(other, s, s.request(Method.binding));
    assert.equal(a?.error, 438);
  });

  it('accepts TURN REST credentials from the shared secret and refuses expired ones', async () => {
    const h = harness();
    const now = Math.floor(h.clock.wallNow() / 1000);
    const restUser = (expiry: number) => `${expiry}:webrtc-user`;
    const restPass = (u: string) => createHmac('sha1', 'shared-secret-1').update(u).digest('base64');
    const good = restUser(now + 3600);
    const ok = await h.allocate(h.client(1), new TurnClientSession(good, restPass(good)));
    assert.equal(ok.a.error, undefined);
    assert.equal(ok.a.integrity, true);
    const old = restUser(now - 1);
    const expired = await h.allocate(h.client(2), new TurnClientSession(old, restPass(old)));
    assert.equal(expired.a.error, 401);
    const forged = await h.allocate(h.client(3), new TurnClientSession(good, 'forged'));
    assert.equal(forged.a.error, 401);
  });

  it('negotiates SHA-256 (PASSWORD-ALGORITHM) and answers with MESSAGE-INTEGRITY-SHA256', async () => {
    const h = harness();
    const s = new TurnClientSession('alice', 'wonderland', { sha256: true });
    const { a } = await h.allocate(h.client(), s);
    assert.equal(a.error, undefined);
    assert.ok(a.msg.integritySha256Offset > 0);
    assert.equal(a.msg.integrityOffset, -1);
    assert.equal(a.integrity, true);
  });

  it('refuses PASSWORD-ALGORITHM without the PASSWORD-ALGORITHMS list it was offered (400)', async () => {
    const h = harness();
    const c = h.client();
    const s = new TurnClientSession('alice', 'wonderland');
    await h.exchange(c, s, s.request(Method.allocate, [turnAttr.udpTransport()]));
    const a = await h.exchange(
      c,
      s,
      s.request(Method.allocate, [turnAttr.udpTransport(), [Attr.PASSWORD_ALGORITHM, Buffer.from([0, 2, 0, 0])]]),
    );
    assert.equal(a?.error, 400);
  });

  it('identifies the user from USERHASH (RFC 8489 §14.4)', async () => {
    const h = harness();
    const c = h.client();
    const s = new TurnClientSession('alice', 'wonderland');
    await h.exchange(c, s, s.request(Method.binding));
    // Replace USERNAME by USERHASH: build by hand with the session's key.
    const tid = Buffer.alloc(12, 7);
    const req = new StunBuilder(Method.binding, StunClass.request, tid)
      .add(Attr.USERHASH, userHash('alice', 'crossway.test'))
      .add(Attr.REALM, Buffer.from(s.realm!))
      .add(Attr.NONCE, Buffer.from(s.nonce!))
      .finish({ integrityKey: longTermKey('alice', 'crossway.test', 'wonderland') });
    const a = await h.exchange(c, s, req);
    assert.equal(a?.error, undefined);
    assert.equal(a?.integrity, true);
  });

  it('takes long-term users from the node credential store (its HA1 is the key), before the configuration', async () => {
    const store = NodeStore.open(':memory:');
    const users = new LocalCredentialStore(store);
    users.add('crossway.test', 'dave', 'd4ve-pw');
    users.add('sip.example', 'erin', 'erin-pw');
    const h = harness({}, { credentials: (fromConfig) => new StoreCredentials(users, fromConfig) });
    const md5 = await h.allocate(h.client(1), new TurnClientSession('dave', 'd4ve-pw'));
    assert.equal(md5.a.error, undefined);
    assert.equal(md5.a.integrity, true);
    assert.equal(h.engine.allocations()[0]?.username, 'dave');
    const sha = await h.allocate(h.client(2), new TurnClientSession('dave', 'd4ve-pw', { sha256: true }));
    assert.equal(sha.a.error, undefined);
    assert.ok(sha.a.msg.integritySha256Offset > 0);
    assert.equal((await h.allocate(h.client(3), new TurnClientSession('dave', 'wrong'))).a.error, 401);
    // A user of another realm is not a TURN user: the key depends on the realm.
    assert.equal((await h.allocate(h.client(4), new TurnClientSession('erin', 'erin-pw'))).a.error, 401);
    // Static users and REST credentials still work behind the store.
    assert.equal((await h.allocate(h.client(5))).a.error, undefined);
    const rest = `${Math.floor(h.clock.wallNow() / 1000) + 60}:web`;
    const restPw = createHmac('sha1', 'shared-secret-1').update(rest).digest('base64');
    assert.equal((await h.allocate(h.client(6), new TurnClientSession(rest, restPw))).a.error, undefined);
    // Read through: a user added, or whose password changes, while the server runs is seen at once.
    users.add('crossway.test', 'frank', 'fr4nk');
    assert.equal((await h.allocate(h.client(7), new TurnClientSession('frank', 'fr4nk'))).a.error, undefined);
    users.setPassword('crossway.test', 'frank', 'new-pw');
    assert.equal((await h.allocate(h.client(8), new TurnClientSession('frank', 'fr4nk'))).a.error, 401);
    assert.equal(h.engine.size, 5);
    // A store that cannot answer gives 500 (not 401, the password may be right); static users go on working.
    store.close();
    assert.equal((await h.allocate(h.client(9), new TurnClientSession('dave', 'd4ve-pw'))).a.error, 500);
    assert.equal((await h.allocate(h.client(10))).a.error, undefined);
  });

  it('announces username anonymity only when every user can be found by USERHASH', async () => {
    const store = NodeStore.open(':memory:');
    const users = new LocalCredentialStore(store);
    users.add('crossway.test', 'dave', 'd4ve-pw');
    const nonceOf = async (h: ReturnType<typeof harness>) => {
      const s = new TurnClientSession('dave', 'd4ve-pw');
      await h.exchange(h.client(), s, s.request(Method.binding));
      return { s, features: NonceIssuer.features(s.nonce!) };
    };
    // With a shared secret, REST users cannot be found by hash: only password algorithms are announced.
    const withSecret = harness({}, { credentials: (c) => new StoreCredentials(users, c) });
    assert.equal((await nonceOf(withSecret)).features, SecurityFeature.passwordAlgorithms);
    const h = harness({ sharedSecret: undefined }, { credentials: (c) => new StoreCredentials(users, c) });
    const { s, features } = await nonceOf(h);
    assert.equal(features, SecurityFeature.passwordAlgorithms | SecurityFeature.usernameAnonymity);
    assert.ok(s.nonce!.startsWith(`${NONCE_COOKIE}wAAA`), s.nonce);
    // A client told so names itself by USERHASH: a store user, then a static one behind the store.
    for (const [user, pw] of [
      ['dave', 'd4ve-pw'],
      ['alice', 'wonderland'],
    ] as const) {
      const req = new StunBuilder(Method.binding, StunClass.request, Buffer.alloc(12, 9))
        .add(Attr.USERHASH, userHash(user, 'crossway.test'))
        .add(Attr.REALM, Buffer.from(s.realm!))
        .add(Attr.NONCE, Buffer.from(s.nonce!))
        .finish({ integrityKey: longTermKey(user, 'crossway.test', pw) });
      const a = await h.exchange(h.client(), s, req);
      assert.equal(a?.error, undefined, user);
      assert.equal(a?.msg.cls, StunClass.success, user);
    }
    store.close();
  });

  it('answers a request with an unknown comprehension-required attribute with 420 listing it', async () => {
    const h = harness();
    const { c, session } = await h.allocate();
    const r = await h.authed(c, session, Method.refresh, () => [[0x7001, Buffer.from('x')]]);
    assert.equal(r.error, 420);
    const ua = readUnknownAttributes(r.msg, findAttribute(r.msg, Attr.UNKNOWN_ATTRIBUTES)!);
    assert.deepEqual(ua, { ok: true, value: [0x7001] });
    assert.equal(r.integrity, true);
  });
});

describe('TURN engine: allocations (RFC 8656 §7–8)', () => {
  it('allocates a relay from the range, with LIFETIME, XOR-MAPPED-ADDRESS and integrity', async () => {
    const h = harness();
    const { a } = await h.allocate();
    assert.equal(a.error, undefined);
    assert.equal(a.integrity, true);
    assert.equal(a.relayed.length, 1);
    assert.ok(a.relayed[0]!.port >= 50000 && a.relayed[0]!.port <= 50009);
    assert.equal(a.lifetime, 600);
    assert.equal(a.mapped?.address, '203.0.113.5');
    assert.equal(h.engine.counters.allocationsActive, 1);
    assert.equal(h.engine.allocations()[0]?.username, 'alice');
  });

  it('answers a retransmitted Allocate with the same response and a new one on the 5-tuple with 437', async () => {
    const h = harness();
    const c = h.client();
    const s = new TurnClientSession('alice', 'wonderland');
    await h.exchange(c, s, s.request(Method.allocate, [turnAttr.udpTransport()]));
    const tid = Buffer.alloc(12, 1);
    const req = s.request(Method.allocate, [turnAttr.udpTransport()], tid);
    await h.exchange(c, s, req);
    const first = c.out.at(-1)!;
    await h.exchange(c, s, req);
    assert.deepEqual(c.out.at(-1), first);
    assert.equal(h.relays.length, 1);
    const other = await h.exchange(c, s, s.request(Method.allocate, [turnAttr.udpTransport()]));
    assert.equal(other?.error, 437);
  });

  it('refuses a missing REQUESTED-TRANSPORT, TCP over UDP (400) and DONT-FRAGMENT (420) by default', async () => {
    const h = harness();
    const c = h.client();
    const s = new TurnClientSession('alice', 'wonderland');
    assert.equal((await h.authed(c, s, Method.allocate)).error, 400);
    const tcp = await h.authed(c, s, Method.allocate, () => [[Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(6)]]);
    assert.equal(tcp.error, 400, 'RFC 6062 §5.1: TCP relaying needs a TCP control connection');
    const df = await h.authed(c, s, Method.allocate, () => [
      turnAttr.udpTransport(),
      [Attr.DONT_FRAGMENT, Buffer.alloc(0)],
    ]);
    assert.equal(df.error, 420);
    assert.deepEqual(readUnknownAttributes(df.msg, findAttribute(df.msg, Attr.UNKNOWN_ATTRIBUTES)!), {
      ok: true,
      value: [Attr.DONT_FRAGMENT],
    });
    const h2 = harness({ dontFragment: 'ignore' });
    const ok = await h2.allocate(undefined, undefined, [[Attr.DONT_FRAGMENT, Buffer.alloc(0)]]);
    assert.equal(ok.a.error, undefined);
  });

  it('frees the relay port when the lifetime runs out (injected clock)', async () => {
    const h = harness();
    await h.allocate();
    assert.equal(h.relays[0]!.closed, false);
    h.clock.advance(599 * S);
    assert.equal(h.engine.size, 1);
    h.clock.advance(1 * S);
    assert.equal(h.engine.size, 0);
    assert.equal(h.relays[0]!.closed, true);
    assert.equal(h.engine.counters.allocationsExpired, 1);
    assert.equal(h.clock.pending, 0, 'no timer left behind');
  });

  it('extends the lifetime on Refresh, caps it at the maximum and deletes on LIFETIME 0', async () => {
    const h = harness({ lifetimes: { allocationMaxSeconds: 1200 } });
    const { c, session } = await h.allocate();
    h.clock.advance(500 * S);
    const r = await h.authed(c, session, Method.refresh, () => [turnAttr.lifetime(99999)]);
    assert.equal(r.lifetime, 1200);
    h.clock.advance(1100 * S);
    assert.equal(h.engine.size, 1, 'refreshed past the original 600 s');
    const del = await h.authed(c, session, Method.refresh, () => [turnAttr.lifetime(0)]);
    assert.equal(del.error, undefined);
    assert.equal(del.lifetime, 0);
    assert.equal(h.engine.size, 0);
    assert.equal(h.relays[0]!.closed, true);
    assert.equal(h.engine.counters.allocationsDeleted, 1);
    const none = await h.authed(c, session, Method.refresh);
    assert.equal(none.error, 437);
  });

  it('re-arms at once when a Refresh shortens the lifetime', async () => {
    const h = harness();
    const { c, session } = await h.allocate(undefined, undefined, [turnAttr.lifetime(3000)]);
    await h.authed(c, session, Method.refresh, () => [turnAttr.lifetime(10)]);
    h.clock.advance(11 * S);
    assert.equal(h.engine.size, 0);
  });

  it('reuses a freed relay port for the next allocation', async () => {
    const h = harness({}, { range: [50000, 50000] });
    const first = await h.allocate(h.client(1));
    assert.equal(first.a.relayed[0]!.port, 50000);
    const busy = await h.allocate(h.client(2));
    assert.equal(busy.a.error, 508, 'range exhausted: Insufficient Capacity');
    await h.authed(first.c, first.session, Method.refresh, () => [turnAttr.lifetime(0)]);
    const again = await h.allocate(h.client(3));
    assert.equal(again.a.relayed[0]!.port, 50000);
  });

  it('allocates a port freed by expiry again', async () => {
    const h = harness({}, { range: [50000, 50000] });
    assert.equal((await h.allocate(h.client(1))).a.relayed[0]?.port, 50000);
    assert.equal((await h.allocate(h.client(2))).a.error, 508);
    h.clock.advance(600 * S);
    assert.equal(h.engine.size, 0);
    const again = await h.allocate(h.client(3));
    assert.equal(again.a.error, undefined);
    assert.equal(again.a.relayed[0]?.port, 50000);
  });

  it('answers a malformed LIFETIME with 400 on Allocate and Refresh', async () => {
    const h = harness({}, { range: [50000, 50000] });
    const bad: [number, Buffer] = [Attr.LIFETIME, Buffer.from([0, 0, 1])];
    const a = await h.allocate(h.client(1), undefined, [bad]);
    assert.equal(a.a.error, 400);
    assert.equal(h.engine.size, 0);
    const { c, session } = await h.allocate(h.client(2));
    const r = await h.authed(c, session, Method.refresh, () => [bad]);
    assert.equal(r.error, 400);
    assert.equal(h.engine.allocations()[0]?.expiresInSeconds, 600, 'the allocation is left as it was');
  });

  it('enforces per-user and total allocation quotas with 486', async () => {
    const h = harness({ quotas: { allocationsPerUser: 1, allocationsTotal: 2 } });
    assert.equal((await h.allocate(h.client(1))).a.error, undefined);
    assert.equal((await h.allocate(h.client(2))).a.error, 486);
    assert.equal((await h.allocate(h.client(3), new TurnClientSession('carol', 'c4rol'))).a.error, undefined);
    const bob = `${Math.floor(h.clock.wallNow() / 1000) + 60}:bob`;
    const bobPw = createHmac('sha1', 'shared-secret-1').update(bob).digest('base64');
    assert.equal((await h.allocate(h.client(4), new TurnClientSession(bob, bobPw))).a.error, 486);
    assert.equal(h.engine.counters.quotaRejections, 2);
  });

  it('counts TURN REST names against the name after the expiry for the per-user quota', async () => {
    const h = harness({ quotas: { allocationsPerUser: 1 } });
    const now = Math.floor(h.clock.wallNow() / 1000);
    const rest = (u: string) =>
      new TurnClientSession(u, createHmac('sha1', 'shared-secret-1').update(u).digest('base64'));
    const first = await h.allocate(h.client(1), rest(`${now + 60}:web`));
    assert.equal(first.a.error, undefined);
    assert.equal(
      (await h.allocate(h.client(2), rest(`${now + 61}:web`))).a.error,
      486,
      'a fresh expiry is the same user',
    );
    assert.equal((await h.allocate(h.client(3), rest(`${now + 60}:other`))).a.error, undefined);
    await h.authed(first.c, first.session, Method.refresh, () => [turnAttr.lifetime(0)]);
    assert.equal(
      (await h.allocate(h.client(4), rest(`${now + 62}:web`))).a.error,
      undefined,
      'freed with the allocation',
    );
  });

  it('refuses requests on an allocation made by another user with 441', async () => {
    const h = harness();
    const { c } = await h.allocate();
    const carol = new TurnClientSession('carol', 'c4rol');
    const r = await h.authed(c, carol, Method.refresh);
    assert.equal(r.error, 441);
  });

  it('EVEN-PORT with R reserves the next port behind a RESERVATION-TOKEN (RFC 8656 §7.2, §14.9)', async () => {
    const h = harness({}, { range: [50001, 50010] });
    const { a } = await h.allocate(h.client(1), undefined, [[Attr.EVEN_PORT, Buffer.from([0x80])]]);
    assert.equal(a.error, undefined);
    const port = a.relayed[0]!.port;
    assert.equal(port % 2, 0);
    const tokenRef = findAttribute(a.msg, Attr.RESERVATION_TOKEN)!;
    const token = Buffer.from(a.msg.raw.subarray(tokenRef.offset, tokenRef.offset + 8));
    const second = await h.allocate(h.client(2), undefined, [[Attr.RESERVATION_TOKEN, token]]);
    assert.equal(second.a.error, undefined);
    assert.equal(second.a.relayed[0]!.port, port + 1);
    const reused = await h.allocate(h.client(3), undefined, [[Attr.RESERVATION_TOKEN, token]]);
    assert.equal(reused.a.error, 508, 'a token is good once');
    const both = await h.allocate(h.client(4), undefined, [
      [Attr.RESERVATION_TOKEN, token],
      [Attr.EVEN_PORT, Buffer.from([0])],
    ]);
    assert.equal(both.a.error, 400);
  });

  it('releases an unused reservation after its lifetime', async () => {
    const h = harness({ lifetimes: { reservationSeconds: 5 } }, { range: [50000, 50001] });
    const first = await h.allocate(h.client(1), undefined, [[Attr.EVEN_PORT, Buffer.from([0x80])]]);
    assert.equal(first.a.relayed[0]!.port, 50000);
    assert.equal((await h.allocate(h.client(2))).a.error, 508, '50001 is reserved');
    h.clock.advance(6 * S);
    const later = await h.allocate(h.client(3));
    assert.equal(later.a.relayed[0]!.port, 50001);
  });

  it('makes a dual allocation with ADDITIONAL-ADDRESS-FAMILY, or reports ADDRESS-ERROR-CODE 440', async () => {
    const dual = harness({}, { families: [4, 6] });
    const d = await dual.allocate(undefined, undefined, [[Attr.ADDITIONAL_ADDRESS_FAMILY, encodeFirstByteOf4(2)]]);
    assert.deepEqual(
      d.a.relayed.map((r) => r.family),
      [4, 6],
    );
    const single = harness();
    const s = await single.allocate(undefined, undefined, [[Attr.ADDITIONAL_ADDRESS_FAMILY, encodeFirstByteOf4(2)]]);
    assert.equal(s.a.relayed.length, 1);
    assert.ok(findAttribute(s.a.msg, Attr.ADDRESS_ERROR_CODE));
    const v6 = await single.allocate(single.client(9), undefined, [
      [Attr.REQUESTED_ADDRESS_FAMILY, encodeFirstByteOf4(2)],
    ]);
    assert.equal(v6.a.error, 440);
    const draft = await dual.allocate(dual.client(8), undefined, [
      [Attr.ADDITIONAL_ADDRESS_FAMILY_DRAFT, encodeFirstByteOf4(2)],
    ]);
    assert.equal(draft.a.relayed.length, 2, 'coturn 4.6 clients send the draft code point 0x8032');
    const v6ok = await dual.allocate(dual.client(9), undefined, [
      [Attr.REQUESTED_ADDRESS_FAMILY, encodeFirstByteOf4(2)],
    ]);
    assert.equal(v6ok.a.relayed[0]?.family, 6);
  });

  it('spreads Allocates with 300 Try Alternate and ALTERNATE-SERVER, round robin', async () => {
    const h = harness({
      alternateServers: [
        { address: '198.51.100.1', port: 3478 },
        { address: '198.51.100.1', port: 3479 },
        { address: '198.51.100.1', port: 3480 },
      ],
      redirectFrom: [3478],
    });
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { a } = await h.allocate(h.client(100 + i));
      assert.equal(a.error, 300);
      const alt = readAddress(a.msg, findAttribute(a.msg, Attr.ALTERNATE_SERVER)!, false);
      assert.ok(alt.ok);
      seen.push(alt.value.port);
    }
    assert.deepEqual(seen, [3479, 3480, 3479], 'never the listener the client used (3478)');
  });

  it('on a large node listing its own six ports, redirects only from the front port and serves on the others', async () => {
    const own = [3478, 3479, 3480, 3481, 3482, 3483].map((port) => ({ address: '198.51.100.1', port }));
    const h = harness({ alternateServers: own, redirectFrom: [3478] }, { range: [50000, 50099] });
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      const { a } = await h.allocate(h.client(100 + i, 'udp', 3478));
      assert.equal(a.error, 300);
      const alt = readAddress(a.msg, findAttribute(a.msg, Attr.ALTERNATE_SERVER)!, false);
      assert.ok(alt.ok);
      seen.push(alt.value.port);
    }
    assert.deepEqual(seen, [3479, 3480, 3481, 3482, 3483]);
    // The client follows the redirect: a listed alternate of its own never redirects again (no loop).
    for (const port of seen) {
      const { a } = await h.allocate(h.client(200 + port, 'udp', port));
      assert.equal(a.error, undefined, `allocated on ${port}`);
    }
    assert.equal(h.engine.size, 5);
    // Without designated front ports, a node listing all its own ports redirects nowhere.
    const none = harness({ alternateServers: own });
    for (const port of [3478, 3481])
      assert.equal((await none.allocate(none.client(port, 'udp', port))).a.error, undefined);
    // A listener not among the alternates (another server's list) redirects when no front ports are named.
    const other = harness({ alternateServers: [{ address: '198.51.100.2', port: 3478 }] });
    assert.equal((await other.allocate(other.client(1))).a.error, 300);
  });

  it('redirects above alternateAboveAllocations counted on the listener the Allocate arrived on', async () => {
    const h = harness(
      {
        alternateServers: [{ address: '198.51.100.1', port: 3479 }],
        redirectFrom: [3478],
        alternateAboveAllocations: 2,
      },
      { range: [50000, 50099] },
    );
    // Allocations behind another listener do not count for the front one.
    for (let i = 0; i < 3; i++) assert.equal((await h.allocate(h.client(300 + i, 'udp', 3479))).a.error, undefined);
    const first = await h.allocate(h.client(1, 'udp', 3478));
    assert.equal(first.a.error, undefined);
    assert.equal((await h.allocate(h.client(2, 'udp', 3478))).a.error, undefined);
    assert.equal((await h.allocate(h.client(3, 'udp', 3478))).a.error, 300, 'the front listener holds 2');
    await h.authed(first.c, first.session, Method.refresh, () => [turnAttr.lifetime(0)]);
    assert.equal((await h.allocate(h.client(4, 'udp', 3478))).a.error, undefined, 'one freed on the front listener');
  });
});

describe('TURN engine: permissions, channels and data (RFC 8656 §9–12)', () => {
  it('drops Send without permission, relays with one, and returns peer data as a Data indication', async () => {
    const h = harness();
    const { c, session } = await h.allocate();
    const relay = h.relays[0]!;
    h.engine.handleClientData(c.transport, sendIndication(PEER, Buffer.from('early')));
    assert.equal(relay.sent.length, 0);
    assert.equal(h.engine.counters.noPermissionDropped, 1);
    const perm = await h.authed(c, session, Method.createPermission, (tid) => [turnAttr.peer(PEER, tid)]);
    assert.equal(perm.error, undefined);
    h.engine.handleClientData(c.transport, sendIndication(PEER, Buffer.from('hello')));
    assert.deepEqual(relay.sent[0], { ip: PEER.address, port: PEER.port, data: Buffer.from('hello') });
    const before = c.out.length;
    relay.sink(PEER.address, 6000, Buffer.from('back'));
    const ind = decodeStun(c.out[before]!);
    assert.ok(ind.ok);
    assert.equal(ind.value.method, Method.data);
    assert.equal(ind.value.cls, StunClass.indication);
    const from = readAddress(ind.value, findAttribute(ind.value, Attr.XOR_PEER_ADDRESS)!, true);
    assert.deepEqual(from, { ok: true, value: { family: 4, address: PEER.address, port: 6000 } });
    const data = findAttribute(ind.value, Attr.DATA)!;
    assert.equal(ind.value.raw.toString('utf8', data.offset, data.offset + data.length), 'back');
    relay.sink('192.0.2.77', 6000, Buffer.from('stranger'));
    assert.equal(c.out.length, before + 1, 'no permission for that peer: dropped');
  });

  it('expires permissions after 300 s unless refreshed', async () => {
    const h = harness({ lifetimes: { allocationDefaultSeconds: 3600 } });
    const { c, session } = await h.allocate();
    await h.authed(c, session, Method.createPermission, (tid) => [turnAttr.peer(PEER, tid)]);
    h.clock.advance(299 * S);
    h.engine.handleClientData(c.transport, sendIndication(PEER, Buffer.from('a')));
    assert.equal(h.relays[0]!.sent.length, 1);
    await h.authed(c, session, Method.createPermission, (tid) => [turnAttr.peer(PEER, tid)]);
    h.clock.advance(299 * S);
    h.engine.handleClientData(c.transport, sendIndication(PEER, Buffer.from('b')));
    assert.equal(h.relays[0]!.sent.length, 2, 'refreshed');
    h.clock.advance(2 * S);
    h.engine.handleClientData(c.transport, sendIndication(PEER, Buffer.from('c')));
    assert.equal(h.relays[0]!.sent.length, 2, 'expired');
    assert.deepEqual(h.engine.allocations()[0]?.permissions, []);
  });

  it('refuses peers on loopback, private ranges and the server itself (403) unless allowed', async () => {
    const h = harness();
    const { c, session } = await h.allocate();
    for (const address of ['127.0.0.1', '10.1.2.3', '192.168.1.1', '172.20.0.1', '198.51.100.1', '169.254.1.1']) {
      const r = await h.authed(c, session, Method.createPermission, (tid) => [
        turnAttr.peer({ family: 4, address, port: 1 }, tid),
      ]);
      assert.equal(r.error, 403, address);
    }
    const v6 = await h.authed(c, session, Method.createPermission, (tid) => [
      turnAttr.peer({ family: 6, address: '2001:db8::5', port: 1 }, tid),
    ]);
    assert.equal(v6.error, 443, 'no IPv6 relay: Peer Address Family Mismatch');
    const allowed = harness({ peers: { allowed: ['10.0.0.0/8', '127.0.0.1/32'] } });
    const x = await allowed.allocate();
    for (const address of ['10.1.2.3', '127.0.0.1']) {
      const r = await allowed.authed(x.c, x.session, Method.createPermission, (tid) => [
        turnAttr.peer({ family: 4, address, port: 1 }, tid),
      ]);
      assert.equal(r.error, undefined, address);
    }
    const still = await allowed.authed(x.c, x.session, Method.createPermission, (tid) => [
      turnAttr.peer({ family: 4, address: '192.168.0.1', port: 1 }, tid),
    ]);
    assert.equal(still.error, 403);
  });

  it('binds channels, relays ChannelData both ways (TCP padded) and refuses conflicting binds', async () => {
    for (const protocol of ['udp', 'tcp'] as const) {
      const h = harness();
      const { c, session } = await h.allocate(h.client(40000, protocol));
      const bind = await h.authed(c, session, Method.channelBind, (tid) => [
        turnAttr.channel(0x4001),
        turnAttr.peer(PEER, tid),
      ]);
      assert.equal(bind.error, undefined);
      h.engine.handleClientData(c.transport, channelData(0x4001, Buffer.from('abcde'), true));
      assert.deepEqual(h.relays[0]!.sent[0]?.data, Buffer.from('abcde'));
      const before = c.out.length;
      h.relays[0]!.sink(PEER.address, PEER.port, Buffer.from('xyz'));
      const cd = c.out[before]!;
      assert.equal(cd.readUInt16BE(0), 0x4001);
      assert.equal(cd.readUInt16BE(2), 3);
      assert.equal(cd.length, protocol === 'tcp' ? 8 : 7);
      const other = await h.authed(c, session, Method.channelBind, (tid) => [
        turnAttr.channel(0x4001),
        turnAttr.peer({ ...PEER, port: 9 }, tid),
      ]);
      assert.equal(other.error, 400, 'channel already bound to another peer');
      const again = await h.authed(c, session, Method.channelBind, (tid) => [
        turnAttr.channel(0x4002),
        turnAttr.peer(PEER, tid),
      ]);
      assert.equal(again.error, 400, 'peer already bound to another channel');
      const range = await h.authed(c, session, Method.channelBind, (tid) => [
        turnAttr.channel(0x3fff),
        turnAttr.peer(PEER, tid),
      ]);
      assert.equal(range.error, 400);
      assert.deepEqual(h.engine.allocations()[0]?.channels, [{ number: 0x4001, peer: '192.0.2.10:5000' }]);
    }
  });

  it('expires channels after 600 s and their permission after 300 s', async () => {
    const h = harness({ lifetimes: { allocationDefaultSeconds: 3600 } });
    const { c, session } = await h.allocate();
    await h.authed(c, session, Method.channelBind, (tid) => [turnAttr.channel(0x4000), turnAttr.peer(PEER, tid)]);
    h.clock.advance(301 * S);
    h.engine.handleClientData(c.transport, channelData(0x4000, Buffer.from('x')));
    assert.equal(h.relays[0]!.sent.length, 0, 'permission gone');
    await h.authed(c, session, Method.createPermission, (tid) => [turnAttr.peer(PEER, tid)]);
    h.engine.handleClientData(c.transport, channelData(0x4000, Buffer.from('x')));
    assert.equal(h.relays[0]!.sent.length, 1);
    h.clock.advance(300 * S);
    assert.deepEqual(h.engine.allocations()[0]?.channels, []);
    const other = { ...PEER, port: 7000 };
    const early = await h.authed(c, session, Method.channelBind, (tid) => [
      turnAttr.channel(0x4000),
      turnAttr.peer(other, tid),
    ]);
    assert.equal(early.error, 400, 'RFC 8656 §12: the number is not rebound to another peer for 5 minutes');
    h.clock.advance(300 * S);
    const later = await h.authed(c, session, Method.channelBind, (tid) => [
      turnAttr.channel(0x4000),
      turnAttr.peer(other, tid),
    ]);
    assert.equal(later.error, undefined);
  });

  it('drops relayed traffic above the bandwidth quota', async () => {
    const h = harness({ quotas: { bandwidthBytesPerSecond: 1000 } });
    const { c, session } = await h.allocate();
    await h.authed(c, session, Method.channelBind, (tid) => [turnAttr.channel(0x4000), turnAttr.peer(PEER, tid)]);
    for (let i = 0; i < 20; i++) h.engine.handleClientData(c.transport, channelData(0x4000, Buffer.alloc(100)));
    assert.equal(h.relays[0]!.sent.length, 10);
    assert.equal(h.engine.counters.bandwidthDropped, 10);
    h.clock.advance(500);
    for (let i = 0; i < 10; i++) h.engine.handleClientData(c.transport, channelData(0x4000, Buffer.alloc(100)));
    assert.equal(h.relays[0]!.sent.length, 15);
  });
});

describe('TURN engine: TCP relaying (RFC 6062)', () => {
  const tcpAlloc = async (h: ReturnType<typeof harness>) => {
    const c = h.client(41000, 'tcp');
    const session = new TurnClientSession('alice', 'wonderland');
    const a = await h.authed(c, session, Method.allocate, () => [[Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(6)]]);
    return { c, session, a };
  };
  const connectionId = (msg: import('../../src/stun/message.ts').StunMessage) => {
    const ref = findAttribute(msg, Attr.CONNECTION_ID)!;
    return msg.raw.readUInt32BE(ref.offset);
  };

  it('allocates a TCP relay only for a client on TCP', async () => {
    const h = harness();
    const udp = await h.allocate(undefined, undefined, []);
    assert.equal(udp.a.error, undefined);
    const s = new TurnClientSession('alice', 'wonderland');
    const overUdp = await h.authed(h.client(7), s, Method.allocate, () => [
      [Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(6)],
    ]);
    assert.equal(overUdp.error, 400);
    const { a } = await tcpAlloc(h);
    assert.equal(a.error, undefined);
    assert.equal(h.tcpListeners.length, 1);
    const off = harness({ tcpRelay: false });
    assert.equal((await tcpAlloc(off)).a.error, 442);
  });

  it('Connect opens a peer connection, ConnectionBind on a new connection attaches it', async () => {
    const h = harness();
    const { c, session } = await tcpAlloc(h);
    const r = await h.authed(c, session, Method.connect, (tid) => [turnAttr.peer(PEER, tid)]);
    assert.equal(r.error, undefined);
    const id = connectionId(r.msg);
    assert.equal(h.dialed.length, 1);
    assert.equal(h.dialed[0]!.paused, true, 'peer data waits for the bind');
    const again = await h.authed(c, session, Method.connect, (tid) => [turnAttr.peer(PEER, tid)]);
    assert.equal(again.error, 446);
    const data = h.client(41001, 'tcp');
    const bind = await h.authed(data, session, Method.connectionBind, () => [
      [
        Attr.CONNECTION_ID,
        Buffer.from(
          r.msg.raw.subarray(
            findAttribute(r.msg, Attr.CONNECTION_ID)!.offset,
            findAttribute(r.msg, Attr.CONNECTION_ID)!.offset + 4,
          ),
        ),
      ],
    ]);
    assert.equal(bind.error, undefined);
    assert.equal(data.attached[0], h.dialed[0]);
    const twice = await h.authed(h.client(41002, 'tcp'), session, Method.connectionBind, () => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(id, 0);
      return [[Attr.CONNECTION_ID, b]];
    });
    assert.equal(twice.error, 400, 'a connection is bound once');
    await h.authed(c, session, Method.refresh, () => [turnAttr.lifetime(0)]);
    assert.equal(h.dialed[0]!.closed, true, 'deleting the allocation closes its connections');
  });

  it('meters a bound data pipe: both directions counted and held to the bandwidth quota', async () => {
    const h = harness({ quotas: { bandwidthBytesPerSecond: 1000 } });
    const { c, session } = await tcpAlloc(h);
    const r = await h.authed(c, session, Method.connect, (tid) => [turnAttr.peer(PEER, tid)]);
    const id = Buffer.alloc(4);
    id.writeUInt32BE(connectionId(r.msg), 0);
    const data = h.client(41001, 'tcp');
    assert.equal(
      (await h.authed(data, session, Method.connectionBind, () => [[Attr.CONNECTION_ID, id]])).error,
      undefined,
    );
    const meter = data.meters[0]!;
    // the bucket holds one second's worth, shared by both directions
    assert.deepEqual(meter.take('toPeer', 600), { granted: 600, retryInMs: 0 });
    const over = meter.take('fromPeer', 600);
    assert.equal(over?.granted, 400, 'only what the bucket holds');
    assert.equal(over?.retryInMs, 50, 'asks again when a twentieth of a second has come back');
    assert.equal(h.engine.counters.bandwidthThrottled, 1);
    assert.equal(h.engine.counters.bandwidthDropped, 0, 'a stream is paused, not dropped');
    h.clock.advance(50);
    assert.deepEqual(meter.take('fromPeer', 200), { granted: 50, retryInMs: 50 });
    h.clock.advance(1000);
    assert.deepEqual(meter.take('fromPeer', 150), { granted: 150, retryInMs: 0 });
    assert.equal(h.engine.counters.bytesToPeers, 600);
    assert.equal(h.engine.counters.bytesFromPeers, 600);
    assert.equal(h.engine.counters.packetsToPeers, 0, 'a pipe carries bytes, not datagrams');
    h.dialed[0]!.fireClose();
    assert.equal(meter.take('fromPeer', 10)?.granted, 10, 'a peer that closed still flushes what was held');
    await h.authed(c, session, Method.refresh, () => [turnAttr.lifetime(0)]);
    assert.equal(meter.take('toPeer', 10), undefined, 'the allocation is gone');
    const free = harness();
    const f = await tcpAlloc(free);
    const fr = await free.authed(f.c, f.session, Method.connect, (tid) => [turnAttr.peer(PEER, tid)]);
    id.writeUInt32BE(connectionId(fr.msg), 0);
    const fd = free.client(41001, 'tcp');
    await free.authed(fd, f.session, Method.connectionBind, () => [[Attr.CONNECTION_ID, id]]);
    assert.deepEqual(fd.meters[0]!.take('toPeer', 1_000_000), { granted: 1_000_000, retryInMs: 0 }, 'no quota');
    assert.equal(free.engine.counters.bytesToPeers, 1_000_000);
  });

  it('answers 447 when the peer cannot be reached and 403 for a denied peer', async () => {
    const h = harness();
    h.refuse.add(PEER.port);
    const { c, session } = await tcpAlloc(h);
    const r = await h.authed(c, session, Method.connect, (tid) => [turnAttr.peer(PEER, tid)]);
    assert.equal(r.error, 447);
    const denied = await h.authed(c, session, Method.connect, (tid) => [
      turnAttr.peer({ family: 4, address: '10.0.0.1', port: 80 }, tid),
    ]);
    assert.equal(denied.error, 403);
  });

  it('announces a permitted peer connection with ConnectionAttempt and drops it without a bind in time', async () => {
    const h = harness();
    const { c, session } = await tcpAlloc(h);
    const stranger = fakePeer('192.0.2.99', 1234);
    h.tcpListeners[0]!.onPeer(stranger);
    assert.equal(stranger.closed, true, 'no permission: closed');
    await h.authed(c, session, Method.createPermission, (tid) => [turnAttr.peer(PEER, tid)]);
    const before = c.out.length;
    const peer = fakePeer(PEER.address, 4321);
    h.tcpListeners[0]!.onPeer(peer);
    const ind = decodeStun(c.out[before]!);
    assert.ok(ind.ok);
    assert.equal(ind.value.method, Method.connectionAttempt);
    const from = readAddress(ind.value, findAttribute(ind.value, Attr.XOR_PEER_ADDRESS)!, true);
    assert.deepEqual(from, { ok: true, value: { family: 4, address: PEER.address, port: 4321 } });
    assert.equal(peer.closed, false);
    h.clock.advance(30 * S);
    assert.equal(peer.closed, true, 'no ConnectionBind within 30 s');
  });
});

describe('TURN engine: hostile input', () => {
  it('drops garbage silently, counts it, and still answers afterwards (fuzz)', async () => {
    const h = harness({ allowUnauthenticatedBinding: true });
    const { c, session } = await h.allocate();
    const before = c.out.length;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (u) => {
        h.engine.handleClientData(c.transport, Buffer.from(u));
      }),
      { numRuns: 3000 },
    );
    await h.flush();
    // Some random byte strings may be valid STUN requests that get an error answer; none may crash the engine.
    assert.ok(h.engine.counters.malformedDropped > 2000, `${h.engine.counters.malformedDropped}`);
    assert.ok(c.out.length - before < 50);
    const r = await h.authed(c, session, Method.refresh);
    assert.equal(r.error, undefined);
    const txt = readText(r.msg, findAttribute(r.msg, Attr.SOFTWARE)!, Limits.software);
    assert.deepEqual(txt, { ok: true, value: 'Crossway' });
    assert.equal(findAttributes(r.msg, Attr.LIFETIME).length, 1);
  });
});
