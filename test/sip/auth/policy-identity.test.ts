import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { silentLogger } from '../../../src/common/log.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { answerChallenge, pickChallenge } from '../../../src/sip/auth/client.ts';
import { assertIdentity, removeUntrustedIdentity, wantsIdentityPrivacy } from '../../../src/sip/auth/identity.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { authenticateForZone, policyFor } from '../../../src/sip/auth/policy.ts';
import { AuthService } from '../../../src/sip/auth/service.ts';
import type { RequestAuthenticator } from '../../../src/sip/auth/types.ts';
import { createRequest, getHeaders, type SipRequest, type SipResponse } from '../../../src/sip/message/index.ts';
import { NodeStore } from '../../../src/store/database.ts';

function invite(extra: [string, string][] = []): SipRequest {
  return createRequest({
    method: 'INVITE',
    uri: 'sip:bob@example.com',
    headers: [
      ['Via', 'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx'],
      ['From', '"Alice" <sip:alice@example.com>;tag=1'],
      ['To', '<sip:bob@example.com>'],
      ['Call-ID', 'c1'],
      ['CSeq', '1 INVITE'],
      ...extra,
    ],
  });
}

const ctx = { realm: 'example.com', mode: 'proxy' as const, source: { address: '192.0.2.1', port: 5060 } };
const never: RequestAuthenticator = {
  authenticate: () => {
    throw new Error('must not be called');
  },
};

describe('zone authentication policy', () => {
  it('a zone without its own entry takes default, and default is check', () => {
    assert.equal(
      policyFor({ default: 'do-not-check', trunk: 'treat-as-authenticated' }, 'trunk'),
      'treat-as-authenticated',
    );
    assert.equal(policyFor({ default: 'do-not-check' }, 'other'), 'do-not-check');
    assert.equal(policyFor({}, 'other'), 'check');
  });

  it('check: the authenticator decides', async () => {
    const auth: RequestAuthenticator = { authenticate: () => ({ kind: 'authenticated', username: 'u', realm: 'r' }) };
    assert.deepEqual(await authenticateForZone('check', auth, invite(), ctx), {
      kind: 'authenticated',
      username: 'u',
      realm: 'r',
    });
  });

  it('treat-as-authenticated: no challenge, the From user is the identity', async () => {
    assert.deepEqual(await authenticateForZone('treat-as-authenticated', never, invite(), ctx), {
      kind: 'authenticated',
      username: 'alice',
      realm: 'example.com',
      method: 'policy',
    });
  });

  it('do-not-check: no challenge, not authenticated', async () => {
    assert.deepEqual(await authenticateForZone('do-not-check', never, invite(), ctx), { kind: 'unchecked' });
  });
});

describe('RFC 3325 asserted identity', () => {
  it('§5: P-Asserted-Identity from an untrusted source is removed; from a trusted one kept', () => {
    const r = invite([['P-Asserted-Identity', '<sip:ceo@example.com>']]);
    assert.equal(removeUntrustedIdentity(r, true), 0);
    assert.equal(getHeaders(r, 'P-Asserted-Identity').length, 1);
    assert.equal(removeUntrustedIdentity(r, false), 1);
    assert.equal(getHeaders(r, 'P-Asserted-Identity').length, 0);
  });

  it('an authenticated request gets P-Asserted-Identity toward a trusted zone only', () => {
    const t = invite();
    assertIdentity(t, { identity: 'sip:alice@example.com', displayName: 'Alice', toTrusted: true });
    assert.deepEqual(getHeaders(t, 'P-Asserted-Identity'), ['"Alice" <sip:alice@example.com>']);
    const u = invite();
    assertIdentity(u, { identity: 'sip:alice@example.com', toTrusted: false });
    assert.deepEqual(getHeaders(u, 'P-Asserted-Identity'), []);
    const anon = invite();
    assertIdentity(anon, { toTrusted: true });
    assert.deepEqual(getHeaders(anon, 'P-Asserted-Identity'), [], 'nothing asserted for an unauthenticated request');
  });

  it('§6: P-Preferred-Identity picks the asserted identity when allowed, and is always removed', () => {
    const allowed = invite([['P-Preferred-Identity', '<sip:sales@example.com>']]);
    assertIdentity(allowed, {
      identity: 'sip:alice@example.com',
      toTrusted: true,
      mayUse: (uri) => uri === 'sip:sales@example.com',
    });
    assert.deepEqual(getHeaders(allowed, 'P-Asserted-Identity'), ['<sip:sales@example.com>']);
    assert.deepEqual(getHeaders(allowed, 'P-Preferred-Identity'), []);
    const refused = invite([['P-Preferred-Identity', '<sip:ceo@example.com>']]);
    assertIdentity(refused, { identity: 'sip:alice@example.com', toTrusted: true, mayUse: () => false });
    assert.deepEqual(getHeaders(refused, 'P-Asserted-Identity'), ['<sip:alice@example.com>']);
    assert.deepEqual(getHeaders(refused, 'P-Preferred-Identity'), []);
  });

  it('§5: toward an untrusted zone, Privacy: id removes P-Asserted-Identity', () => {
    const r = invite([
      ['P-Asserted-Identity', '<sip:alice@example.com>'],
      ['Privacy', 'header;id'],
    ]);
    assert.equal(wantsIdentityPrivacy(r), true);
    assertIdentity(r, { identity: 'sip:alice@example.com', toTrusted: false });
    assert.deepEqual(getHeaders(r, 'P-Asserted-Identity'), []);
    const keep = invite([['P-Asserted-Identity', '<sip:alice@example.com>']]);
    assertIdentity(keep, { toTrusted: false });
    assert.equal(getHeaders(keep, 'P-Asserted-Identity').length, 1);
  });
});

