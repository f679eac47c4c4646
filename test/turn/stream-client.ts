import assert from 'node:assert/strict';
import type net from 'node:net';
import type { TurnAnswer, TurnClientSession } from '../../src/turn/client.ts';

/** A STUN-over-TCP client: messages are framed by their own length (RFC 8489 §6.2.2). */
export class StreamClient {
  readonly #sock: net.Socket;
  #buf = Buffer.alloc(0);
  readonly #waiting: ((b: Buffer) => void)[] = [];
  readonly #ready: Buffer[] = [];
  readonly #onData = (d: Buffer): void => {
    this.#buf = Buffer.concat([this.#buf, d]);
    while (this.#buf.length >= 20) {
      const len = 20 + this.#buf.readUInt16BE(2);
      if (this.#buf.length < len) break;
      const msg = this.#buf.subarray(0, len);
      this.#buf = this.#buf.subarray(len);
      const w = this.#waiting.shift();
      if (w) w(msg);
      else this.#ready.push(msg);
    }
  };

  constructor(sock: net.Socket) {
    this.#sock = sock;
    sock.on('data', this.#onData);
  }

  async exchange(session: TurnClientSession, request: Buffer): Promise<TurnAnswer> {
    this.#sock.write(request);
    const bytes =
      this.#ready.shift() ??
      (await new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no answer from the TURN server in 5 s')), 5000);
        this.#waiting.push((b) => {
          clearTimeout(t);
          resolve(b);
        });
      }));
    const a = session.answer(bytes);
    assert.ok(a, 'a STUN answer');
    return a;
  }

  /** RFC 6062 §5.4: after ConnectionBind the connection is a raw pipe; returns bytes already read past the answer. */
  detach(): Buffer {
    this.#sock.off('data', this.#onData);
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    return rest;
  }
}
