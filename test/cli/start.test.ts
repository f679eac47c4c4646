import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors.ts';
import { validateConfig } from '../../src/config/load.ts';
import { startNode } from '../../src/roles/start.ts';
import { uniqueOffset } from '../helpers/lab-node.ts';

const BIN = new URL('../../bin/crossway.js', import.meta.url).pathname;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/**
 * Runs the installed entry point (`bin/crossway.js`, what `npx crossway` runs) in `cwd`. `ready` resolves with the
 * node's JSON `ready` log record, or rejects if the process exits first; `done` resolves when it exits.
 */
function launch(args: string[], cwd?: string) {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let partial = '';
  let onReady: (rec: Record<string, unknown>) => void = () => {};
  let onEarlyExit: (e: Error) => void = () => {};
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    onReady = resolve;
    onEarlyExit = reject;
  });
  ready.catch(() => {}); // callers that only want `done` need not await it
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (rec.msg === 'ready') onReady(rec);
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const done = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      onEarlyExit(new Error(`crossway exited (${code ?? signal}) before ready:\n${out}\n${err}`));
      resolve({ code, signal, out, err });
    });
  });
  return { ready, done, kill: (signal: NodeJS.Signals) => child.kill(signal) };
}

function crossway(args: string[]): Promise<Exit> {
  return launch(args).done;
}

type ReadySocket = { node: string; listener: string; protocol: string; address: string; port: number };

/** Sends one datagram and waits for one answer (or undefined after the timeout). */
function udpRequest(host: string, port: number, payload: string, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = createSocket('udp4');
    const timer = setTimeout(() => {
      sock.close();
      resolve(undefined);
    }, timeoutMs);
    sock.on('message', (msg) => {
      clearTimeout(timer);
      sock.close();
      resolve(msg.toString());
    });
    sock.bind(0, '127.0.0.1', () => sock.send(payload, port, host));
  });
}

test('crossway start with no config file starts lab on loopback, keeps its certificate across starts, stops on SIGINT', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'crossway-noconfig-'));
  const offset = uniqueOffset();
  const first = launch(['start', '--port-offset', String(offset)], cwd);
  const ready = await first.ready;
  assert.equal(ready.role, 'lab');
  const sockets = ready.sockets as ReadySocket[];
  const edge = sockets.filter((s) => s.node === 'edge');
  const core = sockets.filter((s) => s.node === 'core');
  assert.ok(edge.length > 0 && core.length > 0, 'both an edge and a core listen');
  // Each node on its own loopback address, so both keep the seed's SIP ports (5061 TLS on the edge, 5060 on the core).
  assert.ok(edge.some((s) => s.protocol === 'tls' && s.address === '127.0.0.1' && s.port === 5061 + offset));
  const coreUdp = core.find((s) => s.protocol === 'udp' && s.address === '127.0.0.2' && s.port === 5060 + offset);
  assert.ok(coreUdp, `the core listens on UDP 127.0.0.2:${5060 + offset}: ${JSON.stringify(core)}`);
  const branch = `noconfig${process.pid}`;
  const answer = await udpRequest(
    '127.0.0.2',
    coreUdp.port,
    `OPTIONS sip:127.0.0.2:${coreUdp.port} SIP/2.0\r\n` +
      `Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK${branch};rport\r\n` +
      'Max-Forwards: 70\r\n' +
      `From: <sip:tester@127.0.0.1>;tag=t${branch}\r\n` +
      'To: <sip:127.0.0.2>\r\n' +
      `Call-ID: ${branch}@test\r\n` +
      'CSeq: 1 OPTIONS\r\n' +
      'Content-Length: 0\r\n\r\n',
  );
  assert.match(answer ?? '(no answer)', /^SIP\/2\.0 200 /, 'the core answers OPTIONS over UDP');

  // The data directory is ./data under the working directory, with a generated self-signed certificate.
  const certPath = join(cwd, 'data', 'tls', 'node-cert.pem');
  const keyPath = join(cwd, 'data', 'tls', 'node-key.pem');
  assert.ok(existsSync(certPath), 'self-signed certificate kept in ./data/tls');
  const cert = readFileSync(certPath);
  const key = readFileSync(keyPath);
  assert.match(cert.toString(), /^-----BEGIN CERTIFICATE-----/);
  assert.doesNotThrow(() => new X509Certificate(cert), 'the certificate is a valid X.509 PEM');

  first.kill('SIGINT');
  const r1 = await first.done;
  assert.equal(r1.code, 0, `clean exit after SIGINT:\n${r1.err}`);
  assert.match(r1.out, /"signal":"SIGINT"/);
  assert.match(r1.out, /"msg":"stopped"/);

  // A second start in the same directory reuses the certificate and key byte for byte.
  const second = launch(['start', '--port-offset', String(offset)], cwd);
  await second.ready;
  assert.ok(readFileSync(certPath).equals(cert), 'the second start kept the same certificate');
  assert.ok(readFileSync(keyPath).equals(key), 'the second start kept the same key');
  second.kill('SIGTERM');
  const r2 = await second.done;
  assert.equal(r2.code, 0, `clean exit after SIGTERM:\n${r2.err}`);
  assert.match(r2.out, /"msg":"stopped"/);
});

