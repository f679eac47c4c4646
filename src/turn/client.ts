import { randomBytes } from 'node:crypto';
import type { TransportAddress } from '../stun/address.ts';
import { encodeAddress, encodeFirstByteOf4, readAddress, readErrorCode, readText } from '../stun/attributes.ts';
import { StunBuilder } from '../stun/builder.ts';
import { Attr, Limits, Method, PasswordAlgorithm, StunClass } from '../stun/constants.ts';
import { longTermKey, verifyMessageIntegrity, verifyMessageIntegritySha256 } from '../stun/integrity.ts';
import { decodeStun, findAttribute, findAttributes, type StunMessage } from '../stun/message.ts';

/** A parsed answer from a TURN server. */
export interface TurnAnswer {
  msg: StunMessage;
  /** Error code for error responses. */
  error?: number;
  /** Whether the response's MESSAGE-INTEGRITY(-SHA256) verified with the session key. */
  integrity: boolean;
  relayed: TransportAddress[];
  mapped?: TransportAddress;
  lifetime?: number;
}

/**
 * A minimal TURN client on the codec: builds requests carrying long-term credentials once it has seen a
 * challenge, and reads answers. Used by tests and the load generator in `bench/`; not a full client.
 */
export class TurnClientSession {
  realm: string | undefined;
  nonce: string | undefined;
  #key: Buffer | undefined;
  readonly username: string;
  readonly #password: string;
  /** Use PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256 (RFC 8489) instead of MD5/SHA-1. */
  readonly sha256: boolean;
  #algorithms: Buffer | undefined;

  constructor(username: string, password: string, options: { sha256?: boolean } = {}) {
    this.username = username;
    this.#password = password;
    this.sha256 = options.sha256 ?? false;
  }

  /** Builds a request; `attrs` go before the credentials. */
  request(method: number, attrs: [number, Buffer][] = [], transactionId: Buffer = randomBytes(12)): Buffer {
    const b = new StunBuilder(method, StunClass.request, transactionId);
    for (const [t, v] of attrs) b.add(t, v);
    if (this.realm === undefined || this.nonce === undefined || !this.#key) return b.finish({ fingerprint: true });
    b.add(Attr.USERNAME, Buffer.from(this.username, 'utf8'));
    b.add(Attr.REALM, Buffer.from(this.realm, 'utf8'));
    b.add(Attr.NONCE, Buffer.from(this.nonce, 'utf8'));
    if (this.sha256 && this.#algorithms) {
      b.add(Attr.PASSWORD_ALGORITHMS, this.#algorithms);
      b.add(Attr.PASSWORD_ALGORITHM, Buffer.from([0, PasswordAlgorithm.sha256, 0, 0]));
      return b.finish({ integritySha256Key: this.#key, fingerprint: true });
    }
    return b.finish({ integrityKey: this.#key, fingerprint: true });
  }

  /** Parses an answer; a 401/438 carrying REALM and NONCE updates the credentials for the next request. */
  answer(bytes: Buffer): TurnAnswer | undefined {
    const r = decodeStun(bytes);
    if (!r.ok) return undefined;
    const msg = r.value;
    const out: TurnAnswer = { msg, integrity: false, relayed: [] };
    const err = findAttribute(msg, Attr.ERROR_CODE);
    if (err) {
      const e = readErrorCode(msg, err);
      if (e.ok) out.error = e.value.code;
    }
    if (out.error === 401 || out.error === 438) {
      const realm = findAttribute(msg, Attr.REALM);
      const nonce = findAttribute(msg, Attr.NONCE);
      const algs = findAttribute(msg, Attr.PASSWORD_ALGORITHMS);
      if (realm && nonce) {
        const rv = readText(msg, realm, Limits.realm);
        const nv = readText(msg, nonce, Limits.nonce);
        if (rv.ok && nv.ok) {
          this.realm = rv.value;
          this.nonce = nv.value;
          this.#algorithms = algs ? Buffer.from(msg.raw.subarray(algs.offset, algs.offset + algs.length)) : undefined;
          const alg = this.sha256 ? PasswordAlgorithm.sha256 : PasswordAlgorithm.md5;
          this.#key = longTermKey(this.username, this.realm, this.#password, alg);
        }
      }
    }
    if (this.#key) {
      out.integrity =
        msg.integritySha256Offset >= 0
          ? verifyMessageIntegritySha256(msg, this.#key)
          : verifyMessageIntegrity(msg, this.#key);
    }
    for (const ref of findAttributes(msg, Attr.XOR_RELAYED_ADDRESS)) {
      const a = readAddress(msg, ref, true);
      if (a.ok) out.relayed.push(a.value);
    }
    const mapped = findAttribute(msg, Attr.XOR_MAPPED_ADDRESS);
    if (mapped) {
      const a = readAddress(msg, mapped, true);
      if (a.ok) out.mapped = a.value;
    }
    const lt = findAttribute(msg, Attr.LIFETIME);
    if (lt && lt.length === 4) out.lifetime = msg.raw.readUInt32BE(lt.offset);
    return out;
  }
}

/** Attribute helpers for building TURN requests. */
export const turnAttr = {
  udpTransport: (): [number, Buffer] => [Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(17)],
  lifetime: (s: number): [number, Buffer] => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(s, 0);
    return [Attr.LIFETIME, b];
  },
  peer: (peer: TransportAddress, tid: Buffer): [number, Buffer] => [
    Attr.XOR_PEER_ADDRESS,
    encodeAddress(peer, true, tid),
  ],
  channel: (n: number): [number, Buffer] => {
    const b = Buffer.alloc(4);
    b.writeUInt16BE(n, 0);
    return [Attr.CHANNEL_NUMBER, b];
  },
};

/** Builds a Send indication. */
export function sendIndication(peer: TransportAddress, data: Buffer): Buffer {
  const tid = randomBytes(12);
  return new StunBuilder(Method.send, StunClass.indication, tid)
    .add(Attr.XOR_PEER_ADDRESS, encodeAddress(peer, true, tid))
    .add(Attr.DATA, data)
    .finish();
}

/** Builds a ChannelData message (padded to 4 bytes when `pad`). */
export function channelData(channel: number, data: Buffer, pad = false): Buffer {
  const len = pad ? (data.length + 3) & ~3 : data.length;
  const out = Buffer.alloc(4 + len);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, 4);
  return out;
}
