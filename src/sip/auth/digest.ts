/**
 * HTTP Digest computations for SIP (RFC 3261 §22.4, RFC 7616 §3.4, RFC 8760): hashes per algorithm, HA1, the
 * request-digest, userhash, reading credentials out of an Authorization header and writing a challenge.
 */
import { createHash } from 'node:crypto';
import { fail, ok, type Result } from '../../common/result.ts';
import { getParam, quote } from '../message/params.ts';
import type { AuthHeader } from '../message/types.ts';

/** RFC 8760 §2.2 / RFC 7616 §3.4: the algorithms this implementation computes (no `-sess` variants). */
export type DigestAlgorithm = 'MD5' | 'SHA-256' | 'SHA-512-256';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['SHA-512-256', 'SHA-256', 'MD5'];

const NODE_HASH: Readonly<Record<DigestAlgorithm, string>> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  'SHA-512-256': 'sha512-256',
};

/** Length in hex characters of a digest of `alg`. */
export const HEX_LENGTH: Readonly<Record<DigestAlgorithm, number>> = { MD5: 32, 'SHA-256': 64, 'SHA-512-256': 64 };

/** RFC 7616 §3.4: H(data), lower-case hex. */
export function digestHash(alg: DigestAlgorithm, data: string): string {
  return createHash(NODE_HASH[alg]).update(data, 'utf8').digest('hex');
}

/** Reads an `algorithm` parameter (case-insensitive); `undefined` for anything this implementation cannot compute. */
export function parseAlgorithm(value: string | null | undefined): DigestAlgorithm | undefined {
  if (value === undefined || value === null) return undefined;
  switch (value.toUpperCase()) {
    case 'MD5':
      return 'MD5';
    case 'SHA-256':
      return 'SHA-256';
    case 'SHA-512-256':
      return 'SHA-512-256';
    default:
      return undefined;
  }
}

/** RFC 7616 §3.4.2: A1 = unq(username) ":" unq(realm) ":" passwd; HA1 = H(A1). */
export function computeHa1(alg: DigestAlgorithm, username: string, realm: string, password: string): string {
  return digestHash(alg, `${username}:${realm}:${password}`);
}

/** RFC 7616 §3.4.4: username = H(unq(username) ":" unq(realm)) when `userhash=true`. */
export function computeUserhash(alg: DigestAlgorithm, username: string, realm: string): string {
  return digestHash(alg, `${username}:${realm}`);
}

/** What the request-digest is computed over. */
export interface ResponseInput {
  ha1: string;
  nonce: string;
  method: string;
  uri: string;
  /** Present with qop=auth: nc (8 hex digits as sent) and cnonce. */
  qop?: 'auth';
  nc?: string;
  cnonce?: string;
}

/**
 * RFC 7616 §3.4.1: response = KD(H(A1), unq(nonce) ":" nc ":" unq(cnonce) ":" unq(qop) ":" H(A2)) with
 * A2 = Method ":" request-uri (§3.4.3, qop=auth); without qop (RFC 2069 compatibility, RFC 3261 §22.4)
 * response = KD(H(A1), unq(nonce) ":" H(A2)).
 */
export function computeResponse(alg: DigestAlgorithm, input: ResponseInput): string {
  const ha2 = digestHash(alg, `${input.method}:${input.uri}`);
  if (input.qop === 'auth') {
    return digestHash(alg, `${input.ha1}:${input.nonce}:${input.nc ?? ''}:${input.cnonce ?? ''}:auth:${ha2}`);
  }
  return digestHash(alg, `${input.ha1}:${input.nonce}:${ha2}`);
}

/** Digest credentials as read from an Authorization / Proxy-Authorization header (RFC 7616 §3.4). */
export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  /** The algorithm parameter as written (`undefined` when absent: MD5, RFC 7616 §3.4). */
  algorithmParam?: string;
  /** The algorithm, when one this implementation computes. */
  algorithm: DigestAlgorithm | undefined;
  cnonce?: string;
  /** The nonce count as sent (8 hex digits) and its value. */
  nc?: string;
  ncValue?: number;
  qop?: string;
  opaque?: string;
  /** RFC 7616 §3.4.4: the username is H(username:realm). */
  userhash: boolean;
}

