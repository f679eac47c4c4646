import { fail, ok, type Result } from '../../common/result.ts';
import { BitReader, BitWriter } from './bits.ts';
import { type Desc, K64, type SizeC } from './descriptor.ts';
import { PerError } from './errors.ts';

/**
 * The generic ALIGNED PER engine (ITU-T X.691, BASIC-PER ALIGNED variant). It interprets the descriptors made by
 * the generator, so no message structure is written by hand. Value model:
 * - SEQUENCE: a plain object keyed by component name; absent OPTIONAL components are absent keys. Unknown extension
 *   additions from a newer peer are kept opaque in `$unknown`, and a bitmap length different from ours in `$extBits`,
 *   so a message re-encodes to the same bytes.
 * - CHOICE: `{ choice: name, value }`; an unknown extension alternative is `{ choice: '$unknown', index, value: bytes }`.
 * - INTEGER: number (bigint only for unconstrained values beyond 2^53); ENUMERATED: the item name (an unknown
 *   extension item: its index as a number); BIT STRING: `{ length, data }`; OCTET STRING: Uint8Array;
 *   character strings: string; OBJECT IDENTIFIER: dotted string; NULL: null; SEQUENCE OF: array.
 */

export interface BitString {
  /** Number of bits. */
  length: number;
  /** Bits, MSB first, left-aligned. */
  data: Uint8Array;
}

export interface UnknownExtension {
  /** Position in the extension-addition bitmap. */
  index: number;
  /** The open-type contents, as received. */
  bytes: Uint8Array;
}

export interface ChoiceValue<N extends string = string, V = unknown> {
  choice: N;
  value: V;
}

export interface UnknownAlternative {
  choice: '$unknown';
  index: number;
  value: Uint8Array;
}

/** Explicit limits on what one decode may cost. */
export interface DecodeLimits {
  /** Nesting depth of constructed types. */
  maxDepth: number;
  /** Elements in one SEQUENCE OF. */
  maxItems: number;
  /** Size of the whole encoding (octets). */
  maxBytes: number;
  /** Values decoded in total (bounds the work a small message can cause). */
  maxNodes: number;
}

export const DEFAULT_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxDepth: 64,
  maxItems: 65_535,
  maxBytes: 65_535,
  maxNodes: 200_000,
});

const FRAG = 16384;
/** The size of an open type, an OBJECT IDENTIFIER's contents, an unconstrained OCTET STRING. */
const UNCONSTRAINED: SizeC = Object.freeze({ lb: 0, ub: undefined, ext: false });

function err(detail: string): PerError {
  return new PerError('ERR_PER_DECODE', detail);
}
function encErr(detail: string): PerError {
  return new PerError('ERR_PER_ENCODE', detail);
}

function bitsFor(range: number): number {
  // number of bits for a constrained whole number with `range` values (2 ≤ range ≤ 2^32)
  return range <= 1 ? 0 : 32 - Math.clz32(range - 1);
}

function octetsFor(n: number): number {
  let o = 1;
  while (n >= 2 ** (8 * o)) o++;
  return o;
}

// ─────────────────────────────────────────────── decoding ───────────────────────────────────────────────

class Decoder {
  r: BitReader;
  readonly lim: DecodeLimits;
  depth = 0;
  nodes = 0;

  constructor(r: BitReader, lim: DecodeLimits) {
    this.r = r;
    this.lim = lim;
  }

  /** X.691 §11.5.7: constrained whole number in lb..ub (ALIGNED). */
  constrained(lb: number, ub: number): number {
    const range = ub - lb + 1;
    const r = this.r;
    if (range <= 1) return lb;
    if (range <= 255) {
      const v = r.bits(bitsFor(range));
      if (v >= range) throw err(`value ${lb + v} above ${ub}`);
      return lb + v;
    }
    if (range === 256) {
      r.align();
      return lb + r.bits(8);
    }
    if (range <= K64) {
      r.align();
      const v = r.bits(16);
      if (v >= range) throw err(`value ${lb + v} above ${ub}`);
      return lb + v;
    }
    // §11.5.7.4: indefinite-length case: octet count as a constrained length 1..octets(range-1), then the octets.
    const maxOct = octetsFor(range - 1);
    const len = 1 + r.bits(bitsFor(maxOct));
    r.align();
    let v = 0;
    for (let i = 0; i < len; i++) v = v * 256 + r.bits(8);
    if (v > range - 1) throw err(`value ${lb + v} above ${ub}`);
    return lb + v;
  }

  /** §11.9.3.5–8: an unconstrained length determinant; `frag` is true when it is a 16K fragment count. */
  unconstrainedLength(): { n: number; frag: boolean } {
    const r = this.r;
    r.align();
    const b = r.bits(8);
    if ((b & 0x80) === 0) return { n: b, frag: false };
    if ((b & 0x40) === 0) return { n: ((b & 0x3f) << 8) | r.bits(8), frag: false };
    const m = b & 0x3f;
    if (m < 1 || m > 4) throw err(`bad fragment count ${m}`);
    return { n: m * FRAG, frag: true };
  }

