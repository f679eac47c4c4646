import { randomInt } from 'node:crypto';
import { type AliasText, aliasToText } from '../api.ts';
import { CAUSE, releaseComplete } from '../calls/routed-call.ts';
import { aliasKey, type H323Registration } from '../gatekeeper/gatekeeper.ts';
import type { Setup_UUIE } from '../per/generated/types.ts';
import { decodeCallSignalling, encodeCallSignalling } from '../q931/call-signalling.ts';
import { q931MessageName } from '../q931/q931.ts';
import { findHashedToken, ReplayCache, signEncoded, verifyHash } from './h235.ts';
import { type H235KeySource, type H323SecurityMode, sameAlias } from './ras-security.ts';

/**
 * H.235.1 procedure I on call signalling (docs/h323.md "Security"): the Setup an endpoint sends to the node's
 * call signalling port carries, in `Setup-UUIE.cryptoTokens`, the same hashed token as its RAS messages, with the
 * HMAC-SHA1-96 computed over the whole call signalling message (the Q.931 message with its user-user IE, as carried
 * in the TPKT) with the hash bits zeroed, as H323Plus signs and GnuGk checks it. The node is the recipient in the routed model: generalID, when
 * given, is the gatekeeperIdentifier. Sans-I/O: the wall clock, the credential look-up and the registrations are
 * injected; the call server asks before a call exists for the connection.
 *
 * `off`: nothing checked. `required`: every Setup from an endpoint must carry a good token from a registered
 * endpoint. `optional`: a token, when present, must be good; an unsigned Setup goes on unless it speaks for a
 * registration that was authenticated. Setups from an H.323 neighbor zone's address are not checked (neighbor
 * gatekeepers are trusted by configuration, as their LRQs are). A passed Setup's tokens are removed before it goes
 * on: they were for the node, and the node rewrites the Setup (its hash would not hold toward the callee).
 *
 * Later messages (H.235.1 §13.2 lists every call signalling message as secured): once a caller signed its Setup, each
 * message it sends after it on that connection is checked by `checkMessage` with the same user's key. A token, when
 * present, must be good (else the call ends with ReleaseComplete securityDenied); a message without one is refused
 * only in `required` mode with `everyCallMessage` on (many stacks sign the Setup alone). The same check covers the
 * callee's answers when the callee registered with a token (`checkMessage` with the callee's user).
 *
 * The node's own call signalling toward an endpoint that holds a key (a caller whose Setup was signed, a callee that
 * registered signed) is signed by `signMessage` with that user's key: generalID the endpoint's identifier,
 * sendersID the gatekeeperIdentifier, the hash over the whole Q.931 message, as the endpoint signs toward us.
 */

/** What the check needs to know about registrations (the gatekeeper). */
export interface SetupRegistrationView {
  get(endpointIdentifier: string): H323Registration | undefined;
  /** The registration an alias names, if any. */
  byAlias(alias: AliasText): H323Registration | undefined;
  readonly gatekeeperIdentifier: string;
}

export interface CallSecurityOptions {
  mode: H323SecurityMode;
  keys: H235KeySource;
  /** Largest difference between the token's timeStamp and our clock (s). */
  timestampWindowSeconds: number;
  /** `required` mode: the messages after a signed Setup must carry a token too (default false: checked when present). */
  everyCallMessage?: boolean;
  /** Wall-clock ms. */
  wallNow: () => number;
  maxReplayEntries?: number;
}

/** The outcome for the caller's first PDU. */
export type SetupAdmission =
  /**
   * Go on with `pdu` (the Setup without its tokens when it was signed); `user`: who signed it; `endpoint`: the
   * endpointIdentifier of the registration it signed for (the generalID of the node's signed answers).
   */
  | { kind: 'pass'; pdu: Uint8Array; user?: string; endpoint?: string }
  /**
   * Refused: `reply` is the ReleaseComplete (reason securityDenied) to send before closing; `failure`: a bad token
   * (counted against the source by intrusion protection), not merely a missing one.
   */
  | { kind: 'deny'; reason: string; failure: boolean; reply: Uint8Array };

