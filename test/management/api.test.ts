/**
 * The management API through real HTTPS on a lab node (edge 127.0.0.1 and core 127.0.0.2, each its own management):
 * first administrator with the setup token, login, CSRF, access levels, configuration read/validate/change persisted
 * and audited, status sections, port plan, OpenAPI, metrics, HTTP → HTTPS redirect, TLS 1.2 minimum.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { createLogger } from '../../src/common/log.ts';
import { validateConfig } from '../../src/config/load.ts';
import { OPENAPI } from '../../src/management/api/openapi.ts';
import type { NodeKind } from '../../src/ports/index.ts';
import { startNode } from '../../src/roles/start.ts';
import { uniqueOffset } from '../helpers/lab-node.ts';
import { apiLogin, cookieHeader, cookieOf, type MgmtNode, req, setupAdmin, startMgmtNode } from './helpers.ts';

const ADMIN = ['root-admin', 'correct horse battery staple'] as const;

describe('management API over HTTPS', () => {
  let m: MgmtNode;
  before(async () => {
    m = await startMgmtNode({ traversalZones: [{ name: 'to-edge' }] });
  });
  after(async () => {
    await m?.node.close();
  });

  it('has no default account: every API call is refused until the first administrator is created', async () => {
    assert.equal(m.tokens.size, 2, 'each node kind printed its own setup token');
    const r = await req(`${m.base()}/api/v1/status`, { ca: m.ca });
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /Basic/);
    const login = await req(`${m.base()}/api/v1/login`, { ca: m.ca, body: { user: 'admin', password: 'admin' } });
    assert.equal(login.status, 401);
  });

  it('the setup token creates the first administrator once, and is refused afterwards', async () => {
    const bad = await req(`${m.base()}/ui/setup`, { ca: m.ca });
    const jar = cookieOf(bad);
    const csrf = /name="csrf" value="([^"]+)"/.exec(bad.text)?.[1] ?? '';
    const wrong = await req(`${m.base()}/ui/setup`, {
      ca: m.ca,
      form: { csrf, token: 'not-the-token', user: 'x', password: 'long enough password' },
      headers: { cookie: cookieHeader(jar) },
    });
    assert.equal(wrong.status, 401);
    await setupAdmin(m, ...ADMIN);
    const again = await req(`${m.base()}/ui/setup`, { ca: m.ca });
    assert.equal(again.status, 303, 'setup page gone once an account exists');
    assert.equal(again.headers.location, '/ui/login');
  });

  it('serves status sections, the port plan and the OpenAPI document to a logged-in administrator', async () => {
    const { cookie } = await apiLogin(m, ...ADMIN);
    const st = await req(`${m.base()}/api/v1/status`, { ca: m.ca, headers: { cookie } });
    assert.equal(st.status, 200);
    const s = st.json<{
      system: { node: string; role: string };
      media: { portPairsTotal: number; portPairsInUse: number };
      sip: { listeners: { listener: string }[] };
    }>();
    for (const k of [
      'system',
      'sip',
      'zones',
      'alarms',
      'ports',
      'feedback',
      'registrations',
      'calls',
      'callHistory',
      'callRecords',
      'searchHistory',
      'routingZones',
      'media',
    ]) {
      assert.ok(k in s, `section ${k}`);
    }
    assert.equal(s.system.node, 'edge');
    assert.equal(s.system.role, 'lab');
    assert.ok(s.media.portPairsTotal > 1000 && s.media.portPairsInUse === 0, JSON.stringify(s.media));
    assert.ok(s.sip.listeners.some((l: { listener: string }) => l.listener === 'sip-tls'));
    const ports = await req(`${m.base()}/api/v1/ports`, { ca: m.ca, headers: { cookie } });
    const doc = ports.json<{ version: number; nodes: { listeners: { id: string }[] }[] }>();
    assert.equal(doc.version, 1);
    assert.ok(doc.nodes.some((n) => n.listeners.some((l) => l.id === 'https')));
    const api = await req(`${m.base()}/api/openapi.json`, { ca: m.ca });
    assert.equal(api.json<{ openapi: string }>().openapi, '3.1.0');
    // Every documented GET without a path parameter answers (no 404).
    for (const [path, ops] of Object.entries(OPENAPI.paths)) {
      if (!('get' in ops) || path.includes('{')) continue;
      const r = await req(`${m.base()}${path}`, { ca: m.ca, headers: { cookie } });
      assert.equal(r.status, 200, `${path} → ${r.status}`);
    }
    const missing = await req(`${m.base()}/api/v1/status/registrations`, { ca: m.ca, headers: { cookie } });
    assert.ok(missing.status === 200 || missing.status === 404);
  });

  it('every operation of the OpenAPI document is a route of the app', () => {
    const app = m.node.management!.nodes.get('edge')!.apps[0]!;
    let n = 0;
    for (const [path, ops] of Object.entries(OPENAPI.paths)) {
      for (const method of Object.keys(ops)) {
        const url = path.replace(/\{(\w+)\}/g, ':$1');
        assert.ok(app.hasRoute({ method: method.toUpperCase() as 'GET', url }), `${method} ${path}`);
        n++;
      }
    }
    assert.ok(n >= 18, `${n} operations`);
  });

  it('the core has its own management on 127.0.0.2 showing its traversal zone becoming active', async () => {
    await setupAdmin(m, ...ADMIN, 'core');
    const { cookie } = await apiLogin(m, ...ADMIN, 'core');
    let zones: { name: string; state: string }[] = [];
    for (let i = 0; i < 50; i++) {
      const r = await req(`${m.base('core')}/api/v1/status/zones`, { ca: m.ca, headers: { cookie } });
      zones = r.json<{ zones: typeof zones }>().zones;
      if (zones[0]?.state === 'active') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.deepEqual(
      zones.map((z) => [z.name, z.state]),
      [['to-edge', 'active']],
    );
  });

  it('refuses a state change without the CSRF token on a cookie session', async () => {
    const { cookie } = await apiLogin(m, ...ADMIN);
    const r = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { log: { level: 'warn' } },
      headers: { cookie },
    });
    assert.equal(r.status, 403);
    assert.equal(r.json<{ error: string }>().error, 'csrf');
    const wrong = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { log: { level: 'warn' } },
      headers: { cookie, 'x-csrf-token': 'x'.repeat(32) },
    });
    assert.equal(wrong.status, 403);
  });

  it('validates configuration with the file schema (field paths) and saves a valid change, audited', async () => {
    const { cookie, csrf } = await apiLogin(m, ...ADMIN);
    const h = { cookie, 'x-csrf-token': csrf };
    const bad = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { sip: { timers: { t1: -5 } } },
      headers: h,
    });
    assert.equal(bad.status, 400);
    const issues = bad.json<{ issues: { path: string; message: string }[] }>().issues;
    assert.ok(
      issues.some((i) => i.path === 'sip.timers.t1'),
      JSON.stringify(issues),
    );
    const validate = await req(`${m.base()}/api/v1/config/validate`, {
      ca: m.ca,
      body: { role: 'edge', management: { authSource: 'remote' } },
      headers: h,
    });
    assert.equal(validate.status, 400);
    assert.ok(validate.json<{ issues: { path: string }[] }>().issues.some((i) => i.path === 'management.ldap'));

    const ok = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { log: { level: 'warn' }, sip: { domains: ['example.org'] } },
      headers: h,
    });
    assert.equal(ok.status, 200, ok.text);
    const res = ok.json<{ changed: string[]; live: string[]; restartRequired: string[] }>();
    assert.deepEqual(res.live, ['log.level']);
    assert.deepEqual(res.restartRequired, ['sip.domains']);
    assert.equal(m.node.log.level, 'warn', 'log level applied live');
    const cfg = await req(`${m.base()}/api/v1/config`, { ca: m.ca, headers: { cookie } });
    assert.deepEqual(cfg.json<{ sip: { domains: string[] } }>().sip.domains, ['example.org']);

    const audit = await req(`${m.base()}/api/v1/audit`, { ca: m.ca, headers: { cookie } });
    const recs = audit.json<{ who: string; source: string; action: string; detail: string }[]>();
    const change = recs.find((r) => r.action === 'config-change');
    assert.ok(change, JSON.stringify(recs.slice(0, 5)));
    assert.equal(change.who, ADMIN[0]);
    assert.equal(change.source, '127.0.0.1');
    assert.match(change.detail, /sip\.domains/);
    assert.ok(recs.some((r) => r.action === 'config-change-refused' && /sip\.timers\.t1/.test(r.detail)));
    assert.ok(recs.some((r) => r.action === 'login' && r.who === ADMIN[0]));
  });

  it('access levels: read-only reads but cannot change or read the audit log; auditor reads the audit log', async () => {
    const { cookie, csrf } = await apiLogin(m, ...ADMIN);
    const h = { cookie, 'x-csrf-token': csrf };
    for (const [name, level] of [
      ['viewer', 'read-only'],
      ['inspector', 'auditor'],
    ]) {
      const r = await req(`${m.base()}/api/v1/accounts`, {
        ca: m.ca,
        body: { name, level, password: 'twelve chars min' },
        headers: h,
      });
      assert.equal(r.status, 200, r.text);
    }
    const basic = (u: string) => ({
      authorization: `Basic ${Buffer.from(`${u}:twelve chars min`).toString('base64')}`,
    });
    assert.equal((await req(`${m.base()}/api/v1/status`, { ca: m.ca, headers: basic('viewer') })).status, 200);
    assert.equal((await req(`${m.base()}/api/v1/audit`, { ca: m.ca, headers: basic('viewer') })).status, 403);
    const patch = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { log: { level: 'info' } },
      headers: basic('viewer'),
    });
    assert.equal(patch.status, 403);
    assert.equal((await req(`${m.base()}/api/v1/audit`, { ca: m.ca, headers: basic('inspector') })).status, 200);
    const noChange = await req(`${m.base()}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { log: { level: 'info' } },
      headers: basic('inspector'),
    });
    assert.equal(noChange.status, 403);
    const wrongPw = await req(`${m.base()}/api/v1/status`, {
      ca: m.ca,
      headers: { authorization: `Basic ${Buffer.from('viewer:nope').toString('base64')}` },
    });
    assert.equal(wrongPw.status, 401);
  });

  it('serves Prometheus metrics with bounded labels (no user names)', async () => {
    const { cookie } = await apiLogin(m, ...ADMIN);
    const r = await req(`${m.base()}/metrics`, { ca: m.ca, headers: { cookie } });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /text\/plain/);
    assert.match(r.text, /crossway_mgmt_logins_total\{result="ok",via="local",node="edge"\} \d+/);
    assert.match(r.text, /crossway_mgmt_http_requests_total\{route="\/api\/v1\/status",method="GET",status="2xx"/);
    assert.match(r.text, /crossway_sip_messages_received\{transport="TLS"|crossway_sip_messages_received\{transport=/);
    assert.doesNotMatch(r.text, /root-admin|viewer|inspector/, 'no per-user label');
  });

  it('logout ends the session', async () => {
    const { cookie, csrf } = await apiLogin(m, ...ADMIN);
    const out = await req(`${m.base()}/api/v1/logout`, {
      ca: m.ca,
      body: {},
      headers: { cookie, 'x-csrf-token': csrf },
    });
    assert.equal(out.status, 200);
    assert.equal((await req(`${m.base()}/api/v1/status`, { ca: m.ca, headers: { cookie } })).status, 401);
  });

  it('HTTP on the plan port redirects to HTTPS', async () => {
    const httpPort = m.node.plan.port('http', 'edge');
    const r = await req(`http://127.0.0.1:${httpPort}/ui/status?x=1`);
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, `https://127.0.0.1:${m.httpsPort}/ui/status?x=1`);
  });

  it('HTTPS refuses TLS 1.1 and answers TLS 1.2 with the node certificate', async () => {
    const tryTls = (maxVersion: 'TLSv1.1' | 'TLSv1.2') =>
      new Promise<string>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: m.httpsPort, ca: m.ca, maxVersion, minVersion: 'TLSv1' });
        s.once('secureConnect', () => {
          resolve(String(s.getProtocol()));
          s.destroy();
        });
        s.once('error', (e) => resolve(`error: ${e.message}`));
      });
    assert.equal(await tryTls('TLSv1.2'), 'TLSv1.2');
    assert.match(await tryTls('TLSv1.1'), /^error/);
  });

  it('throttles repeated failed logins from one address', async () => {
    let last = 0;
    for (let i = 0; i < 12; i++) {
      const r = await req(`${m.base('core')}/api/v1/login`, { ca: m.ca, body: { user: 'nobody', password: `x${i}` } });
      last = r.status;
    }
    assert.equal(last, 429);
  });
});

describe('configuration changed through the API survives a restart', () => {
  it('the stored change is laid over the file at the next start', async () => {
    const m1 = await startMgmtNode();
    let dir = '';
    try {
      dir = m1.dataDir;
      await setupAdmin(m1, ...ADMIN);
      const { cookie, csrf } = await apiLogin(m1, ...ADMIN);
      const r = await req(`${m1.base()}/api/v1/config`, {
        ca: m1.ca,
        method: 'PATCH',
        body: { sip: { domains: ['persist.example'] } },
        headers: { cookie, 'x-csrf-token': csrf },
      });
      assert.equal(r.status, 200);
    } finally {
      await m1.node.close();
    }
    const m2 = await startMgmtNode({}, dir);
    try {
      assert.deepEqual(m2.node.config.sip.domains, ['persist.example']);
      // A second change after the restart keeps the first one (the store holds changes relative to the file).
      const { cookie, csrf } = await apiLogin(m2, ...ADMIN);
      const r = await req(`${m2.base()}/api/v1/config`, {
        ca: m2.ca,
        method: 'PATCH',
        body: { log: { level: 'error' } },
        headers: { cookie, 'x-csrf-token': csrf },
      });
      assert.equal(r.status, 200);
    } finally {
      await m2.node.close();
    }
    const m3 = await startMgmtNode({}, dir);
    try {
      assert.deepEqual(m3.node.config.sip.domains, ['persist.example']);
      assert.equal(m3.node.config.log.level, 'error');
      // The edge has an administrator; the core's token was printed at the first start and is not printed again.
      assert.equal(m3.tokens.size, 0);
    } finally {
      await m3.node.close();
    }
  });
});

describe('plain HTTP and secrets in logs', () => {
  it('with plainHttp the API answers on HTTP too (cookies without Secure); no password or token reaches the log', async () => {
    let logged = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        logged += chunk.toString();
        cb();
      },
    });
    const dir = mkdtempSync(join(tmpdir(), 'crossway-mgmt-log-'));
    const tokens = new Map<NodeKind, string>();
    const node = await startNode(
      validateConfig({ dataDir: dir, portOffset: uniqueOffset(), management: { plainHttp: true } }),
      { log: createLogger({ level: 'trace', destination: sink }), onSetupToken: (k, t) => tokens.set(k, t) },
    );
    try {
      const m: MgmtNode = {
        node,
        dataDir: dir,
        tokens,
        ca: readFileSync(join(dir, 'tls', 'node-cert.pem'), 'utf8'),
        httpsPort: node.plan.port('https', 'edge'),
        base: () => `https://127.0.0.1:${node.plan.port('https', 'edge')}`,
      };
      await setupAdmin(m, 'logcheck', 'never-log-this-password');
      const bad = await req(`${m.base()}/api/v1/login`, {
        ca: m.ca,
        body: { user: 'logcheck', password: 'wrong-password-never-logged' },
      });
      assert.equal(bad.status, 401);
      const httpBase = `http://127.0.0.1:${node.plan.port('http', 'edge')}`;
      const login = await req(`${httpBase}/api/v1/login`, {
        body: { user: 'logcheck', password: 'never-log-this-password' },
      });
      assert.equal(login.status, 200, 'plain HTTP serves the API');
      assert.doesNotMatch(String(login.headers['set-cookie']), /Secure/);
      const { csrf } = login.json<{ csrf: string }>();
      const cookie = String(login.headers['set-cookie']).split(';')[0]!;
      const ch = await req(`${httpBase}/api/v1/config`, {
        method: 'PATCH',
        body: { feedback: { subscribers: [{ url: 'https://127.0.0.1:9/x', password: 'subscriber-secret-1' }] } },
        headers: { cookie, 'x-csrf-token': csrf },
      });
      assert.equal(ch.status, 200, ch.text);
      assert.deepEqual(ch.json<{ live: string[] }>().live, ['feedback.subscribers']);
      assert.match(logged, /administrator logged in/);
      assert.match(logged, /configuration changed/);
      for (const secret of [
        'never-log-this-password',
        'wrong-password-never-logged',
        'subscriber-secret-1',
        tokens.get('edge')!,
        csrf,
        cookie.split('=')[1]!,
      ]) {
        assert.ok(!logged.includes(secret), `the log holds a secret: ${secret.slice(0, 6)}…`);
      }
    } finally {
      await node.close();
    }
  });
});