describe('AuthService', () => {
  it('realm per domain, zone policies, trusted zones, and nonces that survive a restart of the node', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossway-auth-svc-'));
    try {
      const config = validateConfig({
        dataDir: dir,
        auth: {
          realms: { 'example.com': 'Example' },
          zones: { default: 'check', trunk: 'do-not-check' },
          trustedZones: ['core'],
        },
      });
      const clock = new FakeClock();
      let store = NodeStore.open(dir);
      const a = new AuthService({ config, store, clock, log: silentLogger });
      assert.equal(a.realmFor('EXAMPLE.com'), 'Example');
      assert.equal(a.realmFor('other.org'), 'other.org');
      assert.equal(a.policyFor('trunk'), 'do-not-check');
      assert.equal(a.policyFor('x'), 'check');
      assert.equal(a.isTrustedZone('core'), true);
      assert.equal(a.isTrustedZone('trunk'), false);
      new LocalCredentialStore(store).add('Example', 'alice', 'pw');
      const pctx = { ...ctx, realm: 'Example' };
      const answer = async (svc: AuthService) => {
        const first = await svc.authenticator.authenticate(invite(), pctx);
        assert.equal(first.kind, 'challenge');
        const res = (first as { response: SipResponse }).response;
        return answerChallenge(pickChallenge(getHeaders(res, 'Proxy-Authenticate'))!, {
          username: 'alice',
          password: 'pw',
          method: 'INVITE',
          uri: 'sip:bob@example.com',
        });
      };
      const fromBefore = await answer(a);
      await a.close();
      store.close();
      clock.advance(1000);
      store = NodeStore.open(dir);
      const b = new AuthService({ config, store, clock, log: silentLogger });
      // The nonce secret is in the store: a nonce from before the restart is still ours (stale=true, not a forgery),
      // but its counts were not kept, so it is re-challenged once.
      const again = await b.authenticator.authenticate(invite([['Proxy-Authorization', fromBefore]]), pctx);
      assert.equal(again.kind, 'challenge');
      assert.match(getHeaders((again as { response: SipResponse }).response, 'Proxy-Authenticate')[0]!, /stale=true/);
      const fresh = await answer(b);
      assert.equal(
        (await b.authenticator.authenticate(invite([['Proxy-Authorization', fresh]]), pctx)).kind,
        'authenticated',
      );
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the authenticator never throws on random credentials (fuzz)', async () => {
    const store = NodeStore.open(':memory:');
    const a = new AuthService({ config: validateConfig({}), store, clock: new FakeClock(), log: silentLogger });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc
            .record({
              u: fc.string({ maxLength: 20 }),
              n: fc.string({ maxLength: 50 }),
              nc: fc.string({ maxLength: 10 }),
            })
            .map(
              ({ u, n, nc }) =>
                `Digest username="${u}", realm="example.com", nonce="${n}", uri="sip:bob@example.com", response="00ff", qop=auth, nc=${nc || '1'}, cnonce="c", opaque="x"`,
            ),
        ),
        async (value) => {
          const r = await a.authenticator.authenticate(invite([['Proxy-Authorization', value]]), ctx);
          assert.notEqual(r.kind, 'authenticated');
        },
      ),
      { numRuns: 500 },
    );
    store.close();
  });
});
