/**
 * The client side of SIP digest (RFC 7616 §3.4, RFC 8760): picks a challenge and computes the credentials answering
 * it. Used by Crossway's own outbound requests (traversal zones), tests and the bench load generator.
 */
import { randomBytes } from 'node:crypto';
import { fail, ok, type Result } from '../../common/result.ts';
import { getParam, parseChallenge, quote } from '../message/index.ts';
import { computeHa1, computeResponse, computeUserhash, type DigestAlgorithm, parseAlgorithm } from './digest.ts';

/** A digest challenge as read from WWW-Authenticate / Proxy-Authenticate. */
export interface DigestChallenge {
  realm: string;
  nonce: string;
  opaque?: string;
  algorithm: DigestAlgorithm;
  qop: string[];
  stale: boolean;
  userhash: boolean;
}

/** Reads one challenge value; refuses other schemes and algorithms this implementation cannot compute. */
export function readChallenge(value: string): Result<DigestChallenge, string> {
  const p = parseChallenge(value);
  if (!p.ok) return fail(p.reason);
  if (p.value.scheme.toLowerCase() !== 'digest') return fail(`scheme ${p.value.scheme}`);
  const get = (n: string) => getParam(p.value.params, n) ?? undefined;
  const realm = get('realm');
  const nonce = get('nonce');
  if (realm === undefined || nonce === undefined) return fail('realm or nonce missing');
  const algParam = get('algorithm');
  const algorithm = algParam === undefined ? 'MD5' : parseAlgorithm(algParam);
  if (!algorithm) return fail(`algorithm ${algParam}`);
  const out: DigestChallenge = {
    realm,
    nonce,
    algorithm,
    qop: (get('qop') ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter(Boolean),
    stale: (get('stale') ?? '').toLowerCase() === 'true',
    userhash: (get('userhash') ?? '').toLowerCase() === 'true',
  };
  const opaque = get('opaque');
  if (opaque !== undefined) out.opaque = opaque;
  return ok(out);
}

/** RFC 8760 §2.4: the client uses the first challenge whose algorithm it supports, in the server's order. */
export function pickChallenge(
  values: readonly string[],
  supported: readonly DigestAlgorithm[] = ['SHA-512-256', 'SHA-256', 'MD5'],
): DigestChallenge | undefined {
  for (const v of values) {
    const c = readChallenge(v);
    if (c.ok && supported.includes(c.value.algorithm)) return c.value;
  }
  return undefined;
}

export interface AnswerInput {
  username: string;
  password: string;
  method: string;
  uri: string;
  /** Nonce count (default 1). */
  nc?: number;
  cnonce?: string;
  /** Send username as userhash when the challenge offers it. */
  useUserhash?: boolean;
}

/** The Authorization / Proxy-Authorization value answering `challenge` (qop=auth when offered). */
export function answerChallenge(challenge: DigestChallenge, input: AnswerInput): string {
  const alg = challenge.algorithm;
  const ha1 = computeHa1(alg, input.username, challenge.realm, input.password);
  const qopAuth = challenge.qop.includes('auth');
  const nc = (input.nc ?? 1).toString(16).padStart(8, '0');
  const cnonce = input.cnonce ?? randomBytes(12).toString('base64url');
  const response = computeResponse(alg, {
    ha1,
    nonce: challenge.nonce,
    method: input.method,
    uri: input.uri,
    ...(qopAuth ? { qop: 'auth' as const, nc, cnonce } : {}),
  });
  const hashed = input.useUserhash && challenge.userhash;
  const username = hashed ? computeUserhash(alg, input.username, challenge.realm) : input.username;
  let s = `Digest username=${quote(username)}, realm=${quote(challenge.realm)}, nonce=${quote(challenge.nonce)}, uri=${quote(input.uri)}, response=${quote(response)}, algorithm=${alg}`;
  if (qopAuth) s += `, qop=auth, nc=${nc}, cnonce=${quote(cnonce)}`;
  if (challenge.opaque !== undefined) s += `, opaque=${quote(challenge.opaque)}`;
  if (hashed) s += ', userhash=true';
  return s;
}