  /** §11.6: normally small non-negative whole number. */
  normallySmall(): number {
    if (!this.r.bit()) return this.r.bits(6);
    const { n, frag } = this.unconstrainedLength();
    if (frag || n < 1 || n > 4) throw err('normally small number too large');
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + this.r.bits(8);
    return v;
  }

  /**
   * Reads the length of a counted thing (octets, bits, chars, items) and calls `chunk(count)` for each piece, with
   * fragmentation when the length is unconstrained (§11.9.3.8). Returns the total.
   */
  counted(size: SizeC, unitBits: number, alignChunks: boolean, chunk: (n: number) => void): number {
    const r = this.r;
    let extended = false;
    if (size.ext) extended = r.bit();
    if (!extended && size.ub !== undefined) {
      const n = size.lb === size.ub ? size.lb : this.constrained(size.lb, size.ub);
      if (unitBits > 0 && n * unitBits > r.remaining) throw err(`length ${n} exceeds the data`);
      if (alignChunks && n > 0) r.align();
      chunk(n);
      return n;
    }
    let total = 0;
    for (;;) {
      const { n, frag } = this.unconstrainedLength();
      if (unitBits > 0 && n * unitBits > r.remaining) throw err(`length ${n} exceeds the data`);
      total += n;
      if (total > this.lim.maxBytes * 8) throw new PerError('ERR_PER_LIMIT', `length ${total} over the limit`);
      if (n > 0) chunk(n);
      if (!frag) break;
    }
    return total;
  }

  /**
   * The length of a count that is not fragmented (the usual case), checked against the data left; or -1, with
   * nothing consumed, when it is a 16K fragment (then `counted` reads it). `s` must not be extensible.
   */
  quickLength(s: SizeC, unitBits: number): number {
    const r = this.r;
    let n: number;
    if (s.ub !== undefined) n = s.lb === s.ub ? s.lb : this.constrained(s.lb, s.ub);
    else {
      const save = r.pos;
      r.align();
      const b = r.bits(8);
      if ((b & 0x80) === 0) n = b;
      else if ((b & 0x40) === 0) n = ((b & 0x3f) << 8) | r.bits(8);
      else {
        r.pos = save;
        return -1;
      }
    }
    if (unitBits > 0 && n * unitBits > r.remaining) throw err(`length ${n} exceeds the data`);
    return n;
  }

  value(d: Desc): unknown {
    if (++this.nodes > this.lim.maxNodes) throw new PerError('ERR_PER_LIMIT', 'too many values');
    const r = this.r;
    switch (d.k) {
      case 'bool':
        return r.bit();
      case 'null':
        return null;
      case 'int':
        return this.integer(d);
      case 'enum': {
        if (d.ext && r.bit()) {
          const i = this.normallySmall();
          return i < d.ext.length ? d.ext[i] : d.root.length + i;
        }
        return d.root[this.constrained(0, d.root.length - 1)]!;
      }
      case 'bits':
        return this.bitString(d);
      case 'oct':
        return this.octetString(d);
      case 'str':
        return this.charString(d);
      case 'oid':
        return this.oid();
      case 'seq':
        return this.sequence(d);
      case 'seqof':
        return this.sequenceOf(d);
      case 'choice':
        return this.choice(d);
      case 'open':
        return d.inner ? this.open(d.inner) : this.openBytes();
    }
  }

  integer(d: Extract<Desc, { k: 'int' }>): number | bigint {
    const r = this.r;
    if (d.ext && r.bit()) return this.unconstrainedInt();
    if (d.lb !== undefined && d.ub !== undefined) return this.constrained(d.lb, d.ub);
    if (d.lb !== undefined) {
      // §11.7: semi-constrained: length + non-negative binary integer of (n - lb)
      const { n, frag } = this.unconstrainedLength();
      if (frag || n < 1) throw err('bad integer length');
      const bytes = r.bytes(n);
      let v = 0n;
      for (const b of bytes) v = (v << 8n) | BigInt(b);
      const out = v + BigInt(d.lb);
      return out <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(out) : out;
    }
    return this.unconstrainedInt();
  }

