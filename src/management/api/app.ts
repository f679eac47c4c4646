import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Logger } from '../../common/log.ts';
import { accessLevelSchema, type CrosswayConfig, feedbackEventSchema } from '../../config/schema.ts';
import { planToDocument } from '../../ports/render-json.ts';
import type { PortPlan } from '../../ports/types.ts';
import type { AdminStore } from '../admin-store.ts';
import type { AlarmTable } from '../alarms.ts';
import type { Authenticator } from '../authenticator.ts';
import type { ConfigAdmin, ConfigCheck } from '../config-admin.ts';
import type { ManagementMetrics } from '../metrics.ts';
import { type Session, SessionTable } from '../sessions.ts';
import type { StatusRegistry } from '../status.ts';
import { CSS, esc, layout } from '../ui/html.ts';
import {
  accountsPage,
  alarmsTable,
  auditPage,
  configPage,
  loginPage,
  portsPage,
  recordsTable,
  type SearchRuleView,
  type StatusView,
  searchRulesPage,
  setupPage,
  statusPage,
  zonesTable,
} from '../ui/pages.ts';
import { OPENAPI } from './openapi.ts';

/** What the HTTP app needs from its node's management service. */
export interface AppContext {
  nodeName: string;
  plan: PortPlan;
  store: AdminStore;
  sessions: SessionTable;
  auth: Authenticator;
  config: ConfigAdmin;
  status: StatusRegistry;
  alarms: AlarmTable;
  metrics: ManagementMetrics;
  log: Logger;
  /** Monotonic ms (login throttling). */
  now: () => number;
  /** Commits a checked configuration: applies the live part, persists it, audits it, emits `config-change`. */
  applyConfig(check: Extract<ConfigCheck, { ok: true }>, who: string, source: string): void;
  /** Subscriptions (configured and registered) with delivery counters. */
  subscriptions(): unknown;
  /** Re-reads registered subscriptions after an API change. */
  subscriptionsChanged(): void;
  /** The node's H.323 gatekeeper, when it runs one: registrations an administrator may remove. */
  h323?: H323Admin;
}

/** What the API does with an H.323 gatekeeper's registrations. */
export interface H323Admin {
  get(endpointIdentifier: string): { readonly aliases: readonly { kind: string; value: string }[] } | undefined;
  /** Removes the registration and sends the endpoint a URQ (H.225.0 §7.10.2); false when there is none. */
  unregister(endpointIdentifier: string): boolean;
}

type Need = 'read' | 'audit' | 'write';
const SESSION_COOKIE = 'cw_session';
const PRE_COOKIE = 'cw_pre';
const MAX_FAILURES = 10;
const FAILURE_WINDOW_MS = 60_000;
/** Subscriptions registered through the API (each has its own queue of up to `feedbackQueueLimit` events). */
const MAX_SUBSCRIPTIONS = 100;

function cookies(req: FastifyRequest): Record<string, string> {
  const out: Record<string, string> = {};
  const h = req.headers.cookie;
  if (!h) return out;
  for (const part of h.split(';')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    const raw = part.slice(i + 1).trim();
    try {
      out[part.slice(0, i).trim()] = decodeURIComponent(raw);
    } catch {
      // A malformed %-escape (`%`, `%zz`): keep the raw value, it matches nothing.
      out[part.slice(0, i).trim()] = raw;
    }
  }
  return out;
}

function allowed(level: string, need: Need): boolean {
  if (need === 'read') return true;
  if (need === 'audit') return level === 'auditor' || level === 'read-write';
  return level === 'read-write';
}

const loginBody = z.object({ user: z.string().min(1).max(256), password: z.string().max(1024) }).strict();
const accountBody = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/),
    level: accessLevelSchema,
    password: z.string().min(12).max(1024),
  })
  .strict();
const subscriptionBody = z
  .object({
    url: z
      .string()
      .regex(/^https?:\/\/[^\s]+$/, 'expected http:// or https://')
      .max(2048),
    events: z.array(feedbackEventSchema).default([]),
    username: z.string().min(1).max(256).optional(),
    password: z.string().min(1).max(1024).optional(),
  })
  .strict();

