import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** What a sipp run reported: its exit code and the cumulative counters of its statistics file. */
export interface SippResult {
  exitCode: number | null;
  successful: number;
  failed: number;
  retransmissions: number;
  /** Cumulative count of every column of sipp's statistics file (last row). */
  stats: Record<string, string>;
  stdout: string;
  stderr: string;
}

export interface SippOptions {
  scenario: string;
  /** `host:port` of the system under test. */
  target: string;
  transport?: 'u1' | 't1' | 'un' | 'tn';
  localIp?: string;
  calls: number;
  rate?: number;
  /** Most calls in flight at once. */
  limit?: number;
  /** Hard bound on the whole run (s): sipp is killed after it. */
  timeoutSeconds?: number;
  extraArgs?: string[];
}

/** Runs the real sipp (Debian `sip-tester`) in the background, bounded in calls and time, and reads its statistics. */
export async function runSipp(opts: SippOptions): Promise<SippResult> {
  const localPort = await freePort(opts.localIp ?? '127.0.0.1');
  const dir = mkdtempSync(join(tmpdir(), 'crossway-sipp-'));
  const statFile = join(dir, 'stat.csv');
  const timeout = opts.timeoutSeconds ?? 60;
  const args = [
    opts.target,
    '-sf',
    opts.scenario,
    '-t',
    opts.transport ?? 'u1',
    '-i',
    opts.localIp ?? '127.0.0.1',
    '-p',
    String(localPort),
    '-m',
    String(opts.calls),
    '-r',
    String(opts.rate ?? 100),
    '-l',
    String(opts.limit ?? 200),
    '-timeout',
    `${timeout}s`,
    '-timeout_error',
    '-recv_timeout',
    '10000',
    '-nostdin',
    '-trace_stat',
    '-stf',
    statFile,
    '-fd',
    '1',
    '-trace_err',
    '-error_file',
    join(dir, 'errors.log'),
    ...(opts.extraArgs ?? []),
  ];
  return await new Promise((resolve, reject) => {
    const child = spawn('sipp', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (stdout.length < 200_000) stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 200_000) stderr += d.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), (timeout + 15) * 1000);
    child.on('error', (err) => {
      clearTimeout(killer);
      reject(err);
    });
    child.on('close', (exitCode) => {
      clearTimeout(killer);
      const stats = readLastStats(statFile);
      let errors = '';
      try {
        errors = readFileSync(join(dir, 'errors.log'), 'utf8').slice(0, 4000);
      } catch {
        // no error file: sipp saw no errors
      }
      resolve({
        exitCode,
        successful: Number(stats['SuccessfulCall(C)'] ?? Number.NaN),
        failed: Number(stats['FailedCall(C)'] ?? Number.NaN),
        retransmissions: Number(stats['Retransmissions(C)'] ?? Number.NaN),
        stats,
        stdout,
        stderr: stderr + errors,
      });
    });
  });
}

/** A port free for both UDP and TCP now (sipp's own default is 5060, which parallel runs would share). */
async function freePort(address: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 4000);
    const ok = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, address, () => {
        const t = createServer();
        t.once('error', () => {
          u.close();
          resolve(false);
        });
        t.listen(port, address, () => {
          t.close();
          u.close();
          resolve(true);
        });
      });
    });
    if (ok) return port;
  }
  throw new Error('no free port for sipp');
}

function readLastStats(file: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return {};
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]?.split(';') ?? [];
  const last = lines[lines.length - 1]?.split(';') ?? [];
  const out: Record<string, string> = {};
  header.forEach((h, i) => {
    if (h) out[h] = last[i] ?? '';
  });
  return out;
}
