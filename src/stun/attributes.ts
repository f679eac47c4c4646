import { fail, ok, type Result } from '../common/result.ts';
import { bytesToIp, ipToBytes, type TransportAddress } from './address.ts';
import { MAGIC_COOKIE } from './constants.ts';
import type { AttributeRef, StunMessage } from './message.ts';

/**
 * Typed readers and writers for STUN/TURN attribute values. Readers take a decoded message and an attribute
 * reference and return a Result: a value of the wrong size is a bad request, never an exception.
 */

/** Reads MAPPED-ADDRESS / ALTERNATE-SERVER (plain) or an XOR-*-ADDRESS attribute (RFC 8489 §14.1–14.2). */
export function readAddress(msg: StunMessage, ref: AttributeRef, xor: boolean): Result<TransportAddress> {
  const b = msg.raw;
  const o = ref.offset;
  if (ref.length < 4) return fail('address attribute too short');
  const family = b[o + 1];
  const size = family === 0x01 ? 4 : family === 0x02 ? 16 : 0;
  if (size === 0) return fail('unknown address family');
  if (ref.length !== 4 + size) return fail('address attribute length does not match family');
  let port = b.readUInt16BE(o + 2);
  const addr = Buffer.from(b.subarray(o + 4, o + 4 + size));
  if (xor) {
    // RFC 8489 §14.2: X-Port is port XOR the 16 most significant bits of the cookie; X-Address is XORed with
    // the cookie (IPv4) or the cookie followed by the transaction id (IPv6).
    port ^= MAGIC_COOKIE >>> 16;
    for (let i = 0; i < size; i++) addr[i]! ^= b[4 + i]!;
  }
  return ok({ family: size === 4 ? 4 : 6, address: bytesToIp(addr), port });
}

/** Encodes an address attribute value; `transactionId` is needed to XOR an IPv6 address. */
export function encodeAddress(a: TransportAddress, xor: boolean, transactionId: Buffer): Buffer {
  const ip = ipToBytes(a.address);
  if (!ip) throw new TypeError(`not an IP address: ${a.address}`);
  const out = Buffer.alloc(4 + ip.length);
  out[1] = ip.length === 4 ? 0x01 : 0x02;
  out.writeUInt16BE(xor ? (a.port ^ (MAGIC_COOKIE >>> 16)) & 0xffff : a.port, 2);
  ip.copy(out, 4);
  if (xor) {
    const mask = Buffer.allocUnsafe(16);
    mask.writeUInt32BE(MAGIC_COOKIE, 0);
    transactionId.copy(mask, 4);
    for (let i = 0; i < ip.length; i++) out[4 + i]! ^= mask[i]!;
  }
  return out;
}

/** Reads an ERROR-CODE value (RFC 8489 §14.8). */
export function readErrorCode(msg: StunMessage, ref: AttributeRef): Result<{ code: number; reason: string }> {
  if (ref.length < 4) return fail('ERROR-CODE too short');
  const b = msg.raw;
  const cls = b[ref.offset + 2]! & 0x07;
  const num = b[ref.offset + 3]!;
  if (cls < 3 || cls > 6 || num > 99) return fail('ERROR-CODE out of range');
  return ok({ code: cls * 100 + num, reason: b.toString('utf8', ref.offset + 4, ref.offset + ref.length) });
}

export function encodeErrorCode(code: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, 763);
  const out = Buffer.alloc(4 + text.length);
  out[2] = Math.floor(code / 100);
  out[3] = code % 100;
  text.copy(out, 4);
  return out;
}

/** Reads UNKNOWN-ATTRIBUTES (a list of 16-bit types). */
export function readUnknownAttributes(msg: StunMessage, ref: AttributeRef): Result<number[]> {
  if ((ref.length & 1) !== 0) return fail('UNKNOWN-ATTRIBUTES length odd');
  const out: number[] = [];
  for (let i = 0; i < ref.length; i += 2) out.push(msg.raw.readUInt16BE(ref.offset + i));
  return ok(out);
}

