import { fail, ok, type Result } from '../../common/result.ts';

/**
 * TPKT framing (RFC 1006 §6): `03 00 <length:16>` followed by the payload; the length counts the 4-octet header.
 * H.225.0 call signalling and a separate H.245 connection carry one PDU per TPKT over TCP.
 */

/** RFC 1006 §6: version 3. */
export const TPKT_VERSION = 3;
export const TPKT_HEADER = 4;

/** Wraps one payload in a TPKT header; throws RangeError when it cannot fit the 16-bit length. */
export function encodeTpkt(payload: Uint8Array): Uint8Array {
  const len = payload.length + TPKT_HEADER;
  if (len > 0xffff) throw new RangeError(`TPKT payload of ${payload.length} octets is too large`);
  const out = new Uint8Array(len);
  out[0] = TPKT_VERSION;
  out[1] = 0;
  out[2] = len >>> 8;
  out[3] = len & 0xff;
  out.set(payload, TPKT_HEADER);
  return out;
}

export interface TpktLimits {
  /** Largest TPKT accepted, header included (≤ 65535). */
  maxPacketBytes: number;
  /** Bytes buffered while waiting for the rest of a PDU (bounds memory per connection). */
  maxBufferedBytes: number;
}

export const DEFAULT_TPKT_LIMITS: Readonly<TpktLimits> = Object.freeze({
  maxPacketBytes: 65_535,
  maxBufferedBytes: 131_072,
});

/**
 * A sans-I/O TPKT stream framer: feed it TCP data as it arrives with `push`, get back whole payloads. It keeps a
 * list of received chunks and copies only when a PDU spans chunks. After an error the stream has lost framing and
 * must be closed: every later `push` returns the same error.
 */
export class TpktFramer {
  readonly #lim: TpktLimits;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #error: string | undefined;

  constructor(limits: Partial<TpktLimits> = {}) {
    this.#lim = { ...DEFAULT_TPKT_LIMITS, ...limits };
  }

  get buffered(): number {
    return this.#buffered;
  }

  /** Adds received bytes; returns the complete payloads now available, or why the stream is broken. */
  push(data: Uint8Array): Result<Uint8Array[]> {
    if (this.#error) return fail(this.#error);
    if (data.length) {
      this.#chunks.push(data);
      this.#buffered += data.length;
    }
    const out: Uint8Array[] = [];
    for (;;) {
      if (this.#buffered < TPKT_HEADER) break;
      const h = this.#peek(TPKT_HEADER);
      if (h[0] !== TPKT_VERSION) return this.#fail(`TPKT version ${h[0]} (expected 3)`);
      const len = (h[2]! << 8) | h[3]!;
      if (len <= TPKT_HEADER) return this.#fail(`TPKT length ${len} too small`);
      if (len > this.#lim.maxPacketBytes)
        return this.#fail(`TPKT length ${len} over the limit ${this.#lim.maxPacketBytes}`);
      if (this.#buffered < len) break;
      this.#consume(TPKT_HEADER);
      out.push(this.#consume(len - TPKT_HEADER));
    }
    if (this.#buffered > this.#lim.maxBufferedBytes) return this.#fail(`${this.#buffered} octets buffered`);
    return ok(out);
  }

  #fail(reason: string): Result<Uint8Array[]> {
    this.#error = reason;
    this.#chunks = [];
    this.#buffered = 0;
    return fail(reason);
  }

  #peek(n: number): Uint8Array {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.#chunks) {
      const take = Math.min(c.length, n - o);
      out.set(c.subarray(0, take), o);
      o += take;
      if (o === n) break;
    }
    return out;
  }

  /** Removes n bytes from the front: a view when they lie in one chunk, a copy across chunks. */
  #consume(n: number): Uint8Array {
    this.#buffered -= n;
    const first = this.#chunks[0]!;
    if (first.length >= n) {
      const view = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
      return view;
    }
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.#chunks[0]!;
      const take = Math.min(c.length, n - o);
      out.set(c.subarray(0, take), o);
      o += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    return out;
  }
}
