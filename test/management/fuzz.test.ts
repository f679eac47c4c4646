/**
 * Whatever a client sends, the management app answers with a 2xx/3xx/4xx and never a 500: random cookies,
 * authorization headers, login bodies, form bodies and configuration patches (fast-check, through fastify's inject on
 * the node's real app, so no sockets per case).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { apiLogin, type MgmtNode, setupAdmin, startMgmtNode } from './helpers.ts';

describe('management app under random input', () => {
  let m: MgmtNode;
  let app: FastifyInstance;
  let session: { cookie: string; csrf: string };
  before(async () => {
    m = await startMgmtNode();
    await setupAdmin(m, 'fuzz', 'fuzzing password 1');
    session = await apiLogin(m, 'fuzz', 'fuzzing password 1');
    app = m.node.management!.nodes.get('edge')!.apps[0]!;
  });
  after(async () => {
    await m?.node.close();
  });

  const ok = (status: number) => status >= 200 && status < 500;

  it('a malformed %-escape in a cookie is not a 500 (found by this fuzz test)', async () => {
    for (const cookie of [' =%', 'cw_session=%', 'cw_session=%zz; cw_pre=%E0%A4%A']) {
      const r = await app.inject({ method: 'GET', url: '/api/v1/status', headers: { cookie } });
      assert.equal(r.statusCode, 401);
    }
  });

  it('headers: cookies and authorization', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200 }), async (cookie, authz) => {
        const r = await app.inject({ method: 'GET', url: '/api/v1/status', headers: { cookie, authorization: authz } });
        assert.ok(ok(r.statusCode), `${r.statusCode} ${r.body}`);
        assert.ok(r.statusCode === 401 || r.statusCode === 200);
      }),
      { numRuns: 500 },
    );
  });

  it('login bodies (JSON and forms)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 300 }), async (json, form) => {
        const a = await app.inject({
          method: 'POST',
          url: '/api/v1/login',
          payload: JSON.stringify(json),
          headers: { 'content-type': 'application/json' },
        });
        assert.ok(ok(a.statusCode), `${a.statusCode} ${a.body}`);
        const b = await app.inject({
          method: 'POST',
          url: '/ui/login',
          payload: form,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        });
        assert.ok(ok(b.statusCode), `${b.statusCode} ${b.body}`);
      }),
      { numRuns: 60 },
    );
  });

  it('configuration patches from a logged-in administrator', async () => {
    const headers = { cookie: session.cookie, 'x-csrf-token': session.csrf, 'content-type': 'application/json' };
    const before = JSON.stringify(m.node.management!.config.current);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 4 }),
          fc.record({ sip: fc.record({ timers: fc.record({ t1: fc.jsonValue({ maxDepth: 1 }) }) }) }),
          fc.record({ routing: fc.record({ searchRules: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }) }) }),
        ),
        async (patch) => {
          const r = await app.inject({
            method: 'POST',
            url: '/api/v1/config/validate',
            payload: JSON.stringify(patch),
            headers,
          });
          assert.ok(ok(r.statusCode), `${r.statusCode} ${r.body}`);
          if (r.statusCode === 400) {
            const body = JSON.parse(r.body) as { error: string; issues?: unknown[] };
            assert.ok(body.error === 'invalid-config' || body.error === 'bad-request', r.body);
          }
        },
      ),
      { numRuns: 150 },
    );
    assert.equal(JSON.stringify(m.node.management!.config.current), before, 'validate never changes anything');
  });
});