const NC = /^[0-9a-fA-F]{8}$/;
const HEX = /^[0-9a-fA-F]+$/;
/** Upper bound on any digest parameter we keep (a username, a nonce…): longer values are refused. */
const MAX_PARAM = 1024;

/**
 * Reads Digest credentials (RFC 7616 §3.4, RFC 3261 §25.1 `digest-response`). Refuses (never throws) a scheme other
 * than Digest, a missing username/realm/nonce/uri/response, a malformed nc, an over-long value, and qop=auth without
 * cnonce and nc. It does not judge the values (realm, nonce, algorithm): the authenticator does.
 */
export function readDigestCredentials(h: AuthHeader): Result<DigestCredentials, string> {
  if (h.scheme.toLowerCase() !== 'digest') return fail(`unsupported auth scheme ${h.scheme}`);
  if (h.token68 !== undefined) return fail('digest credentials without parameters');
  const seen = new Set<string>();
  for (const [name, value] of h.params) {
    const n = name.toLowerCase();
    // RFC 7616 §3.4: each parameter at most once; duplicates make the credentials ambiguous.
    if (seen.has(n)) return fail(`duplicate digest parameter ${n}`);
    seen.add(n);
    if (value !== null && value.length > MAX_PARAM) return fail(`digest parameter ${n} too long`);
  }
  const req = (name: string): string | undefined => {
    const v = getParam(h.params, name);
    return v === null || v === undefined ? undefined : v;
  };
  const username = req('username');
  const realm = req('realm');
  const nonce = req('nonce');
  const uri = req('uri');
  const response = req('response');
  if (username === undefined) return fail('digest username missing');
  if (realm === undefined) return fail('digest realm missing');
  if (nonce === undefined || nonce === '') return fail('digest nonce missing');
  if (uri === undefined || uri === '') return fail('digest uri missing');
  if (response === undefined || response === '') return fail('digest response missing');
  if (!HEX.test(response)) return fail('digest response is not hex');
  const algorithmParam = req('algorithm');
  const out: DigestCredentials = {
    username,
    realm,
    nonce,
    uri,
    response: response.toLowerCase(),
    algorithm: algorithmParam === undefined ? 'MD5' : parseAlgorithm(algorithmParam),
    userhash: (req('userhash') ?? '').toLowerCase() === 'true',
  };
  if (algorithmParam !== undefined) out.algorithmParam = algorithmParam;
  const qop = req('qop');
  if (qop !== undefined) {
    out.qop = qop;
    const nc = req('nc');
    const cnonce = req('cnonce');
    // RFC 7616 §3.4: cnonce and nc MUST be sent when qop is.
    if (nc === undefined || !NC.test(nc)) return fail('digest nc missing or malformed');
    if (cnonce === undefined || cnonce === '') return fail('digest cnonce missing');
    out.nc = nc;
    out.ncValue = Number.parseInt(nc, 16);
    out.cnonce = cnonce;
  }
  const opaque = req('opaque');
  if (opaque !== undefined) out.opaque = opaque;
  return ok(out);
}

/** What one challenge header carries (RFC 7616 §3.3). */
export interface ChallengeInput {
  realm: string;
  nonce: string;
  opaque: string;
  algorithm: DigestAlgorithm;
  stale?: boolean;
  userhash?: boolean;
}

/**
 * RFC 7616 §3.3: `Digest realm="…", nonce="…", opaque="…", algorithm=…, qop="auth"[, stale=true][, userhash=true]`.
 */
export function formatChallenge(c: ChallengeInput): string {
  let s = `Digest realm=${quote(c.realm)}, nonce=${quote(c.nonce)}, opaque=${quote(c.opaque)}, algorithm=${c.algorithm}, qop="auth"`;
  if (c.stale) s += ', stale=true';
  if (c.userhash) s += ', userhash=true';
  return s;
}
