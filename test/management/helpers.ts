import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/log.ts';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import type { ManagementEvent } from '../../src/management/events.ts';
import type { NodeKind } from '../../src/ports/index.ts';
import { type RunningNode, startNode } from '../../src/roles/start.ts';
import { startOnFreeOffset } from '../helpers/lab-node.ts';
import type { TlsFixtures } from '../helpers/tls-fixtures.ts';

export interface MgmtNode {
  node: RunningNode;
  dataDir: string;
  tokens: Map<NodeKind, string>;
  /** The node's certificate (lab: self-signed), to verify its HTTPS with. */
  ca: string;
  httpsPort: number;
  base(kind?: NodeKind): string;
}

/** A lab node with management on, a fresh data dir (unless given) and a unique port offset. */
export async function startMgmtNode(input: CrosswayConfigInput = {}, dataDir?: string): Promise<MgmtNode> {
  const dir = dataDir ?? mkdtempSync(join(tmpdir(), 'crossway-mgmt-'));
  const tokens = new Map<NodeKind, string>();
  const node = await startOnFreeOffset(input, dir, (config) =>
    startNode(config, { log: silentLogger, onSetupToken: (k, t) => tokens.set(k, t) }),
  );
  const ca = readFileSync(join(dir, 'tls', 'node-cert.pem'), 'utf8');
  const httpsPort = node.plan.port('https', 'edge');
  const addr = (k: NodeKind) => node.addresses.get(k)!.private;
  return { node, dataDir: dir, tokens, ca, httpsPort, base: (k = 'edge') => `https://${addr(k)}:${httpsPort}` };
}

export interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = unknown>(): T;
}

/** One HTTP(S) request; `ca` verifies the server (HTTPS). */
export function req(
  url: string,
  opts: {
    method?: string;
    body?: unknown;
    form?: Record<string, string>;
    headers?: Record<string, string>;
    ca?: string;
  } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const headers: Record<string, string | number> = { ...(opts.headers ?? {}) };
    let body: string | undefined;
    if (opts.form) {
      body = new URLSearchParams(opts.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    if (body !== undefined) headers['content-length'] = Buffer.byteLength(body);
    const common = { method: opts.method ?? (body !== undefined ? 'POST' : 'GET'), headers };
    const r =
      u.protocol === 'https:'
        ? httpsRequest(u, { ...common, ...(opts.ca ? { ca: opts.ca } : {}) })
        : httpRequest(u, common);
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: <T>() => JSON.parse(text) as T });
      });
    });
    r.on('error', reject);
    r.end(body);
  });
}

/** The cookie header value for the `set-cookie` answers of a response (name=value pairs, attributes dropped). */
export function cookieOf(res: Res, jar: Map<string, string> = new Map()): Map<string, string> {
  const sc = res.headers['set-cookie'];
  for (const c of Array.isArray(sc) ? sc : sc ? [sc] : []) {
    const [pair] = c.split(';');
    const i = pair!.indexOf('=');
    const name = pair!.slice(0, i);
    const value = decodeURIComponent(pair!.slice(i + 1));
    if (/Max-Age=0/i.test(c)) jar.delete(name);
    else jar.set(name, value);
  }
  return jar;
}

export function cookieHeader(jar: Map<string, string>): string {
  return [...jar].map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('; ');
}

/** Creates the first administrator through the setup page with the node's setup token. */
export async function setupAdmin(m: MgmtNode, user: string, password: string, kind: NodeKind = 'edge'): Promise<void> {
  const page = await req(`${m.base(kind)}/ui/setup`, { ca: m.ca });
  const jar = cookieOf(page);
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)?.[1] ?? '';
  const r = await req(`${m.base(kind)}/ui/setup`, {
    ca: m.ca,
    form: { csrf, token: m.tokens.get(kind) ?? '', user, password },
    headers: { cookie: cookieHeader(jar) },
  });
  if (r.status !== 303) throw new Error(`setup failed: ${r.status} ${r.text.slice(0, 300)}`);
}

/** Logs in through the API: the cookie jar and the CSRF token. */
export async function apiLogin(m: MgmtNode, user: string, password: string, kind: NodeKind = 'edge') {
  const r = await req(`${m.base(kind)}/api/v1/login`, { ca: m.ca, body: { user, password } });
  if (r.status !== 200) throw new Error(`login failed: ${r.status} ${r.text}`);
  const jar = cookieOf(r);
  const { csrf } = r.json<{ csrf: string }>();
  return { cookie: cookieHeader(jar), csrf };
}

export interface Received {
  auth: string | undefined;
  type: string | undefined;
  event: ManagementEvent;
}

/** A feedback receiver: HTTPS with the test CA's server certificate, answering each POST with `answer()`. */
export function receiver(tls: TlsFixtures, answer: () => number = () => 204) {
  const got: Received[] = [];
  /** When each POST arrived (ms, monotonic), whatever it was answered. */
  const attempts: number[] = [];
  const server = createServer(
    { cert: tls.server.cert, key: tls.server.key },
    (rq: IncomingMessage, rs: ServerResponse) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        attempts.push(performance.now());
        const status = answer();
        if (status < 300) {
          got.push({
            auth: rq.headers.authorization,
            type: rq.headers['content-type'],
            event: JSON.parse(Buffer.concat(chunks).toString('utf8')) as ManagementEvent,
          });
        }
        rs.writeHead(status).end();
      });
    },
  );
  return {
    got,
    attempts,
    server,
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
      ),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls `cond` every 20 ms until it holds or `ms` passed. */
export async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
