import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { DigestAuthenticator } from '../../../src/sip/auth/authenticator.ts';
import { answerChallenge, pickChallenge } from '../../../src/sip/auth/client.ts';
import type { CredentialSource } from '../../../src/sip/auth/credentials.ts';
import type { DigestAlgorithm } from '../../../src/sip/auth/digest.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { NonceCountTracker } from '../../../src/sip/auth/nc-tracker.ts';
import { NonceIssuer } from '../../../src/sip/auth/nonce.ts';
import type { AuthContext, AuthResult } from '../../../src/sip/auth/types.ts';
import { createRequest, getHeaders, type SipRequest, type SipResponse } from '../../../src/sip/message/index.ts';
import { NodeStore } from '../../../src/store/database.ts';

const REALM = 'example.com';
const LIFETIME = 60_000;

function setup(opts: { algorithms?: DigestAlgorithm[]; userhash?: boolean; source?: CredentialSource } = {}) {
  const clock = new FakeClock(0, Date.UTC(2026, 0, 1));
  const store = NodeStore.open(':memory:');
  const local = new LocalCredentialStore(store);
  local.add(REALM, 'alice', 'secret-a');
  const failures: string[] = [];
  const nonces = new NonceIssuer({ secret: randomBytes(32), clock, lifetimeMs: LIFETIME });
  const auth = new DigestAuthenticator({
    credentials: opts.source ?? local,
    nonces,
    tracker: new NonceCountTracker(1000, clock.wallNow() - 1),
    opaque: 'op4que',
    algorithms: opts.algorithms ?? ['SHA-256', 'MD5'],
    userhash: opts.userhash ?? false,
    dummyKey: randomBytes(32),
    retryAfterSeconds: 17,
    onFailure: (_s, kind) => failures.push(kind),
  });
  return { clock, store, local, auth, failures, nonces };
}

let seq = 0;
function request(method = 'REGISTER', extra: [string, string][] = []): SipRequest {
  seq++;
  return createRequest({
    method,
    uri: method === 'REGISTER' ? `sip:${REALM}` : `sip:bob@${REALM}`,
    headers: [
      ['Via', `SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK${seq}`],
      ['Max-Forwards', '70'],
      ['From', `<sip:alice@${REALM}>;tag=f${seq}`],
      ['To', `<sip:alice@${REALM}>`],
      ['Call-ID', `c${seq}@x`],
      ['CSeq', `${seq} ${method}`],
      ...extra,
    ],
  });
}

const ctx = (mode: AuthContext['mode'] = 'registrar'): AuthContext => ({
  realm: REALM,
  mode,
  source: { address: '192.0.2.1', port: 5060 },
});

function responseOf(r: AuthResult): SipResponse {
  assert.notEqual(r.kind, 'authenticated');
  return (r as { response: SipResponse }).response;
}

/** Challenge then answer; returns the second result and the credentials sent. */
async function login(
  auth: DigestAuthenticator,
  o: {
    user?: string;
    password?: string;
    alg?: DigestAlgorithm[];
    nc?: number;
    method?: string;
    mode?: AuthContext['mode'];
    userhash?: boolean;
  } = {},
) {
  const method = o.method ?? 'REGISTER';
  const mode = o.mode ?? 'registrar';
  const first = await auth.authenticate(request(method), ctx(mode));
  assert.equal(first.kind, 'challenge');
  const res = responseOf(first);
  const header = mode === 'registrar' ? 'WWW-Authenticate' : 'Proxy-Authenticate';
  const ch = pickChallenge(getHeaders(res, header), o.alg);
  assert.ok(ch);
  const req = request(method);
  const value = answerChallenge(ch, {
    username: o.user ?? 'alice',
    password: o.password ?? 'secret-a',
    method,
    uri: req.uri,
    ...(o.nc ? { nc: o.nc } : {}),
    useUserhash: o.userhash ?? false,
  });
  req.headers.push({ name: mode === 'registrar' ? 'Authorization' : 'Proxy-Authorization', value });
  return { result: await auth.authenticate(req, ctx(mode)), value, challenge: ch, req };
}

