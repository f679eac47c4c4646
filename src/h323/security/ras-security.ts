import { type AliasText, aliasToText, H225_PROTOCOL_ID } from '../api.ts';
import type { AliasAddress, GatekeeperRequest, RasMessage } from '../per/generated/types.ts';
import { findHashedToken, isOid, OID_U, ReplayCache, signRas, verifyHash } from './h235.ts';

/**
 * The gatekeeper's H.235.1 policy (docs/h323.md "Security"): which RAS requests must carry a procedure I token,
 * whose key checks it, what is answered when it fails. Sans-I/O: the wall clock and the credential look-up are
 * injected. `off`: tokens are ignored; `optional`: a token, when present, must be good (its sender is then
 * authenticated), an unsigned request goes on; `required`: every request from an endpoint must carry a good token.
 */

export type H323SecurityMode = 'off' | 'optional' | 'required';

/** Where H.235.1 keys come from (the local credential store: SHA-1 of the password, kept at `users add/passwd`). */
export interface H235KeySource {
  keyFor(username: string): { kind: 'found'; key: Uint8Array } | { kind: 'unknown' } | { kind: 'unavailable' };
}

/** An authenticated sender: who, with which key (replies to it are signed with the same key). */
export interface RasAuth {
  username: string;
  key: Uint8Array;
  /** The sender's identifier as it named itself (the generalID of our signed answer). */
  sendersID: string | undefined;
}

/** The outcome of checking one RAS message. */
export type RasAdmission =
  | { kind: 'pass'; auth?: RasAuth }
  /** Refused with securityDenial; `failure`: a bad token (counted against the source by intrusion protection). */
  | { kind: 'deny'; reason: string; failure: boolean };

export interface RasSecurityOptions {
  mode: H323SecurityMode;
  keys: H235KeySource;
  /** Largest difference between the token's timeStamp and our clock (s). */
  timestampWindowSeconds: number;
  /** Wall-clock ms. */
  wallNow: () => number;
  /** Replay entries kept at most. */
  maxReplayEntries?: number;
}

/** What the check needs to know about registrations. */
export interface RegistrationView {
  /** The user a registration was authenticated as (undefined: not registered, or registered unauthenticated). */
  userOf(endpointIdentifier: string): string | undefined;
  /** The registration of an endpoint, if it is registered. */
  get(endpointIdentifier: string): object | undefined;
  readonly gatekeeperIdentifier: string;
}

/** Requests an endpoint sends that carry tokens under H.235.1. */
const CHECKED = new Set<RasMessage['choice']>([
  'gatekeeperRequest',
  'registrationRequest',
  'unregistrationRequest',
  'admissionRequest',
  'bandwidthRequest',
  'disengageRequest',
  'infoRequestResponse',
]);

interface Fields {
  endpointIdentifier?: string;
  gatekeeperIdentifier?: string;
  keepAlive?: boolean;
  terminalAlias?: AliasAddress[];
  endpointAlias?: AliasAddress[];
  srcInfo?: AliasAddress[];
}

/**
 * The H.235.1 algorithm a GRQ offers, if it offers procedure I: `authenticationCapability` with pwdHash and
 * `algorithmOIDs` with HMAC-SHA1-96 ("U", version 2 or 1). An endpoint that signs the rest of its RAS sends its GRQ
 * so, unsigned (H323Plus does): the GCF then names pwdHash and that algorithm, and the endpoint signs from the RRQ on.
 */
export function offeredH2351(grq: GatekeeperRequest): string | undefined {
  if (!(grq.authenticationCapability ?? []).some((c) => c.choice === 'pwdHash')) return undefined;
  const oids = grq.algorithmOIDs ?? [];
  // version 2 preferred when both are offered
  return oids.find((o) => o === OID_U) ?? oids.find((o) => isOid(o, OID_U));
}

/** Whether alias `a` names credential-store user `user` (an email-ID caselessly, as mail addresses compare). */
export function sameAlias(a: AliasText, user: string): boolean {
  return a.kind === 'email-ID' ? a.value.toLowerCase() === user.toLowerCase() : a.value === user;
}

