import { DEFAULT_LIMITS } from './parser.ts';
import type { MessageLimits, ParseFailure } from './types.ts';

/** What a stream framer yields. After an `error` frame the connection must be closed; the framer yields nothing more. */
export type Frame =
  | { type: 'message'; bytes: Buffer }
  | { type: 'ping' }
  | { type: 'pong' }
  | { type: 'error'; failure: ParseFailure };

const CR = 0x0d;
const LF = 0x0a;

/**
 * Cuts a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3: the header block, then exactly Content-Length body
 * octets; Content-Length is mandatory on streams) and RFC 5626 §4.4.1 keepalives: a double CRLF is a `ping` (answer
 * with a single CRLF), a lone CRLF a `pong`. A lone CRLF at the end of what was received is reported as `pong` at once
 * (a pong must not wait for more bytes); if the next bytes are another CRLF, they complete a `ping`.
 *
 * Bytes are kept as a list of received chunks and consumed by offset: a message that lies in one chunk is returned
 * as a view of it, one that spans chunks is copied once. The header block and the whole message are capped by
 * `maxMessageBytes`.
 */
export class StreamFramer {
  readonly #maxBytes: number;
  /** Received chunks; those before #head are consumed (compacted from time to time). */
  #chunks: Buffer[] = [];
  #head = 0;
  #off = 0;
  #len = 0;
  #closed = false;
  #afterLonePong = false;
  /** Scan state of the current header block: bytes scanned, resume point, current line. */
  #scanned = 0;
  #scanCi = 0;
  #scanI = 0;
  #lineBytes = 0;
  #lineFirstCR = false;
  #headerEnd = -1;
  #frameLen = -1;

  constructor(limits?: Partial<MessageLimits>) {
    this.#maxBytes = limits?.maxMessageBytes ?? DEFAULT_LIMITS.maxMessageBytes;
  }

  /** Bytes received and not yet returned in a frame. */
  get buffered(): number {
    return this.#len;
  }