/**
 * The management HTTP application of one node: REST API (+ OpenAPI), server-rendered web UI, /metrics. The same app
 * serves every HTTPS socket of the node (and plain HTTP when enabled). Authentication: session cookie (HttpOnly,
 * Secure, SameSite=Strict) with a CSRF token on every state-changing request, or HTTP Basic for API clients.
 */
export function buildApp(ctx: AppContext, options: { secure: boolean }): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1_048_576, trustProxy: false, return503OnClosing: true });
  const failures = new Map<string, { n: number; since: number }>();

  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: 1_048_576 },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );
  app.addContentTypeParser('application/merge-patch+json', { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      (err as { statusCode?: number }).statusCode = 400;
      done(err as Error, undefined);
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header(
      'content-security-policy',
      "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    if (options.secure) reply.header('strict-transport-security', 'max-age=31536000');
    if (!req.url.startsWith('/ui/style.css')) reply.header('cache-control', 'no-store');
    return payload;
  });
  app.addHook('onResponse', async (req, reply) => {
    ctx.metrics.httpRequests.inc({
      route: req.routeOptions.url ?? 'unmatched',
      method: req.method,
      status: `${Math.floor(reply.statusCode / 100)}xx`,
    });
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) ctx.log.error({ err: err.message }, 'management request failed');
    void reply.code(status).send({ error: status === 500 ? 'internal' : 'bad-request', message: err.message });
  });

  const source = (req: FastifyRequest) => req.socket.remoteAddress ?? 'unknown';

  const setCookie = (reply: FastifyReply, name: string, value: string, maxAgeS?: number) => {
    const attrs = [`${name}=${encodeURIComponent(value)}`, 'Path=/', 'HttpOnly', 'SameSite=Strict'];
    if (options.secure) attrs.push('Secure');
    if (maxAgeS !== undefined) attrs.push(`Max-Age=${maxAgeS}`);
    const prev = reply.getHeader('set-cookie');
    const list = Array.isArray(prev) ? prev : prev ? [String(prev)] : [];
    reply.header('set-cookie', [...list, attrs.join('; ')]);
  };

  /** Login throttle per source address: `true` when the address may try again. */
  const mayTry = (src: string): boolean => {
    const f = failures.get(src);
    if (!f) return true;
    if (ctx.now() - f.since > FAILURE_WINDOW_MS) {
      failures.delete(src);
      return true;
    }
    return f.n < MAX_FAILURES;
  };
  const failed = (src: string) => {
    const f = failures.get(src);
    if (f && ctx.now() - f.since <= FAILURE_WINDOW_MS) f.n++;
    else {
      if (failures.size >= 10_000) failures.delete(failures.keys().next().value!);
      failures.set(src, { n: 1, since: ctx.now() });
    }
  };

  const doLogin = async (req: FastifyRequest, user: string, password: string) => {
    const src = source(req);
    if (!mayTry(src)) {
      ctx.store.audit(user, src, 'login-throttled', 'too many failed logins');
      return { ok: false as const, throttled: true };
    }
    const r = await ctx.auth.login(user, password);
    if (!r.ok) {
      failed(src);
      ctx.metrics.logins.inc({ result: r.outage ? 'outage' : 'refused', via: 'any' });
      ctx.store.audit(user.slice(0, 256), src, 'login-failed', r.reason);
      ctx.log.info({ user: user.slice(0, 256), source: src, reason: r.reason }, 'administrator login refused');
      return { ok: false as const, throttled: false };
    }
    failures.delete(src);
    ctx.metrics.logins.inc({ result: 'ok', via: r.via });
    const s = ctx.sessions.create(r.user, r.level, r.via, src);
    ctx.store.audit(r.user, src, 'login', `${r.via}, ${r.level}`);
    ctx.log.info({ user: r.user, level: r.level, via: r.via, source: src }, 'administrator logged in');
    return { ok: true as const, session: s };
  };

  /** The caller: a cookie session (CSRF checked on state changes) or HTTP Basic (API only). */
  const caller = async (
    req: FastifyRequest,
    api: boolean,
  ): Promise<{ session?: Session; user: string; level: string } | { csrfFailed: true } | undefined> => {
    const sid = cookies(req)[SESSION_COOKIE];
    const s = ctx.sessions.touch(sid);
    if (s) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        const token = req.headers['x-csrf-token'] ?? (req.body as Record<string, unknown> | undefined)?.csrf;
        if (!SessionTable.csrfMatches(s, token)) return { csrfFailed: true };
      }
      return { session: s, user: s.user, level: s.level };
    }
    const authz = req.headers.authorization;
    if (api && authz?.startsWith('Basic ')) {
      const dec = Buffer.from(authz.slice(6), 'base64').toString('utf8');
      const i = dec.indexOf(':');
      if (i <= 0) return undefined;
      const user = dec.slice(0, i);
      const src = source(req);
      if (!mayTry(src)) return undefined;
      const r = await ctx.auth.login(user, dec.slice(i + 1));
      if (!r.ok) {
        failed(src);
        ctx.store.audit(user.slice(0, 256), src, 'login-failed', `basic: ${r.reason}`);
        return undefined;
      }
      return { user: r.user, level: r.level };
    }
    return undefined;
  };

  /** API guard: answers 401/403 itself and returns undefined when the caller may not go on. */
  const apiGuard = async (req: FastifyRequest, reply: FastifyReply, need: Need) => {
    const c = await caller(req, true);
    if (!c) {
      void reply.code(401).header('www-authenticate', 'Basic realm="crossway"').send({ error: 'unauthenticated' });
      return undefined;
    }
    if ('csrfFailed' in c) {
      void reply.code(403).send({ error: 'csrf', message: 'missing or wrong x-csrf-token' });
      return undefined;
    }
    if (!allowed(c.level, need)) {
      void reply.code(403).send({ error: 'forbidden', message: `needs ${need} access` });
      return undefined;
    }
    return c;
  };

  /** UI guard: redirects to the login page; 403 page on CSRF or level failures. */
  const uiGuard = async (req: FastifyRequest, reply: FastifyReply, need: Need) => {
    const c = await caller(req, false);
    if (!c) {
      void reply.redirect('/ui/login', 303);
      return undefined;
    }
    if ('csrfFailed' in c || !c.session) {
      void reply
        .code(403)
        .type('text/html')
        .send(layout({ title: 'Refused', node: ctx.nodeName }, '<p>Form expired: reload the page.</p>'));
      return undefined;
    }
    if (!allowed(c.level, need)) {
      void reply
        .code(403)
        .type('text/html')
        .send(
          layout(
            { title: 'Refused', node: ctx.nodeName },
            `<p>Your access level does not allow this (${esc(need)}).</p>`,
          ),
        );
      return undefined;
    }
    return c.session;
  };

  const statusView = (): StatusView => ({
    system: (ctx.status.get('system') ?? {}) as Record<string, unknown>,
    zones: (ctx.status.get('zones') ?? []) as StatusView['zones'],
    alarms: ctx.alarms.list(),
    sip: ctx.status.get('sip') as StatusView['sip'],
    registrations: ctx.status.get('registrations'),
    calls: ctx.status.get('calls'),
    turn: ctx.status.get('turn'),
    media: ctx.status.get('media'),
  });

  const page = (reply: FastifyReply, s: Session, active: string, title: string, body: string, refresh?: number) =>
    reply.type('text/html; charset=utf-8').send(
      layout(
        {
          title,
          node: ctx.nodeName,
          active,
          user: { name: s.user, level: s.level, csrf: s.csrf },
          ...(refresh ? { refresh } : {}),
        },
        body,
      ),
    );

  // ---- API -----------------------------------------------------------------------------------------------------
  app.get('/api/openapi.json', async () => OPENAPI);

  app.post('/api/v1/login', async (req, reply) => {
    const b = loginBody.safeParse(req.body);
    if (!b.success) return reply.code(400).send({ error: 'bad-request', message: 'expected {user, password}' });
    const r = await doLogin(req, b.data.user, b.data.password);
    if (!r.ok) return reply.code(r.throttled ? 429 : 401).send({ error: r.throttled ? 'throttled' : 'refused' });
    setCookie(reply, SESSION_COOKIE, r.session.id);
    return { user: r.session.user, level: r.session.level, csrf: r.session.csrf };
  });

  app.post('/api/v1/logout', async (req, reply) => {
    const c = await apiGuard(req, reply, 'read');
    if (!c) return reply;
    if (c.session) {
      ctx.sessions.end(c.session.id);
      ctx.store.audit(c.user, source(req), 'logout');
    }
    setCookie(reply, SESSION_COOKIE, '', 0);
    return { ok: true };
  });

  app.get('/api/v1/status', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    return ctx.status.snapshot();
  });

  app.get<{ Params: { section: string } }>('/api/v1/status/:section', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    if (!ctx.status.has(req.params.section))
      return reply.code(404).send({ error: 'not-found', sections: ctx.status.sections() });
    return { [req.params.section]: ctx.status.get(req.params.section) };
  });

  app.get('/api/v1/ports', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    return planToDocument(ctx.plan);
  });

  app.get('/api/v1/alarms', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    return ctx.alarms.list();
  });

  app.get('/api/v1/config', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    return ctx.config.view();
  });

  app.post('/api/v1/config/validate', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    const r = ctx.config.check(req.body, 'replace');
    if (!r.ok) return reply.code(400).send({ error: 'invalid-config', issues: r.issues });
    return { valid: true, changed: r.changed, live: r.live, restartRequired: r.restartRequired };
  });

  const change = (mode: 'replace' | 'patch') => async (req: FastifyRequest, reply: FastifyReply) => {
    const c = await apiGuard(req, reply, 'write');
    if (!c) return reply;
    const r = ctx.config.check(req.body, mode);
    if (!r.ok) {
      ctx.store.audit(
        c.user,
        source(req),
        'config-change-refused',
        r.issues.map((i) => `${i.path}: ${i.message}`).join('; '),
      );
      return reply.code(400).send({ error: 'invalid-config', issues: r.issues });
    }
    ctx.applyConfig(r, c.user, source(req));
    return { changed: r.changed, live: r.live, restartRequired: r.restartRequired };
  };
  app.put('/api/v1/config', change('replace'));
  app.patch('/api/v1/config', change('patch'));

  app.get<{ Querystring: { limit?: string; before?: string } }>('/api/v1/audit', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'audit'))) return reply;
    const limit = Number(req.query.limit ?? 200) || 200;
    const before = req.query.before ? Number(req.query.before) : undefined;
    return ctx.store.auditLog(limit, before);
  });

  app.get('/api/v1/accounts', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'write'))) return reply;
    return ctx.store.listAccounts();
  });

  app.post('/api/v1/accounts', async (req, reply) => {
    const c = await apiGuard(req, reply, 'write');
    if (!c) return reply;
    const b = accountBody.safeParse(req.body);
    if (!b.success) return reply.code(400).send({ error: 'bad-request', issues: b.error.issues.map((i) => i.message) });
    await ctx.store.setAccount(b.data.name, b.data.level, b.data.password);
    ctx.sessions.endUser(b.data.name);
    ctx.store.audit(c.user, source(req), 'account-set', `${b.data.name} (${b.data.level})`);
    return { name: b.data.name, level: b.data.level };
  });

  app.delete<{ Params: { name: string } }>('/api/v1/accounts/:name', async (req, reply) => {
    const c = await apiGuard(req, reply, 'write');
    if (!c) return reply;
    if (isLastWriter(req.params.name)) return reply.code(409).send({ error: 'last-administrator' });
    if (!ctx.store.deleteAccount(req.params.name)) return reply.code(404).send({ error: 'not-found' });
    ctx.sessions.endUser(req.params.name);
    ctx.store.audit(c.user, source(req), 'account-delete', req.params.name);
    return { deleted: req.params.name };
  });

  /** Deleting the last local read-write account would leave the node without anyone to administer it. */
  function isLastWriter(name: string): boolean {
    const writers = ctx.store.listAccounts().filter((a) => a.level === 'read-write');
    return writers.length === 1 && writers[0]!.name === name;
  }

  app.get('/api/v1/subscriptions', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    return ctx.subscriptions();
  });

  app.post('/api/v1/subscriptions', async (req, reply) => {
    const c = await apiGuard(req, reply, 'write');
    if (!c) return reply;
    const b = subscriptionBody.safeParse(req.body);
    if (!b.success) return reply.code(400).send({ error: 'bad-request', issues: b.error.issues.map((i) => i.message) });
    if (ctx.store.listSubscriptions().length >= MAX_SUBSCRIPTIONS) {
      return reply.code(409).send({ error: 'limit', message: `at most ${MAX_SUBSCRIPTIONS} registered subscriptions` });
    }
    const s = ctx.store.addSubscription({
      url: b.data.url,
      events: b.data.events,
      ...(b.data.username ? { username: b.data.username } : {}),
      ...(b.data.password ? { password: b.data.password } : {}),
      createdBy: c.user,
    });
    ctx.subscriptionsChanged();
    ctx.store.audit(c.user, source(req), 'subscription-add', `${s.id} ${s.url} [${s.events.join(',') || 'all'}]`);
    return { id: s.id, url: s.url, events: s.events };
  });

  app.delete<{ Params: { id: string } }>('/api/v1/subscriptions/:id', async (req, reply) => {
    const c = await apiGuard(req, reply, 'write');
    if (!c) return reply;
    if (!ctx.store.deleteSubscription(Number(req.params.id))) return reply.code(404).send({ error: 'not-found' });
    ctx.subscriptionsChanged();
    ctx.store.audit(c.user, source(req), 'subscription-delete', req.params.id);
    return { deleted: Number(req.params.id) };
  });

  // H.225.0 §7.10.2: the gatekeeper ends a registration with a URQ to the endpoint (reason maintenance).
  app.delete<{ Params: { endpointIdentifier: string } }>(
    '/api/v1/registrations/h323/:endpointIdentifier',
    async (req, reply) => {
      const c = await apiGuard(req, reply, 'write');
      if (!c) return reply;
      const id = req.params.endpointIdentifier;
      if (!ctx.h323) return reply.code(404).send({ error: 'not-found', message: 'this node runs no H.323 gatekeeper' });
      const reg = ctx.h323.get(id);
      const aliases = reg?.aliases.map((a) => `${a.kind}:${a.value}`) ?? [];
      if (!reg || !ctx.h323.unregister(id)) {
        return reply
          .code(404)
          .send({ error: 'not-found', message: 'no H.323 registration with that endpointIdentifier' });
      }
      ctx.store.audit(c.user, source(req), 'registration-remove', `h323 ${id} (${aliases.join(' ')})`);
      ctx.log.info({ by: c.user, endpoint: id, aliases }, 'H.323 registration removed by an administrator');
      return { removed: { protocol: 'h323', endpointIdentifier: id, aliases } };
    },
  );

  app.get('/metrics', async (req, reply) => {
    if (!(await apiGuard(req, reply, 'read'))) return reply;
    const body = await ctx.metrics.registry.metrics();
    return reply.type(ctx.metrics.registry.contentType).send(body);
  });

  // ---- web UI --------------------------------------------------------------------------------------------------
  app.get('/', async (_req, reply) => reply.redirect('/ui/status', 303));
  app.get('/ui', async (_req, reply) => reply.redirect('/ui/status', 303));
  app.get('/ui/style.css', async (_req, reply) =>
    reply.type('text/css').header('cache-control', 'max-age=3600').send(CSS),
  );

  const preToken = (reply: FastifyReply) => {
    const t = randomBytes(18).toString('base64url');
    setCookie(reply, PRE_COOKIE, t);
    return t;
  };
  /** Login-form CSRF (no session yet): double-submit of a random cookie. */
  const preOk = (req: FastifyRequest) => {
    const c = cookies(req)[PRE_COOKIE];
    const f = (req.body as Record<string, unknown> | undefined)?.csrf;
    return typeof c === 'string' && c.length > 0 && c === f;
  };
  const anon = (reply: FastifyReply, title: string, body: string, code = 200) =>
    reply
      .code(code)
      .type('text/html; charset=utf-8')
      .send(layout({ title, node: ctx.nodeName }, body));

  app.get('/ui/login', async (_req, reply) =>
    anon(
      reply,
      'Log in',
      loginPage(undefined, preToken(reply), ctx.store.accountCount() === 0 && ctx.store.hasSetupToken()),
    ),
  );

  app.post('/ui/login', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, string>;
    if (!preOk(req)) return anon(reply, 'Log in', loginPage('Form expired: try again.', preToken(reply), false), 403);
    const r = await doLogin(req, String(body.user ?? ''), String(body.password ?? ''));
    if (!r.ok) {
      const msg = r.throttled ? 'Too many failed logins: wait a minute.' : 'Wrong user name or password.';
      return anon(reply, 'Log in', loginPage(msg, preToken(reply), false), r.throttled ? 429 : 401);
    }
    setCookie(reply, SESSION_COOKIE, r.session.id);
    setCookie(reply, PRE_COOKIE, '', 0);
    return reply.redirect('/ui/status', 303);
  });

  app.get('/ui/setup', async (_req, reply) => {
    if (ctx.store.accountCount() > 0 || !ctx.store.hasSetupToken()) return reply.redirect('/ui/login', 303);
    return anon(reply, 'First administrator', setupPage(undefined, preToken(reply)));
  });

  app.post('/ui/setup', async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, string>;
    if (ctx.store.accountCount() > 0) return reply.redirect('/ui/login', 303);
    if (!preOk(req))
      return anon(reply, 'First administrator', setupPage('Form expired: try again.', preToken(reply)), 403);
    const name = String(body.user ?? '');
    const password = String(body.password ?? '');
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name) || password.length < 12) {
      return anon(
        reply,
        'First administrator',
        setupPage('Name: letters, digits, ._@-; password: 12 characters or more.', preToken(reply)),
        400,
      );
    }
    const src = source(req);
    if (!mayTry(src) || !ctx.store.consumeSetupToken(String(body.token ?? ''))) {
      failed(src);
      ctx.store.audit(name, src, 'setup-failed', 'wrong setup token');
      return anon(reply, 'First administrator', setupPage('Wrong setup token.', preToken(reply)), 401);
    }
    await ctx.store.setAccount(name, 'read-write', password);
    ctx.store.audit(name, src, 'account-set', `${name} (read-write) with the setup token`);
    return reply.redirect('/ui/login', 303);
  });

  app.post('/ui/logout', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    ctx.sessions.end(s.id);
    ctx.store.audit(s.user, source(req), 'logout');
    setCookie(reply, SESSION_COOKIE, '', 0);
    return reply.redirect('/ui/login', 303);
  });

  app.get('/ui/status', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    return page(reply, s, 'status', 'Status', statusPage(statusView()), 5);
  });

  app.get('/ui/registrations', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    return page(
      reply,
      s,
      'registrations',
      'Registrations',
      recordsTable('registrations', ctx.status.get('registrations'), 'no registration'),
      5,
    );
  });

  app.get('/ui/calls', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    return page(reply, s, 'calls', 'Calls', recordsTable('calls', ctx.status.get('calls'), 'no call'), 5);
  });

  app.get('/ui/zones', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    const body = `<h2>Traversal client zones</h2>${zonesTable(statusView().zones)}
<h2>Routing zones</h2>${recordsTable('routing-zones', ctx.status.get('routingZones'), 'no routing zone')}`;
    return page(reply, s, 'zones', 'Zones', body, 5);
  });

  app.get('/ui/searches', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    const body = recordsTable('searches', ctx.status.get('searchHistory'), 'no search yet');
    return page(reply, s, 'searches', 'Search history', body, 5);
  });

  app.get('/ui/alarms', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    return page(reply, s, 'alarms', 'Alarms', alarmsTable(ctx.alarms.list()), 5);
  });

  app.get('/ui/ports', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    return page(reply, s, 'ports', 'Port reference', portsPage(ctx.plan));
  });

  app.get('/ui/audit', async (req, reply) => {
    const s = await uiGuard(req, reply, 'audit');
    if (!s) return reply;
    return page(reply, s, 'audit', 'Audit log', auditPage(ctx.store.auditLog(500)));
  });

  app.get('/ui/accounts', async (req, reply) => {
    const s = await uiGuard(req, reply, 'write');
    if (!s) return reply;
    return page(
      reply,
      s,
      'accounts',
      'Accounts',
      accountsPage({ csrf: s.csrf, accounts: ctx.store.listAccounts(), self: s.user }),
    );
  });

  app.post('/ui/accounts', async (req, reply) => {
    const s = await uiGuard(req, reply, 'write');
    if (!s) return reply;
    const b = (req.body ?? {}) as Record<string, string>;
    const name = String(b.name ?? '');
    let message: { ok: boolean; text: string };
    if (b.action === 'delete') {
      if (isLastWriter(name))
        message = { ok: false, text: `${name} is the last read-write administrator: not deleted.` };
      else if (ctx.store.deleteAccount(name)) {
        ctx.sessions.endUser(name);
        ctx.store.audit(s.user, source(req), 'account-delete', name);
        message = { ok: true, text: `Deleted ${name}.` };
      } else message = { ok: false, text: `No account ${name}.` };
    } else {
      const parsed = accountBody.safeParse({ name, level: b.level, password: String(b.password ?? '') });
      if (!parsed.success) {
        message = { ok: false, text: 'Name: letters, digits, . _ @ - (64 at most); password: 12 characters or more.' };
      } else {
        await ctx.store.setAccount(parsed.data.name, parsed.data.level, parsed.data.password);
        if (parsed.data.name !== s.user) ctx.sessions.endUser(parsed.data.name);
        ctx.store.audit(s.user, source(req), 'account-set', `${parsed.data.name} (${parsed.data.level})`);
        message = { ok: true, text: `Saved ${parsed.data.name} (${parsed.data.level}).` };
      }
    }
    if (!message.ok) reply.code(400);
    return page(
      reply,
      s,
      'accounts',
      'Accounts',
      accountsPage({ csrf: s.csrf, accounts: ctx.store.listAccounts(), self: s.user, message }),
    );
  });

  const configView = (s: Session, extra: Partial<Parameters<typeof configPage>[0]> = {}) => {
    const cfg: CrosswayConfig = ctx.config.current;
    return configPage({
      csrf: s.csrf,
      canWrite: s.level === 'read-write',
      logLevel: cfg.log.level,
      domains: cfg.sip.domains,
      sessionIdleMinutes: cfg.management.sessionIdleMinutes,
      json: JSON.stringify(ctx.config.view(), null, 2),
      ...extra,
    });
  };

  const rules = () =>
    (ctx.config.current as { routing?: { searchRules?: SearchRuleView[] } }).routing?.searchRules ?? [];

  app.get<{ Querystring: { edit?: string } }>('/ui/search-rules', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    const e = req.query.edit;
    const edit = e === 'new' ? 'new' : e !== undefined && /^\d+$/.test(e) ? Number(e) : undefined;
    const body = searchRulesPage({
      csrf: s.csrf,
      canWrite: s.level === 'read-write',
      rules: rules(),
      ...(edit !== undefined ? { edit } : {}),
    });
    return page(reply, s, 'search-rules', 'Search rules', body);
  });

  app.post('/ui/search-rules', async (req, reply) => {
    const s = await uiGuard(req, reply, 'write');
    if (!s) return reply;
    const b = (req.body ?? {}) as Record<string, string>;
    const current = rules().map((r) => ({ ...r }));
    const index = b.index === 'new' ? 'new' : Number(b.index);
    if (index !== 'new' && !(Number.isInteger(index) && index >= 0 && index < current.length)) {
      return reply
        .code(400)
        .type('text/html')
        .send(layout({ title: 'Refused', node: ctx.nodeName }, '<p>No such rule.</p>'));
    }
    let next: unknown[];
    if (b.action === 'delete' && index !== 'new') next = current.filter((_, i) => i !== index);
    else {
      const old = index === 'new' ? {} : current[index];
      const rule = {
        ...old,
        name: String(b.name ?? ''),
        priority:
          b.priority !== undefined && b.priority !== '' && Number.isFinite(Number(b.priority))
            ? Number(b.priority)
            : b.priority,
        source: b.source,
        pattern: { type: b.patternType, ...(b.patternValue ? { value: b.patternValue } : {}) },
        onMatch: b.onMatch,
        onSuccess: b.onSuccess,
        targetZone: String(b.targetZone ?? ''),
        enabled: b.enabled === 'on',
      };
      next = index === 'new' ? [...current, rule] : current.map((r, i) => (i === index ? rule : r));
    }
    const r = ctx.config.check({ routing: { searchRules: next } }, 'patch');
    if (!r.ok) {
      ctx.store.audit(
        s.user,
        source(req),
        'config-change-refused',
        r.issues.map((i) => `${i.path}: ${i.message}`).join('; '),
      );
      reply.code(400);
      const body = searchRulesPage({
        csrf: s.csrf,
        canWrite: true,
        rules: rules(),
        edit: index,
        issues: r.issues,
      });
      return page(reply, s, 'search-rules', 'Search rules', body);
    }
    ctx.applyConfig(r, s.user, source(req));
    return page(
      reply,
      s,
      'search-rules',
      'Search rules',
      searchRulesPage({ csrf: s.csrf, canWrite: true, rules: rules(), result: r }),
    );
  });

  app.get('/ui/config', async (req, reply) => {
    const s = await uiGuard(req, reply, 'read');
    if (!s) return reply;
    return page(reply, s, 'config', 'Configuration', configView(s));
  });

  app.post('/ui/config', async (req, reply) => {
    const s = await uiGuard(req, reply, 'write');
    if (!s) return reply;
    const body = (req.body ?? {}) as Record<string, string>;
    let r: ConfigCheck;
    let json: string | undefined;
    if (body.form === 'json') {
      json = String(body.json ?? '');
      let doc: unknown;
      try {
        doc = JSON.parse(json);
      } catch (err) {
        const issues = [{ path: '', message: `not valid JSON: ${(err as Error).message}` }];
        reply.code(400);
        return page(reply, s, 'config', 'Configuration', configView(s, { issues, json }));
      }
      r = ctx.config.check(doc, 'replace');
    } else {
      const idle = Number(body.sessionIdleMinutes);
      r = ctx.config.check(
        {
          log: { level: body.logLevel },
          sip: {
            domains: String(body.domains ?? '')
              .split(/\r?\n/)
              .map((d) => d.trim())
              .filter(Boolean),
          },
          management: {
            sessionIdleMinutes:
              Number.isFinite(idle) && body.sessionIdleMinutes !== '' ? idle : body.sessionIdleMinutes,
          },
        },
        'patch',
      );
    }
    if (!r.ok) {
      ctx.store.audit(
        s.user,
        source(req),
        'config-change-refused',
        r.issues.map((i) => `${i.path}: ${i.message}`).join('; '),
      );
      reply.code(400);
      return page(reply, s, 'config', 'Configuration', configView(s, { issues: r.issues, ...(json ? { json } : {}) }));
    }
    ctx.applyConfig(r, s.user, source(req));
    return page(reply, s, 'config', 'Configuration', configView(s, { result: r }));
  });

  return app;
}
