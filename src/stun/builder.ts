import { Attr, HEADER_BYTES, MAGIC_COOKIE, messageType } from './constants.ts';
import { computeHmac, fingerprintOver } from './integrity.ts';

/** What to append at the end of an encoded message. */
export interface FinishOptions {
  /** Adds MESSAGE-INTEGRITY (HMAC-SHA1) with this key. */
  integrityKey?: Buffer;
  /** Adds MESSAGE-INTEGRITY-SHA256 with this key (after MESSAGE-INTEGRITY when both are given). */
  integritySha256Key?: Buffer;
  fingerprint?: boolean;
}

interface PendingAttr {
  type: number;
  value: Buffer;
  pad: number;
}

/**
 * Builds a STUN message: add attributes in order, then `finish()` appends MESSAGE-INTEGRITY(-SHA256) and
 * FINGERPRINT computed over exactly the right prefix (RFC 8489 §14.5–14.7).
 */
export class StunBuilder {
  readonly #type: number;
  readonly transactionId: Buffer;
  readonly #attrs: PendingAttr[] = [];
  #size = HEADER_BYTES;

  constructor(method: number, cls: number, transactionId: Buffer) {
    if (transactionId.length !== 12) throw new RangeError('transaction id must be 12 bytes');
    this.#type = messageType(method, cls);
    this.transactionId = transactionId;
  }

  /** Adds an attribute; `pad` is the padding byte (0 unless reproducing a peer's bytes). */
  add(type: number, value: Buffer, pad = 0): this {
    if (value.length > 0xffff) throw new RangeError('attribute value too long');
    this.#attrs.push({ type, value, pad });
    this.#size += 4 + ((value.length + 3) & ~3);
    return this;
  }

  finish(opts: FinishOptions = {}): Buffer {
    const total =
      this.#size + (opts.integrityKey ? 24 : 0) + (opts.integritySha256Key ? 36 : 0) + (opts.fingerprint ? 8 : 0);
    const out = Buffer.allocUnsafe(total);
    out.writeUInt16BE(this.#type, 0);
    out.writeUInt32BE(MAGIC_COOKIE, 4);
    this.transactionId.copy(out, 8);
    let p = HEADER_BYTES;
    for (const a of this.#attrs) {
      out.writeUInt16BE(a.type, p);
      out.writeUInt16BE(a.value.length, p + 2);
      a.value.copy(out, p + 4);
      const padded = (a.value.length + 3) & ~3;
      out.fill(a.pad, p + 4 + a.value.length, p + 4 + padded);
      p += 4 + padded;
    }
    if (opts.integrityKey) {
      out.writeUInt16BE(p - HEADER_BYTES + 24, 2);
      const mac = computeHmac(out, p, opts.integrityKey, 'sha1');
      out.writeUInt16BE(Attr.MESSAGE_INTEGRITY, p);
      out.writeUInt16BE(20, p + 2);
      mac.copy(out, p + 4);
      p += 24;
    }
    if (opts.integritySha256Key) {
      out.writeUInt16BE(p - HEADER_BYTES + 36, 2);
      const mac = computeHmac(out, p, opts.integritySha256Key, 'sha256');
      out.writeUInt16BE(Attr.MESSAGE_INTEGRITY_SHA256, p);
      out.writeUInt16BE(32, p + 2);
      mac.copy(out, p + 4);
      p += 36;
    }
    if (opts.fingerprint) {
      out.writeUInt16BE(Attr.FINGERPRINT, p);
      out.writeUInt16BE(4, p + 2);
      out.writeUInt32BE(fingerprintOver(out, p), p + 4);
      p += 8;
    }
    out.writeUInt16BE(p - HEADER_BYTES, 2);
    return out;
  }
}
