import { randomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import {
  type AliasText,
  aliasToText,
  buildAcf,
  buildGcf,
  buildRcf,
  fromH225Address,
  H225_PROTOCOL_ID,
  h225Address,
  type IpPort,
  readArq,
} from '../api.ts';
import type {
  AdmissionRejectReason,
  AdmissionRequest,
  AliasAddress,
  BandwidthRequest,
  DisengageRequest,
  GatekeeperRequest,
  InfoRequestResponse,
  RasMessage,
  RegistrationRejectReason,
  RegistrationRequest,
  UnregistrationRequest,
  UnregRequestReason,
} from '../per/generated/types.ts';
import { rasCodec } from '../per/schema.ts';
import { offeredH2351, type RasAuth, type RasSecurity, securityDenial } from '../security/ras-security.ts';

/**
 * The RAS gatekeeper (H.225.0 §7, H.323 §7.2): discovery, registration with lightweight keep-alives and expiry,
 * unregistration both ways, admission in the gatekeeper-routed model (every call's signalling goes to the node),
 * bandwidth, disengage and info reports. Sans-I/O: datagrams and timer firings in, datagrams out; the clock is
 * injected and the composition root owns the socket (see `ras-server.ts`).
 */

/** Who may register (aliases matched against `patterns`: exact, or `*` as a wildcard). */
export interface RegistrationPolicy {
  mode: 'allow-all' | 'allow-list' | 'deny-list';
  patterns: readonly string[];
}

export interface GatekeeperOptions {
  gatekeeperIdentifier: string;
  /** The RAS address endpoints must use (the plan's `h323-ras` listener). */
  rasAddress: IpPort;
  /** Where admitted calls are sent in routed mode: the node's `h323-q931` listener. */
  callSignalAddress: IpPort;
  /** Seconds a registration lives without a keep-alive (H.225.0 timeToLive); the RCF grants at most this. */
  timeToLive: number;
  /** Seconds past `timeToLive` before an unrefreshed registration is dropped. */
  expiryGraceSeconds: number;
  maxRegistrations: number;
  policy: RegistrationPolicy;
  /** Whether an ARQ naming only an IP address (no alias) is admitted. */
  allowDialledIp: boolean;
  /** Largest bandwidth (100 bit/s units) granted per call in ARQ/BRQ. */
  maxBandwidthPerCall: number;
  /**
   * Admissions held at once (each side of a call is one, until its DRQ or its endpoint's unregistration); beyond
   * it an ARQ gets ARJ resourceUnavailable. Default 200,000.
   */
  maxAdmittedCalls?: number;
}

/** One registered endpoint (what the listing shows and the store keeps). */
export interface H323Registration {
  endpointIdentifier: string;
  aliases: AliasText[];
  callSignalAddresses: IpPort[];
  rasAddress: IpPort;
  timeToLive: number;
  /** Wall-clock ms of the full registration. */
  registeredAt: number;
  /** Wall-clock ms of the last RRQ (full or keep-alive) or IRR. */
  refreshedAt: number;
  vendor: string | undefined;
  /** The user the registration was authenticated as (H.235.1), when it was. */
  authUser?: string;
}

/** Largest RAS datagram read; anything longer is dropped and counted as malformed. */
export const MAX_RAS_DATAGRAM = 4096;

/**
 * Intrusion protection as the gatekeeper uses it (`IntrusionGuard` of the node): blocked sources dropped before
 * decoding; malformed PDUs, bad H.235.1 tokens and requests over the flood limit counted against their source.
 */
export interface RasProtection {
  allows(address: string): boolean;
  isExempt(address: string): boolean;
  onMalformed(address: string): void;
  onAuthFailure(address: string): void;
  onFlood(address: string): void;
}

/** Where an admitted call goes, as the call-signalling side resolves it (`zone`: found in that neighbor zone). */
export type H323Target =
  | { kind: 'endpoint'; registration: H323Registration }
  | { kind: 'address'; address: IpPort; zone?: string };

/**
 * How routing found a target: the zone it was found in (`LocalZone` for a registration here, a neighbor zone's name),
 * the alias searched there (after the pre-search transform and the search rule's rewrite) and the called alias it came
 * from. When the two differ, the Setup sent on carries the searched one (as SIP rewrites the Request-URI).
 */
export interface H323Found {
  zone: string;
  alias: string;
  dialled: string;
}

/**
 * What routing decides for a call: a target, refused by call policy (`rejected`), or not found (`not-found`, or
 * undefined when no routing ran). `sourceZone`: the zone the routing took the call to come from (`LocalZone`, or the
 * neighbor zone a Setup or LRQ came from), for call records.
 */
export type H323Route =
  | (H323Target & { found?: H323Found; sourceZone?: string })
  | { kind: 'rejected'; reason: string; sourceZone?: string }
  | { kind: 'not-found'; sourceZone?: string };

/**
 * What `neighbours.ts` plugs into the gatekeeper: the RAS of neighbor gatekeepers (LRQ, LCF, LRJ, RIP), and the
 * routing of admissions through the node's transforms, call policy and search rules.
 */
export interface NeighbourHook {
  /**
   * LRQ/LCF/LRJ/RIP from `from` (`raw`: the datagram it was decoded from, for H.235 checks); returns an answer to
   * send back now, if any (later ones go through `send`).
   */
  handle(m: RasMessage, from: IpPort, raw?: Uint8Array): RasMessage | undefined;
  /** When true, ARQs naming aliases are decided by `route` (asynchronously) instead of the local table alone. */
  readonly routesAdmissions: boolean;
  /** `caller.authUser`: the user whose H.235.1 token the ARQ carried (the call counts as authenticated for routing). */
  route(
    destination: AliasText[],
    caller: { endpointIdentifier: string; aliases: AliasText[]; authUser?: string },
  ): Promise<H323Route | undefined>;
}

export interface GatekeeperSend {
  to: IpPort;
  message: RasMessage;
  bytes: Uint8Array;
}

/** What happened to a registration, for the event bus, the store and the logs. */
export type GatekeeperEvent =
  | { kind: 'registered'; registration: H323Registration }
  | {
      kind: 'unregistered';
      registration: H323Registration;
      reason: 'endpoint' | 'expired' | 'administrator' | 'replaced';
    };

export interface GatekeeperCounters {
  received: Record<string, number>;
  sent: Record<string, number>;
  malformed: number;
  ignored: number;
  rejected: Record<string, number>;
  expired: number;
  /** Lightweight RRQs (keepAlive TRUE) confirmed. */
  keepAlives: number;
  /** Datagrams dropped because their source is blocked by intrusion protection. */
  blocked: number;
  /** Requests dropped over the per-source flood limit. */
  rateLimited: number;
  /** Requests refused with securityDenial by the H.235.1 check. */
  securityDenied: number;
}

interface Entry {
  reg: H323Registration;
  keys: string[];
  timer: TimerHandle | undefined;
  /** Keys of this endpoint's admitted calls (forgotten with it when it unregisters or expires). */
  calls: Set<string>;
}

interface AdmittedCall {
  endpointIdentifier: string;
  bandWidth: number;
  answerCall: boolean;
}

/** Index key of an alias: E.164 forms share one namespace, the others are kept by type. */
export function aliasKey(a: AliasText): string {
  switch (a.kind) {
    case 'dialledDigits':
    case 'partyNumber':
      return `e164:${a.value}`;
    case 'h323-ID':
      return `h323:${a.value}`;
    case 'url-ID':
      return `url:${a.value}`;
    case 'email-ID':
      return `email:${a.value.toLowerCase()}`;
    default:
      return `${a.kind}:${a.value}`;
  }
}

function globMatch(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const re = new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return re.test(value);
}

/** Whether the policy lets an endpoint with these aliases register. */
export function policyAllows(policy: RegistrationPolicy, aliases: readonly AliasText[]): boolean {
  const hit = aliases.some((a) => policy.patterns.some((p) => globMatch(p, a.value)));
  if (policy.mode === 'allow-all') return true;
  if (policy.mode === 'allow-list') return hit;
  return !hit;
}

function guidHex(g: Uint8Array | undefined, crv: number): string {
  return g ? Buffer.from(g).toString('hex') : `crv:${crv}`;
}

export class Gatekeeper {
  readonly #o: GatekeeperOptions;
  readonly #clock: Clock;
  readonly #byId = new Map<string, Entry>();
  readonly #byAlias = new Map<string, string>();
  readonly #byAddr = new Map<string, string>();
  readonly #calls = new Map<string, AdmittedCall>();
  readonly #listeners: Array<(e: GatekeeperEvent) => void> = [];
  #seq = 0;
  #closed = false;
  readonly counters: GatekeeperCounters = {
    received: {},
    sent: {},
    malformed: 0,
    ignored: 0,
    rejected: {},
    expired: 0,
    keepAlives: 0,
    blocked: 0,
    rateLimited: 0,
    securityDenied: 0,
  };
  /** H.235.1 checks (`setSecurity`); absent: no tokens are looked at. */
  #security: RasSecurity | undefined;
  #protection: RasProtection | undefined;
  #rate: { allow(address: string): boolean } | undefined;
  /** The sender of the datagram being handled, when its token was good (answers to it are signed). */
  #auth: RasAuth | undefined;
  #random = 0;
  /** Sends the gatekeeper originates (URQ on removal by an administrator); set by the adapter. */
  onSend: (s: GatekeeperSend) => void = () => {};
  /** Neighbor gatekeepers (LRQ/LCF/LRJ) and routed admission, when configured (`neighbours.ts`). */
  neighbours: NeighbourHook | undefined;
  /** ARQs waiting for routing (key: source address and requestSeqNum): retransmissions are not routed twice. */
  readonly #routing = new Set<string>();
  /** IRQs the gatekeeper sent, waiting for their IRR, by requestSeqNum. */
  readonly #irqs = new Map<
    number,
    { endpointIdentifier: string; timer: TimerHandle; done: (irr: InfoRequestResponse | undefined) => void }
  >();
  /** A RIP goes to an endpoint whose ARQ is still being routed after this many ms. */
  ripAfterMs = 500;

  constructor(options: GatekeeperOptions, clock: Clock) {
    this.#o = { ...options, policy: { ...options.policy, patterns: [...options.policy.patterns] } };
    this.#clock = clock;
  }

  get options(): Readonly<GatekeeperOptions> {
    return this.#o;
  }

  /** Sets the addresses once the sockets are bound (ephemeral ports in tests). */
  setAddresses(a: { rasAddress?: IpPort; callSignalAddress?: IpPort }): void {
    if (a.rasAddress) this.#o.rasAddress = a.rasAddress;
    if (a.callSignalAddress) this.#o.callSignalAddress = a.callSignalAddress;
  }

  /** Subscribes to registration events; a throwing listener never breaks the gatekeeper. */
  on(listener: (e: GatekeeperEvent) => void): void {
    this.#listeners.push(listener);
  }

  #emit(e: GatekeeperEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        // a listener's fault is its own
      }
    }
  }

  /** Turns on H.235.1 checks of RAS tokens (see `ras-security.ts`). */
  setSecurity(security: RasSecurity | undefined): void {
    this.#security = security;
  }

  /** Intrusion protection and the per-source flood limit on RAS requests. */
  setProtection(protection: RasProtection | undefined, rate?: { allow(address: string): boolean }): void {
    this.#protection = protection;
    this.#rate = rate;
  }

  /** The user an endpoint registered as (H.235.1), if it did. */
  userOf(endpointIdentifier: string): string | undefined {
    return this.#byId.get(endpointIdentifier)?.reg.authUser;
  }

  get gatekeeperIdentifier(): string {
    return this.#o.gatekeeperIdentifier;
  }

  /**
   * A datagram from `from`: dropped when its source is blocked or over the flood limit, decoded (malformed or
   * oversize PDUs dropped and counted, also against the source), its H.235.1 token checked when security is on,
   * then answered (the reply, if any, returned; signed when the request was authenticated).
   */
  handleDatagram(bytes: Uint8Array, from: IpPort): GatekeeperSend | undefined {
    if (this.#closed) return undefined;
    const p = this.#protection;
    if (p && !p.allows(from.ip)) {
      this.counters.blocked++;
      return undefined;
    }
    if (this.#rate && !this.#rate.allow(from.ip) && !p?.isExempt(from.ip)) {
      this.counters.rateLimited++;
      p?.onFlood(from.ip);
      return undefined;
    }
    const r = bytes.length > MAX_RAS_DATAGRAM ? undefined : rasCodec.decode(bytes);
    if (!r?.ok) {
      this.counters.malformed++;
      p?.onMalformed(from.ip);
      return undefined;
    }
    return this.#checked(r.value, bytes, from, p);
  }

  #checked(m: RasMessage, bytes: Uint8Array, from: IpPort, p: RasProtection | undefined): GatekeeperSend | undefined {
    const sec = this.#security;
    if (!sec) return this.handle(m, from, bytes);
    const verdict = sec.check(m, bytes, this);
    if (verdict.kind === 'deny') {
      this.counters.received[m.choice] = (this.counters.received[m.choice] ?? 0) + 1;
      this.counters.securityDenied++;
      if (verdict.failure) p?.onAuthFailure(from.ip);
      const reply = securityDenial(m, this.#o.gatekeeperIdentifier);
      return reply ? this.#out(reply, from) : undefined;
    }
    this.#auth = verdict.auth;
    try {
      return this.handle(m, from, bytes);
    } finally {
      this.#auth = undefined;
    }
  }

  /** A RAS message from `from` (`raw`: its datagram, for neighbour H.235 checks); returns the answer to `from`. */
  handle(m: RasMessage, from: IpPort, raw?: Uint8Array): GatekeeperSend | undefined {
    this.counters.received[m.choice] = (this.counters.received[m.choice] ?? 0) + 1;
    let reply: RasMessage | undefined;
    switch (m.choice) {
      case 'gatekeeperRequest':
        reply = this.#grq(m.value);
        break;
      case 'registrationRequest':
        reply = this.#rrq(m.value, from);
        break;
      case 'unregistrationRequest':
        reply = this.#urq(m.value);
        break;
      case 'admissionRequest':
        reply = this.#arq(m.value, from);
        break;
      case 'locationRequest':
      case 'locationConfirm':
      case 'locationReject':
      case 'requestInProgress':
        if (this.neighbours) reply = this.neighbours.handle(m, from, raw);
        else this.counters.ignored++;
        break;
      case 'bandwidthRequest':
        reply = this.#brq(m.value);
        break;
      case 'disengageRequest':
        reply = this.#drq(m.value);
        break;
      case 'infoRequestResponse':
        reply = this.#irr(m.value);
        break;
      case 'unregistrationConfirm':
      case 'unregistrationReject':
      case 'infoRequestAck':
        // answers to requests we sent: nothing more to do
        break;
      default:
        this.counters.ignored++;
        break;
    }
    if (!reply) return undefined;
    return this.#out(reply, from);
  }

  #out(
    message: RasMessage,
    to: IpPort,
    auth: RasAuth | undefined = this.#auth,
    encode?: (m: RasMessage) => Uint8Array,
  ): GatekeeperSend {
    this.counters.sent[message.choice] = (this.counters.sent[message.choice] ?? 0) + 1;
    if (message.choice.endsWith('Reject')) {
      const reason = (message.value as { rejectReason?: { choice: string } }).rejectReason?.choice ?? '?';
      const k = `${message.choice}:${reason}`;
      this.counters.rejected[k] = (this.counters.rejected[k] ?? 0) + 1;
    }
    if (encode) return { to, message, bytes: encode(message) };
    // H.235.1: the answer to an authenticated request carries our token (generalID: the endpoint, sendersID: us)
    if (auth && this.#security) {
      this.#random = (this.#random + 1) % 0x7fffffff;
      const bytes = this.#security.sign(message, auth, this.#o.gatekeeperIdentifier, this.#random);
      return { to, message, bytes };
    }
    return { to, message, bytes: rasCodec.encode(message) };
  }

  // H.225.0 §7.2.1: a GRQ naming another gatekeeper is refused; otherwise GCF with our RAS address.
  #grq(g: GatekeeperRequest): RasMessage {
    const reject = (reason: 'terminalExcluded' | 'securityDenial'): RasMessage => ({
      choice: 'gatekeeperReject',
      value: {
        requestSeqNum: g.requestSeqNum,
        protocolIdentifier: H225_PROTOCOL_ID,
        gatekeeperIdentifier: this.#o.gatekeeperIdentifier,
        rejectReason: { choice: reason, value: null },
      },
    });
    if (g.gatekeeperIdentifier && g.gatekeeperIdentifier !== this.#o.gatekeeperIdentifier)
      return reject('terminalExcluded');
    const aliases = (g.endpointAlias ?? []).map(aliasToText);
    if (aliases.length > 0 && !policyAllows(this.#o.policy, aliases)) return reject('securityDenial');
    const gcf = buildGcf(g, { rasAddress: this.#o.rasAddress, gatekeeperIdentifier: this.#o.gatekeeperIdentifier });
    // H.235.1: a GRQ offering procedure I is told it is the mode in use (pwdHash, HMAC-SHA1-96), when security is on
    const algorithm = this.#security && this.#security.mode !== 'off' ? offeredH2351(g) : undefined;
    if (algorithm !== undefined && gcf.choice === 'gatekeeperConfirm') {
      gcf.value.authenticationMode = { choice: 'pwdHash', value: null };
      gcf.value.algorithmOID = algorithm;
    }
    return gcf;
  }

  #rrj(r: RegistrationRequest, reason: RegistrationRejectReason): RasMessage {
    return {
      choice: 'registrationReject',
      value: {
        requestSeqNum: r.requestSeqNum,
        protocolIdentifier: H225_PROTOCOL_ID,
        rejectReason: reason,
        gatekeeperIdentifier: this.#o.gatekeeperIdentifier,
      },
    };
  }

  #grant(requested: number | undefined): number {
    return Math.max(1, Math.min(requested ?? this.#o.timeToLive, this.#o.timeToLive));
  }

  #rrq(r: RegistrationRequest, from: IpPort): RasMessage {
    const nul = { value: null } as const;
    if (r.keepAlive) {
      // H.225.0 §7.9.1: a lightweight RRQ names the endpoint by its identifier; an unknown one must register fully.
      const e = r.endpointIdentifier ? this.#live(r.endpointIdentifier) : undefined;
      if (!e) return this.#rrj(r, { choice: 'fullRegistrationRequired', ...nul });
      e.reg.timeToLive = this.#grant(r.timeToLive);
      e.reg.refreshedAt = this.#clock.wallNow();
      this.#arm(e);
      this.counters.keepAlives++;
      return buildRcf(r, {
        endpointIdentifier: e.reg.endpointIdentifier,
        gatekeeperIdentifier: this.#o.gatekeeperIdentifier,
        timeToLive: e.reg.timeToLive,
        terminalAlias: undefined,
      });
    }
    if (r.gatekeeperIdentifier && r.gatekeeperIdentifier !== this.#o.gatekeeperIdentifier)
      return this.#rrj(r, { choice: 'undefinedReason', ...nul });
    const csa = r.callSignalAddress.map(fromH225Address);
    if (csa.length === 0 || csa.some((a) => !a || a.port === 0))
      return this.#rrj(r, { choice: 'invalidCallSignalAddress', ...nul });
    const ras = r.rasAddress.map(fromH225Address);
    if (ras.length === 0 || ras.some((a) => !a)) return this.#rrj(r, { choice: 'invalidRASAddress', ...nul });
    const aliases = (r.terminalAlias ?? []).map(aliasToText);
    if (!policyAllows(this.#o.policy, aliases)) return this.#rrj(r, { choice: 'securityDenial', ...nul });
    const callSignalAddresses = csa as IpPort[];
    // the same endpoint registering again (same identifier, or same call signalling address) replaces itself
    const previous =
      (r.endpointIdentifier ? this.#live(r.endpointIdentifier) : undefined) ??
      this.#findByAddress(callSignalAddresses[0]!);
    const dup: AliasAddress[] = [];
    for (const [i, a] of aliases.entries()) {
      const owner = this.#byAlias.get(aliasKey(a));
      if (owner !== undefined && owner !== previous?.reg.endpointIdentifier && this.#live(owner))
        dup.push((r.terminalAlias ?? [])[i]!);
    }
    if (dup.length > 0) return this.#rrj(r, { choice: 'duplicateAlias', value: dup });
    // an authenticated registration is replaced only by its own user
    if (previous?.reg.authUser !== undefined && previous.reg.authUser !== this.#auth?.username)
      return this.#rrj(r, { choice: 'securityDenial', ...nul });
    if (!previous && this.#byId.size >= this.#o.maxRegistrations)
      return this.#rrj(r, { choice: 'resourceUnavailable', ...nul });
    const now = this.#clock.wallNow();
    const reg: H323Registration = {
      endpointIdentifier: previous?.reg.endpointIdentifier ?? this.#newId(),
      aliases,
      callSignalAddresses,
      rasAddress: (ras[0] as IpPort | undefined) ?? from,
      timeToLive: this.#grant(r.timeToLive),
      registeredAt: now,
      refreshedAt: now,
      vendor: vendorText(r),
      ...(this.#auth ? { authUser: this.#auth.username } : {}),
    };
    if (previous) this.#drop(previous, undefined);
    this.#insert(reg, previous?.calls);
    this.#emit({ kind: 'registered', registration: reg });
    return buildRcf(r, {
      endpointIdentifier: reg.endpointIdentifier,
      gatekeeperIdentifier: this.#o.gatekeeperIdentifier,
      timeToLive: reg.timeToLive,
    });
  }

  #newId(): string {
    for (;;) {
      const id = randomBytes(6).toString('hex');
      if (!this.#byId.has(id)) return id;
    }
  }

  #insert(reg: H323Registration, calls = new Set<string>()): Entry {
    const keys = reg.aliases.map(aliasKey);
    const e: Entry = { reg, keys, timer: undefined, calls };
    this.#byId.set(reg.endpointIdentifier, e);
    for (const k of keys) this.#byAlias.set(k, reg.endpointIdentifier);
    for (const a of reg.callSignalAddresses) this.#byAddr.set(`${a.ip}:${a.port}`, reg.endpointIdentifier);
    this.#arm(e);
    return e;
  }

  #arm(e: Entry): void {
    e.timer?.cancel();
    const ms = (e.reg.timeToLive + this.#o.expiryGraceSeconds) * 1000;
    e.timer = this.#clock.setTimer(ms, () => {
      if (this.#byId.get(e.reg.endpointIdentifier) !== e) return;
      this.counters.expired++;
      this.#drop(e, 'expired');
    });
  }

  #drop(e: Entry, reason: 'endpoint' | 'expired' | 'administrator' | undefined): void {
    e.timer?.cancel();
    // gone for good (not replaced by its own new RRQ): its admissions go too, so no DRQ lost keeps them forever
    if (reason !== undefined) for (const k of e.calls) this.#calls.delete(k);
    this.#byId.delete(e.reg.endpointIdentifier);
    for (const k of e.keys) if (this.#byAlias.get(k) === e.reg.endpointIdentifier) this.#byAlias.delete(k);
    for (const a of e.reg.callSignalAddresses) {
      const k = `${a.ip}:${a.port}`;
      if (this.#byAddr.get(k) === e.reg.endpointIdentifier) this.#byAddr.delete(k);
    }
    this.#emit({ kind: 'unregistered', registration: e.reg, reason: reason ?? 'replaced' });
  }

  #live(id: string): Entry | undefined {
    return this.#byId.get(id);
  }

  #findByAddress(a: IpPort): Entry | undefined {
    const id = this.#byAddr.get(`${a.ip}:${a.port}`);
    return id === undefined ? undefined : this.#byId.get(id);
  }

  // H.225.0 §7.10: URQ from the endpoint; UCF when registered, URJ notCurrentlyRegistered otherwise.
  #urq(u: UnregistrationRequest): RasMessage {
    const csa = u.callSignalAddress.map(fromH225Address).filter((a): a is IpPort => !!a);
    const e =
      (u.endpointIdentifier ? this.#live(u.endpointIdentifier) : undefined) ??
      (csa[0] ? this.#findByAddress(csa[0]) : undefined);
    if (!e)
      return {
        choice: 'unregistrationReject',
        value: { requestSeqNum: u.requestSeqNum, rejectReason: { choice: 'notCurrentlyRegistered', value: null } },
      };
    this.#drop(e, 'endpoint');
    return { choice: 'unregistrationConfirm', value: { requestSeqNum: u.requestSeqNum } };
  }

  #arj(a: AdmissionRequest, reason: AdmissionRejectReason['choice']): RasMessage {
    return {
      choice: 'admissionReject',
      value: { requestSeqNum: a.requestSeqNum, rejectReason: { choice: reason, value: null } as AdmissionRejectReason },
    };
  }

  // H.225.0 §7.11 / H.323 §8.1.3: routed model — the ACF's destCallSignalAddress is the node itself.
  #arq(a: AdmissionRequest, from: IpPort): RasMessage | undefined {
    const s = readArq(a);
    const caller = this.#live(s.endpointIdentifier);
    if (!caller) return this.#arj(a, 'callerNotRegistered');
    if (!s.answerCall && s.destination.length > 0 && this.neighbours?.routesAdmissions) {
      this.#routeArq(a, s, from, caller.reg.aliases);
      return undefined;
    }
    if (!s.answerCall) {
      const target = this.resolve(s.destination, s.destCallSignalAddress);
      if (!target) return this.#arj(a, s.destination.length > 0 ? 'calledPartyNotRegistered' : 'incompleteAddress');
      if (target.kind === 'address' && !this.#o.allowDialledIp) return this.#arj(a, 'requestDenied');
    }
    return this.#admit(a, s);
  }

  /**
   * ARQ decided by the node's routing (transforms, call policy, search rules, neighbor zones): RIP when slow, then
   * ACF, or ARJ (requestDenied when call policy refuses, calledPartyNotRegistered when no rule finds the alias)
   * through `onSend`.
   */
  #routeArq(a: AdmissionRequest, s: ReturnType<typeof readArq>, from: IpPort, aliases: AliasText[]): void {
    const key = `${from.ip}:${from.port}/${a.requestSeqNum}`;
    if (this.#routing.has(key)) return; // a retransmission: the answer is on its way
    this.#routing.add(key);
    const auth = this.#auth;
    const rip = this.#clock.setTimer(this.ripAfterMs, () => {
      if (this.#closed) return;
      const delay = 5000;
      this.onSend(
        this.#out({ choice: 'requestInProgress', value: { requestSeqNum: a.requestSeqNum, delay } }, from, auth),
      );
    });
    const done = (found: H323Route | undefined) => {
      rip.cancel();
      this.#routing.delete(key);
      if (this.#closed) return;
      // not found by its aliases: the destCallSignalAddress may still name a registered endpoint (as on the table)
      const routed = found?.kind === 'not-found' ? undefined : found;
      const byAddress = !routed && s.destCallSignalAddress ? this.resolve([], s.destCallSignalAddress) : undefined;
      const target = routed ?? (byAddress?.kind === 'endpoint' ? byAddress : undefined);
      let reply: RasMessage;
      if (!target) reply = this.#arj(a, 'calledPartyNotRegistered');
      else if (target.kind === 'rejected') reply = this.#arj(a, 'requestDenied');
      else if (target.kind === 'address' && target.zone === undefined && !this.#o.allowDialledIp)
        reply = this.#arj(a, 'requestDenied');
      else reply = this.#admit(a, s);
      this.onSend(this.#out(reply, from, auth));
    };
    // an ARQ that carried a good H.235.1 token is an authenticated request for call policy and search rules
    const caller = { endpointIdentifier: s.endpointIdentifier, aliases, ...(auth ? { authUser: auth.username } : {}) };
    this.neighbours!.route(s.destination, caller).then(done, () => done(undefined));
  }

  #admit(a: AdmissionRequest, s: ReturnType<typeof readArq>): RasMessage {
    const bandWidth = Math.min(s.bandWidth, this.#o.maxBandwidthPerCall);
    const key = `${s.endpointIdentifier}/${guidHex(s.callIdentifier, a.callReferenceValue)}`;
    const caller = this.#live(s.endpointIdentifier);
    // H.225.0 §7.11.3: no room for another call (a retransmitted ARQ of an admitted call is answered again)
    if (!caller || (!this.#calls.has(key) && this.#calls.size >= (this.#o.maxAdmittedCalls ?? 200_000))) {
      return this.#arj(a, caller ? 'resourceUnavailable' : 'callerNotRegistered');
    }
    caller.calls.add(key);
    this.#calls.set(key, {
      endpointIdentifier: s.endpointIdentifier,
      bandWidth,
      answerCall: s.answerCall,
    });
    return buildAcf(a, { destCallSignalAddress: this.#o.callSignalAddress, callModel: 'gatekeeperRouted', bandWidth });
  }

  #brq(b: BandwidthRequest): RasMessage {
    if (!this.#live(b.endpointIdentifier))
      return {
        choice: 'bandwidthReject',
        value: {
          requestSeqNum: b.requestSeqNum,
          rejectReason: { choice: 'notBound', value: null },
          allowedBandWidth: 0,
        },
      };
    const bandWidth = Math.min(b.bandWidth, this.#o.maxBandwidthPerCall);
    const call = this.#calls.get(`${b.endpointIdentifier}/${guidHex(b.callIdentifier?.guid, b.callReferenceValue)}`);
    if (call) call.bandWidth = bandWidth;
    return { choice: 'bandwidthConfirm', value: { requestSeqNum: b.requestSeqNum, bandWidth } };
  }

  #drq(d: DisengageRequest): RasMessage {
    if (!this.#live(d.endpointIdentifier))
      return {
        choice: 'disengageReject',
        value: { requestSeqNum: d.requestSeqNum, rejectReason: { choice: 'notRegistered', value: null } },
      };
    const key = `${d.endpointIdentifier}/${guidHex(d.callIdentifier?.guid, d.callReferenceValue)}`;
    this.#calls.delete(key);
    this.#live(d.endpointIdentifier)?.calls.delete(key);
    return { choice: 'disengageConfirm', value: { requestSeqNum: d.requestSeqNum } };
  }

  // H.225.0 §7.15.2: an IRR counts as a sign of life; IACK when the endpoint asks for a response.
  #irr(i: InfoRequestResponse): RasMessage | undefined {
    const asked = this.#irqs.get(i.requestSeqNum);
    if (asked && asked.endpointIdentifier === i.endpointIdentifier) asked.done(i);
    const e = this.#live(i.endpointIdentifier);
    if (e) {
      e.reg.refreshedAt = this.#clock.wallNow();
      this.#arm(e);
    }
    if (!i.needResponse) return undefined;
    if (!e)
      return {
        choice: 'infoRequestNak',
        value: { requestSeqNum: i.requestSeqNum, nakReason: { choice: 'notRegistered', value: null } },
      };
    return { choice: 'infoRequestAck', value: { requestSeqNum: i.requestSeqNum } };
  }

  /**
   * H.225.0 §7.15.1: asks a registered endpoint for its status with an IRQ (to its RAS address; callReferenceValue
   * 0: all its calls). Resolves with the endpoint's IRR (which also counts as a sign of life), or undefined when the
   * endpoint is not registered or stays silent for `timeoutMs`.
   */
  infoRequest(endpointIdentifier: string, timeoutMs = 3000): Promise<InfoRequestResponse | undefined> {
    const e = this.#live(endpointIdentifier);
    if (!e || this.#closed) return Promise.resolve(undefined);
    const requestSeqNum = this.#nextSeq();
    return new Promise((resolve) => {
      const done = (irr: InfoRequestResponse | undefined) => {
        const p = this.#irqs.get(requestSeqNum);
        if (!p) return;
        p.timer.cancel();
        this.#irqs.delete(requestSeqNum);
        resolve(irr);
      };
      this.#irqs.get(requestSeqNum)?.done(undefined); // a wrapped sequence number: the old question gives up
      this.#irqs.set(requestSeqNum, {
        endpointIdentifier,
        timer: this.#clock.setTimer(timeoutMs, () => done(undefined)),
        done,
      });
      const irq: RasMessage = {
        choice: 'infoRequest',
        value: {
          requestSeqNum,
          callReferenceValue: 0,
          replyAddress: h225Address(this.#o.rasAddress.ip, this.#o.rasAddress.port),
        },
      };
      this.onSend(this.#out(irq, e.reg.rasAddress));
    });
  }

  /**
   * Sends a RAS message the gatekeeper originates (LRQ, a late LCF/LRJ), counted like its answers; `encode`, when
   * given, makes the datagram (a neighbour's messages signed with the zone's password).
   */
  send(message: RasMessage, to: IpPort, encode?: (m: RasMessage) => Uint8Array): void {
    if (!this.#closed) this.onSend(this.#out(message, to, undefined, encode));
  }

  #nextSeq(): number {
    this.#seq = (this.#seq % 65535) + 1;
    return this.#seq;
  }

  /** The target of a call to these aliases (first registered one wins), or a dialled address when no alias names one. */
  resolve(destination: readonly AliasText[], address?: IpPort): H323Target | undefined {
    for (const d of destination) {
      const id =
        this.#byAlias.get(aliasKey(d)) ?? (d.kind === 'h323-ID' ? this.#byAlias.get(`e164:${d.value}`) : undefined);
      const e = id ? this.#live(id) : undefined;
      if (e) return { kind: 'endpoint', registration: e.reg };
    }
    if (address) {
      const e = this.#findByAddress(address);
      if (e) return { kind: 'endpoint', registration: e.reg };
      if (destination.length === 0) return { kind: 'address', address };
    }
    return undefined;
  }

  /**
   * Removes a registration on an administrator's request and tells the endpoint with a URQ (H.225.0 §7.10.2,
   * reason maintenance). Returns false when no such registration exists.
   */
  unregister(endpointIdentifier: string, reason: UnregRequestReason['choice'] = 'maintenance'): boolean {
    const e = this.#live(endpointIdentifier);
    if (!e) return false;
    this.#drop(e, 'administrator');
    const urq: RasMessage = {
      choice: 'unregistrationRequest',
      value: {
        requestSeqNum: this.#nextSeq(),
        callSignalAddress: e.reg.callSignalAddresses.map((a) => h225Address(a.ip, a.port)),
        endpointIdentifier,
        gatekeeperIdentifier: this.#o.gatekeeperIdentifier,
        reason: { choice: reason, value: null } as UnregRequestReason,
      },
    };
    this.onSend(this.#out(urq, e.reg.rasAddress));
    return true;
  }

  /**
   * Puts back registrations kept in the store (after a restart): each gets a fresh `timeToLive` from now, so an
   * endpoint's next keep-alive is recognised; one that never comes expires as usual.
   */
  restore(regs: readonly H323Registration[]): number {
    let n = 0;
    for (const r of regs) {
      if (this.#byId.has(r.endpointIdentifier) || this.#byId.size >= this.#o.maxRegistrations) continue;
      if (r.aliases.some((a) => this.#byAlias.has(aliasKey(a)))) continue;
      this.#insert({ ...r, aliases: [...r.aliases], callSignalAddresses: [...r.callSignalAddresses] });
      n++;
    }
    return n;
  }

  /** The registrations (a copy). */
  list(): H323Registration[] {
    return [...this.#byId.values()].map((e) => ({ ...e.reg }));
  }

  get(endpointIdentifier: string): H323Registration | undefined {
    return this.#byId.get(endpointIdentifier)?.reg;
  }

  get size(): number {
    return this.#byId.size;
  }

  get activeCalls(): number {
    return this.#calls.size;
  }

  close(): void {
    this.#closed = true;
    for (const e of this.#byId.values()) e.timer?.cancel();
    for (const p of [...this.#irqs.values()]) p.done(undefined);
  }

  get closed(): boolean {
    return this.#closed;
  }
}

function vendorText(r: RegistrationRequest): string | undefined {
  const v = r.endpointVendor;
  if (!v.productId) return undefined;
  const text = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('latin1').replace(/\0+$/, '') : '');
  return `${text(v.productId)} ${text(v.versionId)}`.trim();
}
