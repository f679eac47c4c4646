import { connect as netConnect, type Socket } from 'node:net';
import { OperationalError } from '../../common/errors.ts';
import type { Clock } from '../../common/timers.ts';

/** An inclusive range of local ports for outbound connections (given by the port plan; seed: 25000–29999). */
export interface PortRange {
  from: number;
  to: number;
}

/**
 * Hands out source ports from the outbound range round-robin, so a port just released (in TIME_WAIT on the peer) is
 * not picked again at once. Starts at `from`.
 */
export class OutboundPortCursor {
  readonly range: PortRange;
  #next: number;

  constructor(range: PortRange) {
    if (!Number.isInteger(range.from) || !Number.isInteger(range.to) || range.from < 1 || range.to > 65535) {
      throw new RangeError(`bad outbound port range ${range.from}-${range.to}`);
    }
    if (range.from > range.to) throw new RangeError(`outbound port range ${range.from}-${range.to} is empty`);
    this.range = { from: range.from, to: range.to };
    this.#next = range.from;
  }

  get size(): number {
    return this.range.to - this.range.from + 1;
  }

  take(): number {
    const p = this.#next;
    this.#next = p >= this.range.to ? this.range.from : p + 1;
    return p;
  }
}

/** Why `connectFromRange` failed (`code` of the OperationalError). */
export const CONNECT_ERRORS = {
  exhausted: 'ERR_SIP_TRANSPORT_PORTS_EXHAUSTED',
  failed: 'ERR_SIP_TRANSPORT_CONNECT',
  timeout: 'ERR_SIP_TRANSPORT_CONNECT_TIMEOUT',
  aborted: 'ERR_SIP_TRANSPORT_ABORTED',
} as const;

export interface ConnectFromRangeOptions {
  host: string;
  port: number;
  /** Local address to bind; default the wildcard of the target's family. */
  localAddress?: string;
  cursor: OutboundPortCursor;
  clock: Clock;
  timeoutMs: number;
  /** Aborts the attempt (the layer is closing). */
  signal?: AbortSignal;
}

function attempt(opts: ConnectFromRangeOptions, localPort: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({
      host: opts.host,
      port: opts.port,
      localPort,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    const timer = opts.clock.setTimer(opts.timeoutMs, () => {
      finish(new OperationalError(CONNECT_ERRORS.timeout, `connect to ${opts.host}:${opts.port} timed out`));
    });
    const onAbort = () => finish(new OperationalError(CONNECT_ERRORS.aborted, 'transport layer closing'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (err?: Error) => {
      timer.cancel();
      opts.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('connect', onConnect);
      socket.removeListener('error', onError);
      if (err) {
        socket.on('error', () => {});
        socket.destroy();
        reject(err);
      } else resolve(socket);
    };
    const onConnect = () => finish();
    const onError = (err: Error) => finish(err);
    socket.once('connect', onConnect);
    socket.once('error', onError);
  });
}

/** True when the error means "this source port is taken, try another one". */
function portTaken(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException;
  // EADDRNOTAVAIL on connect(): the 4-tuple (our port, their address and port) is already in use.
  return e.code === 'EADDRINUSE' || (e.code === 'EADDRNOTAVAIL' && e.syscall === 'connect');
}

/**
 * Opens a TCP connection whose source port is taken from the outbound range, trying the next port while the chosen
 * one is in use, until every port of the range was tried. Other errors (refused, unreachable, timeout) are reported
 * at once: they do not depend on the source port.
 */
export async function connectFromRange(opts: ConnectFromRangeOptions): Promise<Socket> {
  const tries = opts.cursor.size;
  for (let i = 0; i < tries; i++) {
    if (opts.signal?.aborted) throw new OperationalError(CONNECT_ERRORS.aborted, 'transport layer closing');
    const localPort = opts.cursor.take();
    try {
      return await attempt(opts, localPort);
    } catch (err) {
      if (portTaken(err)) continue;
      if (err instanceof OperationalError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw new OperationalError(
        CONNECT_ERRORS.failed,
        `connect to ${opts.host}:${opts.port} from port ${localPort} failed: ${e.code ?? e.message}`,
        { cause: err },
      );
    }
  }
  const { from, to } = opts.cursor.range;
  throw new OperationalError(
    CONNECT_ERRORS.exhausted,
    `no free source port in outbound range ${from}-${to} for ${opts.host}:${opts.port}`,
  );
}