export function encodeUnknownAttributes(types: readonly number[]): Buffer {
  const out = Buffer.alloc(types.length * 2);
  for (const [i, t] of types.entries()) out.writeUInt16BE(t, i * 2);
  return out;
}

/** Reads a UTF-8 text attribute (USERNAME, REALM, NONCE, SOFTWARE) with its RFC limit in bytes. */
export function readText(msg: StunMessage, ref: AttributeRef, maxBytes: number): Result<string> {
  if (ref.length > maxBytes) return fail('text attribute too long');
  return ok(msg.raw.toString('utf8', ref.offset, ref.offset + ref.length));
}

/** Reads a 32-bit unsigned value (LIFETIME, PRIORITY). */
export function readUint32(msg: StunMessage, ref: AttributeRef): Result<number> {
  if (ref.length !== 4) return fail('expected a 4-byte value');
  return ok(msg.raw.readUInt32BE(ref.offset));
}

export function encodeUint32(v: number): Buffer {
  const out = Buffer.allocUnsafe(4);
  out.writeUInt32BE(v >>> 0, 0);
  return out;
}

/** A value whose first byte matters and the next three are RFFU (REQUESTED-TRANSPORT, *-ADDRESS-FAMILY). */
export function readFirstByteOf4(msg: StunMessage, ref: AttributeRef): Result<number> {
  if (ref.length !== 4) return fail('expected a 4-byte value');
  return ok(msg.raw[ref.offset]!);
}

export function encodeFirstByteOf4(v: number): Buffer {
  const out = Buffer.alloc(4);
  out[0] = v;
  return out;
}

/** CHANNEL-NUMBER (RFC 8656 §18.1): 16-bit number then 16 RFFU bits. */
export function readChannelNumber(msg: StunMessage, ref: AttributeRef): Result<number> {
  if (ref.length !== 4) return fail('CHANNEL-NUMBER length is not 4');
  return ok(msg.raw.readUInt16BE(ref.offset));
}

export function encodeChannelNumber(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt16BE(n, 0);
  return out;
}

/** EVEN-PORT (RFC 8656 §18.6): one byte, R flag in the top bit. */
export function readEvenPort(msg: StunMessage, ref: AttributeRef): Result<{ reserve: boolean }> {
  if (ref.length !== 1) return fail('EVEN-PORT length is not 1');
  return ok({ reserve: (msg.raw[ref.offset]! & 0x80) !== 0 });
}

/** ADDRESS-ERROR-CODE (RFC 8656 §18.13): family, then an ERROR-CODE-shaped code and reason. */
export function encodeAddressErrorCode(family: 4 | 6, code: number, reason: string): Buffer {
  const out = encodeErrorCode(code, reason);
  out[0] = family === 4 ? 0x01 : 0x02;
  return out;
}

/** One entry of PASSWORD-ALGORITHMS / the PASSWORD-ALGORITHM value (RFC 8489 §14.11–14.12). */
export interface PasswordAlgorithmEntry {
  algorithm: number;
  parameters: Buffer;
}

export function readPasswordAlgorithms(msg: StunMessage, ref: AttributeRef): Result<PasswordAlgorithmEntry[]> {
  const out: PasswordAlgorithmEntry[] = [];
  let p = ref.offset;
  const end = ref.offset + ref.length;
  while (p < end) {
    if (p + 4 > end) return fail('truncated password algorithm');
    const algorithm = msg.raw.readUInt16BE(p);
    const len = msg.raw.readUInt16BE(p + 2);
    const padded = (len + 3) & ~3;
    if (p + 4 + padded > end) return fail('password algorithm parameters overrun');
    out.push({ algorithm, parameters: msg.raw.subarray(p + 4, p + 4 + len) });
    p += 4 + padded;
  }
  return ok(out);
}

export function encodePasswordAlgorithms(list: readonly PasswordAlgorithmEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of list) {
    const h = Buffer.alloc(4);
    h.writeUInt16BE(e.algorithm, 0);
    h.writeUInt16BE(e.parameters.length, 2);
    const pad = Buffer.alloc(((e.parameters.length + 3) & ~3) - e.parameters.length);
    parts.push(h, e.parameters, pad);
  }
  return Buffer.concat(parts);
}