  unconstrainedInt(): number | bigint {
    const { n, frag } = this.unconstrainedLength();
    if (frag || n < 1) throw err('bad integer length');
    const bytes = this.r.bytes(n);
    let v = 0n;
    for (const b of bytes) v = (v << 8n) | BigInt(b);
    if ((bytes[0]! & 0x80) !== 0) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  bitString(size: SizeC): BitString {
    const r = this.r;
    // §16.6: an extensible size sends one bit; inside the root the encoding is as without the extension marker
    const extended = size.ext ? r.bit() : false;
    const d = extended ? UNCONSTRAINED : size.ext ? { lb: size.lb, ub: size.ub, ext: false } : size;
    if (d.ub !== undefined && d.lb === d.ub) {
      // §16.9–16.10: fixed size: no length; octet-aligned when longer than 16 bits
      if (d.ub === 0) return { length: 0, data: new Uint8Array(0) };
      if (d.ub > 16) r.align();
      return { length: d.ub, data: r.bitField(d.ub) };
    }
    let single: Uint8Array | undefined;
    let singleBits = 0;
    let w: BitWriter | undefined;
    const total = this.counted(d, 1, true, (n) => {
      const part = r.bitField(n);
      // fragments (§11.9.3.8) are joined bit by bit; the usual single piece is used as read
      if (!single) {
        single = part;
        singleBits = n;
        return;
      }
      if (!w) {
        w = new BitWriter(FRAG);
        w.bitField(single, singleBits);
      }
      w.bitField(part, n);
    });
    if (w) return { length: total, data: w.finish() };
    return { length: total, data: single ?? new Uint8Array(0) };
  }

  octetString(size: SizeC): Uint8Array {
    const r = this.r;
    // §17.3: an extensible size sends one bit; inside the root the encoding is as without the extension marker
    const extended = size.ext ? r.bit() : false;
    const d = extended ? UNCONSTRAINED : size.ext ? { lb: size.lb, ub: size.ub, ext: false } : size;
    if (d.ub !== undefined && d.lb === d.ub) {
      // §17.6–17.7: fixed size: ≤ 2 octets not aligned
      if (d.ub === 0) return new Uint8Array(0);
      if (d.ub > 2) r.align();
      return r.bytes(d.ub);
    }
    const n = this.quickLength(d, 8);
    if (n >= 0) {
      if (n === 0) return new Uint8Array(0);
      r.align();
      return r.bytes(n);
    }
    const parts: Uint8Array[] = [];
    this.counted(d, 8, true, (n) => {
      parts.push(r.bytes(n));
    });
    return parts.length === 1 ? parts[0]! : concat(parts);
  }

  charString(d: Extract<Desc, { k: 'str' }>): string {
    const r = this.r;
    if (d.b === 0) {
      // §32: not a known-multiplier type: octets with an unconstrained length
      const bytes = this.octetString(UNCONSTRAINED);
      return d.kind === 'UTF8String' ? new TextDecoder().decode(bytes) : latin1(bytes);
    }
    const b = d.b;
    const extended = d.ext ? r.bit() : false;
    if (!extended && d.ub !== undefined && d.lb === d.ub) {
      // §30.5.6–30.5.7: fixed length: no length determinant; aligned when longer than 16 bits
      if (d.ub === 0) return '';
      if (d.ub * b > 16) r.align();
      if (d.ub * b > r.remaining) throw err(`length ${d.ub} exceeds the data`);
      return this.chars(d, d.ub);
    }
    // §30.5.7: with a length determinant the characters are always octet-aligned in the ALIGNED variant
    // (OpenH323 encoders and Wireshark agree: nDPI RRQ frame 61, system-id sid "777#").
    const size: SizeC = extended ? UNCONSTRAINED : d.ext ? { lb: d.lb, ub: d.ub, ext: false } : d;
    const n = this.quickLength(size, b);
    if (n >= 0) {
      if (n === 0) return '';
      r.align();
      return this.chars(d, n);
    }
    let out = '';
    this.counted(size, b, true, (m) => {
      out += this.chars(d, m);
    });
    return out;
  }

  /** n characters of b bits each, as values or as indexes into the permitted alphabet (§30.5.4). */
  chars(d: Extract<Desc, { k: 'str' }>, n: number): string {
    const r = this.r;
    const b = d.b;
    const codes = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const c = r.bits(b);
      if (d.alphabet) {
        const code = d.alphabet[c];
        if (code === undefined) throw err(`character index ${c} outside the permitted alphabet`);
        codes[i] = code;
      } else {
        if (c > d.maxCode || (d.permitted && !d.permitted.has(c))) throw err(`character ${c} not permitted`);
        codes[i] = c;
      }
    }
    return n <= 4096 ? String.fromCodePoint(...codes) : codes.map((c) => String.fromCodePoint(c)).join('');
  }

  oid(): string {
    const bytes = this.octetString(UNCONSTRAINED);
    return decodeOidContents(bytes);
  }

  enter(): void {
    if (++this.depth > this.lim.maxDepth)
      throw new PerError('ERR_PER_LIMIT', `nesting deeper than ${this.lim.maxDepth}`);
  }

