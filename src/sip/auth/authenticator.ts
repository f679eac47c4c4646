/**
 * SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760) as a {@link RequestAuthenticator}: challenges with
 * one header per algorithm (strongest first), stateless nonces with stale=true, qop=auth with nonce-count replay
 * protection, opaque, optional userhash. Unknown users and wrong passwords take the same path and get the same answer:
 * for an unknown user a per-node dummy HA1 stands in, so the response is computed and compared the same way.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { category, type Logger, silentLogger } from '../../common/log.ts';
import {
  createResponse,
  findHeaders,
  newTag,
  parseAuthorization,
  parseUri,
  type SipRequest,
  type SipResponse,
  uriEquals,
} from '../message/index.ts';
import type { CredentialLookup, CredentialQuery, CredentialSource } from './credentials.ts';
import {
  computeResponse,
  type DigestAlgorithm,
  type DigestCredentials,
  digestHash,
  formatChallenge,
  HEX_LENGTH,
  readDigestCredentials,
} from './digest.ts';
import type { NcCheck, NonceCountTracker } from './nc-tracker.ts';
import type { NonceCheck, NonceIssuer } from './nonce.ts';
import type { AuthContext, AuthResult, RequestAuthenticator } from './types.ts';

/** Why an authentication attempt failed, as told to intrusion protection. */
export type AuthFailureKind = 'credentials' | 'malformed';

export interface DigestAuthenticatorOptions {
  credentials: CredentialSource;
  nonces: NonceIssuer;
  tracker: NonceCountTracker;
  /** Opaque value echoed by clients (RFC 7616 §3.3); per node. */
  opaque: string;
  /** Offered algorithms in order of preference (RFC 8760 §2.4: most preferred first). */
  algorithms: readonly DigestAlgorithm[];
  /** Offer userhash=true (RFC 7616 §3.4.4) when the source supports it. */
  userhash: boolean;
  /** Key of the dummy HA1 computed for unknown users (random per node). */
  dummyKey: Buffer;
  /** Retry-After of the 503 sent when the credential source is unavailable (s). */
  retryAfterSeconds: number;
  log?: Logger;
  /** Told of every failed attempt (wrong credentials, forged nonce, malformed credentials). Must not throw. */
  onFailure?: (source: AuthContext['source'], kind: AuthFailureKind) => void;
}

/** Counters of the authenticator, for status and tests. */
export interface AuthCounters {
  challenges: number;
  authenticated: number;
  failed: number;
  malformed: number;
  stale: number;
  replays: number;
  unavailable: number;
}

const HEADERS = {
  registrar: { credentials: 'authorization', challenge: 'WWW-Authenticate', status: 401 },
  proxy: { credentials: 'proxy-authorization', challenge: 'Proxy-Authenticate', status: 407 },
} as const;

/** Digest authenticator over one credential source. */
export class DigestAuthenticator implements RequestAuthenticator {
  readonly #o: DigestAuthenticatorOptions;
  readonly #log: Logger;
  readonly #offered: readonly DigestAlgorithm[];
  readonly #userhash: boolean;
  readonly counters: AuthCounters = {
    challenges: 0,
    authenticated: 0,
    failed: 0,
    malformed: 0,
    stale: 0,
    replays: 0,
    unavailable: 0,
  };

  constructor(o: DigestAuthenticatorOptions) {
    this.#o = o;
    this.#log = category(o.log ?? silentLogger, 'sip.auth');
    this.#offered = o.algorithms.filter((a) => o.credentials.algorithms.includes(a));
    if (this.#offered.length === 0) {
      throw new RangeError(`credential source ${o.credentials.name} supports none of ${o.algorithms.join(', ')}`);
    }
    this.#userhash = o.userhash && o.credentials.supportsUserhash;
  }

  /** The algorithms offered in challenges, in order. */
  get algorithms(): readonly DigestAlgorithm[] {
    return this.#offered;
  }

