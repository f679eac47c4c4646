import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { uniqueOffset } from '../../helpers/lab-node.ts';
import { runSipp } from '../../helpers/sipp.ts';
import { usersFile } from './users.ts';

const ROOT = new URL('../../../', import.meta.url).pathname;
const SCENARIOS = join(ROOT, 'test/sipp/');

/** Starts `crossway start --config FILE` as its own process and waits for its "ready" log line. */
function startCrossway(config: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'start', '--config', config],
      {
        cwd: ROOT,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node not ready:\n${out.slice(-3000)}`));
    }, 60_000);
    const onData = (d: Buffer) => {
      if (out.length < 200_000) out += d.toString();
      if (out.includes('"msg":"ready"')) {
        clearTimeout(timer);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${code}) before ready:\n${out.slice(-3000)}`));
    });
  });
}

function stop(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
    child.kill(signal);
  });
}

/**
 * The durability rule of docs/store.md on a real process: after SIGTERM every binding is on disk (shutdown commits
 * the queue); after SIGKILL every binding answered more than `flushIntervalMs` before the kill is on disk, and one
 * answered less than `flushIntervalMs` before it is not (so the SIGKILL case shows the write-behind, not luck).
 */
describe('registrar restart of a real crossway process (docs/store.md durability rule)', () => {
  const cases = [
    { signal: 'SIGTERM', flushIntervalMs: 200, survive: true, prefix: 'pt' },
    { signal: 'SIGKILL', flushIntervalMs: 200, survive: true, prefix: 'pk' },
    { signal: 'SIGKILL', flushIntervalMs: 60_000, survive: false, prefix: 'pl' },
  ] as const;
  for (const { signal, flushIntervalMs, survive, prefix } of cases) {
    const name = survive
      ? `1,000 registrations survive ${signal} and are served by the restarted process`
      : `SIGKILL inside a ${flushIntervalMs / 1000} s flush interval loses the uncommitted registrations`;
    test(name, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'crossway-restart-proc-'));
      const offset = uniqueOffset();
      const config = join(dir, 'crossway.yaml');
      writeFileSync(
        config,
        [
          'role: lab',
          `dataDir: ${join(dir, 'data')}`,
          `portOffset: ${offset}`,
          'management: { https: false }',
          `registrar: { authenticate: false, store: { flushIntervalMs: ${flushIntervalMs} } }`,
          'log: { level: info }',
          '',
        ].join('\n'),
      );
      const target = `127.0.0.2:${5060 + offset}`;
      const users = usersFile(prefix, 1000);
      let child = await startCrossway(config);
      try {
        const reg = await runSipp({
          scenario: `${SCENARIOS}register.xml`,
          target,
          calls: 1000,
          rate: 500,
          timeoutSeconds: 60,
          extraArgs: ['-inf', users],
        });
        assert.equal(reg.successful, 1000, reg.stderr.slice(0, 2000));
        // SIGKILL: wait past a 200 ms flush interval, so every answered registration must be on disk; with 60 s
        // (and 1,000 writes, under the default maxBatch of 2,000) nothing has been committed yet.
        if (signal === 'SIGKILL') await new Promise((r) => setTimeout(r, 600));
      } finally {
        await stop(child, signal);
      }
      child = await startCrossway(config);
      try {
        const fetch = await runSipp({
          scenario: `${SCENARIOS}register-fetch.xml`,
          target,
          calls: 1000,
          rate: 500,
          timeoutSeconds: 60,
          extraArgs: ['-inf', users],
        });
        if (survive) {
          assert.equal(fetch.exitCode, 0, fetch.stderr.slice(0, 2000));
          assert.equal(fetch.successful, 1000);
          assert.equal(fetch.failed, 0);
        } else {
          // register-fetch.xml requires a Contact with expires= in the 200: a lost binding fails the call.
          assert.equal(fetch.successful, 0, 'no binding was committed before the kill');
          assert.equal(fetch.failed, 1000);
        }
      } finally {
        await stop(child, 'SIGTERM');
      }
    });
  }
});