  sequence(d: Extract<Desc, { k: 'seq' }>): Record<string, unknown> {
    this.enter();
    const r = this.r;
    const out: Record<string, unknown> = {};
    const extPresent = d.ext ? r.bit() : false;
    // §19.2: a bit-map for the OPTIONAL and DEFAULT root components
    // (read as one number when it fits 30 bits, else bit by bit)
    const wide = d.optCount > 30;
    const presence = d.optCount > 0 && !wide ? r.bits(d.optCount) : 0;
    const flags = wide ? Array.from({ length: d.optCount }, () => r.bit()) : undefined;
    let bit = d.optCount;
    for (const f of d.fields) {
      if (f.optional) {
        bit--;
        if (flags ? !flags[d.optCount - 1 - bit] : ((presence >>> bit) & 1) === 0) continue;
      }
      try {
        out[f.name] = this.value(f.type);
      } catch (e) {
        throw e instanceof PerError ? e.prepend(`.${f.name}`) : e;
      }
    }
    if (extPresent) {
      // §19.7–19.9: normally small length of the extension-addition bit-map, the bit-map, then each addition as an open type
      const n = this.normallySmall() + 1;
      const present: boolean[] = new Array(n);
      for (let i = 0; i < n; i++) present[i] = r.bit();
      if (n !== d.additions.length) out.$extBits = n;
      let unknown: Array<{ index: number; bytes: Uint8Array }> | undefined;
      for (let i = 0; i < n; i++) {
        if (!present[i]) continue;
        const add = d.additions[i];
        if (!add) {
          if (!unknown) unknown = [];
          unknown.push({ index: i, bytes: this.openBytes() });
          continue;
        }
        const name = add.fields[0]!.name;
        try {
          if (add.seq) Object.assign(out, this.open(add.seq) as Record<string, unknown>);
          else out[name] = this.open(add.fields[0]!.type);
        } catch (e) {
          throw e instanceof PerError ? e.prepend(`.${name}`) : e;
        }
      }
      if (unknown) out.$unknown = unknown;
    }
    this.depth--;
    return out;
  }

  sequenceOf(d: Extract<Desc, { k: 'seqof' }>): unknown[] {
    this.enter();
    const extended = d.ext ? this.r.bit() : false;
    const size: SizeC = extended ? UNCONSTRAINED : d.ext ? { lb: d.lb, ub: d.ub, ext: false } : d;
    const n = this.quickLength(size, 0);
    if (n >= 0) {
      if (n > this.lim.maxItems) throw new PerError('ERR_PER_LIMIT', `more than ${this.lim.maxItems} items`);
      const items = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        try {
          items[i] = this.value(d.item);
        } catch (e) {
          throw e instanceof PerError ? e.prepend(`[${i}]`) : e;
        }
      }
      this.depth--;
      return items;
    }
    const out: unknown[] = [];
    this.counted(size, 0, false, (n) => {
      if (out.length + n > this.lim.maxItems)
        throw new PerError('ERR_PER_LIMIT', `more than ${this.lim.maxItems} items`);
      for (let i = 0; i < n; i++) {
        try {
          out.push(this.value(d.item));
        } catch (e) {
          throw e instanceof PerError ? e.prepend(`[${out.length}]`) : e;
        }
      }
    });
    this.depth--;
    return out;
  }

  choice(d: Extract<Desc, { k: 'choice' }>): unknown {
    this.enter();
    const r = this.r;
    let result: unknown;
    if (d.ext && r.bit()) {
      // §23.8: extension alternative: normally small index, then an open type
      const i = this.normallySmall();
      const alt = d.ext[i];
      if (!alt) result = { choice: '$unknown', index: i, value: this.openBytes() };
      else {
        try {
          result = { choice: alt.name, value: this.open(alt.type) };
        } catch (e) {
          throw e instanceof PerError ? e.prepend(`.${alt.name}`) : e;
        }
      }
    } else {
      const i = d.root.length > 1 ? this.constrained(0, d.root.length - 1) : 0;
      const alt = d.root[i];
      if (!alt) throw err(`choice index ${i} out of range`);
      try {
        result = { choice: alt.name, value: this.value(alt.type) };
      } catch (e) {
        throw e instanceof PerError ? e.prepend(`.${alt.name}`) : e;
      }
    }
    this.depth--;
    return result;
  }

  /** §11.2: an open type: a length-prefixed (fragmentable) octet string holding a complete encoding. */
  openBytes(): Uint8Array {
    return this.octetString(UNCONSTRAINED);
  }

  /** Decodes an open type's contents in place (a bounded view of the same data); copies only when fragmented. */
  open(d: Desc): unknown {
    const outer = this.r;
    const save = outer.pos;
    const { n, frag } = this.unconstrainedLength();
    if (frag) {
      outer.pos = save;
      const bytes = this.openBytes();
      this.r = new BitReader(bytes);
    } else {
      if (n * 8 > outer.remaining) throw err(`open type of ${n} octets exceeds the data`);
      this.r = new BitReader(outer.data, outer.pos, outer.pos + n * 8);
      outer.pos += n * 8;
    }
    try {
      return this.value(d);
    } finally {
      this.r = outer;
    }
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function latin1(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** X.690 §8.19: OBJECT IDENTIFIER contents octets to dotted form. */
export function decodeOidContents(bytes: Uint8Array): string {
  if (bytes.length === 0) throw err('empty OBJECT IDENTIFIER');
  const arcs: number[] = [];
  let v = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (v === 0 && b === 0x80) throw err('OBJECT IDENTIFIER arc with a leading 0x80');
    v = v * 128 + (b & 0x7f);
    if (v > Number.MAX_SAFE_INTEGER) throw err('OBJECT IDENTIFIER arc too large');
    if ((b & 0x80) === 0) {
      arcs.push(v);
      v = 0;
    } else if (i === bytes.length - 1) throw err('OBJECT IDENTIFIER truncated');
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

const OID_CACHE = new Map<string, Uint8Array>();

/** Protocol identifiers and the like repeat: keep a bounded cache of their contents octets. */
function oidContentsCached(oid: string): Uint8Array {
  let c = OID_CACHE.get(oid);
  if (!c) {
    c = encodeOidContents(oid);
    if (OID_CACHE.size >= 256) OID_CACHE.clear();
    OID_CACHE.set(oid, c);
  }
  return c;
}

/** Dotted OBJECT IDENTIFIER to X.690 contents octets. */
export function encodeOidContents(oid: string): Uint8Array {
  const arcs = oid.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw encErr(`bad OBJECT IDENTIFIER ${JSON.stringify(oid)}`);
    return Number(s);
  });
  if (arcs.length < 2 || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! >= 40)) throw encErr(`bad OBJECT IDENTIFIER ${oid}`);
  const out: number[] = [];
  const sub = [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)];
  for (const a of sub) {
    const tmp = [a & 0x7f];
    let x = Math.floor(a / 128);
    while (x > 0) {
      tmp.unshift((x & 0x7f) | 0x80);
      x = Math.floor(x / 128);
    }
    out.push(...tmp);
  }
  return Uint8Array.from(out);
}

