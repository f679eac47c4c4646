import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

/** GnuGk's build script in the shared peers (beside the repository, as on CI); it caches what it builds. */
const buildScript = new URL('../../../shared/peers/gnugk/build.sh', import.meta.url).pathname;

/**
 * The directory holding `gnugk` and `simph323`, built on first use by `scripts/setup.d/gnugk.sh` (about 7 minutes
 * the first time, cached after); undefined, with the reason, when the peer is not available.
 */
export function gnugkBinDir(): { dir: string } | { reason: string } {
  if (!existsSync(buildScript)) return { reason: `GnuGk peer not available: ${buildScript} not found` };
  try {
    const dir = execFileSync('bash', [buildScript], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    return existsSync(join(dir, 'gnugk')) ? { dir } : { reason: `GnuGk build gave no binary in ${dir}` };
  } catch (e) {
    return { reason: `GnuGk build failed: ${(e as Error).message.split('\n').slice(-3).join(' ')}` };
  }
}

/** Writes `ini` to `cwd/gk.ini` and starts `gnugk -c gk.ini -o gk.log` (trace level `trace`) there. */
export function startGnugk(bin: string, cwd: string, ini: string, trace = 0): ChildProcess {
  writeFileSync(join(cwd, 'gk.ini'), ini);
  const args = ['-c', 'gk.ini', '-o', 'gk.log', ...(trace > 0 ? [`-${'t'.repeat(trace)}`] : [])];
  return spawn(join(bin, 'gnugk'), args, { cwd, stdio: ['ignore', 'ignore', 'ignore'] });
}

/** Whether a TCP connection to host:port is accepted now (GnuGk is up once its call signalling port is). */
export function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** GnuGk's log so far (`cwd/gk.log`, written by `startGnugk`), '' before it exists. */
export function gnugkLog(cwd: string): string {
  const f = join(cwd, 'gk.log');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}

/**
 * Waits at most `ms` for GnuGk started in `cwd` to accept call signalling on `ip`:1720 (it is up then); throws with
 * the end of its log when it exits first or never listens.
 */
export async function gnugkListening(proc: ChildProcess, cwd: string, ip: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end && proc.exitCode === null) {
    if (await tcpOpen(ip, 1720)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  const why = proc.exitCode !== null ? `exited with ${proc.exitCode}` : `did not listen within ${ms} ms`;
  throw new Error(`GnuGk ${why}: ${gnugkLog(cwd).slice(-2000)}`);
}
