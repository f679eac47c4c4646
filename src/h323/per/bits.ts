import { PerError } from './errors.ts';

/** Reads bits MSB-first from a byte array; every read is bounds-checked and fails with `PerError`. */
export class BitReader {
  readonly data: Uint8Array;
  /** Position in bits from the start of `data`. */
  pos: number;
  /** End in bits. */
  readonly end: number;

  constructor(data: Uint8Array, startBit = 0, endBit = data.length * 8) {
    this.data = data;
    this.pos = startBit;
    this.end = endBit;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  #need(n: number): void {
    if (this.pos + n > this.end)
      throw new PerError('ERR_PER_DECODE', `truncated: need ${n} bits, ${this.end - this.pos} left`);
  }

  /** Reads n ≤ 32 bits as an unsigned number. */
  bits(n: number): number {
    if (n === 0) return 0;
    this.#need(n);
    let v = 0;
    let pos = this.pos;
    let left = n;
    const data = this.data;
    while (left > 0) {
      const used = pos & 7;
      const avail = 8 - used;
      const take = Math.min(avail, left);
      const byte = data[pos >>> 3]!;
      const chunk = (byte >>> (avail - take)) & ((1 << take) - 1);
      v = v * (1 << take) + chunk;
      pos += take;
      left -= take;
    }
    this.pos = pos;
    return v;
  }

  bit(): boolean {
    this.#need(1);
    const p = this.pos++;
    return ((this.data[p >>> 3]! >>> (7 - (p & 7))) & 1) === 1;
  }

  /** Skips to the next octet boundary (X.691 ALIGNED padding). */
  align(): void {
    const r = this.pos & 7;
    if (r !== 0) {
      this.#need(8 - r);
      this.pos += 8 - r;
    }
  }

  /** Reads n octets (a copy) at the current, octet-aligned position. */
  bytes(n: number): Uint8Array {
    this.#need(n * 8);
    if ((this.pos & 7) === 0) {
      const start = this.pos >>> 3;
      this.pos += n * 8;
      // a copy, and a plain Uint8Array even when `data` is a Buffer (whose slice is a view and whose species is Buffer)
      return new Uint8Array(this.data.subarray(start, start + n));
    }
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.bits(8);
    return out;
  }

  /** Reads n bits into a left-aligned byte array (a copy). */
  bitField(n: number): Uint8Array {
    this.#need(n);
    const out = new Uint8Array((n + 7) >>> 3);
    let i = 0;
    let left = n;
    while (left >= 8) {
      out[i++] = this.bits(8);
      left -= 8;
    }
    if (left > 0) out[i] = this.bits(left) << (8 - left);
    return out;
  }
}

/** Writes bits MSB-first into a growing buffer. */
export class BitWriter {
  buf: Uint8Array;
  /** Position in bits. */
  pos = 0;

  constructor(capacity = 256) {
    this.buf = new Uint8Array(capacity);
  }

  #ensure(nBits: number): void {
    const needBytes = (this.pos + nBits + 7) >>> 3;
    if (needBytes > this.buf.length) {
      let cap = this.buf.length * 2;
      while (cap < needBytes) cap *= 2;
      const nb = new Uint8Array(cap);
      nb.set(this.buf.subarray(0, (this.pos + 7) >>> 3));
      this.buf = nb;
    }
  }

  /** Writes the low n ≤ 32 bits of v (v ≥ 0). */
  bits(v: number, n: number): void {
    if (n === 0) return;
    this.#ensure(n);
    let pos = this.pos;
    let left = n;
    const buf = this.buf;
    while (left > 0) {
      const used = pos & 7;
      const avail = 8 - used;
      const take = Math.min(avail, left);
      const shift = left - take;
      const chunk = (v >>> shift) & ((1 << take) - 1);
      buf[pos >>> 3]! |= chunk << (avail - take);
      pos += take;
      left -= take;
    }
    this.pos = pos;
  }

  bit(b: boolean): void {
    this.#ensure(1);
    if (b) this.buf[this.pos >>> 3]! |= 0x80 >>> (this.pos & 7);
    this.pos++;
  }

  align(): void {
    const r = this.pos & 7;
    if (r !== 0) {
      this.#ensure(8 - r);
      this.pos += 8 - r;
    }
  }

  /** Writes octets at the current position (aligned or not). */
  bytes(data: Uint8Array, start = 0, end = data.length): void {
    const n = end - start;
    this.#ensure(n * 8);
    if ((this.pos & 7) === 0) {
      this.buf.set(data.subarray(start, end), this.pos >>> 3);
      this.pos += n * 8;
      return;
    }
    for (let i = start; i < end; i++) this.bits(data[i]!, 8);
  }

  /** Writes the first n bits of a left-aligned byte array. */
  bitField(data: Uint8Array, n: number): void {
    let i = 0;
    let left = n;
    while (left >= 8) {
      this.bits(data[i++] ?? 0, 8);
      left -= 8;
    }
    if (left > 0) this.bits((data[i] ?? 0) >>> (8 - left), left);
  }

  /** Empties the writer for reuse (zeroing only the octets written). */
  reset(): void {
    this.buf.fill(0, 0, (this.pos + 7) >>> 3);
    this.pos = 0;
  }

  /** The encoding, padded with zero bits to a whole octet. */
  finish(): Uint8Array {
    return this.buf.slice(0, (this.pos + 7) >>> 3);
  }
}
