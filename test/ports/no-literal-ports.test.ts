/**
 * "Ports come from the port plan": no module outside `src/ports` binds, listens on, or falls back to a port written as
 * a number. Two checks:
 * - binds: `.listen(N`, `.bind(N`, `{ port: N }` in a listen/bind, `localPort: N` (port 0, ephemeral, is allowed);
 * - seed ports anywhere in code (comments left out): every port number of the plan's `SEED` (5060, 1720, 36000, …)
 *   outside `src/ports` must be a default port of a *remote* party (a SIP URI without a port means 5060/5061, an
 *   LDAP URL 389/636), listed in `REMOTE_DEFAULTS` with why. A listed site that no longer has its port fails too.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SEED } from '../../src/ports/index.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const PATTERNS: [string, RegExp][] = [
  ['listen/bind on a literal port', /\.(?:listen|bind)\(\s*[1-9]\d*\b/],
  ['listen/bind options with a literal port', /\.(?:listen|bind)\(\s*\{[^}]*\bport\s*:\s*[1-9]\d*\b/],
  ['a literal local (source) port', /\blocalPort\s*:\s*[1-9]\d*\b/],
];

export function literalPortBinds(text: string): { line: number; what: string; code: string }[] {
  const hits: { line: number; what: string; code: string }[] = [];
  text.split('\n').forEach((code, i) => {
    for (const [what, re] of PATTERNS) if (re.test(code)) hits.push({ line: i + 1, what, code: code.trim() });
  });
  return hits;
}

/** Every port number the plan's seed table holds: single ports and the ends of its ranges. */
function seedPorts(): number[] {
  const out = new Set<number>();
  for (const v of Object.values(SEED)) {
    if (typeof v === 'number') out.add(v);
    else if (typeof v === 'object' && v !== null && 'from' in v) {
      out.add(v.from);
      out.add(v.to);
    }
  }
  return [...out].sort((a, b) => a - b);
}

/** Below 1024 a number is often something else (an LDAP result code, a STUN error 443): only next to "port". */
const LOW = 1024;