/**
 * Decodes one complete PER encoding of `d`. Never throws: bad input gives `{ ok: false, reason }` where `reason` is
 * a `PerError` whose message names the failing field.
 */
export function decodePer<T = unknown>(
  d: Desc,
  bytes: Uint8Array,
  rootName = '',
  limits: Partial<DecodeLimits> = {},
): Result<T, PerError> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  try {
    if (bytes.length > lim.maxBytes)
      throw new PerError('ERR_PER_LIMIT', `${bytes.length} octets over the limit of ${lim.maxBytes}`);
    const dec = new Decoder(new BitReader(bytes), lim);
    return ok(dec.value(d) as T);
  } catch (e) {
    if (e instanceof PerError) return fail(e.finish(rootName || descName(d)));
    // Anything else is a bug in the engine; report it as a decode failure rather than crash the node.
    return fail(
      new PerError('ERR_PER_DECODE', `internal: ${e instanceof Error ? e.message : String(e)}`).finish(
        rootName || descName(d),
      ),
    );
  }
}

function descName(d: Desc): string {
  return d.k === 'seq' || d.k === 'choice' ? d.name : d.k;
}

// ─────────────────────────────────────────────── encoding ───────────────────────────────────────────────

/**
 * Scratch writers for open types, shared by all encodes: encoding is synchronous and every writer is reset and
 * returned before the encode that took it finishes.
 */
const SCRATCH: BitWriter[] = [];
/** The writer top-level encodes use (undefined while one is in use). */
let rootWriter: BitWriter | undefined = new BitWriter(1024);

class Encoder {
  w: BitWriter;

  constructor(w: BitWriter) {
    this.w = w;
  }

  constrained(v: number, lb: number, ub: number): void {
    const range = ub - lb + 1;
    const w = this.w;
    if (range <= 1) return;
    const n = v - lb;
    if (range <= 255) w.bits(n, bitsFor(range));
    else if (range === 256) {
      w.align();
      w.bits(n, 8);
    } else if (range <= K64) {
      w.align();
      w.bits(n, 16);
    } else {
      const len = octetsFor(n);
      w.bits(len - 1, bitsFor(octetsFor(range - 1)));
      w.align();
      for (let i = len - 1; i >= 0; i--) w.bits(Math.floor(n / 2 ** (8 * i)) & 0xff, 8);
    }
  }

  unconstrainedLength(n: number): void {
    const w = this.w;
    w.align();
    if (n < 128) w.bits(n, 8);
    else w.bits(0x8000 | n, 16);
  }

  normallySmall(n: number): void {
    if (n < 64) {
      this.w.bit(false);
      this.w.bits(n, 6);
      return;
    }
    this.w.bit(true);
    const len = octetsFor(n);
    this.unconstrainedLength(len);
    for (let i = len - 1; i >= 0; i--) this.w.bits(Math.floor(n / 2 ** (8 * i)) & 0xff, 8);
  }