export class CallSecurity {
  readonly #o: CallSecurityOptions;
  readonly #replay: ReplayCache;
  /**
   * Setups: `authenticated`, `unsigned` (passed without a token), `neighbour` (not checked), `denied`, `failures`
   * (denied for a bad token). Later messages of signed calls: `messages` (good token), `messagesUnsigned` (passed
   * without one); their refusals count in `denied` and `failures` too.
   */
  readonly counters = {
    authenticated: 0,
    unsigned: 0,
    neighbour: 0,
    denied: 0,
    failures: 0,
    messages: 0,
    messagesUnsigned: 0,
    signed: 0,
    unsignable: 0,
  };
  /** The ClearToken `random` of the node's next signed message (counts up from a random start, as H323Plus does). */
  #random = randomInt(1, 0x40000000);

  constructor(o: CallSecurityOptions) {
    this.#o = o;
    this.#replay = new ReplayCache(o.maxReplayEntries ?? 100_000);
  }

  get mode(): H323SecurityMode {
    return this.#o.mode;
  }

  /**
   * Checks the first PDU of a caller's connection. Anything that is not a decodable Setup passes unchanged (the
   * call ends it as malformed or out of order); `fromNeighbour`: the connection comes from a neighbor zone.
   */
  checkSetup(pdu: Uint8Array, regs: SetupRegistrationView, fromNeighbour: boolean): SetupAdmission {
    if (this.#o.mode === 'off') return { kind: 'pass', pdu };
    const d = decodeCallSignalling(pdu);
    if (!d.ok) return { kind: 'pass', pdu };
    const m = d.value;
    const body = m.uu?.['h323-uu-pdu']['h323-message-body'];
    if (q931MessageName(m.q931.messageType) !== 'setup' || body?.choice !== 'setup') return { kind: 'pass', pdu };
    if (fromNeighbour) {
      this.counters.neighbour++;
      return { kind: 'pass', pdu };
    }
    const setup = body.value;
    const deny = (reason: string, failure: boolean): SetupAdmission => {
      this.counters.denied++;
      if (failure) this.counters.failures++;
      // H.225.0 ReleaseCompleteReason securityDenied; Q.850 cause 21 (call rejected), as for a call-policy refusal
      const reply = releaseComplete(
        m.q931.callReference,
        true,
        setup.callIdentifier?.guid,
        CAUSE.callRejected,
        'securityDenied',
      );
      return { kind: 'deny', reason, failure, reply };
    };
    const sources = (setup.sourceAddress ?? []).map(aliasToText).filter((a) => a.kind !== 'transportID');
    const found = findHashedToken(setup.cryptoTokens);
    if (!found) {
      if (this.#o.mode === 'required') return deny('no H.235.1 token', false);
      // optional: an unsigned Setup may not speak for an endpoint that registered authenticated
      const claimed = [
        ...(setup.endpointIdentifier ? [regs.get(setup.endpointIdentifier)] : []),
        ...sources.map((a) => regs.byAlias(a)),
      ];
      if (claimed.some((r) => r?.authUser !== undefined))
        return deny('unsigned Setup for an authenticated registration', false);
      this.counters.unsigned++;
      return { kind: 'pass', pdu };
    }
    if (!found.ok) return deny(`malformed H.235.1 token: ${found.reason}`, true);
    const { clear, hash } = found.token;
    // H.235.1: generalID names the recipient, the node itself in the routed model
    if (clear.generalID !== undefined && clear.generalID !== regs.gatekeeperIdentifier)
      return deny(`token for ${clear.generalID}`, true);
    if (clear.timeStamp === undefined || clear.random === undefined)
      return deny('token without timeStamp or random', true);
    const now = this.#o.wallNow();
    const windowMs = this.#o.timestampWindowSeconds * 1000;
    if (Math.abs(now - clear.timeStamp * 1000) > windowMs)
      return deny(`timeStamp ${clear.timeStamp} outside the window`, true);
    // the registration the caller speaks for: sendersID as an endpointIdentifier, the Setup's endpointIdentifier,
    // sendersID as an alias, then its first source alias
    const sender = clear.sendersID || undefined;
    const reg =
      (sender !== undefined ? regs.get(sender) : undefined) ??
      (setup.endpointIdentifier ? regs.get(setup.endpointIdentifier) : undefined) ??
      (sender !== undefined ? regs.byAlias({ kind: 'h323-ID', value: sender }) : undefined) ??
      (sources[0] ? regs.byAlias(sources[0]) : undefined);
    const username =
      reg?.authUser ?? (sender !== undefined && sender !== reg?.endpointIdentifier ? sender : sources[0]?.value);
    if (username === undefined) return deny('no sender to authenticate', true);
    const k = this.#o.keys.keyFor(username);
    if (k.kind === 'unavailable') return deny('credential store unavailable', false);
    if (k.kind === 'unknown') return deny(`unknown user ${username}`, true);
    // the hash covers the whole Q.931 message as received
    if (!verifyHash(pdu, hash, k.key)) return deny(`bad hash from ${username}`, true);
    // a Setup is never retransmitted on TCP: a (sender, timeStamp, random) seen before is a replay
    if (this.#replay.admit(username, clear.timeStamp, clear.random, hash, now, now + 2 * windowMs + 1000) !== 'new')
      return deny(`replayed token from ${username}`, true);
    if (!reg) return deny(`${username} is not registered`, false);
    if (reg.authUser !== undefined ? reg.authUser !== username : !reg.aliases.some((a) => sameAlias(a, username)))
      return deny(`${username} speaking for ${reg.endpointIdentifier}`, true);
    // the caller names itself only by aliases of its own registration
    const own = new Set(reg.aliases.map(aliasKey));
    const foreign = sources.find((a) => !own.has(aliasKey(a)));
    if (foreign) return deny(`${username} calling as ${foreign.kind}:${foreign.value}`, true);
    this.counters.authenticated++;
    const { cryptoTokens: _signed, ...unsigned } = setup as Setup_UUIE;
    const uu = m.uu!;
    const out = encodeCallSignalling({
      ...m,
      uu: {
        ...uu,
        'h323-uu-pdu': { ...uu['h323-uu-pdu'], 'h323-message-body': { choice: 'setup', value: unsigned } },
      },
    });
    return { kind: 'pass', pdu: out, user: username, endpoint: reg.endpointIdentifier };
  }

  /**
   * Checks a message the caller sends after its Setup, which `user` signed, or a message of a callee that `user`
   * registered (H.235.1 §13.2: every call signalling message is secured). A good token is removed before the message goes on (it was for the node); a message whose
   * body cannot carry one (no user-user IE, the `empty` body) or that does not decode passes unchanged.
   */
  checkMessage(pdu: Uint8Array, user: string, gatekeeperIdentifier: string): SetupAdmission {
    if (this.#o.mode === 'off') return { kind: 'pass', pdu };
    const d = decodeCallSignalling(pdu);
    if (!d.ok) return { kind: 'pass', pdu };
    const m = d.value;
    const uu = m.uu;
    const body = uu?.['h323-uu-pdu']['h323-message-body'];
    if (!uu || !body || body.choice === 'empty' || typeof body.value !== 'object' || body.value === null)
      return { kind: 'pass', pdu };
    const value = body.value as { cryptoTokens?: Setup_UUIE['cryptoTokens']; callIdentifier?: { guid: Uint8Array } };
    const name = q931MessageName(m.q931.messageType);
    const deny = (reason: string, failure: boolean): SetupAdmission => {
      this.counters.denied++;
      if (failure) this.counters.failures++;
      // toward the sender: the caller's call reference flag is the callee's reversed
      const reply = releaseComplete(
        m.q931.callReference,
        !m.q931.fromDestination,
        value.callIdentifier?.guid,
        CAUSE.callRejected,
        'securityDenied',
      );
      return { kind: 'deny', reason, failure, reply };
    };
    const found = findHashedToken(value.cryptoTokens);
    if (!found) {
      if (this.#o.mode === 'required' && this.#o.everyCallMessage)
        return deny(`${name} from ${user} without an H.235.1 token`, false);
      this.counters.messagesUnsigned++;
      return { kind: 'pass', pdu };
    }
    if (!found.ok) return deny(`malformed H.235.1 token on ${name}: ${found.reason}`, true);
    const { clear, hash } = found.token;
    if (clear.generalID !== undefined && clear.generalID !== gatekeeperIdentifier)
      return deny(`${name} token for ${clear.generalID}`, true);
    if (clear.timeStamp === undefined || clear.random === undefined)
      return deny(`${name} token without timeStamp or random`, true);
    const now = this.#o.wallNow();
    const windowMs = this.#o.timestampWindowSeconds * 1000;
    if (Math.abs(now - clear.timeStamp * 1000) > windowMs)
      return deny(`${name} timeStamp ${clear.timeStamp} outside the window`, true);
    // the key of the user who signed the Setup: a token by anyone else fails the hash
    const k = this.#o.keys.keyFor(user);
    if (k.kind === 'unavailable') return deny('credential store unavailable', false);
    if (k.kind === 'unknown') return deny(`unknown user ${user}`, true);
    if (!verifyHash(pdu, hash, k.key)) return deny(`bad hash on ${name} from ${user}`, true);
    if (this.#replay.admit(user, clear.timeStamp, clear.random, hash, now, now + 2 * windowMs + 1000) !== 'new')
      return deny(`replayed token on ${name} from ${user}`, true);
    this.counters.messages++;
    const { cryptoTokens: _signed, ...unsigned } = value;
    const out = encodeCallSignalling({
      ...m,
      uu: {
        ...uu,
        'h323-uu-pdu': {
          ...uu['h323-uu-pdu'],
          'h323-message-body': { choice: body.choice, value: unsigned } as typeof body,
        },
      },
    });
    return { kind: 'pass', pdu: out };
  }

  /**
   * Signs a call signalling message the node sends to an endpoint holding `user`'s key: its UUIE's `cryptoTokens`
   * become the one procedure I token (generalID `generalID`, the endpoint; sendersID the gatekeeperIdentifier), the
   * message is encoded with a unique placeholder as the hash, the placeholder zeroed and HMAC-SHA1-96 of the whole
   * Q.931 message written over it. A message whose body cannot carry a token (no user-user IE, `empty`), one that does
   * not decode, or a user without a key goes unsigned (counted in `unsignable`).
   */
  signMessage(pdu: Uint8Array, user: string, generalID: string | undefined, gatekeeperIdentifier: string): Uint8Array {
    if (this.#o.mode === 'off') return pdu;
    const d = decodeCallSignalling(pdu);
    const body = d.ok ? d.value.uu?.['h323-uu-pdu']['h323-message-body'] : undefined;
    const k = this.#o.keys.keyFor(user);
    if (
      !d.ok ||
      !body ||
      body.choice === 'empty' ||
      typeof body.value !== 'object' ||
      body.value === null ||
      k.kind !== 'found'
    ) {
      this.counters.unsignable++;
      return pdu;
    }
    const m = d.value;
    const uu = m.uu!;
    const random = this.#random;
    this.#random = this.#random >= 0x7fffffff ? 1 : this.#random + 1;
    const params = {
      key: k.key,
      ...(generalID !== undefined ? { generalID } : {}),
      sendersID: gatekeeperIdentifier,
      timeStamp: Math.floor(this.#o.wallNow() / 1000),
      random,
    };
    const bytes = signEncoded(params, (token) =>
      encodeCallSignalling({
        ...m,
        uu: {
          ...uu,
          'h323-uu-pdu': {
            ...uu['h323-uu-pdu'],
            'h323-message-body': {
              choice: body.choice,
              value: { ...body.value, cryptoTokens: [token] },
            } as typeof body,
          },
        },
      }),
    );
    if (!bytes) {
      this.counters.unsignable++;
      return pdu;
    }
    this.counters.signed++;
    return bytes;
  }
}
