import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';

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
