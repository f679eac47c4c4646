import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where the call scenarios live. */
export const SCENARIOS = new URL('../../sipp/', import.meta.url).pathname;

/** What one sipp run reported (its statistics file's last row). */
export interface SippRun {
  exitCode: number | null;
  successful: number;
  failed: number;
  stats: Record<string, string>;
  output: string;
}

/** A UDP port free now on `address` (random in 30000–33999, so parallel test files rarely collide). */
export async function freeUdpPort(address = '127.0.0.1'): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 30_000 + Math.floor(Math.random() * 4000);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, address, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free UDP port');
}

/**
 * Runs sipp on a given local port (uac when `target` is set, uas otherwise), bounded in calls and time. The
 * promise settles when sipp exits; `started` resolves once the process is up (give a uas a moment to bind).
 */
export function sipp(opts: {
  scenario: string;
  port: number;
  target?: string;
  service?: string;
  calls: number;
  rate?: number;
  limit?: number;
  timeoutSeconds?: number;
  extra?: string[];
  /** Stops sipp early (a uas left waiting for calls that failed on the caller's side). */
  signal?: AbortSignal;
}): Promise<SippRun> {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-sipp-call-'));
  const stat = join(dir, 'stat.csv');
  const timeout = opts.timeoutSeconds ?? 30;
  const args = [
    ...(opts.target ? [opts.target] : []),
    '-sf',
    opts.scenario,
    '-t',
    'u1',
    '-i',
    '127.0.0.1',
    '-p',
    String(opts.port),
    '-m',
    String(opts.calls),
    '-r',
    String(opts.rate ?? 50),
    '-l',
    // A uas takes every call offered (its -l would silently ignore INVITEs beyond it).
    String(opts.limit ?? (opts.target ? 100 : Math.max(100, opts.calls))),
    '-timeout',
    `${timeout}s`,
    '-timeout_error',
    '-nostdin',
    '-trace_stat',
    '-stf',
    stat,
    '-fd',
    '1',
    '-trace_err',
    '-error_file',
    join(dir, 'errors.log'),
    ...(opts.service ? ['-s', opts.service] : []),
    ...(opts.extra ?? []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn('sipp', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      killSignal: 'SIGKILL',
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    let output = '';
    const keep = (d: Buffer) => {
      if (output.length < 100_000) output += d.toString();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeout + 10) * 1000);
    child.on('error', (err) => {
      if (opts.signal?.aborted) return;
      clearTimeout(killer);
      reject(err);
    });
    child.on('close', (exitCode) => {
      clearTimeout(killer);
      let stats: Record<string, string> = {};
      try {
        const lines = readFileSync(stat, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '');
        const head = lines[0]?.split(';') ?? [];
        const last = lines[lines.length - 1]?.split(';') ?? [];
        stats = Object.fromEntries(head.map((h, i) => [h, last[i] ?? '']));
      } catch {
        // no statistics: sipp failed to start; the output says why
      }
      try {
        output += readFileSync(join(dir, 'errors.log'), 'utf8').slice(0, 4000);
      } catch {
        // no error log: no errors
      }
      resolve({
        exitCode,
        successful: Number(stats['SuccessfulCall(C)'] ?? Number.NaN),
        failed: Number(stats['FailedCall(C)'] ?? Number.NaN),
        stats,
        output,
      });
    });
  });
}

/** Lets a freshly spawned uas bind its socket before the caller starts. */
export const settle = (ms = 400) => new Promise((r) => setTimeout(r, ms));
