import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { OperationalError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';

/** A command a module offers to the local administrator (`crossway status`, `crossway blocks clear` …). */
export type ControlHandler = (args: Record<string, unknown>) => unknown | Promise<unknown>;

/** The control socket of a data directory. */
export function controlSocketPath(dataDir: string): string {
  return join(dataDir, 'control.sock');
}

const MAX_REQUEST_BYTES = 64 * 1024;

/**
 * The node's local control channel: a unix-domain socket in the data directory (mode 0600, so only the node's own
 * user — and root — can talk to it), one JSON request per line, one JSON answer per line. Modules register commands;
 * the CLI calls them with `callControl`. Not a network service: remote administration is the management API's job.
 */
export class ControlServer {
  readonly path: string;
  readonly #handlers = new Map<string, ControlHandler>();
  readonly #log: Logger;
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();

  constructor(dataDir: string, log: Logger) {
    this.path = controlSocketPath(dataDir);
    this.#log = log;
    this.register('commands', () => [...this.#handlers.keys()].sort());
  }

  register(command: string, handler: ControlHandler): void {
    this.#handlers.set(command, handler);
  }

  async listen(): Promise<void> {
    // A socket file left by a crashed node: remove it only when nothing answers on it.
    if (existsSync(this.path)) {
      const alive = await new Promise<boolean>((resolve) => {
        const s = connect(this.path, () => {
          s.destroy();
          resolve(true);
        });
        s.on('error', () => resolve(false));
      });
      if (alive) throw new OperationalError('ERR_CONTROL_IN_USE', `another node is running on ${this.path}`);
      unlinkSync(this.path);
    }
    const server = createServer((sock) => this.#serve(sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
    this.#server = server;
  }

  #serve(sock: Socket): void {
    this.#sockets.add(sock);
    sock.on('close', () => this.#sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        sock.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        return;
      }
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        void this.#answer(line).then((out) => {
          if (!sock.destroyed) sock.write(`${JSON.stringify(out)}\n`);
        });
      }
    });
  }

  async #answer(line: string): Promise<Record<string, unknown>> {
    let req: { id?: unknown; command?: unknown; args?: unknown };
    try {
      req = JSON.parse(line) as typeof req;
    } catch {
      return { ok: false, error: 'not JSON' };
    }
    const id = req.id ?? null;
    const handler = typeof req.command === 'string' ? this.#handlers.get(req.command) : undefined;
    if (!handler) return { id, ok: false, error: `unknown command ${String(req.command)}` };
    try {
      const args = req.args && typeof req.args === 'object' ? (req.args as Record<string, unknown>) : {};
      return { id, ok: true, result: await handler(args) };
    } catch (err) {
      this.#log.warn({ command: req.command, err: (err as Error).message }, 'control command failed');
      return { id, ok: false, error: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Calls a command on the node running with `dataDir`; rejects with a clear error when none runs there. */
export function callControl(
  dataDir: string,
  command: string,
  args: Record<string, unknown> = {},
  timeoutMs = 5000,
): Promise<unknown> {
  const path = controlSocketPath(dataDir);
  return new Promise((resolve, reject) => {
    const sock = connect(path);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new OperationalError('ERR_CONTROL_TIMEOUT', `no answer from the node on ${path}`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${JSON.stringify({ id: 1, command, args })}\n`));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      const res = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string };
      if (res.ok) resolve(res.result);
      else reject(new OperationalError('ERR_CONTROL_COMMAND', res.error ?? 'command failed'));
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        new OperationalError(
          'ERR_CONTROL_UNREACHABLE',
          err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
            ? `no node is running with data directory ${dataDir} (${path})`
            : `cannot reach the node on ${path}: ${err.message}`,
          { cause: err },
        ),
      );
    });
  });
}
