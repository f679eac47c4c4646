import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ClearToken, CryptoH323Token, RasMessage } from '../per/generated/types.ts';
import { codec, rasCodec } from '../per/schema.ts';

/**
 * H.235.1 (the baseline security profile, formerly H.235 Annex D), procedure I: authentication and integrity of a
 * whole RAS message with a shared password. The sender puts a `nestedcryptoToken` → `cryptoHashedToken` in the
 * message's `cryptoTokens`: tokenOID "A" (all fields hashed), `hashedVals` a ClearToken (tokenOID "T") carrying
 * timeStamp, random, generalID (the recipient) and sendersID (the sender), and `token` a HASHED whose algorithm is
 * "U" (HMAC-SHA1-96) and whose 96-bit hash is HMAC-SHA1 over the PER encoding of the complete message with the hash
 * bits set to zero, truncated to 12 octets. The key is SHA-1 of the password (20 octets).
 *
 * Primitives only (no policy, no clock reads): `ras-security.ts` decides what is checked and what is answered.
 */

/** itu-t(0) recommendation(0) h(8) 235 version(0) 2 1 — "A": all fields of the RAS/CS message are hashed. */
export const OID_A = '0.0.8.235.0.2.1';
/** ... 2 5 — "T": the ClearToken of the hashed token. */
export const OID_T = '0.0.8.235.0.2.5';
/** ... 2 6 — "U": HMAC-SHA1-96. */
export const OID_U = '0.0.8.235.0.2.6';

/** Octets of an HMAC-SHA1-96 value. */
export const HASH_OCTETS = 12;

/** Whether `oid` is `base` of H.235 version 1 or 2 (version 1 endpoints use the same procedure). */
export function isOid(oid: string, base: string): boolean {
  if (oid === base) return true;
  return oid === base.replace('.0.2.', '.0.1.');
}

/** The H.235.1 key of a password: SHA-1 of its UTF-8 octets (what the credential store keeps, never the password). */
export function h235Key(password: string): Buffer {
  return createHash('sha1').update(password, 'utf8').digest();
}

/** HMAC-SHA1-96 (RFC 2104 HMAC-SHA1, the first 96 bits). */
export function hmacSha1_96(key: Uint8Array, data: Uint8Array): Buffer {
  return createHmac('sha1', key).update(data).digest().subarray(0, HASH_OCTETS);
}

/** An H.235.1 procedure I token found in a message. */
export interface HashedToken {
  clear: ClearToken;
  /** The 12 hash octets as received. */
  hash: Uint8Array;
}

/**
 * The procedure I token among `tokens` (nestedcryptoToken → cryptoHashedToken with OIDs A, T, U and a 96-bit hash),
 * or a reason when a token is there but not well formed; undefined when the message carries none.
 */
export function findHashedToken(
  tokens: readonly CryptoH323Token[] | undefined,
): { ok: true; token: HashedToken } | { ok: false; reason: string } | undefined {
  if (!tokens) return undefined;
  for (const t of tokens) {
    if (t.choice !== 'nestedcryptoToken' || t.value.choice !== 'cryptoHashedToken') continue;
    const h = t.value.value;
    if (!isOid(h.tokenOID, OID_A)) continue;
    if (!isOid(h.hashedVals.tokenOID, OID_T)) return { ok: false, reason: `ClearToken OID ${h.hashedVals.tokenOID}` };
    if (!isOid(h.token.algorithmOID, OID_U)) return { ok: false, reason: `algorithm ${h.token.algorithmOID}` };
    if (h.token.hash.length !== HASH_OCTETS * 8 || h.token.hash.data.length < HASH_OCTETS)
      return { ok: false, reason: `hash of ${h.token.hash.length} bits` };
    return { ok: true, token: { clear: h.hashedVals, hash: h.token.hash.data.subarray(0, HASH_OCTETS) } };
  }
  return undefined;
}

/**
 * Checks a procedure I hash against the message as received: the hash octets are found in `raw` (aligned PER puts
 * a BIT STRING of 96 bits on octet boundaries), set to zero in a copy, and HMAC-SHA1-96 of that copy compared in
 * constant time. Every place the hash octets occur is tried (a collision with other content is possible, if rare).
 */