  /** Writes a length and the counted units, fragmenting when the length is unconstrained (§11.9.3.8). */
  counted(size: SizeC, total: number, alignChunks: boolean, chunk: (from: number, n: number) => void): void {
    const w = this.w;
    const inRoot = size.ub === undefined ? total >= size.lb : total >= size.lb && total <= size.ub;
    if (size.ext) w.bit(!inRoot);
    else if (!inRoot) throw encErr(`size ${total} outside ${size.lb}..${size.ub ?? 'MAX'}`);
    if (inRoot && size.ub !== undefined) {
      if (size.lb !== size.ub) this.constrained(total, size.lb, size.ub);
      if (alignChunks && total > 0) w.align();
      if (total > 0) chunk(0, total);
      return;
    }
    let i = 0;
    for (;;) {
      const rem = total - i;
      if (rem >= FRAG) {
        const m = Math.min(4, Math.floor(rem / FRAG));
        w.align();
        w.bits(0xc0 | m, 8);
        chunk(i, m * FRAG);
        i += m * FRAG;
        continue;
      }
      this.unconstrainedLength(rem);
      if (rem > 0) chunk(i, rem);
      break;
    }
  }

  value(d: Desc, v: unknown): void {
    const w = this.w;
    switch (d.k) {
      case 'bool':
        if (typeof v !== 'boolean') throw encErr('expected a boolean');
        w.bit(v);
        return;
      case 'null':
        return;
      case 'int':
        this.integer(d, v);
        return;
      case 'enum': {
        if (typeof v === 'number') {
          if (!d.ext || v < d.root.length) throw encErr(`unknown enumeration index ${v}`);
          w.bit(true);
          this.normallySmall(v - d.root.length);
          return;
        }
        const i = d.index.get(v as string);
        if (i === undefined) throw encErr(`unknown enumeration ${String(v)}`);
        const isExt = d.root[i] !== v;
        if (d.ext) w.bit(isExt);
        if (isExt) this.normallySmall(i);
        else this.constrained(i, 0, d.root.length - 1);
        return;
      }
      case 'bits':
        this.bitString(d, v as BitString);
        return;
      case 'oct':
        this.octetString(d, v as Uint8Array);
        return;
      case 'str':
        this.charString(d, v);
        return;
      case 'oid':
        if (typeof v !== 'string') throw encErr('expected a dotted OBJECT IDENTIFIER');
        this.octetString(UNCONSTRAINED, oidContentsCached(v));
        return;
      case 'seq':
        this.sequence(d, v);
        return;
      case 'seqof': {
        if (!Array.isArray(v)) throw encErr('expected an array');
        const size = this.sizeBit(d, v.length);
        if (this.quickLength(size, v.length)) {
          for (let i = 0; i < v.length; i++) {
            try {
              this.value(d.item, v[i]);
            } catch (e) {
              throw e instanceof PerError ? e.prepend(`[${i}]`) : e;
            }
          }
          return;
        }
        this.counted(size, v.length, false, (from, n) => {
          for (let i = from; i < from + n; i++) {
            try {
              this.value(d.item, v[i]);
            } catch (e) {
              throw e instanceof PerError ? e.prepend(`[${i}]`) : e;
            }
          }
        });
        return;
      }
      case 'choice':
        this.choice(d, v);
        return;
      case 'open':
        if (d.inner) this.openValue(d.inner, v);
        else this.open(v as Uint8Array);
        return;
    }
  }

  integer(d: Extract<Desc, { k: 'int' }>, v: unknown): void {
    if (typeof v !== 'number' && typeof v !== 'bigint') throw encErr('expected an integer');
    if (typeof v === 'number' && !Number.isInteger(v)) throw encErr(`${v} is not an integer`);
    const inRoot = (d.lb === undefined || v >= d.lb) && (d.ub === undefined || v <= d.ub);
    if (d.ext) this.w.bit(!inRoot);
    else if (!inRoot) throw encErr(`${v} outside ${d.lb ?? 'MIN'}..${d.ub ?? 'MAX'}`);
    if (inRoot && d.lb !== undefined && d.ub !== undefined) {
      this.constrained(Number(v), d.lb, d.ub);
      return;
    }
    if (inRoot && d.lb !== undefined) {
      let n = BigInt(v) - BigInt(d.lb);
      const bytes: number[] = [];
      do {
        bytes.unshift(Number(n & 0xffn));
        n >>= 8n;
      } while (n > 0n);
      this.unconstrainedLength(bytes.length);
      this.w.bytes(Uint8Array.from(bytes));
      return;
    }
    // §11.8: two's-complement in the fewest octets
    let n = BigInt(v);
    const bytes: number[] = [];
    for (;;) {
      bytes.unshift(Number(n & 0xffn));
      const rest = n >> 8n;
      if ((rest === 0n && (bytes[0]! & 0x80) === 0) || (rest === -1n && (bytes[0]! & 0x80) !== 0)) break;
      n = rest;
    }
    this.unconstrainedLength(bytes.length);
    this.w.bytes(Uint8Array.from(bytes));
  }

  /** Writes the length determinant of a count that needs no fragmenting (`s` in root, not extensible); false if it does. */
  quickLength(s: SizeC, total: number): boolean {
    if (s.ub !== undefined) {
      if (s.lb !== s.ub) this.constrained(total, s.lb, s.ub);
      return true;
    }
    if (total >= FRAG) return false;
    this.unconstrainedLength(total);
    return true;
  }