  /** True after an error frame: the stream cannot be resynchronized. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Adds received bytes (the chunk is kept by reference: do not reuse its memory). */
  push(chunk: Buffer): void {
    if (this.#closed || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#len += chunk.length;
  }

  /** The next complete frame, or undefined when more bytes are needed (or after an error). */
  pull(): Frame | undefined {
    if (this.#closed) return undefined;
    for (;;) {
      if (this.#headerEnd < 0 && this.#scanned === 0) {
        if (this.#len === 0) return undefined;
        const b0 = this.#byteAt(0);
        if (b0 === CR || b0 === LF) {
          const k = this.#keepalive(b0);
          if (k === 'wait') return undefined;
          if (k === 'skip') continue;
          return k;
        }
        this.#afterLonePong = false;
        this.#scanCi = this.#head;
        this.#scanI = this.#off;
      }
      if (this.#headerEnd < 0) {
        if (!this.#scanHeaders()) {
          if (this.#scanned > this.#maxBytes) return this.#error('too-large', 'Message Too Large', 413);
          return undefined;
        }
        if (this.#headerEnd > this.#maxBytes) return this.#error('too-large', 'Message Too Large', 413);
        const cl = contentLength(this.#peek(this.#headerEnd));
        if (cl === 'missing') return this.#error('bad-content-length', 'Bad Request - Missing Content-Length', 400);
        if (cl === 'invalid') return this.#error('bad-content-length', 'Bad Request - Malformed Content-Length', 400);
        this.#frameLen = this.#headerEnd + cl;
        if (this.#frameLen > this.#maxBytes) return this.#error('too-large', 'Message Too Large', 413);
      }
      if (this.#len < this.#frameLen) return undefined;
      const bytes = this.#peek(this.#frameLen);
      this.#consume(this.#frameLen);
      this.#scanned = 0;
      this.#lineBytes = 0;
      this.#lineFirstCR = false;
      this.#headerEnd = -1;
      this.#frameLen = -1;
      return { type: 'message', bytes };
    }
  }

  /** Drains every complete frame. */
  *frames(): IterableIterator<Frame> {
    for (let f = this.pull(); f !== undefined; f = this.pull()) yield f;
  }

  #keepalive(b0: number): Frame | 'wait' | 'skip' {
    if (b0 === LF) {
      this.#consume(1);
      return 'skip';
    }
    if (this.#len < 2) return 'wait';
    if (this.#byteAt(1) !== LF) {
      this.#consume(1);
      return 'skip';
    }
    if (this.#afterLonePong) {
      // The second half of a ping whose first CRLF was reported as a pong.
      this.#afterLonePong = false;
      this.#consume(2);
      return { type: 'ping' };
    }
    if (this.#len === 2) {
      this.#consume(2);
      this.#afterLonePong = true;
      return { type: 'pong' };
    }
    if (this.#byteAt(2) === CR) {
      if (this.#len === 3) return 'wait';
      if (this.#byteAt(3) === LF) {
        this.#consume(4);
        return { type: 'ping' };
      }
    }
    this.#consume(2);
    return { type: 'pong' };
  }

  /**
   * Scans bytes not yet scanned for the empty line ending the header block (CRLF CRLF, or bare LFs), resuming
   * where the last call stopped: each byte is looked at once however the stream is cut. True when found.
   */
  #scanHeaders(): boolean {
    let ci = this.#scanCi;
    let i = this.#scanI;
    const chunks = this.#chunks;
    while (ci < chunks.length) {
      const chunk = chunks[ci]!;
      if (i >= chunk.length) {
        ci++;
        i = 0;
        continue;
      }
      const lf = chunk.indexOf(LF, i);
      const segEnd = lf < 0 ? chunk.length : lf;
      if (segEnd > i) {
        if (this.#lineBytes === 0) this.#lineFirstCR = chunk[i] === CR;
        this.#lineBytes += segEnd - i;
      }
      const next = lf < 0 ? chunk.length : lf + 1;
      this.#scanned += next - i;
      i = next;
      if (lf < 0) continue;
      const empty = this.#lineBytes === 0 || (this.#lineBytes === 1 && this.#lineFirstCR);
      this.#lineBytes = 0;
      this.#lineFirstCR = false;
      if (empty) {
        this.#headerEnd = this.#scanned;
        break;
      }
      if (this.#scanned > this.#maxBytes) break;
    }
    this.#scanCi = ci;
    this.#scanI = i;
    return this.#headerEnd >= 0;
  }

  #byteAt(n: number): number {
    let off = this.#off;
    for (let ci = this.#head; ci < this.#chunks.length; ci++) {
      const c = this.#chunks[ci]!;
      if (n < c.length - off) return c[off + n]!;
      n -= c.length - off;
      off = 0;
    }
    return -1;
  }

  /** The first n buffered bytes: a view when they lie in the first chunk, else one copy. */
  #peek(n: number): Buffer {
    const first = this.#chunks[this.#head]!;
    if (first.length - this.#off >= n) return first.subarray(this.#off, this.#off + n);
    const out = Buffer.allocUnsafe(n);
    let w = 0;
    let off = this.#off;
    for (let ci = this.#head; w < n; ci++) {
      const c = this.#chunks[ci]!;
      const take = Math.min(n - w, c.length - off);
      c.copy(out, w, off, off + take);
      w += take;
      off = 0;
    }
    return out;
  }

  #consume(n: number): void {
    this.#len -= n;
    while (n > 0) {
      const c = this.#chunks[this.#head]!;
      const avail = c.length - this.#off;
      if (n >= avail) {
        this.#head++;
        this.#off = 0;
        n -= avail;
      } else {
        this.#off += n;
        n = 0;
      }
    }
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }

  #error(code: ParseFailure['code'], reason: string, status: number): Frame {
    this.#closed = true;
    this.#chunks = [];
    this.#head = 0;
    this.#len = 0;
    return { type: 'error', failure: { code, reason, status } };
  }
}

/** Content-Length of a header block (long or compact name, any case); conflicting values are invalid. */
function contentLength(block: Buffer): number | 'missing' | 'invalid' {
  const text = block.toString('latin1');
  let found = -1;
  let pos = 0;
  while (pos < text.length) {
    let nl = text.indexOf('\n', pos);
    if (nl < 0) nl = text.length;
    const c0 = text.charCodeAt(pos);
    if (c0 !== 0x20 && c0 !== 0x09) {
      const colon = text.indexOf(':', pos);
      if (colon > pos && colon < nl) {
        const name = text.slice(pos, colon).trim().toLowerCase();
        if (name === 'content-length' || name === 'l') {
          let value = text.slice(colon + 1, nl).trim();
          // Folded continuation lines belong to the value.
          let next = nl + 1;
          while (next < text.length && (text.charCodeAt(next) === 0x20 || text.charCodeAt(next) === 0x09)) {
            let e = text.indexOf('\n', next);
            if (e < 0) e = text.length;
            value = (value + ' ' + text.slice(next, e).trim()).trim();
            next = e + 1;
          }
          if (!/^[0-9]{1,10}$/.test(value)) return 'invalid';
          const v = Number(value);
          if (found >= 0 && v !== found) return 'invalid';
          found = v;
        }
      }
    }
    pos = nl + 1;
  }
  return found < 0 ? 'missing' : found;
}