export class RasSecurity {
  readonly #o: RasSecurityOptions;
  readonly #replay: ReplayCache;
  /** `discovery`: unsigned GRQs that offered H.235.1 (answered, in `required` mode too; they register nothing). */
  readonly counters = { authenticated: 0, unsigned: 0, retransmissions: 0, denied: 0, failures: 0, discovery: 0 };

  constructor(o: RasSecurityOptions) {
    this.#o = o;
    this.#replay = new ReplayCache(o.maxReplayEntries ?? 100_000);
  }

  get mode(): H323SecurityMode {
    return this.#o.mode;
  }

  /** Checks a decoded RAS message against the datagram it came in (`raw`). */
  check(m: RasMessage, raw: Uint8Array, regs: RegistrationView): RasAdmission {
    if (this.#o.mode === 'off' || !CHECKED.has(m.choice)) return { kind: 'pass' };
    const v = m.value as Fields & { cryptoTokens?: Parameters<typeof findHashedToken>[0] };
    // H.225.0 §7.9.1: a keep-alive from an endpoint we do not know (lost in a restart, expired) is told
    // fullRegistrationRequired whatever its token: that answer changes nothing, and the full RRQ is checked.
    if (m.choice === 'registrationRequest' && v.keepAlive && !(v.endpointIdentifier && regs.get(v.endpointIdentifier)))
      return { kind: 'pass' };
    const found = findHashedToken(v.cryptoTokens);
    if (!found) {
      // discovery before any shared identity: a GRQ offering procedure I is answered unsigned (the GCF selects it)
      if (m.choice === 'gatekeeperRequest' && offeredH2351(m.value) !== undefined) {
        this.counters.discovery++;
        return { kind: 'pass' };
      }
      if (this.#o.mode === 'required') return this.#deny('no H.235.1 token', false);
      // optional: an unsigned request may not act for an endpoint that registered authenticated
      if (v.endpointIdentifier !== undefined && regs.userOf(v.endpointIdentifier) !== undefined)
        return this.#deny('unsigned request for an authenticated registration', false);
      this.counters.unsigned++;
      return { kind: 'pass' };
    }
    if (!found.ok) return this.#deny(`malformed H.235.1 token: ${found.reason}`, true);
    const { clear, hash } = found.token;
    // H.235.1 §: generalID names the recipient; a token meant for another gatekeeper is refused.
    if (clear.generalID !== undefined && clear.generalID !== regs.gatekeeperIdentifier)
      return this.#deny(`token for gatekeeper ${clear.generalID}`, true);
    if (clear.timeStamp === undefined || clear.random === undefined)
      return this.#deny('token without timeStamp or random', true);
    const now = this.#o.wallNow();
    const windowMs = this.#o.timestampWindowSeconds * 1000;
    if (Math.abs(now - clear.timeStamp * 1000) > windowMs)
      return this.#deny(`timeStamp ${clear.timeStamp} outside the window`, true);
    const username = this.#userOf(v, clear.sendersID, regs);
    if (username === undefined) return this.#deny('no sender to authenticate', true);
    const k = this.#o.keys.keyFor(username);
    if (k.kind === 'unavailable') return this.#deny('credential store unavailable', false);
    if (k.kind === 'unknown') return this.#deny(`unknown user ${username}`, true);
    if (!verifyHash(raw, hash, k.key)) return this.#deny(`bad hash from ${username}`, true);
    const seen = this.#replay.admit(username, clear.timeStamp, clear.random, hash, now, now + 2 * windowMs + 1000);
    if (seen === 'replay') return this.#deny(`replayed token from ${username}`, true);
    if (seen === 'repeat') this.counters.retransmissions++;
    // the sender acts for itself only: its own registration, or (full RRQ) aliases that include its name
    if (v.endpointIdentifier !== undefined) {
      const owner = regs.userOf(v.endpointIdentifier);
      if (owner !== undefined && owner !== username)
        return this.#deny(`${username} acting for an endpoint of ${owner}`, true);
    }
    if (m.choice === 'registrationRequest' && !v.keepAlive) {
      const aliases = (v.terminalAlias ?? []).map(aliasToText);
      if (!aliases.some((a) => sameAlias(a, username)))
        return this.#deny(`${username} registering aliases not its own`, true);
    }
    this.counters.authenticated++;
    return { kind: 'pass', auth: { username, key: k.key, sendersID: clear.sendersID } };
  }

  /**
   * Who signed: sendersID naming a registered endpoint → the user it registered as; another sendersID → that user
   * name (GRQ/RRQ before an endpointIdentifier exists); none → the endpoint's registration, else its first alias.
   */
  #userOf(v: Fields, sendersID: string | undefined, regs: RegistrationView): string | undefined {
    if (sendersID !== undefined && sendersID !== '') return regs.userOf(sendersID) ?? sendersID;
    if (v.endpointIdentifier !== undefined) {
      const u = regs.userOf(v.endpointIdentifier);
      if (u !== undefined) return u;
    }
    const aliases = v.terminalAlias ?? v.endpointAlias ?? v.srcInfo ?? [];
    const first = aliases.map(aliasToText).find((a) => a.kind !== 'transportID');
    return first?.value;
  }

  #deny(reason: string, failure: boolean): RasAdmission {
    this.counters.denied++;
    if (failure) this.counters.failures++;
    return { kind: 'deny', reason, failure };
  }

