import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/log.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import type { NodeKind } from '../../src/ports/index.ts';
import { type RunningNode, startNode } from '../../src/roles/start.ts';
import { uniqueOffset } from '../helpers/lab-node.ts';

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
  const config = validateConfig({ dataDir: dir, portOffset: uniqueOffset(), ...input });
  const node = await startNode(config, { log: silentLogger, onSetupToken: (k, t) => tokens.set(k, t) });
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
