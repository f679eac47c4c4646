import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors.ts';
import { validateConfig } from '../../src/config/load.ts';
import { startNode } from '../../src/roles/start.ts';
import { uniqueOffset } from '../helpers/lab-node.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function crossway(args: string[], onLine?: (line: string, kill: () => void) => void) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const line of d.toString().split('\n')) if (line) onLine?.(line, () => child.kill('SIGTERM'));
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out, err });
    });
  });
}

test('crossway start with no config file starts a lab node, makes its certificate, and stops cleanly on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-cli-'));
  const cfg = join(dir, 'lab.yaml');
  writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nportOffset: ${uniqueOffset()}\n`);
  let ready: Record<string, unknown> | undefined;
  const r = await crossway(['start', '--config', cfg], (line, kill) => {
    const rec = JSON.parse(line) as Record<string, unknown>;
    if (rec.msg === 'ready') {
      ready = rec;
      kill();
    }
  });
  assert.ok(ready, `the node logged ready:\n${r.out}\n${r.err}`);
  assert.equal(ready.role, 'lab');
  const sockets = ready.sockets as { node: string; protocol: string; address: string }[];
  assert.ok(sockets.some((s) => s.node === 'edge' && s.address === '127.0.0.1' && s.protocol === 'tls'));
  assert.ok(sockets.some((s) => s.node === 'core' && s.address === '127.0.0.2' && s.protocol === 'udp'));
  assert.equal(r.code, 0, 'clean exit after SIGTERM');
  assert.match(r.out, /"msg":"stopped"/);
  const { existsSync } = await import('node:fs');
  assert.ok(existsSync(join(dir, 'data', 'tls', 'node-cert.pem')), 'self-signed certificate kept in the data dir');
});

test('crossway start refuses an invalid configuration with the path of the bad field', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-cli-'));
  const cfg = join(dir, 'bad.yaml');
  writeFileSync(cfg, 'role: edge\nsip:\n  timers:\n    t1: -5\n');
  const r = await crossway(['start', '--config', cfg]);
  assert.equal(r.code, 1);
  assert.match(r.err, /sip\.timers\.t1/);
});

test('an edge without privilege for its ports refuses to start, naming the port and the capability', async () => {
  const config = validateConfig({
    role: 'edge',
    network: { address: '127.0.0.1' },
    dataDir: mkdtempSync(join(tmpdir(), 'crossway-priv-')),
    management: { https: true },
  });
  await assert.rejects(
    startNode(config, { privileges: { privileged: false, unprivilegedPortStart: 1024 } }),
    (e: unknown) => e instanceof ConfigError && /443/.test(e.message) && /CAP_NET_BIND_SERVICE/.test(e.message),
  );
});

test('an edge or core needs network.address', async () => {
  const config = validateConfig({ role: 'core', dataDir: mkdtempSync(join(tmpdir(), 'crossway-addr-')) });
  await assert.rejects(
    startNode(config),
    (e: unknown) => e instanceof ConfigError && /network\.address/.test(e.message),
  );
});
