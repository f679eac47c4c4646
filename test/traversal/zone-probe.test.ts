import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeHa1, computeResponse } from '../../src/sip/auth/digest.ts';
import { createResponse, getHeader, parseAuthorization } from '../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/types.ts';
import type { Destination } from '../../src/sip/transaction/types.ts';
import { zoneProbe } from '../../src/traversal/zone-probe.ts';

/** An edge that challenges requests without Authorization and verifies the digest of the ones with it. */
function edge(password: string) {
  const seen: { req: SipRequest; dest: Destination }[] = [];
  const client = {
    async send(req: SipRequest, dest: Destination): Promise<SipResponse> {
      seen.push({ req, dest });
      const a = getHeader(req, 'authorization');
      if (!a) {
        return createResponse(req, 401, 'Unauthorized', {
          headers: [['WWW-Authenticate', 'Digest realm="traversal", nonce="abc", qop="auth", algorithm=SHA-256']],
        });
      }
      const p = parseAuthorization(a);
      assert.ok(p.ok);
      const get = (n: string) => p.value.params.find(([k]) => k === n)?.[1] ?? '';
      const ha1 = computeHa1('SHA-256', get('username'), 'traversal', password);
      const want = computeResponse('SHA-256', {
        ha1,
        nonce: 'abc',
        method: req.method,
        uri: get('uri'),
        qop: 'auth',
        nc: get('nc'),
        cnonce: get('cnonce'),
      });
      return createResponse(req, want === get('response') ? 200 : 403, want === get('response') ? 'OK' : 'Forbidden');
    },
  };
  return { client, seen };
}

const base = { zone: 'tz1', transport: 'TLS' as const, host: '192.0.2.1', port: 7001, local: '10.0.0.2' };

test('zone probe: answers the edge challenge with the zone credentials (same Call-ID, next CSeq) and succeeds', async () => {
  const e = edge('zone-secret');
  const probe = zoneProbe({
    ...base,
    client: e.client,
    credentials: { username: 'tz1-core', password: 'zone-secret' },
  });
  await probe();
  assert.equal(e.seen.length, 2);
  const [first, second] = e.seen;
  assert.equal(getHeader(first!.req, 'call-id'), getHeader(second!.req, 'call-id'));
  assert.equal(getHeader(first!.req, 'cseq'), '1 OPTIONS');
  assert.equal(getHeader(second!.req, 'cseq'), '2 OPTIONS');
  assert.deepEqual(second!.dest, { transport: 'TLS', address: '192.0.2.1', port: 7001 });
  assert.doesNotMatch(getHeader(second!.req, 'authorization') ?? '', /zone-secret/);
});

test('zone probe: wrong credentials and missing credentials reject with a reason that never holds the password', async () => {
  const wrong = zoneProbe({
    ...base,
    client: edge('other').client,
    credentials: { username: 'tz1-core', password: 'zone-secret' },
  });
  await assert.rejects(
    wrong(),
    (e: Error) => /credentials refused by the edge \(403/.test(e.message) && !/secret/.test(e.message),
  );
  const none = zoneProbe({ ...base, client: edge('x').client });
  await assert.rejects(none(), /requires zone authentication \(401\)/);
});
