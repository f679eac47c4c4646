/**
 * A TURN allocation load generator on Crossway's STUN codec: many clients (one UDP socket each, so one 5-tuple
 * each), each doing the full exchange — Allocate → 401 → authenticated Allocate → success — with a bounded number
 * in flight. Used by `bench/turn.ts` against both Crossway and coturn; turnutils_uclient starts clients far too
 * slowly (≈ 8–9 allocations/s) to measure this.
 */
import dgram from 'node:dgram';
import { Method } from '../src/stun/constants.ts';
import { TurnClientSession, turnAttr } from '../src/turn/client.ts';

export interface AllocationLoadResult {
  allocated: number;
  failed: number;
  seconds: number;
  perSecond: number;
}

interface Client {
  sock: dgram.Socket;
  session: TurnClientSession;
}

export class AllocationLoad {
  readonly clients: Client[] = [];
  readonly #port: number;
  readonly #host: string;

  constructor(host: string, port: number) {
    this.#host = host;
    this.#port = port;
  }

  /** Makes `count` allocations with at most `window` in flight; each request waits up to `timeoutMs`. */
  async allocate(count: number, window = 64, timeoutMs = 2000): Promise<AllocationLoadResult> {
    const started = performance.now();
    let next = 0;
    let allocated = 0;
    let failed = 0;
    const worker = async () => {
      while (next < count) {
        next++;
        const sock = dgram.createSocket('udp4');
        await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
        const session = new TurnClientSession('alice', 'wonderland');
        const first = await this.#ask(
          sock,
          session,
          session.request(Method.allocate, [turnAttr.udpTransport()]),
          timeoutMs,
        );
        const second =
          first?.error === 401
            ? await this.#ask(sock, session, session.request(Method.allocate, [turnAttr.udpTransport()]), timeoutMs)
            : undefined;
        if (second && second.error === undefined && second.relayed.length === 1) {
          allocated++;
          this.clients.push({ sock, session });
        } else {
          failed++;
          sock.close();
        }
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    const seconds = (performance.now() - started) / 1000;
    return { allocated, failed, seconds, perSecond: allocated / seconds };
  }

  /** Deletes every allocation (Refresh with LIFETIME 0) and closes the sockets. */
  async release(window = 64, timeoutMs = 2000): Promise<{ released: number; seconds: number }> {
    const started = performance.now();
    let released = 0;
    const queue = [...this.clients];
    this.clients.length = 0;
    const worker = async () => {
      for (let c = queue.pop(); c; c = queue.pop()) {
        const a = await this.#ask(
          c.sock,
          c.session,
          c.session.request(Method.refresh, [turnAttr.lifetime(0)]),
          timeoutMs,
        );
        if (a && a.error === undefined) released++;
        c.sock.close();
      }
    };
    await Promise.all(Array.from({ length: window }, worker));
    return { released, seconds: (performance.now() - started) / 1000 };
  }

  #ask(sock: dgram.Socket, session: TurnClientSession, req: Buffer, timeoutMs: number) {
    return new Promise<ReturnType<TurnClientSession['answer']>>((resolve) => {
      const t = setTimeout(() => {
        sock.off('message', onMessage);
        resolve(undefined);
      }, timeoutMs);
      const onMessage = (m: Buffer) => {
        clearTimeout(t);
        sock.off('message', onMessage);
        resolve(session.answer(m));
      };
      sock.on('message', onMessage);
      sock.send(req, this.#port, this.#host);
    });
  }
}