  /**
   * §16.6, §17.3, §30.4: writes the extension bit of an extensible size; returns the size to encode with (the root
   * size without its marker, or none when the value is outside the root).
   */
  sizeBit(size: SizeC, n: number): SizeC {
    const inRoot = n >= size.lb && (size.ub === undefined || n <= size.ub);
    if (!size.ext) {
      if (!inRoot) throw encErr(`size ${n} outside ${size.lb}..${size.ub ?? 'MAX'}`);
      return size;
    }
    this.w.bit(!inRoot);
    return inRoot ? { lb: size.lb, ub: size.ub, ext: false } : UNCONSTRAINED;
  }

  bitString(size: SizeC, v: BitString): void {
    if (!v || typeof v.length !== 'number' || !(v.data instanceof Uint8Array)) throw encErr('expected a BIT STRING');
    if (v.data.length * 8 < v.length) throw encErr('BIT STRING data shorter than its length');
    const w = this.w;
    const d = this.sizeBit(size, v.length);
    if (d.ub !== undefined && d.lb === d.ub) {
      if (v.length !== d.ub) throw encErr(`BIT STRING of ${v.length} bits, expected ${d.ub}`);
      if (d.ub === 0) return;
      if (d.ub > 16) w.align();
      w.bitField(v.data, d.ub);
      return;
    }
    if (this.quickLength(d, v.length)) {
      if (v.length > 0) {
        w.align();
        w.bitField(v.data, v.length);
      }
      return;
    }
    this.counted(d, v.length, true, (from, n) => {
      if (from === 0 && n === v.length) w.bitField(v.data, n);
      else for (let i = from; i < from + n; i++) w.bit(((v.data[i >>> 3]! >>> (7 - (i & 7))) & 1) === 1);
    });
  }

  octetString(size: SizeC, v: Uint8Array): void {
    if (!(v instanceof Uint8Array)) throw encErr('expected octets');
    const w = this.w;
    const d = this.sizeBit(size, v.length);
    if (d.ub !== undefined && d.lb === d.ub) {
      if (d.ub === 0) return;
      if (d.ub > 2) w.align();
      w.bytes(v);
      return;
    }
    if (this.quickLength(d, v.length)) {
      if (v.length > 0) {
        w.align();
        w.bytes(v);
      }
      return;
    }
    this.counted(d, v.length, true, (from, n) => w.bytes(v, from, from + n));
  }

  charString(d: Extract<Desc, { k: 'str' }>, v: unknown): void {
    if (typeof v !== 'string') throw encErr('expected a string');
    if (d.b === 0) {
      const bytes =
        d.kind === 'UTF8String' ? new TextEncoder().encode(v) : Uint8Array.from(v, (c) => c.charCodeAt(0) & 0xff);
      this.octetString(UNCONSTRAINED, bytes);
      return;
    }
    const codes: number[] = [];
    for (const ch of v) {
      const c = ch.codePointAt(0)!;
      if (d.alphabet) {
        const i = d.alphabet.indexOf(c);
        if (i < 0) throw encErr(`character ${JSON.stringify(ch)} not in the permitted alphabet`);
        codes.push(i);
      } else {
        if (c > d.maxCode || (d.permitted && !d.permitted.has(c)))
          throw encErr(`character ${JSON.stringify(ch)} not permitted`);
        codes.push(c);
      }
    }
    const w = this.w;
    const b = d.b;
    const n = codes.length;
    const size = this.sizeBit(d, n);
    if (size.ub !== undefined && size.lb === size.ub) {
      // §30.5.6–30.5.7: fixed length: no length determinant; aligned when longer than 16 bits
      if (n === 0) return;
      if (size.ub * b > 16) w.align();
      for (let i = 0; i < n; i++) w.bits(codes[i]!, b);
      return;
    }
    if (this.quickLength(size, n)) {
      if (n > 0) {
        w.align();
        for (let i = 0; i < n; i++) w.bits(codes[i]!, b);
      }
      return;
    }
    this.counted(size, n, true, (from, count) => {
      for (let i = from; i < from + count; i++) w.bits(codes[i]!, b);
    });
  }

