/**
 * "Ports come from the port plan": no module outside `src/ports` binds or listens on a port written as a number.
 * Port 0 (an ephemeral port) is allowed; RFC default ports of *remote* parties (5060 when a URI has none) are not
 * binds and are not looked at.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

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

describe('no literal ports outside the port plan', () => {
  it('the guard sees what it looks for', () => {
    assert.equal(literalPortBinds('server.listen(5061, host)').length, 1);
    assert.equal(literalPortBinds("sock.bind({ address: '0.0.0.0', port: 3478 })").length, 1);
    assert.equal(literalPortBinds('net.connect({ host, port, localPort: 25000 })').length, 1);
    assert.equal(literalPortBinds('server.listen(0)').length, 0);
    assert.equal(literalPortBinds("sock.bind({ port: plan.port('turn-udp') })").length, 0);
    assert.equal(literalPortBinds('return via.port ?? 5060;').length, 0);
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
});
