import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { after } from 'node:test';

/** ooh323c's build script in the shared peers (beside the repository, as on CI); it caches the binary it prints. */
const buildScript = new URL('../../../shared/peers/ooh323c/build.sh', import.meta.url).pathname;

/** Path of ooh323c's `simple` test endpoint, built on first use; undefined when the peer is not available. */
export function ooh323cBinary(): string | undefined {
  if (!existsSync(buildScript)) return undefined;
  try {
    return execFileSync('bash', [buildScript], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

/** A TCP port free on `host` right now. */
export function freeTcpPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Polls `pred` every 25 ms until it holds, or rejects after `ms` with `what` and a diagnostic. */
export function waitFor(pred: () => boolean, ms: number, what: string, diag: () => string = () => ''): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      if (pred()) return resolve();
      if (Date.now() - start > ms) return reject(new Error(`timed out waiting for ${what}\n${diag()}`));
      setTimeout(tick, 25);
    };
    tick();
  });
}

/** How many times `needle` occurs in `s` (ooh323c prints one line per event, e.g. `--->Starting transmit channel`). */
export const count = (s: string, needle: string) => s.split(needle).length - 1;

/** A list for the endpoints a suite spawns; those still running are killed (SIGKILL) after it. Call inside describe. */
export function endpointProcesses(): ChildProcessWithoutNullStreams[] {
  const procs: ChildProcessWithoutNullStreams[] = [];
  after(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  });
  return procs;
}

export interface Ooh323cLauncherOptions<N extends string> {
  /** The `simple` binary (ooh323cBinary()). */
  bin: string;
  /** Working directory of the endpoints (they write their log files there). */
  cwd: string;
  /** The gatekeeper's RAS address, `ip:port`. */
  gk: string;
  /** Every spawned endpoint is added here (see endpointProcesses). */
  procs: ChildProcessWithoutNullStreams[];
  /** Each endpoint's stdout is appended to `out[name]`. */
  out: Record<N, string>;
  /** Arguments before the common ones (e.g. trace flags). */
  lead?: string[];
}

/**
 * One place for starting ooh323c test endpoints: the returned function spawns an endpoint named `name` (its H.323-ID)
 * on `ip:port` with RTP test media, no video, registered to `gk`, with `extra` arguments after the common ones.
 */
export function ooh323cLauncher<N extends string>(o: Ooh323cLauncherOptions<N>) {
  return (name: N, ip: string, port: number, extra: string[]): ChildProcessWithoutNullStreams => {
    const p = spawn(
      o.bin,
      [
        ...(o.lead ?? []),
        '--rtp-test',
        '--no-video',
        '--use-ip',
        ip,
        '--use-port',
        String(port),
        '--h323id',
        name,
        '--gk',
        o.gk,
        ...extra,
      ],
      { cwd: o.cwd, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    o.procs.push(p);
    p.stdout.on('data', (d) => {
      o.out[name] += d;
    });
    return p;
  };
}