  /**
   * A signed answer to an authenticated sender (generalID: the sender, sendersID: the gatekeeper). An RCF names the
   * endpoint by the endpointIdentifier it assigns: from then on that is the endpoint's identity (H323Plus refuses an
   * RCF whose generalID is anything else, e.g. the alias its RRQ was signed as).
   */
  sign(reply: RasMessage, auth: RasAuth, gatekeeperIdentifier: string, random: number): Uint8Array {
    const generalID = reply.choice === 'registrationConfirm' ? reply.value.endpointIdentifier : auth.sendersID;
    return signRas(reply, {
      key: auth.key,
      ...(generalID !== undefined ? { generalID } : {}),
      sendersID: gatekeeperIdentifier,
      timeStamp: Math.floor(this.#o.wallNow() / 1000),
      random,
    });
  }
}

/** The securityDenial answer to a request (undefined for messages that get no answer). */
export function securityDenial(m: RasMessage, gatekeeperIdentifier: string): RasMessage | undefined {
  const nul = { choice: 'securityDenial', value: null } as const;
  const seq = (m.value as { requestSeqNum: number }).requestSeqNum;
  switch (m.choice) {
    case 'gatekeeperRequest':
      return {
        choice: 'gatekeeperReject',
        value: { requestSeqNum: seq, protocolIdentifier: H225_PROTOCOL_ID, gatekeeperIdentifier, rejectReason: nul },
      };
    case 'registrationRequest':
      return {
        choice: 'registrationReject',
        value: { requestSeqNum: seq, protocolIdentifier: H225_PROTOCOL_ID, gatekeeperIdentifier, rejectReason: nul },
      };
    case 'unregistrationRequest':
      return { choice: 'unregistrationReject', value: { requestSeqNum: seq, rejectReason: nul } };
    case 'admissionRequest':
      return { choice: 'admissionReject', value: { requestSeqNum: seq, rejectReason: nul } };
    case 'bandwidthRequest':
      return { choice: 'bandwidthReject', value: { requestSeqNum: seq, rejectReason: nul, allowedBandWidth: 0 } };
    case 'disengageRequest':
      return { choice: 'disengageReject', value: { requestSeqNum: seq, rejectReason: nul } };
    case 'infoRequestResponse':
      return m.value.needResponse
        ? { choice: 'infoRequestNak', value: { requestSeqNum: seq, nakReason: nul } }
        : undefined;
    default:
      return undefined;
  }
}