test('crossway start --config FILE starts the configured node and stops cleanly on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-cli-'));
  const cfg = join(dir, 'lab.yaml');
  writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nportOffset: ${uniqueOffset()}\n`);
  const run = launch(['start', '--config', cfg]);
  const ready = await run.ready;
  run.kill('SIGTERM');
  const r = await run.done;
  assert.equal(ready.role, 'lab');
  const sockets = ready.sockets as ReadySocket[];
  assert.ok(sockets.some((s) => s.node === 'edge' && s.address === '127.0.0.1' && s.protocol === 'tls'));
  assert.ok(sockets.some((s) => s.node === 'core' && s.address === '127.0.0.2' && s.protocol === 'udp'));
  assert.equal(r.code, 0, 'clean exit after SIGTERM');
  assert.match(r.out, /"msg":"stopped"/);
  assert.ok(existsSync(join(dir, 'data', 'tls', 'node-cert.pem')), 'self-signed certificate kept in the data dir');
});

test('crossway start --port-offset refuses a value outside the schema, naming portOffset', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'crossway-offset-'));
  const r = await launch(['start', '--port-offset', '99999999'], cwd).done;
  assert.equal(r.code, 1);
  assert.match(r.err, /portOffset/);
  const r2 = await launch(['start', '--port-offset', 'ten'], cwd).done;
  assert.notEqual(r2.code, 0);
  assert.match(r2.err, /port-offset.*integer/s);
  assert.ok(!existsSync(join(cwd, 'data')), 'nothing was started');
});

test('bin/crossway.js prints its version and refuses a bad file in config check with the field path', async () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const v = await crossway(['--version']);
  assert.equal(v.code, 0, v.err);
  assert.equal(v.out.trim(), pkg.version);
  const dir = mkdtempSync(join(tmpdir(), 'crossway-check-'));
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'role: core\nsip:\n  transports:\n    tls:\n      port: 70000\n');
  const r = await crossway(['config', 'check', bad]);
  assert.notEqual(r.code, 0);
  assert.match(r.err, /sip\.transports\.tls\.port/);
  assert.equal(r.out, '', 'nothing printed on stdout for a refused file');
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'role: core\n');
  const ok = await crossway(['config', 'check', good]);
  assert.equal(ok.code, 0, ok.err);
  assert.equal((JSON.parse(ok.out) as { role: string }).role, 'core');
});

test('the packages bin/crossway.js loads at run time are production dependencies, so `npm ci --omit=dev` runs it', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    dependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  const bin = readFileSync(BIN, 'utf8');
  const imported = [...bin.matchAll(/(?:from\s+|import\s*\(\s*)'([^'.][^']*)'/g)]
    .map((m) => m[1] ?? '')
    .filter((spec) => !spec.startsWith('node:'))
    .map((spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec)));
  assert.ok(imported.length > 0, 'bin/crossway.js imports a package (the TypeScript loader)');
  for (const name of imported) {
    assert.ok(pkg.dependencies?.[name], `${name} is in dependencies`);
    assert.equal(pkg.devDependencies?.[name], undefined, `${name} is not a devDependency`);
  }
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
