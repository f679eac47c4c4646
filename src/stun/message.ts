import { fail, ok, type Result } from '../common/result.ts';
import { Attr, classOf, HEADER_BYTES, KNOWN_ATTRIBUTES, MAGIC_COOKIE, methodOf } from './constants.ts';

/**
 * A decoded STUN message: a view over the received bytes. Nothing is copied: attribute values are located by
 * offset into `raw`, and read on demand with the accessors in `attributes.ts`. Copy what outlives the datagram.
 */
export interface StunMessage {
  /** Exactly the message's bytes (a view over the datagram or stream chunk). */
  readonly raw: Buffer;
  /** The 14-bit message type. */
  readonly type: number;
  readonly method: number;
  /** 0 request, 1 indication, 2 success response, 3 error response. */
  readonly cls: number;
  /** The 96-bit transaction id (a view over `raw`). */
  readonly transactionId: Buffer;
  /**
   * Attribute types and value positions, in order. Attributes after MESSAGE-INTEGRITY other than
   * MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, and after MESSAGE-INTEGRITY-SHA256 other than FINGERPRINT, are left
   * out (RFC 8489 §9: they MUST be ignored).
   */
  readonly attributes: readonly AttributeRef[];
  /** Offset of the MESSAGE-INTEGRITY attribute header in `raw`, or -1. */
  readonly integrityOffset: number;
  /** Offset of the MESSAGE-INTEGRITY-SHA256 attribute header in `raw`, or -1. */
  readonly integritySha256Offset: number;
  /** Offset of the FINGERPRINT attribute header in `raw`, or -1. */
  readonly fingerprintOffset: number;
  /** Comprehension-required attribute types (0x0000–0x7FFF) this codec does not know (for 420). */
  readonly unknownRequired: readonly number[];
}

export interface AttributeRef {
  readonly type: number;
  /** Offset of the value (after the 4-byte attribute header) in `raw`. */
  readonly offset: number;
  /** Length of the value, without padding. */
  readonly length: number;
}

/** Quick check that a datagram looks like STUN (first two bits 0, magic cookie): RFC 8489 §6.3, RFC 7983. */
export function looksLikeStun(buf: Buffer): boolean {
  return buf.length >= HEADER_BYTES && (buf[0]! & 0xc0) === 0 && buf.readUInt32BE(4) === MAGIC_COOKIE;
}

/**
 * Decodes one STUN message that must fill `buf` exactly. Never throws: a malformed message yields a reason,
 * which the caller counts and drops (RFC 8489 §6.3: messages that fail these checks are silently discarded).
 */
export function decodeStun(buf: Buffer): Result<StunMessage> {
  if (buf.length < HEADER_BYTES) return fail('shorter than a STUN header');
  // RFC 8489 §5: the most significant 2 bits of every STUN message MUST be zeroes.
  if ((buf[0]! & 0xc0) !== 0) return fail('first two bits not zero');
  if (buf.readUInt32BE(4) !== MAGIC_COOKIE) return fail('bad magic cookie');
  const length = buf.readUInt16BE(2);
  // RFC 8489 §5: the message length is a multiple of 4 (all attributes are padded).
  if ((length & 3) !== 0) return fail('length not a multiple of 4');
  if (length + HEADER_BYTES !== buf.length) return fail('length field does not match the datagram');
  const type = buf.readUInt16BE(0);
  const attributes: AttributeRef[] = [];
  let unknownRequired: number[] | undefined;
  let integrityOffset = -1;
  let integritySha256Offset = -1;
  let fingerprintOffset = -1;
  let pos = HEADER_BYTES;
  while (pos < buf.length) {
    if (fingerprintOffset >= 0) return fail('attribute after FINGERPRINT');
    if (pos + 4 > buf.length) return fail('truncated attribute header');
    const at = buf.readUInt16BE(pos);
    const len = buf.readUInt16BE(pos + 2);
    const padded = (len + 3) & ~3;
    if (pos + 4 + padded > buf.length) return fail('attribute overruns the message');
    // RFC 8489 §9: agents MUST ignore the attributes after MESSAGE-INTEGRITY except MESSAGE-INTEGRITY-SHA256 and
    // FINGERPRINT, and those after MESSAGE-INTEGRITY-SHA256 except FINGERPRINT (no integrity covers them).
    const ignored =
      at !== Attr.FINGERPRINT &&
      (integritySha256Offset >= 0 || (integrityOffset >= 0 && at !== Attr.MESSAGE_INTEGRITY_SHA256));
    if (!ignored) {
      if (at === Attr.MESSAGE_INTEGRITY) {
        if (len !== 20) return fail('MESSAGE-INTEGRITY length is not 20');
        integrityOffset = pos;
      } else if (at === Attr.MESSAGE_INTEGRITY_SHA256) {
        // RFC 8489 §14.6: at least 16 bytes, a multiple of 4, at most 32.
        if (len < 16 || len > 32 || (len & 3) !== 0) return fail('MESSAGE-INTEGRITY-SHA256 length invalid');
        integritySha256Offset = pos;
      } else if (at === Attr.FINGERPRINT) {
        if (len !== 4) return fail('FINGERPRINT length is not 4');
        fingerprintOffset = pos;
      } else if (at < 0x8000 && !KNOWN_ATTRIBUTES.has(at)) {
        unknownRequired ??= [];
        unknownRequired.push(at);
      }
      attributes.push({ type: at, offset: pos + 4, length: len });
    }
    pos += 4 + padded;
  }
  return ok({
    raw: buf,
    type,
    method: methodOf(type),
    cls: classOf(type),
    transactionId: buf.subarray(8, 20),
    attributes,
    integrityOffset,
    integritySha256Offset,
    fingerprintOffset,
    unknownRequired: unknownRequired ?? EMPTY,
  });
}

const EMPTY: readonly number[] = Object.freeze([]);

/** The first attribute of a type, or undefined. */
export function findAttribute(msg: StunMessage, type: number): AttributeRef | undefined {
  for (const a of msg.attributes) if (a.type === type) return a;
  return undefined;
}

/** All attributes of a type, in order (XOR-PEER-ADDRESS may repeat in CreatePermission). */
export function findAttributes(msg: StunMessage, type: number): AttributeRef[] {
  return msg.attributes.filter((a) => a.type === type);
}

/** A view over an attribute value (no copy). */
export function attributeValue(msg: StunMessage, ref: AttributeRef): Buffer {
  return msg.raw.subarray(ref.offset, ref.offset + ref.length);
}
