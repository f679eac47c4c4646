import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { FINGERPRINT_XOR, HEADER_BYTES, PasswordAlgorithm } from './constants.ts';
import type { StunMessage } from './message.ts';

/**
 * MESSAGE-INTEGRITY (HMAC-SHA1), MESSAGE-INTEGRITY-SHA256 and FINGERPRINT (RFC 8489 §14.5–14.7), and the
 * long-term credential keys (§9.2.2). Integrity is computed over the message up to the attribute, with the
 * header's length field set as if the attribute were the last one.
 */

function hmacOver(raw: Buffer, attrOffset: number, attrValueLength: number, key: Buffer, algo: 'sha1' | 'sha256') {
  const header = Buffer.from(raw.subarray(0, HEADER_BYTES));
  header.writeUInt16BE(attrOffset - HEADER_BYTES + 4 + attrValueLength, 2);
  return createHmac(algo, key).update(header).update(raw.subarray(HEADER_BYTES, attrOffset)).digest();
}

/** Checks MESSAGE-INTEGRITY (HMAC-SHA1) in constant time; false when absent. */
export function verifyMessageIntegrity(msg: StunMessage, key: Buffer): boolean {
  const at = msg.integrityOffset;
  if (at < 0) return false;
  const expected = hmacOver(msg.raw, at, 20, key, 'sha1');
  return timingSafeEqual(expected, msg.raw.subarray(at + 4, at + 24));
}

/** Checks MESSAGE-INTEGRITY-SHA256 (possibly truncated to 16–32 bytes) in constant time; false when absent. */
export function verifyMessageIntegritySha256(msg: StunMessage, key: Buffer): boolean {
  const at = msg.integritySha256Offset;
  if (at < 0) return false;
  const len = msg.raw.readUInt16BE(at + 2);
  const expected = hmacOver(msg.raw, at, len, key, 'sha256').subarray(0, len);
  return timingSafeEqual(expected, msg.raw.subarray(at + 4, at + 4 + len));
}

/** Checks FINGERPRINT; false when absent. */
export function verifyFingerprint(msg: StunMessage): boolean {
  const at = msg.fingerprintOffset;
  if (at < 0) return false;
  return fingerprintOver(msg.raw, at) === msg.raw.readUInt32BE(at + 4);
}

/** CRC-32 of the message up to `attrOffset` with the length field covering the 8-byte FINGERPRINT, XOR "STUN". */
export function fingerprintOver(raw: Buffer, attrOffset: number): number {
  const header = Buffer.from(raw.subarray(0, HEADER_BYTES));
  header.writeUInt16BE(attrOffset - HEADER_BYTES + 8, 2);
  const c = crc32(raw.subarray(HEADER_BYTES, attrOffset), crc32(header));
  return (c ^ FINGERPRINT_XOR) >>> 0;
}

/** HMAC used when encoding: `raw` already holds the final length field for the attribute being added. */
export function computeHmac(raw: Buffer, end: number, key: Buffer, algo: 'sha1' | 'sha256'): Buffer {
  return createHmac(algo, key).update(raw.subarray(0, end)).digest();
}

/** RFC 3454 table B.1 (commonly mapped to nothing). */
const MAPPED_TO_NOTHING: readonly [number, number][] = [
  [0xad, 0xad],
  [0x34f, 0x34f],
  [0x1806, 0x1806],
  [0x180b, 0x180d],
  [0x200b, 0x200d],
  [0x2060, 0x2060],
  [0xfe00, 0xfe0f],
  [0xfeff, 0xfeff],
];
/** RFC 3454 table C.1.2 (non-ASCII space characters). */
const NON_ASCII_SPACE: readonly [number, number][] = [
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200b],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
];

/**
 * SASLprep (RFC 4013) as far as passwords need it: map the "commonly mapped to nothing" characters away, map
 * non-ASCII spaces to SPACE, normalize with NFKC. (RFC 8489 §9.2.2 uses OpaqueString of RFC 8265, which for
 * passwords like these gives the same result.)
 */
export function saslPrep(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (MAPPED_TO_NOTHING.some(([lo, hi]) => c >= lo && c <= hi)) continue;
    out += NON_ASCII_SPACE.some(([lo, hi]) => c >= lo && c <= hi) ? ' ' : ch;
  }
  return out.normalize('NFKC');
}

/**
 * RFC 8489 §9.2.2: the long-term key. MD5: MD5(username ":" realm ":" SASLprep(password)) — the "HA1" of digest
 * authentication; SHA-256: SHA-256 of the same string.
 */
export function longTermKey(
  username: string,
  realm: string,
  password: string,
  algorithm: number = PasswordAlgorithm.md5,
): Buffer {
  const h = createHash(algorithm === PasswordAlgorithm.sha256 ? 'sha256' : 'md5');
  return h.update(`${username}:${realm}:${saslPrep(password)}`, 'utf8').digest();
}

/** RFC 8489 §14.4: USERHASH = SHA-256(username ":" realm). */
export function userHash(username: string, realm: string): Buffer {
  return createHash('sha256').update(`${username}:${realm}`, 'utf8').digest();
}
