import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { InternalError, OperationalError } from '../../common/errors.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { ConnectionInfo, ConnectionState, HostPort, ListenProtocol } from './types.ts';

/** What a connection tells its owner (the transport layer). Callbacks must not throw. */
export interface StreamConnectionHost {
  onData(conn: StreamConnection, chunk: Buffer): void;
  onClosed(conn: StreamConnection, why: string): void;
  /** A socket closed gracefully (`end()` sent): the owner destroys it if the peer does not close it soon. */
  linger(socket: Socket): void;
}

export interface StreamConnectionOptions {
  id: string;
  transport: 'TCP' | 'TLS';
  direction: 'inbound' | 'outbound';
  remote: HostPort;
  /** Known once the socket is bound; updated on `attach`. */
  local?: HostPort;
  /** The listener that accepted it (inbound). */
  listener?: ListenProtocol;
  clock: Clock;
  idleTimeoutMs: number;
  /** Deadline for connecting + TLS handshake (ms). */
  setupTimeoutMs: number;
  maxQueuedBytes: number;
  host: StreamConnectionHost;
}

interface Pending {
  bytes: Buffer;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface PongWaiter {
  sent: number;
  resolve: (rttMs: number) => void;
  reject: (err: Error) => void;
  timer: TimerHandle;
}

const PING = Buffer.from('\r\n\r\n');

const LEGAL: Record<ConnectionState, readonly ConnectionState[]> = {
  connecting: ['handshaking', 'open', 'closed'],
  handshaking: ['open', 'closed'],
  open: ['closed'],
  closed: [],
};

/** Removes the IPv4-mapped prefix a dual-stack socket reports (`::ffff:192.0.2.1` → `192.0.2.1`). */
export function plainAddress(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * One TCP or TLS connection: an explicit state machine (`connecting` → [`handshaking`] → `open` → `closed`) with a
 * send queue while not yet open, one idle timer on the injected clock (checked lazily: traffic only records the
 * time), and a close that rejects whatever is still queued.
 */
export class StreamConnection {
  readonly id: string;
  readonly transport: 'TCP' | 'TLS';
  readonly direction: 'inbound' | 'outbound';
  readonly remote: HostPort;
  readonly listener: ListenProtocol | undefined;
  readonly since: number;
  /** `TRANSPORT host:port` keys this connection may be reused for, besides its remote address. */
  readonly aliases = new Set<string>();
  local: HostPort;
  peerCertificate: PeerCertificate | undefined;
  /** Set by the owner: per-connection framing state. */
  framer: unknown;

  #state: ConnectionState = 'connecting';
  #wasOpen = false;
  #socket: Socket | TLSSocket | undefined;
  #queue: Pending[] = [];
  #queuedBytes = 0;
  #lastActivity: number;
  #timer: TimerHandle | undefined;
  #closeReason = '';
  #pongWaiters: PongWaiter[] = [];
  readonly #clock: Clock;
  readonly #idleMs: number;
  readonly #maxQueued: number;
  readonly #host: StreamConnectionHost;

  constructor(o: StreamConnectionOptions) {
    this.id = o.id;
    this.transport = o.transport;
    this.direction = o.direction;
    this.remote = o.remote;
    this.listener = o.listener;
    this.local = o.local ?? { address: '', port: 0 };
    this.#clock = o.clock;
    this.#idleMs = o.idleTimeoutMs;
    this.#maxQueued = o.maxQueuedBytes;
    this.#host = o.host;
    this.since = o.clock.wallNow();
    this.#lastActivity = o.clock.now();
    this.#timer = o.clock.setTimer(o.setupTimeoutMs, () => {
      this.#timer = undefined;
      if (this.#state === 'connecting' || this.#state === 'handshaking') this.close('setup-timeout');
    });
  }

  get state(): ConnectionState {
    return this.#state;
  }

  get closed(): boolean {
    return this.#state === 'closed';
  }

  /** Why it closed (empty while open). */
  get closeReason(): string {
    return this.#closeReason;
  }

  /** The one place where the state changes; rejects illegal edges and does the entry work. */
  #transition(to: ConnectionState): void {
    const from = this.#state;
    if (!LEGAL[from].includes(to)) throw new InternalError('ERR_SIP_CONN_STATE', `connection ${from} -> ${to}`);
    this.#state = to;
    if (to === 'open') {
      this.#timer?.cancel();
      this.#lastActivity = this.#clock.now();
      this.#armIdle(this.#idleMs);
      this.#flush();
    } else if (to === 'closed') {
      this.#timer?.cancel();
      this.#timer = undefined;
    }
  }