  sequence(d: Extract<Desc, { k: 'seq' }>, v: unknown): void {
    if (typeof v !== 'object' || v === null) throw encErr('expected an object');
    const o = v as Record<string, unknown>;
    const w = this.w;
    const unknown = o.$unknown as UnknownExtension[] | undefined;
    const extBits = o.$extBits as number | undefined;
    let extPresent = extBits !== undefined || (unknown !== undefined && unknown.length > 0);
    if (!extPresent) {
      for (const a of d.additions) {
        for (const f of a.fields) {
          if (o[f.name] !== undefined) {
            extPresent = true;
            break;
          }
        }
        if (extPresent) break;
      }
    }
    if (d.ext) w.bit(extPresent);
    else if (extPresent) throw encErr(`extension additions in non-extensible ${d.name}`);
    for (const f of d.fields) if (f.optional) w.bit(o[f.name] !== undefined);
    for (const f of d.fields) {
      const fv = o[f.name];
      if (fv === undefined) {
        if (f.optional) continue;
        throw encErr('missing').prepend(`.${f.name}`);
      }
      try {
        this.value(f.type, fv);
      } catch (e) {
        throw e instanceof PerError ? e.prepend(`.${f.name}`) : e;
      }
    }
    if (!extPresent) return;
    // The bit-map has one bit per addition we know, or as many as the peer sent ($extBits) when re-encoding a
    // received value; it grows to cover any addition present beyond that.
    const adds = d.additions;
    let n = extBits ?? adds.length;
    const present: boolean[] = [];
    for (let i = 0; i < adds.length; i++) {
      const fields = adds[i]!.fields;
      let p = false;
      for (let j = 0; j < fields.length; j++) if (o[fields[j]!.name] !== undefined) p = true;
      present[i] = p;
      if (p && i >= n) n = i + 1;
    }
    if (unknown) for (const u of unknown) if (u.index >= n) n = u.index + 1;
    for (let i = adds.length; i < n; i++) present[i] = false;
    present.length = n;
    if (unknown) for (const u of unknown) present[u.index] = true;
    this.normallySmall(n - 1);
    for (let i = 0; i < n; i++) w.bit(present[i]!);
    for (let i = 0; i < n; i++) {
      if (!present[i]) continue;
      const a = d.additions[i];
      if (!a) {
        this.open(unknown!.find((u) => u.index === i)!.bytes);
        continue;
      }
      const name = a.fields[0]!.name;
      try {
        if (a.seq) {
          const gv: Record<string, unknown> = {};
          for (const f of a.fields) if (o[f.name] !== undefined) gv[f.name] = o[f.name];
          this.openValue(a.seq, gv);
        } else this.openValue(a.fields[0]!.type, o[name]);
      } catch (e) {
        throw e instanceof PerError ? e.prepend(`.${name}`) : e;
      }
    }
  }

  choice(d: Extract<Desc, { k: 'choice' }>, v: unknown): void {
    if (typeof v !== 'object' || v === null || typeof (v as { choice?: unknown }).choice !== 'string') {
      throw encErr('expected { choice, value }');
    }
    const c = v as { choice: string; value: unknown; index?: number };
    const w = this.w;
    if (c.choice === '$unknown') {
      if (!d.ext || typeof c.index !== 'number' || c.index < d.ext.length) throw encErr('bad unknown alternative');
      w.bit(true);
      this.normallySmall(c.index);
      this.open(c.value as Uint8Array);
      return;
    }
    const alt = d.byName.get(c.choice);
    if (!alt) throw encErr(`no alternative ${c.choice} in ${d.name}`);
    try {
      if (d.ext) w.bit(alt.ext);
      if (alt.ext) {
        this.normallySmall(alt.index);
        this.openValue(alt.type, c.value);
      } else {
        if (d.root.length > 1) this.constrained(alt.index, 0, d.root.length - 1);
        this.value(alt.type, c.value);
      }
    } catch (e) {
      throw e instanceof PerError ? e.prepend(`.${c.choice}`) : e;
    }
  }

  /** §11.2: open type: the complete encoding as a length-prefixed octet string. */
  open(bytes: Uint8Array): void {
    this.octetString(UNCONSTRAINED, bytes);
  }

  /** Encodes `v` as an open type through a pooled scratch writer (§11.1: an empty encoding becomes one zero octet). */
  openValue(d: Desc, v: unknown): void {
    const outer = this.w;
    const scratch = SCRATCH.pop() ?? new BitWriter(256);
    this.w = scratch;
    try {
      this.value(d, v);
    } finally {
      this.w = outer;
    }
    const used = (scratch.pos + 7) >>> 3;
    try {
      this.open(used === 0 ? ZERO_OCTET : scratch.buf.subarray(0, used));
    } finally {
      scratch.reset();
      SCRATCH.push(scratch);
    }
  }
}

const ZERO_OCTET = new Uint8Array(1);

/** §11.1/§11.2: a complete encoding is padded to an octet, and an empty one becomes a single zero octet. */
function encodeInner(d: Desc, v: unknown): Uint8Array {
  const w = rootWriter ?? new BitWriter(1024);
  rootWriter = undefined;
  try {
    new Encoder(w).value(d, v);
    if (w.pos === 0) return new Uint8Array(1);
    return w.finish();
  } finally {
    w.reset();
    rootWriter = w;
  }
}

/**
 * Encodes a value of `d` as a complete PER encoding. A value that does not fit its type is a programming error of
 * the caller: it throws `PerError` (code `ERR_PER_ENCODE`) naming the field.
 */
export function encodePer(d: Desc, v: unknown, rootName = ''): Uint8Array {
  try {
    return encodeInner(d, v);
  } catch (e) {
    if (e instanceof PerError) throw e.finish(rootName || descName(d));
    throw e;
  }
}