export function verifyHash(raw: Uint8Array, hash: Uint8Array, key: Uint8Array): boolean {
  if (hash.length !== HASH_OCTETS) return false;
  const copy = Buffer.from(raw);
  const needle = Buffer.from(hash);
  for (let at = copy.indexOf(needle); at >= 0; at = copy.indexOf(needle, at + 1)) {
    copy.fill(0, at, at + HASH_OCTETS);
    const mac = hmacSha1_96(key, copy);
    needle.copy(copy, at);
    if (timingSafeEqual(mac, needle)) return true;
  }
  return false;
}

/** What a signer puts in the ClearToken. */
export interface SignParams {
  key: Uint8Array;
  /** The recipient's identifier (the gatekeeper's, or the endpoint's in answers). */
  generalID?: string;
  /** The sender's identifier. */
  sendersID?: string;
  /** Seconds since 1970-01-01 UTC (H.235 TimeStamp). */
  timeStamp: number;
  /** A value not repeated within the timestamp window (replay protection). */
  random: number;
}

/** The procedure I token with `hash` in place of the HMAC. */
export function hashedToken(p: Omit<SignParams, 'key'>, hash: Uint8Array): CryptoH323Token {
  return {
    choice: 'nestedcryptoToken',
    value: {
      choice: 'cryptoHashedToken',
      value: {
        tokenOID: OID_A,
        hashedVals: {
          tokenOID: OID_T,
          timeStamp: p.timeStamp,
          random: p.random,
          ...(p.generalID !== undefined ? { generalID: p.generalID } : {}),
          ...(p.sendersID !== undefined ? { sendersID: p.sendersID } : {}),
        },
        token: { algorithmOID: OID_U, paramS: {}, hash: { length: HASH_OCTETS * 8, data: hash } },
      },
    },
  };
}

/**
 * Signs a RAS message with procedure I: its `cryptoTokens` become the one hashed token, the message is encoded with
 * a unique placeholder in the hash's place, the placeholder is zeroed, and the HMAC written over it. Returns the
 * encoded datagram (the message object's hash is set to the same value).
 */
export function signRas(message: RasMessage, p: SignParams, others: readonly CryptoH323Token[] = []): Uint8Array {
  const signed = signEncoded(p, (token) => {
    // tokens of other schemes (a neighbour's pwdHash) go first and are covered by the HMAC like the rest
    (message.value as { cryptoTokens?: CryptoH323Token[] }).cryptoTokens = [...others, token];
    return rasCodec.encode(message);
  });
  if (!signed) throw new Error('H.235.1: hash placeholder not unique');
  return signed;
}

/**
 * Procedure I over any encoding: `encode` puts the given token in its message and encodes it; the token carries a
 * unique placeholder in the hash's place, which is zeroed in the encoding and overwritten with the HMAC (the token
 * object's hash gets the same value). Undefined when the placeholder is not found exactly once.
 */
export function signEncoded(p: SignParams, encode: (token: CryptoH323Token) => Uint8Array): Uint8Array | undefined {
  const placeholder = randomBytes(HASH_OCTETS);
  const bytes = Buffer.from(encode(hashedToken(p, placeholder)));
  const at = bytes.indexOf(placeholder);
  if (at < 0 || bytes.indexOf(placeholder, at + 1) >= 0) return undefined;
  bytes.fill(0, at, at + HASH_OCTETS);
  const mac = hmacSha1_96(p.key, bytes);
  mac.copy(bytes, at);
  placeholder.set(mac);
  return new Uint8Array(bytes);
}

/**
 * The password hash of H.235 version 1 that GnuGk puts on the LRQs it sends a neighbour and checks on those it
 * receives (`[Neighbor::…]` `SendPassword` / `Password`), as Cisco gatekeepers do: a `cryptoGKPwdHash` (or, from an
 * endpoint, `cryptoEPPwdHash`) whose 128-bit hash is MD5 of the aligned PER encoding of a ClearToken with tokenOID
 * 0.0, generalID the sender's name and password the shared password (both BMPStrings ending in a NUL character, as
 * H323Plus encodes them) and the token's timeStamp. It authenticates the sender (who knows the password, within the
 * timestamp window) but covers none of the message: procedure I is the stronger of the two.
 */