  /**
   * Synchronous when the credential source answers synchronously (the local store): no promise, no microtask on the
   * path of every REGISTER; a promise only while an asynchronous source (LDAP) looks the user up.
   */
  authenticate(request: SipRequest, ctx: AuthContext): AuthResult | Promise<AuthResult> {
    const names = HEADERS[ctx.mode];
    // RFC 3261 §22.3 / §22.4: credentials are matched by realm; credentials for other realms are not ours to judge.
    let cred: DigestCredentials | undefined;
    for (const h of findHeaders(request, names.credentials)) {
      const parsed = parseAuthorization(h.value);
      if (!parsed.ok) return this.#malformed(request, ctx, `Malformed ${h.name}: ${parsed.reason}`);
      if (parsed.value.scheme.toLowerCase() !== 'digest') continue;
      const read = readDigestCredentials(parsed.value);
      if (!read.ok) return this.#malformed(request, ctx, `Bad digest credentials: ${read.reason}`);
      if (read.value.realm === ctx.realm) {
        cred = read.value;
        break;
      }
    }
    if (!cred) return this.#challenge(request, ctx, false);

    // RFC 7616 §3.4: qop is required in the response to a challenge that offered it (ours always does).
    if (cred.qop === undefined) return this.#malformed(request, ctx, 'Digest qop missing');
    if (cred.qop.toLowerCase() !== 'auth') return this.#malformed(request, ctx, 'Unsupported digest qop');
    // RFC 7616 §3.4.6: the server SHOULD check that the uri names the same resource as the request-target.
    if (!sameUri(cred.uri, request.uri)) return this.#malformed(request, ctx, 'Digest uri does not match Request-URI');

    const alg = cred.algorithm;
    const opaqueOk = cred.opaque !== undefined && safeEqualString(cred.opaque, this.#o.opaque);
    const nonce = this.#o.nonces.check(cred.nonce, ctx.realm);
    if (alg === undefined || !this.#offered.includes(alg) || !opaqueOk || nonce.status === 'invalid') {
      // Not an answer to one of our challenges (algorithm not offered, opaque or nonce not ours): count it, and
      // challenge again without looking the user up.
      this.#fail(ctx, 'credentials', cred, 'not an answer to our challenge');
      return this.#challenge(request, ctx, false);
    }
    if (cred.userhash && !this.#userhash) {
      this.#fail(ctx, 'credentials', cred, 'userhash not offered');
      return this.#challenge(request, ctx, false);
    }

    const query: CredentialQuery = { realm: ctx.realm, username: cred.username, algorithm: alg };
    if (cred.userhash) query.userhash = alg;
    const looked = this.#o.credentials.lookup(query);
    const answered = cred;
    if (looked instanceof Promise) return looked.then((l) => this.#verify(request, ctx, answered, alg, nonce, l));
    return this.#verify(request, ctx, answered, alg, nonce, looked);
  }

  /** The rest of `authenticate` once the source answered. */
  #verify(
    request: SipRequest,
    ctx: AuthContext,
    cred: DigestCredentials,
    alg: DigestAlgorithm,
    nonce: Exclude<NonceCheck, { status: 'invalid' }>,
    looked: CredentialLookup,
  ): AuthResult {
    if (looked.kind === 'unavailable') {
      this.counters.unavailable++;
      this.#log.error(
        { source: this.#o.credentials.name, reason: looked.reason },
        'credential source unavailable => 503',
      );
      return {
        kind: 'rejected',
        response: this.#respond(request, 503, 'Service Unavailable', [
          ['Retry-After', String(this.#o.retryAfterSeconds)],
        ]),
      };
    }
    // Same work for unknown users as for known ones: a dummy HA1 of the right length, the same digest, the same
    // constant-time compare, the same answer.
    const known = looked.kind === 'found' ? looked.ha1[alg] : undefined;
    const ha1 = known ?? this.#dummyHa1(alg, ctx.realm, cred.username);
    const expected = computeResponse(alg, {
      ha1,
      nonce: cred.nonce,
      method: request.method,
      uri: cred.uri,
      qop: 'auth',
      nc: cred.nc!,
      cnonce: cred.cnonce!,
    });
    const match = safeEqualHex(expected, cred.response, HEX_LENGTH[alg]);
    if (!match || known === undefined || looked.kind !== 'found') {
      this.#fail(ctx, 'credentials', cred, 'wrong credentials');
      return { kind: 'rejected', response: this.#respond(request, 403, 'Forbidden') };
    }
    // RFC 7616 §3.3 stale: "the nonce value was stale" — set only when the digest itself was valid.
    if (nonce.status === 'stale') {
      this.counters.stale++;
      return this.#challenge(request, ctx, true);
    }
    const nc: NcCheck = this.#o.tracker.use(cred.nonce, nonce.issuedAt, cred.ncValue!);
    if (nc !== 'fresh') {
      // RFC 7616 §3.3 nc: a count seen twice is a replay. The client that really holds the password retries with a
      // new nonce (stale=true); a replaying attacker cannot.
      if (nc === 'replay') {
        this.counters.replays++;
        this.#log.warn({ source: ctx.source.address, user: looked.username }, 'digest nonce-count replay => 401 stale');
      } else {
        this.counters.stale++;
      }
      return this.#challenge(request, ctx, true);
    }
    this.counters.authenticated++;
    return { kind: 'authenticated', username: looked.username, realm: ctx.realm };
  }

  #dummyHa1(alg: DigestAlgorithm, realm: string, username: string): string {
    const k = createHmac('sha256', this.#o.dummyKey).update(`${realm}\0${username}`).digest('hex');
    return digestHash(alg, k);
  }

  #fail(ctx: AuthContext, kind: AuthFailureKind, cred: DigestCredentials | undefined, why: string): void {
    if (kind === 'malformed') this.counters.malformed++;
    else this.counters.failed++;
    this.#log.debug({ source: ctx.source.address, user: cred?.username, why }, 'authentication failed');
    try {
      this.#o.onFailure?.(ctx.source, kind);
    } catch (err) {
      this.#log.error({ err: (err as Error).message }, 'auth failure hook threw => ignored');
    }
  }

  #malformed(request: SipRequest, ctx: AuthContext, reason: string): AuthResult {
    this.#fail(ctx, 'malformed', undefined, reason);
    return { kind: 'rejected', response: this.#respond(request, 400, reason) };
  }

  #challenge(request: SipRequest, ctx: AuthContext, stale: boolean): AuthResult {
    this.counters.challenges++;
    const names = HEADERS[ctx.mode];
    const nonce = this.#o.nonces.issue(ctx.realm);
    // RFC 8760 §2.4: one challenge per algorithm, in order of preference; the same nonce serves all of them.
    const headers = this.#offered.map(
      (algorithm) =>
        [
          names.challenge,
          formatChallenge({
            realm: ctx.realm,
            nonce,
            opaque: this.#o.opaque,
            algorithm,
            stale,
            userhash: this.#userhash,
          }),
        ] as const,
    );
    return { kind: 'challenge', response: this.#respond(request, names.status, undefined, headers) };
  }

  #respond(
    request: SipRequest,
    status: number,
    reason?: string,
    headers: ReadonlyArray<readonly [string, string]> = [],
  ): SipResponse {
    // RFC 3261 §8.2.6.2: a final response carries a To tag.
    return createResponse(request, status, reason, { toTag: newTag(), headers });
  }
}

function sameUri(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = parseUri(a);
  const pb = parseUri(b);
  return pa.ok && pb.ok && uriEquals(pa.value, pb.value);
}

function safeEqualString(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}

/** Constant-time compare of two hex digests; a response of the wrong length is compared against itself, then refused. */
function safeEqualHex(expected: string, given: string, length: number): boolean {
  const e = Buffer.from(expected, 'latin1');
  const g = Buffer.from(given.length === length ? given : expected, 'latin1');
  return timingSafeEqual(e, g) && given.length === length;
}