  /**
   * Gives the connection its socket. `handshaking`: a raw socket under a TLS handshake (watched for errors and close
   * only: its bytes belong to TLS); `open`: the socket SIP bytes flow on (replacing the raw one).
   */
  attach(socket: Socket | TLSSocket, next: 'open' | 'handshaking'): void {
    if (this.#state === 'closed') {
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    if (next !== this.#state && !LEGAL[this.#state].includes(next)) {
      throw new InternalError('ERR_SIP_CONN_STATE', `connection ${this.#state} -> ${next}`);
    }
    // Re-attaching (raw → TLS, or the same socket from handshaking to open) starts from clean listeners.
    if (this.#socket) this.#detach(this.#socket);
    this.#socket = socket;
    if (socket.localAddress) this.local = { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 };
    if (next === 'open') socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('end', this.#onEnd);
    if (next === 'open') this.#wasOpen = true;
    if (next !== this.#state) this.#transition(next);
  }

  /** True once the connection reached `open` (it counts as opened, then closed). */
  get wasOpen(): boolean {
    return this.#wasOpen;
  }

  #detach(socket: Socket): void {
    socket.on('error', () => {});
    socket.removeListener('data', this.#onData);
    socket.removeListener('error', this.#onError);
    socket.removeListener('close', this.#onClose);
    socket.removeListener('end', this.#onEnd);
  }

  readonly #onData = (chunk: Buffer) => {
    if (this.#state === 'closed') return;
    this.#lastActivity = this.#clock.now();
    this.#host.onData(this, chunk);
  };

  readonly #onError = (err: Error) => {
    this.close(`socket-error:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`);
  };

  readonly #onClose = () => {
    this.close('peer-closed');
  };

  readonly #onEnd = () => {
    // The peer half-closed: SIP has no use for a half-open stream.
    this.close('peer-closed');
  };

  #armIdle(delay: number): void {
    this.#timer = this.#clock.setTimer(delay, () => {
      this.#timer = undefined;
      if (this.#state !== 'open') return;
      const idle = this.#clock.now() - this.#lastActivity;
      if (idle >= this.#idleMs) this.close('idle-timeout', undefined, true);
      else this.#armIdle(this.#idleMs - idle);
    });
  }

  /** Queues or writes bytes; resolves when handed to the kernel, rejects when the connection fails or overflows. */
  send(bytes: Buffer): Promise<void> {
    if (this.#state === 'closed') {
      return Promise.reject(
        new OperationalError('ERR_SIP_TRANSPORT_CLOSED', `connection ${this.id} closed (${this.#closeReason})`),
      );
    }
    const pendingBytes = this.#state === 'open' ? (this.#socket?.writableLength ?? 0) : this.#queuedBytes;
    if (pendingBytes + bytes.length > this.#maxQueued) {
      return Promise.reject(
        new OperationalError(
          'ERR_SIP_TRANSPORT_BACKLOG',
          `connection ${this.id}: more than ${this.#maxQueued} B queued`,
        ),
      );
    }
    return new Promise((resolve, reject) => {
      const p: Pending = { bytes, resolve, reject };
      if (this.#state === 'open') this.#write(p);
      else {
        this.#queue.push(p);
        this.#queuedBytes += bytes.length;
      }
    });
  }

  /** Writes bytes without waiting (keepalive pongs, stateless answers); failures only close the connection. */
  sendNoWait(bytes: Buffer): void {
    this.send(bytes).catch(() => {});
  }

  #write(p: Pending): void {
    const socket = this.#socket;
    if (!socket || socket.destroyed) {
      p.reject(new OperationalError('ERR_SIP_TRANSPORT_CLOSED', `connection ${this.id} has no socket`));
      return;
    }
    this.#lastActivity = this.#clock.now();
    socket.write(p.bytes, (err) => {
      if (err) p.reject(new OperationalError('ERR_SIP_TRANSPORT_WRITE', `write on ${this.id} failed`, { cause: err }));
      else p.resolve();
    });
  }

  #flush(): void {
    const q = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const p of q) this.#write(p);
  }

  /**
   * RFC 5626 §4.4.1 client side: sends a double-CRLF ping; resolves with the round-trip time when the CRLF pong comes
   * back, rejects when it does not within `timeoutMs` (on the injected clock) or the connection closes.
   */
  ping(timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const w: PongWaiter = {
        sent: this.#clock.now(),
        resolve,
        reject,
        timer: this.#clock.setTimer(timeoutMs, () => {
          this.#pongWaiters = this.#pongWaiters.filter((x) => x !== w);
          reject(new OperationalError('ERR_SIP_TRANSPORT_KEEPALIVE', `no pong on ${this.id} within ${timeoutMs} ms`));
        }),
      };
      this.#pongWaiters.push(w);
      this.send(PING).catch((err: Error) => {
        w.timer.cancel();
        this.#pongWaiters = this.#pongWaiters.filter((x) => x !== w);
        reject(err);
      });
    });
  }

  /** A CRLF pong arrived: settles every pending ping. */
  pong(): void {
    const now = this.#clock.now();
    const waiters = this.#pongWaiters;
    this.#pongWaiters = [];
    for (const w of waiters) {
      w.timer.cancel();
      w.resolve(now - w.sent);
    }
  }

  /**
   * Closes; with `graceful`, what is already written (a 400 before closing) may still leave. The owner learns
   * through `onClosed`. Idempotent.
   */
  close(why: string, cause?: Error, graceful = false): void {
    if (this.#state === 'closed') return;
    this.#closeReason = why;
    this.#transition('closed');
    const err =
      cause ?? new OperationalError('ERR_SIP_TRANSPORT_CLOSED', `connection ${this.id} to ${fmt(this.remote)}: ${why}`);
    const q = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    for (const p of q) p.reject(err);
    const waiters = this.#pongWaiters;
    this.#pongWaiters = [];
    for (const w of waiters) {
      w.timer.cancel();
      w.reject(err);
    }
    const socket = this.#socket;
    if (socket) {
      this.#detach(socket);
      socket.on('error', () => {});
      // Let already-written bytes (a 400 before closing) leave, but never wait on a peer that does not read.
      if (graceful && !socket.destroyed) {
        socket.end();
        this.#host.linger(socket);
      } else socket.destroy();
    }
    this.#host.onClosed(this, why);
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      transport: this.transport,
      direction: this.direction,
      state: this.#state,
      remote: { ...this.remote },
      local: { ...this.local },
      since: this.since,
      aliases: [...this.aliases],
    };
  }
}

/** `host:port`, IPv6 bracketed. */
export function fmt(hp: HostPort): string {
  return hp.address.includes(':') ? `[${hp.address}]:${hp.port}` : `${hp.address}:${hp.port}`;
}