export const OID_MD5 = '1.2.840.113549.2.5';
const MD5_BITS = 128;
const clearTokenCodec = codec<ClearToken>('ClearToken');

/** MD5 of the PwdCertToken (sender, password, timeStamp) that a pwdHash token carries. */
export function pwdHashMd5(sender: string, password: string, timeStamp: number): Buffer {
  const clear: ClearToken = { tokenOID: '0.0', generalID: `${sender}\u0000`, password: `${password}\u0000`, timeStamp };
  return createHash('md5').update(clearTokenCodec.encode(clear)).digest();
}

/** The `cryptoGKPwdHash` token a gatekeeper named `sender` puts on an LRQ to a neighbour sharing `password`. */
export function gkPwdHashToken(sender: string, password: string, timeStamp: number): CryptoH323Token {
  return {
    choice: 'cryptoGKPwdHash',
    value: {
      gatekeeperId: sender,
      timeStamp,
      token: {
        algorithmOID: OID_MD5,
        paramS: {},
        hash: { length: MD5_BITS, data: pwdHashMd5(sender, password, timeStamp) },
      },
    },
  };
}

/** A pwdHash token found in a message: who it names, when, and its hash. */
export interface PwdHashToken {
  sender: string;
  timeStamp: number;
  hash: Uint8Array;
}

/** The MD5 pwdHash token among `tokens` (gatekeeper's or endpoint's form), if any. */
export function findPwdHash(tokens: readonly CryptoH323Token[] | undefined): PwdHashToken | undefined {
  for (const t of tokens ?? []) {
    if (t.choice !== 'cryptoGKPwdHash' && t.choice !== 'cryptoEPPwdHash') continue;
    const v = t.value;
    if (v.token.algorithmOID !== OID_MD5 || v.token.hash.length !== MD5_BITS) continue;
    const sender = t.choice === 'cryptoGKPwdHash' ? t.value.gatekeeperId : aliasString(t.value.alias);
    if (sender === undefined) continue;
    return { sender, timeStamp: v.timeStamp, hash: v.token.hash.data.subarray(0, MD5_BITS / 8) };
  }
  return undefined;
}

/** The text of an alias as H323Plus hashes it (the alias's value, whatever its type). */
function aliasString(a: { choice: string; value: unknown }): string | undefined {
  return typeof a.value === 'string' ? a.value : undefined;
}

/** Whether a pwdHash token was made with `password` (constant-time compare). */
export function verifyPwdHash(t: PwdHashToken, password: string): boolean {
  const mine = pwdHashMd5(t.sender, password, t.timeStamp);
  return t.hash.length === mine.length && timingSafeEqual(mine, t.hash);
}

/**
 * Replay protection: a (sender, timeStamp, random) triple is accepted once. The same datagram again (same hash: the
 * HMAC covers the whole message) within `repeatMs` of the first is a retransmission (RAS retries resend the request
 * unchanged) and is let through; anything else with a seen triple is a replay. Bounded, pruned lazily from the oldest.
 */
export class ReplayCache {
  readonly #seen = new Map<string, { expiresAt: number; firstAt: number; hash: string }>();
  readonly #max: number;
  readonly #repeatMs: number;

  constructor(maxEntries = 100_000, repeatMs = 30_000) {
    this.#max = maxEntries;
    this.#repeatMs = repeatMs;
  }

  /** Records the triple (kept until `expiresAt`, ms) and says whether it is new, a retransmission, or a replay. */
  admit(
    sender: string,
    timeStamp: number,
    random: number | bigint,
    hash: Uint8Array,
    now: number,
    expiresAt: number,
  ): 'new' | 'repeat' | 'replay' {
    for (const [k, e] of this.#seen) {
      if (e.expiresAt > now && this.#seen.size < this.#max) break;
      this.#seen.delete(k);
    }
    const k = `${sender}\u0000${timeStamp}\u0000${String(random)}`;
    const h = Buffer.from(hash).toString('hex');
    const e = this.#seen.get(k);
    if (e && e.expiresAt > now) return e.hash === h && now - e.firstAt <= this.#repeatMs ? 'repeat' : 'replay';
    this.#seen.set(k, { expiresAt, firstAt: now, hash: h });
    return 'new';
  }

  get size(): number {
    return this.#seen.size;
  }
}