/** Code without comments (line count kept), so a port named in a comment is not a hit. */
function stripComments(text: string): string[] {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .split('\n')
    .map((l) => l.replace(/(^|[^:'"`\\])\/\/.*$/, '$1'));
}

export function seedPortLiterals(text: string, portsOf = seedPorts()): { line: number; port: number; code: string }[] {
  const re = new RegExp(`(?<![\\w.$-])(${portsOf.join('|')})(?![\\w.-])`, 'g');
  const hits: { line: number; port: number; code: string }[] = [];
  stripComments(text).forEach((code, i) => {
    for (const m of code.matchAll(re)) {
      const port = Number(m[1]);
      if (port < LOW && !/port/i.test(code)) continue;
      hits.push({ line: i + 1, port, code: code.trim() });
    }
  });
  return hits;
}

/**
 * Default ports of remote parties, by file: not ports Crossway opens, so not in its plan. `count` is the number of
 * literal occurrences of that port in the file (a new one must be looked at, and listed or taken from the plan).
 */
const REMOTE_DEFAULTS: { file: string; port: number; count: number; why: string }[] = [
  ...[5060, 5061].flatMap((port) => [
    { file: 'src/sip/transport/response-target.ts', port, count: port === 5060 ? 4 : 1, why: 'Via without a port' },
    { file: 'src/sip/transaction/keys.ts', port, count: 1, why: 'Via sent-by without a port (RFC 3261 §17.2.3)' },
    { file: 'src/sip/proxy/resolver.ts', port, count: 1, why: 'SIP URI without a port, no SRV (RFC 3263 §4.2)' },
    {
      file: 'src/sip/proxy/proxy.ts',
      port,
      count: port === 5060 ? 3 : 2,
      why: 'neighbour zone, Route and Via without a port',
    },
    { file: 'src/sip/registrar/registrar.ts', port, count: 1, why: 'Contact URI without a port' },
    { file: 'src/roles/sip-service.ts', port, count: 1, why: 'a Record-Route URI without a port names 5060/5061' },
    { file: 'src/traversal/server-zone.ts', port, count: 1, why: "the core's Via without a port" },
  ]),
  {
    file: 'src/h323/gatekeeper/neighbours.ts',
    port: 1719,
    count: 2,
    why: "neighbour gatekeeper's RAS, no port given (the zone's port, and its address when the zone names an IP)",
  },
  { file: 'src/sip/auth/ldap/directory.ts', port: 389, count: 1, why: 'ldap:// URL without a port (RFC 4516)' },
  { file: 'src/sip/auth/ldap/directory.ts', port: 636, count: 1, why: 'ldaps:// URL without a port' },
  { file: 'src/management/service.ts', port: 443, count: 1, why: 'an https:// URL leaves out the default port' },
];

describe('no literal ports outside the port plan', () => {
  it('the guard sees what it looks for', () => {
    assert.equal(literalPortBinds('server.listen(5061, host)').length, 1);
    assert.equal(literalPortBinds("sock.bind({ address: '0.0.0.0', port: 3478 })").length, 1);
    assert.equal(literalPortBinds('net.connect({ host, port, localPort: 25000 })').length, 1);
    assert.equal(literalPortBinds('server.listen(0)').length, 0);
    assert.equal(literalPortBinds("sock.bind({ port: plan.port('turn-udp') })").length, 0);
    const ports = seedPorts();
    for (const p of [80, 161, 443, 1719, 1720, 2776, 3478, 5060, 5061, 5062, 24000, 29999, 36000, 59999]) {
      assert.ok(ports.includes(p), `seed port ${p}`);
    }
    const at = (code: string) => seedPortLiterals(code).map((h) => h.port);
    assert.deepEqual(at('const q931Port = q931 ? rangePorts(q931.ports)[0]! : 1720;'), [1720]);
    assert.deepEqual(at('return via.port ?? 5060;'), [5060]);
    assert.deepEqual(at('const relay = { from: 24000, to: 29999 };'), [24000, 29999]);
    assert.deepEqual(at('const p = tls ? 5061 : 5060; // 5062 in a comment'), [5061, 5060]);
    assert.deepEqual(at('/* 1720 */ x = 1'), []);
    assert.deepEqual(at("z.enum(['default-36000', 'legacy-2776'])"), [], 'a word with a port in it');
    assert.deepEqual(at('x = 15000.5; y = v15000'), []);
    // low numbers count only next to "port": an LDAP result code 80, a STUN error 443 are not ports
    assert.deepEqual(at('return code !== 80;'), []);
    assert.deepEqual(at('peerAddressFamilyMismatch: 443,'), []);
    assert.deepEqual(at('const port = secure ? 636 : 389;'), [636, 389]);
  });

  it('src/ outside src/ports binds no literal port', () => {
    const hits: string[] = [];
    for (const file of tsFiles(join(root, 'src'))) {
      const rel = relative(root, file);
      if (rel.startsWith(join('src', 'ports'))) continue;
      for (const h of literalPortBinds(readFileSync(file, 'utf8'))) hits.push(`${rel}:${h.line}: ${h.what}: ${h.code}`);
    }
    assert.deepEqual(hits, [], `take these ports from the plan (src/ports):\n${hits.join('\n')}`);
  });

  it('src/ outside src/ports writes a seed port only as a listed default of a remote party', () => {
    const found = new Map<string, { count: number; lines: string[] }>();
    for (const file of tsFiles(join(root, 'src'))) {
      const rel = relative(root, file).split(sep).join('/');
      // src/ports holds the seed; the generated ASN.1 tables are type indexes, not ports
      if (rel.startsWith('src/ports/') || rel.startsWith('src/h323/per/generated/')) continue;
      for (const h of seedPortLiterals(readFileSync(file, 'utf8'))) {
        const key = `${rel} ${h.port}`;
        const e = found.get(key) ?? { count: 0, lines: [] };
        e.count++;
        e.lines.push(`${rel}:${h.line}: ${h.code}`);
        found.set(key, e);
      }
    }
    const listed = new Map(REMOTE_DEFAULTS.map((d) => [`${d.file} ${d.port}`, d]));
    const unlisted = [...found].filter(([k, e]) => listed.get(k)?.count !== e.count).flatMap(([, e]) => e.lines);
    assert.deepEqual(
      unlisted,
      [],
      `take these ports from the plan (src/ports), or list a remote party's default in REMOTE_DEFAULTS:\n${unlisted.join('\n')}`,
    );
    const stale = REMOTE_DEFAULTS.filter((d) => !found.has(`${d.file} ${d.port}`)).map((d) => `${d.file} ${d.port}`);
    assert.deepEqual(stale, [], 'listed sites that no longer have their port: take them out of REMOTE_DEFAULTS');
  });
});
