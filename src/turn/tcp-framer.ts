import { fail, ok, type Result } from '../common/result.ts';
import { MAGIC_COOKIE } from '../stun/constants.ts';

/**
 * Splits a TURN-over-TCP byte stream into STUN messages (20-byte header + length) and ChannelData messages
 * (4-byte header + length, padded to a multiple of 4: RFC 8656 §12.5). Chunks are kept as a list: a frame that
 * lies within one chunk is handed out as a view, one that spans chunks is copied once.
 */
export class TcpFramer {
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Largest frame accepted: a STUN message of maximal length. */
  static readonly MAX_FRAME = 20 + 0xffff;

  push(chunk: Buffer, onFrame: (frame: Buffer) => void): Result<void> {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    for (;;) {
      if (this.#buffered < 4) return ok(undefined);
      const b0 = this.#peek(4)[0]!;
      let total: number;
      let frameLen: number;
      if (b0 < 0x40) {
        // STUN: length field counts the attributes after the 20-byte header; the cookie must be there.
        if (this.#buffered < 8) return ok(undefined);
        if (this.#peek(8).readUInt32BE(4) !== MAGIC_COOKIE) return fail('STUN frame without the magic cookie');
        frameLen = 20 + this.#peek(4).readUInt16BE(2);
        total = frameLen;
      } else if (b0 < 0x80) {
        frameLen = 4 + this.#peek(4).readUInt16BE(2);
        total = (frameLen + 3) & ~3;
      } else {
        return fail('neither STUN nor ChannelData on the stream');
      }
      if (total > TcpFramer.MAX_FRAME + 3) return fail('frame too large');
      if (this.#buffered < total) return ok(undefined);
      const frame = this.#consume(total);
      onFrame(frame.subarray(0, frameLen));
    }
  }

  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length >= n) return first;
    this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  #consume(n: number): Buffer {
    const first = this.#chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.#chunks);
      out = all.subarray(0, n);
      this.#chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.#buffered -= n;
    return out;
  }
}