describe('DigestAuthenticator', () => {
  it('RFC 3261 §22.3: REGISTER without credentials gets 401 with one WWW-Authenticate per algorithm, SHA-256 first (RFC 8760 §2.4)', async () => {
    const { auth } = setup();
    const res = responseOf(await auth.authenticate(request(), ctx()));
    assert.equal(res.status, 401);
    const ch = getHeaders(res, 'WWW-Authenticate');
    assert.equal(ch.length, 2);
    assert.match(ch[0]!, /algorithm=SHA-256/);
    assert.match(ch[1]!, /algorithm=MD5/);
    for (const c of ch) {
      assert.match(c, /qop="auth"/);
      assert.match(c, /opaque="op4que"/);
      assert.match(c, /realm="example.com"/);
    }
    assert.match(getHeaders(res, 'To')[0]!, /;tag=/);
  });

  it('RFC 3261 §22.3: a proxy challenges other requests with 407 and Proxy-Authenticate', async () => {
    const { auth } = setup();
    const res = responseOf(await auth.authenticate(request('INVITE'), ctx('proxy')));
    assert.equal(res.status, 407);
    assert.equal(getHeaders(res, 'Proxy-Authenticate').length, 2);
    assert.equal(getHeaders(res, 'WWW-Authenticate').length, 0);
    const { result } = await login(auth, { method: 'INVITE', mode: 'proxy' });
    assert.deepEqual(result, { kind: 'authenticated', username: 'alice', realm: REALM });
  });

  for (const alg of ['SHA-256', 'MD5'] as const) {
    it(`RFC 8760 / RFC 7616: the right password with ${alg} authenticates`, async () => {
      const { auth, failures } = setup();
      const { result } = await login(auth, { alg: [alg] });
      assert.deepEqual(result, { kind: 'authenticated', username: 'alice', realm: REALM });
      assert.deepEqual(failures, []);
    });
  }

  it('a wrong password gets 403 and is counted', async () => {
    const { auth, failures } = setup();
    const { result } = await login(auth, { password: 'nope' });
    assert.equal(responseOf(result).status, 403);
    assert.deepEqual(failures, ['credentials']);
  });

  it('no user enumeration: an unknown user gets exactly what a wrong password gets', async () => {
    const { auth } = setup();
    const a = responseOf((await login(auth, { password: 'nope' })).result);
    const b = responseOf((await login(auth, { user: 'mallory', password: 'nope' })).result);
    assert.equal(a.status, b.status);
    assert.equal(a.reason, b.reason);
    assert.deepEqual(
      a.headers.map((h) => h.name),
      b.headers.map((h) => h.name),
    );
  });

  it('RFC 7616 §3.3 stale: an expired nonce with a valid digest gets 401 stale=true; with a wrong one 403', async () => {
    const { auth, clock } = setup();
    const first = responseOf(await auth.authenticate(request(), ctx()));
    const ch = pickChallenge(getHeaders(first, 'WWW-Authenticate'))!;
    clock.advance(LIFETIME + 1);
    const ok = request();
    ok.headers.push({
      name: 'Authorization',
      value: answerChallenge(ch, { username: 'alice', password: 'secret-a', method: 'REGISTER', uri: ok.uri }),
    });
    const r = responseOf(await auth.authenticate(ok, ctx()));
    assert.equal(r.status, 401);
    assert.match(getHeaders(r, 'WWW-Authenticate')[0]!, /stale=true/);
    const bad = request();
    bad.headers.push({
      name: 'Authorization',
      value: answerChallenge(ch, { username: 'alice', password: 'x', method: 'REGISTER', uri: bad.uri }),
    });
    assert.equal(responseOf(await auth.authenticate(bad, ctx())).status, 403);
  });

  it('RFC 7616 §3.3 nc: the same nonce count twice is a replay (401 stale=true); a higher one passes', async () => {
    const { auth, challenge } = await (async () => {
      const s = setup();
      const l = await login(s.auth);
      assert.equal(l.result.kind, 'authenticated');
      return { auth: s.auth, challenge: l.challenge, value: l.value };
    })();
    const replay = (nc: number) => {
      const r = request();
      r.headers.push({
        name: 'Authorization',
        value: answerChallenge(challenge, {
          username: 'alice',
          password: 'secret-a',
          method: 'REGISTER',
          uri: r.uri,
          nc,
        }),
      });
      return auth.authenticate(r, ctx());
    };
    const again = responseOf(await replay(1));
    assert.equal(again.status, 401);
    assert.match(getHeaders(again, 'WWW-Authenticate')[0]!, /stale=true/);
    assert.equal((await replay(3)).kind, 'authenticated');
    assert.equal((await replay(2)).kind, 'authenticated', 'out of order inside the window');
    assert.equal((await replay(2)).kind, 'challenge');
    assert.equal(auth.counters.replays, 2);
  });

  it('RFC 3261 §22.4: credentials for another realm are ignored (fresh challenge, not stale)', async () => {
    const { auth, failures } = setup();
    const r = request();
    r.headers.push({
      name: 'Authorization',
      value:
        'Digest username="alice", realm="other.org", nonce="x", uri="sip:example.com", response="00", qop=auth, nc=00000001, cnonce="c"',
    });
    const res = responseOf(await auth.authenticate(r, ctx()));
    assert.equal(res.status, 401);
    assert.doesNotMatch(getHeaders(res, 'WWW-Authenticate')[0]!, /stale/);
    assert.deepEqual(failures, []);
  });

  it('algorithm mismatch: a SHA-256 digest labelled MD5 is refused (403)', async () => {
    const { auth } = setup();
    const { value, req } = await login(auth, { alg: ['SHA-256'] });
    const r = request();
    r.uri = req.uri;
    r.headers.push({
      name: 'Authorization',
      value: value.replace('algorithm=SHA-256', 'algorithm=MD5').replace('nc=00000001', 'nc=00000002'),
    });
    assert.equal(responseOf(await auth.authenticate(r, ctx())).status, 403);
  });

  it('an algorithm not offered is not accepted (fresh challenge, counted)', async () => {
    const { auth, failures } = setup({ algorithms: ['SHA-256'] });
    const { result } = await login(auth, { alg: ['SHA-256'] });
    assert.equal(result.kind, 'authenticated');
    const r = request();
    r.headers.push({
      name: 'Authorization',
      value: `Digest username="alice", realm="${REALM}", nonce="x", uri="${r.uri}", response="00", algorithm=MD5, qop=auth, nc=00000001, cnonce="c", opaque="op4que"`,
    });
    assert.equal(responseOf(await auth.authenticate(r, ctx())).status, 401);
    assert.deepEqual(failures, ['credentials']);
  });

  it('RFC 7616 §3.4: credentials without qop are refused (400)', async () => {
    const { auth, failures } = setup();
    const { value } = await login(auth);
    const r = request();
    r.headers.push({ name: 'Authorization', value: value.replace(/, qop=auth, nc=\w+, cnonce="[^"]*"/, '') });
    const res = responseOf(await auth.authenticate(r, ctx()));
    assert.equal(res.status, 400);
    assert.equal(res.reason, 'Digest qop missing');
    assert.deepEqual(failures, ['malformed']);
  });

  it('a forged nonce and a wrong opaque get a fresh challenge and are counted', async () => {
    const { auth, failures } = setup();
    const { value } = await login(auth);
    for (const v of [value.replace(/nonce="[^"]*"/, `nonce="${'A'.repeat(40)}"`), value.replace('op4que', 'other')]) {
      const r = request();
      r.headers.push({ name: 'Authorization', value: v });
      assert.equal(responseOf(await auth.authenticate(r, ctx())).status, 401);
    }
    assert.deepEqual(failures, ['credentials', 'credentials']);
  });

  it('RFC 7616 §3.4.6: a digest uri other than the Request-URI is refused (400)', async () => {
    const { auth } = setup();
    const { value } = await login(auth);
    const r = request();
    r.uri = 'sip:elsewhere.org';
    r.headers.push({ name: 'Authorization', value });
    assert.equal(responseOf(await auth.authenticate(r, ctx())).status, 400);
  });

  it('a malformed Authorization header gets 400 and counts as malformed', async () => {
    const { auth, failures } = setup();
    const r = request('REGISTER', [['Authorization', 'Digest username="alice", realm']]);
    assert.equal(responseOf(await auth.authenticate(r, ctx())).status, 400);
    assert.deepEqual(failures, ['malformed']);
  });

  it('RFC 7616 §3.4.4 userhash: a hashed user name authenticates when offered', async () => {
    const { auth } = setup({ userhash: true });
    const { result, value } = await login(auth, { userhash: true });
    assert.match(value, /userhash=true/);
    assert.doesNotMatch(value, /username="alice"/);
    assert.deepEqual(result, { kind: 'authenticated', username: 'alice', realm: REALM });
  });

  it('a source that cannot answer gives 503 with Retry-After, never an accept', async () => {
    const down: CredentialSource = {
      name: 'ldap',
      algorithms: ['SHA-256', 'MD5'],
      supportsUserhash: false,
      lookup: () => ({ kind: 'unavailable', reason: 'ECONNREFUSED' }),
    };
    const { auth, failures } = setup({ source: down });
    const { result } = await login(auth);
    const res = responseOf(result);
    assert.equal(res.status, 503);
    assert.deepEqual(getHeaders(res, 'Retry-After'), ['17']);
    assert.deepEqual(failures, []);
  });

  it('a user added to the store is seen by the next request (read-through)', async () => {
    const { auth, local } = setup();
    assert.equal((await login(auth, { user: 'carol', password: 'pw-c' })).result.kind, 'rejected');
    local.add(REALM, 'carol', 'pw-c');
    assert.equal((await login(auth, { user: 'carol', password: 'pw-c' })).result.kind, 'authenticated');
    local.remove(REALM, 'carol');
    assert.equal((await login(auth, { user: 'carol', password: 'pw-c' })).result.kind, 'rejected');
  });

  it('no user enumeration by timing: unknown users cost what wrong passwords cost', async (t) => {
    const { auth } = setup();
    const prepared = async (user: string) => {
      const first = responseOf(await auth.authenticate(request(), ctx()));
      const ch = pickChallenge(getHeaders(first, 'WWW-Authenticate'))!;
      const req = request();
      const value = answerChallenge(ch, { username: user, password: 'wrong', method: 'REGISTER', uri: req.uri });
      req.headers.push({ name: 'Authorization', value });
      return req;
    };
    const time = async (user: string) => {
      const req = await prepared(user);
      const t0 = process.hrtime.bigint();
      await auth.authenticate(req, ctx());
      return Number(process.hrtime.bigint() - t0);
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    for (let i = 0; i < 100; i++) await time(i & 1 ? 'alice' : 'nobody'); // warm up both paths
    // Interleaved, alternating order, so a load spike on this shared machine hits both series alike.
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 600; i++) {
      if (i & 1) {
        known.push(await time('alice'));
        unknown.push(await time('nobody'));
      } else {
        unknown.push(await time('nobody'));
        known.push(await time('alice'));
      }
    }
    const k = median(known);
    const u = median(unknown);
    const ratio = u / k;
    t.diagnostic(`median unknown/known = ${ratio.toFixed(3)} (${u} / ${k} ns)`);
    // The two paths do the same work (dummy HA1, same digest, same compare, same answer): medians stay close.
    assert.ok(ratio > 0.7 && ratio < 1.4, `median unknown/known = ${ratio.toFixed(2)} (${u} / ${k} ns)`);
  });
});

describe('DigestAuthenticator with a synchronous source', () => {
  it('answers without a promise when the credential source answers synchronously (the local store)', () => {
    const { auth } = setup({ algorithms: ['MD5'] });
    const first = auth.authenticate(request(), ctx());
    assert.ok(!(first instanceof Promise));
    const ch = pickChallenge(getHeaders(responseOf(first), 'WWW-Authenticate'), ['MD5']);
    assert.ok(ch);
    const req = request();
    req.headers.push({
      name: 'Authorization',
      value: answerChallenge(ch, { username: 'alice', password: 'secret-a', method: 'REGISTER', uri: req.uri }),
    });
    const second = auth.authenticate(req, ctx());
    assert.ok(!(second instanceof Promise));
    assert.equal(second.kind, 'authenticated');
  });

  it('the local store asked for one algorithm returns that HA1 and the stored name; unknown users stay unknown', () => {
    const { local } = setup();
    const all = local.lookup({ realm: REALM, username: 'alice' });
    assert.equal(all.kind, 'found');
    const one = local.lookup({ realm: REALM, username: 'alice', algorithm: 'SHA-256' });
    assert.deepEqual(one, {
      kind: 'found',
      username: 'alice',
      ha1: { 'SHA-256': (all as { ha1: Record<string, string> }).ha1['SHA-256'] },
    });
    assert.deepEqual(local.lookup({ realm: REALM, username: 'mallory', algorithm: 'MD5' }), { kind: 'unknown' });
    assert.deepEqual(local.lookup({ realm: 'other.example', username: 'alice', algorithm: 'MD5' }), {
      kind: 'unknown',
    });
  });
});

describe('NonceIssuer', () => {
  it('accepts its own nonce, refuses one for another realm or tampered, and goes stale after the lifetime', () => {
    const clock = new FakeClock();
    const n = new NonceIssuer({ secret: randomBytes(32), clock, lifetimeMs: 1000 });
    const nonce = n.issue('a');
    assert.equal(n.check(nonce, 'a').status, 'valid');
    assert.equal(n.check(nonce, 'b').status, 'invalid');
    const t = nonce.slice(0, 20) + (nonce[20] === 'A' ? 'B' : 'A') + nonce.slice(21);
    assert.equal(n.check(t, 'a').status, 'invalid');
    assert.equal(n.check('short', 'a').status, 'invalid');
    clock.advance(1001);
    assert.equal(n.check(nonce, 'a').status, 'stale');
    const other = new NonceIssuer({ secret: randomBytes(32), clock, lifetimeMs: 1000 });
    assert.equal(other.check(n.issue('a'), 'a').status, 'invalid');
  });

  it('nonces drawn from the pooled random bytes are all distinct and valid (across pool refills)', () => {
    const n = new NonceIssuer({ secret: randomBytes(32), clock: new FakeClock(), lifetimeMs: 1000 });
    const seen = new Set<string>();
    // 4 KiB of pool is 512 nonces: 2,000 cross three refills, all within one millisecond of the clock.
    for (let i = 0; i < 2000; i++) {
      const nonce = n.issue('a');
      assert.equal(n.check(nonce, 'a').status, 'valid');
      seen.add(nonce);
    }
    assert.equal(seen.size, 2000);
  });
});

describe('NonceCountTracker', () => {
  it('keeps a 64-wide window per nonce', () => {
    const t = new NonceCountTracker(10, 0);
    assert.equal(t.use('n', 5, 1), 'fresh');
    assert.equal(t.use('n', 5, 1), 'replay');
    assert.equal(t.use('n', 5, 100), 'fresh');
    assert.equal(t.use('n', 5, 50), 'fresh');
    assert.equal(t.use('n', 5, 50), 'replay');
    assert.equal(t.use('n', 5, 30), 'replay', 'older than the window');
    assert.equal(t.use('n', 5, 0), 'replay');
  });

  it('is bounded, and a forgotten nonce is unknown (the horizon moves up)', () => {
    const t = new NonceCountTracker(2, 0);
    assert.equal(t.use('a', 10, 1), 'fresh');
    assert.equal(t.use('b', 20, 1), 'fresh');
    assert.equal(t.use('c', 30, 1), 'fresh');
    assert.equal(t.size, 2);
    assert.equal(t.horizon, 10);
    assert.equal(t.use('a', 10, 2), 'unknown');
    assert.equal(t.use('d', 5, 1), 'unknown', 'issued before the horizon: may have been forgotten');
    assert.equal(t.use('e', 40, 1), 'fresh');
  });
});
