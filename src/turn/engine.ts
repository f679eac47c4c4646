import { randomBytes } from 'node:crypto';
import { InternalError, OperationalError } from '../common/errors.ts';
import { category, type Logger, RateLimitedLog, silentLogger } from '../common/log.ts';
import type { Clock, TimerHandle } from '../common/timers.ts';
import { canonicalIp, type TransportAddress } from '../stun/address.ts';
import {
  encodeAddress,
  encodeAddressErrorCode,
  encodeErrorCode,
  encodePasswordAlgorithms,
  encodeUint32,
  encodeUnknownAttributes,
  readAddress,
  readChannelNumber,
  readEvenPort,
  readFirstByteOf4,
  readPasswordAlgorithms,
  readText,
  readUint32,
} from '../stun/attributes.ts';
import { StunBuilder } from '../stun/builder.ts';
import { Attr, ERROR_REASONS, ErrorCode, Limits, Method, PasswordAlgorithm, StunClass } from '../stun/constants.ts';
import { verifyFingerprint, verifyMessageIntegrity, verifyMessageIntegritySha256 } from '../stun/integrity.ts';
import { attributeValue, decodeStun, findAttribute, findAttributes, type StunMessage } from '../stun/message.ts';
import type { TurnConfig } from './config.ts';
import type { LongTermCredentials } from './credentials.ts';
import { NonceIssuer, SecurityFeature } from './nonce.ts';
import type { PeerPolicy } from './peer-policy.ts';
import {
  type AllocationInfo,
  type ClientTransport,
  newCounters,
  type PeerConnection,
  type RelayHandle,
  type TcpPipeMeter,
  type TurnCounters,
  type TurnIo,
} from './types.ts';

/** RFC 8656 §18.3: REQUESTED-TRANSPORT value for UDP (the IPv4 protocol number). */
const PROTO_UDP = 17;
/** RFC 6062 §6.1: REQUESTED-TRANSPORT value for TCP. */
const PROTO_TCP = 6;
const FAMILY_IPV4 = 0x01;
const FAMILY_IPV6 = 0x02;
/** RFC 5766 §11 allowed channel numbers 0x4000–0x7FFE; RFC 8656 §12 narrowed them to 0x4000–0x4FFF. */
const CHANNEL_MIN = 0x4000;
const CHANNEL_MAX = 0x7ffe;
/** RFC 8656 §12: after a channel binding expires, its number and peer are not rebound for 5 minutes. */
const CHANNEL_COOLDOWN_MS = 5 * 60 * 1000;

export interface TurnEngineOptions {
  config: TurnConfig;
  clock: Clock;
  io: TurnIo;
  credentials: LongTermCredentials;
  peerPolicy: PeerPolicy;
  /** Relay ports, from the port plan's TURN range. */
  relayRange: { from: number; to: number };
  log?: Logger;
  /** Random source for port choice (tests make it deterministic). */
  random?: () => number;
}

interface Expiring {
  expiresAt: number;
  timer: TimerHandle | undefined;
  timerDue: number;
}

interface Permission extends Expiring {
  ip: string;
}

interface Channel extends Expiring {
  /** Runs after expiry: the number and peer stay reserved until it fires. */
  cooldown: TimerHandle | undefined;
  number: number;
  peerIp: string;
  peerPort: number;
  peerKey: string;
}

/** RFC 6062 §5: a peer connection; `pending` until the client binds a data connection to it. */
type TcpLinkState = 'connecting' | 'pending' | 'bound' | 'closed';

/** Legal edges of a peer connection's life (RFC 6062 §5.2–5.4). */
const LINK_EDGES: Readonly<Record<TcpLinkState, readonly TcpLinkState[]>> = {
  connecting: ['pending', 'closed'],
  pending: ['bound', 'closed'],
  bound: ['closed'],
  closed: [],
};

/** Moves a peer connection to `to`; an illegal edge is a bug in this engine. */
function linkTransition(link: { state: TcpLinkState }, to: TcpLinkState): void {
  if (!LINK_EDGES[link.state].includes(to)) throw new InternalError('ERR_TURN_STATE', `link ${link.state} → ${to}`);
  link.state = to;
}

interface TcpPeerLink {
  id: number;
  state: TcpLinkState;
  peerKey: string;
  peer: PeerConnection | undefined;
  timer: TimerHandle | undefined;
}

interface Reservation {
  port: number;
  family: 4 | 6;
  timer: TimerHandle;
}

/** RFC 8656 §2: an allocation lives until its lifetime runs out or the client refreshes it to 0. */
export type AllocationState = 'active' | 'closed';

class Allocation implements Expiring {
  state: AllocationState = 'active';
  expiresAt = 0;
  timer: TimerHandle | undefined;
  timerDue = 0;
  readonly permissions = new Map<string, Permission>();
  readonly channels = new Map<number, Channel>();
  readonly channelsByPeer = new Map<string, Channel>();
  /** RFC 6062: a TCP allocation relays TCP connections, not datagrams. */
  tcp = false;
  /** RFC 6062 peer connections of a TCP allocation, by CONNECTION-ID. */
  readonly connections = new Map<number, TcpPeerLink>();
  /** What the allocation counts against for the per-user quota (`LongTermCredentials.quotaKey`). */
  quotaKey = '';
  /** Token bucket for the bandwidth quota. */
  tokens = 0;
  tokensAt = 0;
  constructor(
    readonly client: ClientTransport,
    readonly username: string,
    readonly realm: string,
    readonly relays: RelayHandle[],
    readonly allocateTransactionId: string,
    public allocateResponse: Buffer | undefined,
  ) {}

  relayFor(family: 4 | 6): RelayHandle | undefined {
    for (const r of this.relays) if (r.address.family === family) return r;
    return undefined;
  }
}

/** What authentication established for a request. */
interface Auth {
  username: string;
  key: Buffer;
  sha256: boolean;
}

type Reply = { code: number; reason?: string; attrs?: [number, Buffer][] } | { attrs: [number, Buffer][] };

/**
 * The TURN server's protocol engine (RFC 8656, compatible with RFC 5766 clients): allocations, permissions,
 * channels, authentication and quotas, sans I/O. The socket adapter feeds it client bytes and relay packets; it
 * answers through `ClientTransport.send`, relays through `RelayHandle.send`, and keeps time with the injected
 * Clock — one timer per allocation, permission and channel, expiry also checked lazily on every lookup.
 */
export class TurnEngine {
  readonly counters: TurnCounters = newCounters();
  readonly #cfg: TurnConfig;
  readonly #clock: Clock;
  readonly #io: TurnIo;
  readonly #creds: LongTermCredentials;
  readonly #policy: PeerPolicy;
  readonly #range: { from: number; to: number };
  readonly #log: Logger;
  readonly #bad: RateLimitedLog;
  readonly #random: () => number;
  readonly #nonces: NonceIssuer;
  readonly #passwordAlgorithms: Buffer;
  readonly #software: Buffer | undefined;
  readonly #allocations = new Map<string, Allocation>();
  readonly #pending = new Set<string>();
  readonly #perUser = new Map<string, number>();
  /** Allocations per server listener (address|port the clients reached), for `alternateAboveAllocations`. */
  readonly #perListener = new Map<string, number>();
  readonly #portsInUse: Record<4 | 6, Set<number>> = { 4: new Set(), 6: new Set() };
  readonly #reservations = new Map<string, Reservation>();
  #alternateIndex = 0;
  readonly #links = new Map<number, { alloc: Allocation; link: TcpPeerLink }>();
  #linkSeq = Math.floor(Math.random() * 0x7fffffff);
  #indicationSeq = 0;
  readonly #indicationBase = randomBytes(12);
  #closed = false;

  constructor(options: TurnEngineOptions) {
    this.#cfg = options.config;
    this.#clock = options.clock;
    this.#io = options.io;
    this.#creds = options.credentials;
    this.#policy = options.peerPolicy;
    this.#range = options.relayRange;
    this.#log = category(options.log ?? silentLogger, 'turn.alloc');
    this.#bad = new RateLimitedLog(this.#log, () => this.#clock.now());
    this.#random = options.random ?? Math.random;
    // RFC 8489 §9.2.1: announce username anonymity only when every user can be found by USERHASH.
    const features =
      SecurityFeature.passwordAlgorithms | (this.#creds.supportsUserHash ? SecurityFeature.usernameAnonymity : 0);
    this.#nonces = new NonceIssuer(this.#clock, this.#cfg.lifetimes.nonceSeconds, features);
    this.#passwordAlgorithms = encodePasswordAlgorithms(
      this.#cfg.passwordAlgorithms.map((a) => ({
        algorithm: a === 'sha256' ? PasswordAlgorithm.sha256 : PasswordAlgorithm.md5,
        parameters: Buffer.alloc(0),
      })),
    );
    this.#software = this.#cfg.software ? Buffer.from(this.#cfg.software, 'utf8') : undefined;
    if (this.#range.from > this.#range.to) throw new RangeError('empty relay range');
  }

  /** Whether this client 5-tuple holds an allocation. */
  hasAllocation(clientKey: string): boolean {
    return this.#allocations.has(clientKey);
  }

  /** Number of live allocations. */
  get size(): number {
    return this.#allocations.size;
  }

  /** A snapshot of every allocation, for management. */
  allocations(): AllocationInfo[] {
    const now = this.#clock.now();
    return [...this.#allocations.values()].map((a) => ({
      client: `${a.client.remote.address}:${a.client.remote.port}`,
      protocol: a.client.protocol,
      username: a.username,
      relayed: a.relays.map((r) => r.address),
      expiresInSeconds: Math.max(0, Math.round((a.expiresAt - now) / 1000)),
      permissions: [...a.permissions.values()].filter((p) => p.expiresAt > now).map((p) => p.ip),
      channels: [...a.channels.values()]
        .filter((c) => c.expiresAt > now)
        .map((c) => ({ number: c.number, peer: `${c.peerIp}:${c.peerPort}` })),
    }));
  }

  /**
   * Bytes from a client: a STUN message or a ChannelData message (RFC 8656 §12: first two bits 01). Over TCP the
   * adapter has already framed them. Anything else is dropped and counted.
   */
  handleClientData(client: ClientTransport, bytes: Buffer): void {
    this.#clientData(client, bytes);
  }

  #clientData(client: ClientTransport, bytes: Buffer) {
    if (this.#closed || bytes.length < 4) return this.#drop('short datagram', client);
    const b0 = bytes[0]!;
    if (b0 >= 0x40 && b0 < 0x80) return this.#handleChannelData(client, bytes);
    if (b0 >= 0x40) return this.#drop('neither STUN nor ChannelData', client);
    const r = decodeStun(bytes);
    if (!r.ok) return this.#drop(r.reason, client);
    const msg = r.value;
    // RFC 8489 §7.3: a FINGERPRINT that does not match means this is not STUN: discard.
    if (msg.fingerprintOffset >= 0 && !verifyFingerprint(msg)) return this.#drop('bad FINGERPRINT', client);
    if (msg.cls === StunClass.request) {
      this.counters.requests++;
      this.#handleRequest(client, msg).catch((err: unknown) => {
        // A credential store that cannot answer is an operational state a client can repeat at will: rate-limited.
        if (err instanceof OperationalError) {
          this.#bad.warn(err.code, `${err.message} => 500`, { from: client.remote.address });
        } else this.#log.error({ err }, 'request handling failed => 500');
        this.#reply(client, msg, undefined, { code: ErrorCode.serverError });
      });
      return;
    }
    if (msg.cls === StunClass.indication && msg.method === Method.send) return this.#handleSend(client, msg);
    // Responses and other indications are not for a server: RFC 8489 §6.3.2 says discard.
    this.#drop('unexpected STUN class or method', client);
  }

  /** The client's connection is gone (TCP close): its allocation goes with it (RFC 8656 §4). */
  clientClosed(client: ClientTransport): void {
    const a = this.#allocations.get(client.key);
    if (a) this.#deleteAllocation(a, 'client connection closed');
  }

  /** Closes every allocation and frees every port. */
  close(): void {
    this.#closed = true;
    for (const a of [...this.#allocations.values()]) this.#deleteAllocation(a, 'server closing');
    for (const r of this.#reservations.values()) r.timer.cancel();
    this.#reservations.clear();
  }

  // ─── requests ──────────────────────────────────────────────────────────────────────────────────────────

  async #handleRequest(client: ClientTransport, msg: StunMessage): Promise<void> {
    const m = msg.method;
    const known =
      m === Method.binding ||
      m === Method.allocate ||
      m === Method.refresh ||
      m === Method.createPermission ||
      m === Method.channelBind ||
      m === Method.connect ||
      m === Method.connectionBind;
    if (!known) return this.#reply(client, msg, undefined, { code: ErrorCode.badRequest, reason: 'Unknown method' });
    let auth: Auth | undefined;
    if (!(m === Method.binding && this.#cfg.allowUnauthenticatedBinding)) {
      auth = await this.#authenticate(client, msg);
      if (!auth) return;
    }
    // RFC 8489 §6.3.1.1: unknown comprehension-required attributes get 420 listing them.
    if (msg.unknownRequired.length > 0) {
      return this.#reply(client, msg, auth, {
        code: ErrorCode.unknownAttribute,
        attrs: [[Attr.UNKNOWN_ATTRIBUTES, encodeUnknownAttributes(msg.unknownRequired)]],
      });
    }
    switch (m) {
      case Method.binding:
        return this.#reply(client, msg, auth, {
          attrs: [[Attr.XOR_MAPPED_ADDRESS, encodeAddress(client.remote, true, msg.transactionId)]],
        });
      case Method.allocate:
        return this.#allocate(client, msg, auth!);
      case Method.refresh:
        return this.#refresh(client, msg, auth!);
      case Method.createPermission:
        return this.#createPermission(client, msg, auth!);
      case Method.connect:
        return this.#connect(client, msg, auth!);
      case Method.connectionBind:
        return this.#connectionBind(client, msg, auth!);
      default:
        return this.#channelBind(client, msg, auth!);
    }
  }

  /**
   * RFC 8489 §9.2.4: long-term credential checks. Returns undefined after answering when the request is refused.
   */
  async #authenticate(client: ClientTransport, msg: StunMessage): Promise<Auth | undefined> {
    const realm = this.#cfg.realm;
    const challenge = (code: number): undefined => {
      if (code === ErrorCode.unauthenticated) this.counters.authFailures++;
      this.#reply(client, msg, undefined, {
        code,
        attrs: [
          [Attr.REALM, Buffer.from(realm, 'utf8')],
          [Attr.NONCE, Buffer.from(this.#nonces.issue(client.remote.address), 'utf8')],
          [Attr.PASSWORD_ALGORITHMS, this.#passwordAlgorithms],
        ],
      });
      return undefined;
    };
    const useSha256 = msg.integritySha256Offset >= 0;
    // RFC 8489 §9.2.4: no MESSAGE-INTEGRITY(-SHA256) → 401 with REALM and NONCE.
    if (msg.integrityOffset < 0 && !useSha256) return challenge(ErrorCode.unauthenticated);
    const userRef = findAttribute(msg, Attr.USERNAME);
    const hashRef = findAttribute(msg, Attr.USERHASH);
    const realmRef = findAttribute(msg, Attr.REALM);
    const nonceRef = findAttribute(msg, Attr.NONCE);
    // RFC 8489 §9.2.4: missing USERNAME/USERHASH, REALM or NONCE → 400.
    if ((!userRef && !hashRef) || !realmRef || !nonceRef) {
      this.#reply(client, msg, undefined, { code: ErrorCode.badRequest, reason: 'Missing credentials' });
      return undefined;
    }
    const nonce = readText(msg, nonceRef, Limits.nonce);
    const reqRealm = readText(msg, realmRef, Limits.realm);
    if (!nonce.ok || !reqRealm.ok) {
      this.#reply(client, msg, undefined, { code: ErrorCode.badRequest, reason: 'Bad REALM or NONCE' });
      return undefined;
    }
    const nonceState = this.#nonces.check(nonce.value, client.remote.address);
    if (nonceState !== 'ok') return challenge(ErrorCode.staleNonce);
    if (reqRealm.value !== realm) return challenge(ErrorCode.unauthenticated);
    // RFC 8489 §9.2.4 (password algorithms): both attributes or neither; the list must be what we sent.
    let algorithm: number = PasswordAlgorithm.md5;
    const algsRef = findAttribute(msg, Attr.PASSWORD_ALGORITHMS);
    const algRef = findAttribute(msg, Attr.PASSWORD_ALGORITHM);
    if (algsRef || algRef) {
      if (!algsRef || !algRef || !attributeValue(msg, algsRef).equals(this.#passwordAlgorithms)) {
        this.#reply(client, msg, undefined, { code: ErrorCode.badRequest, reason: 'Password algorithm mismatch' });
        return undefined;
      }
      const chosen = readPasswordAlgorithms(msg, algRef);
      const offered = readPasswordAlgorithms(msg, algsRef);
      if (
        !chosen.ok ||
        !offered.ok ||
        chosen.value.length !== 1 ||
        !offered.value.some((o) => o.algorithm === chosen.value[0]!.algorithm)
      ) {
        this.#reply(client, msg, undefined, { code: ErrorCode.badRequest, reason: 'Unsupported password algorithm' });
        return undefined;
      }
      algorithm = chosen.value[0]!.algorithm;
    }
    let username: string | undefined;
    if (userRef) {
      const u = readText(msg, userRef, Limits.username);
      if (!u.ok) {
        this.#reply(client, msg, undefined, { code: ErrorCode.badRequest, reason: 'Bad USERNAME' });
        return undefined;
      }
      username = u.value;
    } else if (hashRef && hashRef.length === 32) {
      // RFC 8489 §14.4: USERHASH names the user anonymously.
      username = await this.#creds.lookupUserHash?.(attributeValue(msg, hashRef), realm);
    }
    if (username === undefined) return challenge(ErrorCode.unauthenticated);
    const key = await this.#creds.lookupLongTermKey(username, realm, algorithm);
    if (!key) return challenge(ErrorCode.unauthenticated);
    const good = useSha256 ? verifyMessageIntegritySha256(msg, key) : verifyMessageIntegrity(msg, key);
    if (!good) return challenge(ErrorCode.unauthenticated);
    const auth: Auth = { username, key, sha256: useSha256 };
    // RFC 8656 §5: requests on an existing allocation must use the credentials that created it.
    const existing = this.#allocations.get(client.key);
    if (existing && existing.username !== username) {
      this.#reply(client, msg, auth, { code: ErrorCode.wrongCredentials });
      return undefined;
    }
    return auth;
  }

  /** RFC 8656 §7.2: receiving an Allocate request. */
  async #allocate(client: ClientTransport, msg: StunMessage, auth: Auth): Promise<void> {
    const tid = msg.transactionId.toString('hex');
    const existing = this.#allocations.get(client.key);
    if (existing) {
      // RFC 8656 §7.2: a retransmitted Allocate gets the same success response; anything else is 437.
      if (existing.allocateTransactionId === tid && existing.allocateResponse) {
        client.send(existing.allocateResponse);
        return;
      }
      return this.#reply(client, msg, auth, { code: ErrorCode.allocationMismatch });
    }
    if (this.#pending.has(client.key)) return; // a retransmission while the relay is being bound
    const err = (code: number, reason?: string, attrs?: [number, Buffer][]) =>
      this.#reply(client, msg, auth, { code, ...(reason ? { reason } : {}), ...(attrs ? { attrs } : {}) });

    const transportRef = findAttribute(msg, Attr.REQUESTED_TRANSPORT);
    if (!transportRef) return err(ErrorCode.badRequest, 'Missing REQUESTED-TRANSPORT');
    const transport = readFirstByteOf4(msg, transportRef);
    if (!transport.ok) return err(ErrorCode.badRequest, 'Bad REQUESTED-TRANSPORT');
    const tcpRelay = transport.value === PROTO_TCP && this.#cfg.tcpRelay && this.#io.openTcpRelay !== undefined;
    // RFC 8656 §7.2 step 3: UDP relaying, and TCP relaying when RFC 6062 is on.
    if (transport.value !== PROTO_UDP && !tcpRelay) return err(ErrorCode.unsupportedTransportProtocol);
    if (tcpRelay) {
      // RFC 6062 §5.1: TCP relaying needs a TCP control connection; no DONT-FRAGMENT, EVEN-PORT or token.
      if (client.protocol !== 'tcp') return err(ErrorCode.badRequest, 'TCP relay needs a TCP connection');
      const bad = [Attr.DONT_FRAGMENT, Attr.EVEN_PORT, Attr.RESERVATION_TOKEN, Attr.ADDITIONAL_ADDRESS_FAMILY];
      if (bad.some((t) => findAttribute(msg, t))) return err(ErrorCode.badRequest, 'Attribute not allowed with TCP');
    }
    // RFC 8656 §7.2 step 4: DONT-FRAGMENT we cannot honour → 420 listing it.
    if (findAttribute(msg, Attr.DONT_FRAGMENT) && this.#cfg.dontFragment === 'reject') {
      return err(ErrorCode.unknownAttribute, undefined, [
        [Attr.UNKNOWN_ATTRIBUTES, encodeUnknownAttributes([Attr.DONT_FRAGMENT])],
      ]);
    }
    const lifetimeRef = findAttribute(msg, Attr.LIFETIME);
    const requested = lifetimeRef ? readUint32(msg, lifetimeRef) : undefined;
    if (requested && !requested.ok) return err(ErrorCode.badRequest, 'Bad LIFETIME');
    const lifetime = this.#grantedLifetime(requested, true);
    const tokenRef = findAttribute(msg, Attr.RESERVATION_TOKEN);
    const evenRef = findAttribute(msg, Attr.EVEN_PORT);
    const familyRef = findAttribute(msg, Attr.REQUESTED_ADDRESS_FAMILY);
    const additionalRef =
      findAttribute(msg, Attr.ADDITIONAL_ADDRESS_FAMILY) ?? findAttribute(msg, Attr.ADDITIONAL_ADDRESS_FAMILY_DRAFT);
    // RFC 8656 §7.2 step 5: RESERVATION-TOKEN excludes EVEN-PORT and REQUESTED-ADDRESS-FAMILY.
    if (tokenRef && (evenRef || familyRef)) return err(ErrorCode.badRequest, 'RESERVATION-TOKEN with EVEN-PORT');
    if (tokenRef && tokenRef.length !== 8) return err(ErrorCode.badRequest, 'Bad RESERVATION-TOKEN');
    // RFC 8656 §7.2 step 7/8: one of REQUESTED- or ADDITIONAL-ADDRESS-FAMILY; additional may only be IPv6.
    if (familyRef && additionalRef) return err(ErrorCode.badRequest, 'Both address family attributes');
    let families: (4 | 6)[] = [4];
    let dualFailed = false;
    if (familyRef) {
      const f = readFirstByteOf4(msg, familyRef);
      if (!f.ok || (f.value !== FAMILY_IPV4 && f.value !== FAMILY_IPV6)) {
        return err(ErrorCode.addressFamilyNotSupported);
      }
      families = [f.value === FAMILY_IPV4 ? 4 : 6];
    }
    if (additionalRef) {
      const f = readFirstByteOf4(msg, additionalRef);
      if (!f.ok || f.value !== FAMILY_IPV6) return err(ErrorCode.badRequest, 'ADDITIONAL-ADDRESS-FAMILY not IPv6');
      if (this.#io.relayFamilies.has(6)) families = [4, 6];
      else dualFailed = true;
    }
    if (!this.#io.relayFamilies.has(families[0]!)) return err(ErrorCode.addressFamilyNotSupported);
    let even: { reserve: boolean } | undefined;
    if (evenRef) {
      const e = readEvenPort(msg, evenRef);
      if (!e.ok) return err(ErrorCode.badRequest, 'Bad EVEN-PORT');
      if (families.length > 1 && e.value.reserve) return err(ErrorCode.badRequest, 'EVEN-PORT R with dual allocation');
      even = e.value;
    }
    let reservation: Reservation | undefined;
    if (tokenRef) {
      const token = attributeValue(msg, tokenRef).toString('hex');
      reservation = this.#reservations.get(token);
      // RFC 8656 §7.2 step 5: an unknown token → 508.
      if (!reservation) return err(ErrorCode.insufficientCapacity, 'Unknown reservation token');
      this.#reservations.delete(token);
      reservation.timer.cancel();
      families = [reservation.family];
    }
    // Quotas (RFC 8656 §7.2 step 9: 486).
    const quotaKey = this.#creds.quotaKey?.(auth.username) ?? auth.username;
    const userCount = this.#perUser.get(quotaKey) ?? 0;
    const quota = this.#cfg.quotas;
    if (
      (quota.allocationsPerUser > 0 && userCount >= quota.allocationsPerUser) ||
      this.#allocations.size + this.#pending.size >= quota.allocationsTotal
    ) {
      this.counters.quotaRejections++;
      if (reservation) this.#portsInUse[reservation.family].delete(reservation.port);
      return err(ErrorCode.allocationQuotaReached);
    }
    // RFC 8656 §7.2: the server MAY redirect with 300 Try Alternate and ALTERNATE-SERVER (load spreading).
    const alternate = this.#pickAlternate(client);
    if (alternate && !reservation) {
      return err(ErrorCode.tryAlternate, undefined, [
        [Attr.ALTERNATE_SERVER, encodeAddress(alternate, false, msg.transactionId)],
      ]);
    }

    this.#pending.add(client.key);
    let alloc: Allocation | undefined;
    const relays: RelayHandle[] = [];
    let reservedToken: Buffer | undefined;
    try {
      for (const family of families) {
        const sink = (ip: string, port: number, data: Buffer) => {
          if (alloc) this.#handleRelayPacket(alloc, ip, port, data);
        };
        let handle: RelayHandle | undefined;
        const open = tcpRelay
          ? (f: 4 | 6, p: number) => this.#io.openTcpRelay!(f, p, (conn) => alloc && this.#peerConnected(alloc, conn))
          : (f: 4 | 6, p: number) => this.#io.openRelay(f, p, sink);
        if (reservation) {
          handle = await open(family, reservation.port);
          if (!handle) this.#portsInUse[family].delete(reservation.port);
        } else {
          const wantEven = even !== undefined && relays.length === 0;
          const got = await this.#bindRelay(family, wantEven, wantEven && even!.reserve, open);
          if (got) {
            handle = got.handle;
            if (got.reservedPort !== undefined) reservedToken = this.#reserve(family, got.reservedPort);
          }
        }
        if (!handle) {
          if (relays.length > 0) {
            dualFailed = true;
            break;
          }
          for (const r of relays) this.#closeRelay(r);
          return err(ErrorCode.insufficientCapacity);
        }
        relays.push(handle);
      }
    } finally {
      this.#pending.delete(client.key);
    }
    if (this.#closed) {
      for (const r of relays) this.#closeRelay(r);
      return;
    }
    alloc = new Allocation(client, auth.username, this.#cfg.realm, relays, tid, undefined);
    alloc.tcp = tcpRelay;
    alloc.expiresAt = this.#clock.now() + lifetime * 1000;
    alloc.tokens = quota.bandwidthBytesPerSecond;
    alloc.tokensAt = this.#clock.now();
    this.#allocations.set(client.key, alloc);
    alloc.quotaKey = quotaKey;
    // Counted afresh: other Allocates of the user may have completed while this one bound its relay.
    this.#perUser.set(quotaKey, (this.#perUser.get(quotaKey) ?? 0) + 1);
    const listener = listenerKey(client.local);
    this.#perListener.set(listener, (this.#perListener.get(listener) ?? 0) + 1);
    this.counters.allocationsCreated++;
    this.counters.allocationsActive = this.#allocations.size;
    this.#armExpiry(alloc, () => this.#expireAllocation(alloc!));
    const attrs: [number, Buffer][] = relays.map((r) => [
      Attr.XOR_RELAYED_ADDRESS,
      encodeAddress(r.address, true, msg.transactionId),
    ]);
    attrs.push([Attr.LIFETIME, encodeUint32(lifetime)]);
    if (reservedToken) attrs.push([Attr.RESERVATION_TOKEN, reservedToken]);
    // RFC 8656 §7.2: the IPv6 half of a dual allocation failed → ADDRESS-ERROR-CODE 440.
    if (dualFailed) {
      attrs.push([
        Attr.ADDRESS_ERROR_CODE,
        encodeAddressErrorCode(6, ErrorCode.addressFamilyNotSupported, ERROR_REASONS[440]!),
      ]);
    }
    attrs.push([Attr.XOR_MAPPED_ADDRESS, encodeAddress(client.remote, true, msg.transactionId)]);
    alloc.allocateResponse = this.#respond(client, msg, auth, { attrs });
    this.#log.debug(
      { client: client.key, user: auth.username, relays: relays.map((r) => r.address), lifetime },
      'allocation created',
    );
  }

  /** RFC 8656 §8.2: receiving a Refresh request. */
  #refresh(client: ClientTransport, msg: StunMessage, auth: Auth) {
    const alloc = this.#allocations.get(client.key);
    if (!alloc) return this.#reply(client, msg, auth, { code: ErrorCode.allocationMismatch });
    const familyRef = findAttribute(msg, Attr.REQUESTED_ADDRESS_FAMILY);
    if (familyRef) {
      const f = readFirstByteOf4(msg, familyRef);
      const fam = f.ok && f.value === FAMILY_IPV6 ? 6 : f.ok && f.value === FAMILY_IPV4 ? 4 : 0;
      // RFC 8656 §8.2: a family the allocation does not have → 443.
      if (fam === 0 || !alloc.relayFor(fam)) {
        return this.#reply(client, msg, auth, { code: ErrorCode.peerAddressFamilyMismatch });
      }
    }
    const lifetimeRef = findAttribute(msg, Attr.LIFETIME);
    const requested = lifetimeRef ? readUint32(msg, lifetimeRef) : undefined;
    if (requested && !requested.ok) return this.#reply(client, msg, auth, { code: 400, reason: 'Bad LIFETIME' });
    const lifetime = this.#grantedLifetime(requested, false);
    this.#reply(client, msg, auth, { attrs: [[Attr.LIFETIME, encodeUint32(lifetime)]] });
    // RFC 8656 §8.2: a desired lifetime of zero deletes the allocation.
    if (lifetime === 0) {
      this.counters.allocationsDeleted++;
      this.#deleteAllocation(alloc, 'refreshed to 0');
      return;
    }
    alloc.expiresAt = this.#clock.now() + lifetime * 1000;
    this.#armExpiry(alloc, () => this.#expireAllocation(alloc));
  }

  /** RFC 8656 §9.2: receiving a CreatePermission request. */
  #createPermission(client: ClientTransport, msg: StunMessage, auth: Auth) {
    const alloc = this.#allocations.get(client.key);
    if (!alloc) return this.#reply(client, msg, auth, { code: ErrorCode.allocationMismatch });
    const refs = findAttributes(msg, Attr.XOR_PEER_ADDRESS);
    if (refs.length === 0) return this.#reply(client, msg, auth, { code: 400, reason: 'Missing XOR-PEER-ADDRESS' });
    const ips: string[] = [];
    for (const ref of refs) {
      const peer = readAddress(msg, ref, true);
      if (!peer.ok) return this.#reply(client, msg, auth, { code: 400, reason: 'Bad XOR-PEER-ADDRESS' });
      const refusal = this.#checkPeer(alloc, peer.value);
      if (refusal) return this.#reply(client, msg, auth, { code: refusal });
      ips.push(peer.value.address);
    }
    const newOnes = ips.filter((ip) => !alloc.permissions.has(ip)).length;
    if (alloc.permissions.size + newOnes > this.#cfg.quotas.permissionsPerAllocation) {
      this.counters.quotaRejections++;
      return this.#reply(client, msg, auth, { code: ErrorCode.insufficientCapacity, reason: 'Too many permissions' });
    }
    for (const ip of ips) this.#installPermission(alloc, ip);
    this.#reply(client, msg, auth, { attrs: [] });
  }

  /** RFC 8656 §11.2: receiving a ChannelBind request. */
  #channelBind(client: ClientTransport, msg: StunMessage, auth: Auth) {
    const alloc = this.#allocations.get(client.key);
    if (!alloc) return this.#reply(client, msg, auth, { code: ErrorCode.allocationMismatch });
    const numRef = findAttribute(msg, Attr.CHANNEL_NUMBER);
    const peerRef = findAttribute(msg, Attr.XOR_PEER_ADDRESS);
    if (!numRef || !peerRef) return this.#reply(client, msg, auth, { code: 400, reason: 'Missing attribute' });
    const num = readChannelNumber(msg, numRef);
    const peer = readAddress(msg, peerRef, true);
    if (!num.ok || !peer.ok) return this.#reply(client, msg, auth, { code: 400, reason: 'Bad attribute' });
    if (num.value < CHANNEL_MIN || num.value > CHANNEL_MAX) {
      return this.#reply(client, msg, auth, { code: 400, reason: 'Channel number out of range' });
    }
    const refusal = this.#checkPeer(alloc, peer.value);
    if (refusal) return this.#reply(client, msg, auth, { code: refusal });
    const now = this.#clock.now();
    const peerKey = `${peer.value.address}|${peer.value.port}`;
    let ch = alloc.channels.get(num.value);
    const other = alloc.channelsByPeer.get(peerKey);
    // RFC 8656 §11.2: the channel is bound to another peer, or the peer to another channel → 400. RFC 8656 §12: an
    // expired binding keeps its number and peer for 5 more minutes (entries stay in the maps until then).
    if ((ch && ch.peerKey !== peerKey) || (other && other !== ch)) {
      return this.#reply(client, msg, auth, { code: 400, reason: 'Channel or peer already bound' });
    }
    if (!ch) {
      if (alloc.channels.size >= this.#cfg.quotas.channelsPerAllocation) {
        this.counters.quotaRejections++;
        return this.#reply(client, msg, auth, { code: ErrorCode.insufficientCapacity, reason: 'Too many channels' });
      }
      ch = {
        number: num.value,
        peerIp: peer.value.address,
        peerPort: peer.value.port,
        peerKey,
        expiresAt: 0,
        timer: undefined,
        timerDue: 0,
        cooldown: undefined,
      };
      alloc.channels.set(ch.number, ch);
      alloc.channelsByPeer.set(peerKey, ch);
    }
    ch.cooldown?.cancel();
    ch.cooldown = undefined;
    ch.expiresAt = now + this.#cfg.lifetimes.channelSeconds * 1000;
    const bound = ch;
    this.#armExpiry(bound, () => {
      bound.cooldown = this.#clock.setTimer(CHANNEL_COOLDOWN_MS, () => {
        bound.cooldown = undefined;
        if (bound.expiresAt <= this.#clock.now()) this.#removeChannel(alloc, bound);
      });
    });
    // RFC 8656 §11.2: binding a channel installs or refreshes the permission for the peer's IP.
    this.#installPermission(alloc, peer.value.address);
    this.#reply(client, msg, auth, { attrs: [] });
  }

  /** RFC 6062 §5.2: receiving a Connect request — the server opens a TCP connection to the peer. */
  async #connect(client: ClientTransport, msg: StunMessage, auth: Auth): Promise<void> {
    const alloc = this.#allocations.get(client.key);
    if (!alloc) return this.#reply(client, msg, auth, { code: ErrorCode.allocationMismatch });
    if (!alloc.tcp) return this.#reply(client, msg, auth, { code: 400, reason: 'Not a TCP allocation' });
    const peerRef = findAttribute(msg, Attr.XOR_PEER_ADDRESS);
    if (!peerRef) return this.#reply(client, msg, auth, { code: 400, reason: 'Missing XOR-PEER-ADDRESS' });
    const peer = readAddress(msg, peerRef, true);
    if (!peer.ok) return this.#reply(client, msg, auth, { code: 400, reason: 'Bad XOR-PEER-ADDRESS' });
    const refusal = this.#checkPeer(alloc, peer.value);
    if (refusal) return this.#reply(client, msg, auth, { code: refusal });
    const peerKey = `${peer.value.address}|${peer.value.port}`;
    // RFC 6062 §5.2: a connection (or a Connect in progress) to this peer already exists → 446.
    for (const l of alloc.connections.values()) {
      if (l.peerKey === peerKey) return this.#reply(client, msg, auth, { code: ErrorCode.connectionAlreadyExists });
    }
    if (alloc.connections.size >= this.#cfg.quotas.channelsPerAllocation) {
      return this.#reply(client, msg, auth, { code: ErrorCode.insufficientCapacity, reason: 'Too many connections' });
    }
    const link: TcpPeerLink = {
      id: this.#nextLinkId(),
      state: 'connecting',
      peerKey,
      peer: undefined,
      timer: undefined,
    };
    alloc.connections.set(link.id, link);
    this.#links.set(link.id, { alloc, link });
    const conn = await this.#io.connectTcp?.(
      peer.value.family,
      peer.value.address,
      peer.value.port,
      this.#cfg.connectionBindSeconds * 1000,
    );
    if (!conn || link.state === 'closed' || alloc.state !== 'active') {
      conn?.close();
      this.#closeLink(alloc, link);
      // RFC 6062 §5.2: the connection attempt failed or timed out → 447.
      if (alloc.state === 'active') this.#reply(client, msg, auth, { code: ErrorCode.connectionTimeoutOrFailure });
      return;
    }
    this.#installPermission(alloc, peer.value.address);
    this.#adoptPeer(alloc, link, conn);
    this.#reply(client, msg, auth, { attrs: [[Attr.CONNECTION_ID, encodeUint32(link.id)]] });
  }

  /** RFC 6062 §5.3: a peer connected to the relayed transport address of a TCP allocation. */
  #peerConnected(alloc: Allocation, conn: PeerConnection): void {
    const ip = canonicalIp(conn.remoteAddress);
    const perm = alloc.permissions.get(ip);
    // RFC 6062 §5.3: no permission for the peer → the connection is closed.
    if (alloc.state !== 'active' || !perm || perm.expiresAt <= this.#clock.now()) {
      this.counters.noPermissionDropped++;
      conn.close();
      return;
    }
    if (alloc.connections.size >= this.#cfg.quotas.channelsPerAllocation) {
      conn.close();
      return;
    }
    const link: TcpPeerLink = {
      id: this.#nextLinkId(),
      state: 'connecting',
      peerKey: `${ip}|${conn.remotePort}`,
      peer: undefined,
      timer: undefined,
    };
    alloc.connections.set(link.id, link);
    this.#links.set(link.id, { alloc, link });
    this.#adoptPeer(alloc, link, conn);
    const tid = randomBytes(12);
    const family = ip.includes(':') ? 6 : 4;
    alloc.client.send(
      new StunBuilder(Method.connectionAttempt, StunClass.indication, tid)
        .add(Attr.CONNECTION_ID, encodeUint32(link.id))
        .add(Attr.XOR_PEER_ADDRESS, encodeAddress({ family, address: ip, port: conn.remotePort }, true, tid))
        .finish(),
    );
  }

  /** A peer connection waits (paused) for the client's ConnectionBind, at most `connectionBindSeconds`. */
  #adoptPeer(alloc: Allocation, link: TcpPeerLink, conn: PeerConnection): void {
    this.counters.tcpConnectionsOpened++;
    link.peer = conn;
    linkTransition(link, 'pending');
    conn.pause();
    conn.onClose(() => this.#closeLink(alloc, link));
    link.timer = this.#clock.setTimer(this.#cfg.connectionBindSeconds * 1000, () => {
      link.timer = undefined;
      if (link.state === 'pending') this.#closeLink(alloc, link);
    });
  }

  /** RFC 6062 §5.4: receiving a ConnectionBind request on a new client connection. */
  #connectionBind(client: ClientTransport, msg: StunMessage, auth: Auth) {
    const idRef = findAttribute(msg, Attr.CONNECTION_ID);
    const id = idRef ? readUint32(msg, idRef) : undefined;
    if (!id?.ok) return this.#reply(client, msg, auth, { code: 400, reason: 'Missing CONNECTION-ID' });
    const entry = this.#links.get(id.value);
    // RFC 6062 §5.4: unknown id, a link already bound, or a connection that is not TCP → 400.
    if (entry?.link.state !== 'pending' || client.protocol !== 'tcp' || !client.attachPeer) {
      return this.#reply(client, msg, auth, { code: 400, reason: 'Unknown CONNECTION-ID' });
    }
    if (this.#allocations.has(client.key)) {
      return this.#reply(client, msg, auth, { code: 400, reason: 'Connection carries an allocation' });
    }
    const { alloc, link } = entry;
    if (alloc.username !== auth.username) return this.#reply(client, msg, auth, { code: ErrorCode.wrongCredentials });
    link.timer?.cancel();
    link.timer = undefined;
    linkTransition(link, 'bound');
    this.#reply(client, msg, auth, { attrs: [] });
    client.attachPeer(link.peer!, {
      take: (direction, wanted) => this.#takeTcp(alloc, link, direction, wanted),
    });
  }

  /**
   * RFC 6062 data pipe bytes, counted as datagram payloads are and held to the same bandwidth quota. Over the quota
   * a datagram is dropped; a stream cannot drop bytes, so only what the bucket holds goes on now and the adapter
   * stops reading that side (TCP flow control pushes back to the sender) until enough tokens have come back: a
   * twentieth of a second's worth, or the rest of the chunk when smaller.
   */
  #takeTcp(
    alloc: Allocation,
    link: TcpPeerLink,
    direction: 'toPeer' | 'fromPeer',
    wanted: number,
  ): ReturnType<TcpPipeMeter['take']> {
    // A link the peer closed still flushes what the quota held back towards the client; a deleted allocation does not.
    if (alloc.state !== 'active' || link.state === 'pending' || link.state === 'connecting') return undefined;
    if (wanted <= 0) return { granted: 0, retryInMs: 0 };
    const rate = this.#cfg.quotas.bandwidthBytesPerSecond;
    let granted = wanted;
    let retryInMs = 0;
    if (rate > 0) {
      this.#refill(alloc, rate);
      granted = Math.min(wanted, Math.max(0, Math.floor(alloc.tokens)));
      alloc.tokens -= granted;
      if (granted < wanted) {
        this.counters.bandwidthThrottled++;
        const need = Math.min(wanted - granted, Math.max(1, Math.ceil(rate / 20)));
        retryInMs = Math.max(1, Math.ceil(((need - alloc.tokens) * 1000) / rate));
      }
    }
    if (direction === 'toPeer') this.counters.bytesToPeers += granted;
    else this.counters.bytesFromPeers += granted;
    return { granted, retryInMs };
  }

  #closeLink(alloc: Allocation, link: TcpPeerLink): void {
    if (link.state === 'closed') return;
    linkTransition(link, 'closed');
    link.timer?.cancel();
    link.timer = undefined;
    link.peer?.close();
    if (alloc.connections.get(link.id) === link) alloc.connections.delete(link.id);
    if (this.#links.get(link.id)?.link === link) this.#links.delete(link.id);
  }

  #nextLinkId(): number {
    do {
      this.#linkSeq = (this.#linkSeq + 1) >>> 0;
    } while (this.#linkSeq === 0 || this.#links.has(this.#linkSeq));
    return this.#linkSeq;
  }

  // ─── data ──────────────────────────────────────────────────────────────────────────────────────────────

  /** RFC 8656 §10.2: a Send indication from the client. Problems are silent drops (indications get no answer). */
  #handleSend(client: ClientTransport, msg: StunMessage) {
    const alloc = this.#allocations.get(client.key);
    if (!alloc) return this.#drop('Send without allocation', client);
    const peerRef = findAttribute(msg, Attr.XOR_PEER_ADDRESS);
    const dataRef = findAttribute(msg, Attr.DATA);
    if (!peerRef || !dataRef) return this.#drop('Send without XOR-PEER-ADDRESS or DATA', client);
    const peer = readAddress(msg, peerRef, true);
    if (!peer.ok) return this.#drop(peer.reason, client);
    this.#toPeer(alloc, peer.value.address, peer.value.port, peer.value.family, attributeValue(msg, dataRef));
  }

  /** RFC 8656 §12.4: ChannelData from the client. */
  #handleChannelData(client: ClientTransport, bytes: Buffer) {
    const alloc = this.#allocations.get(client.key);
    if (!alloc) return this.#drop('ChannelData without allocation', client);
    const num = bytes.readUInt16BE(0);
    const len = bytes.readUInt16BE(2);
    if (len + 4 > bytes.length) return this.#drop('ChannelData shorter than its length', client);
    const ch = alloc.channels.get(num);
    if (!ch || ch.expiresAt <= this.#clock.now()) {
      this.counters.noPermissionDropped++;
      return;
    }
    const family = ch.peerIp.includes(':') ? 6 : 4;
    this.#toPeer(alloc, ch.peerIp, ch.peerPort, family, bytes.subarray(4, 4 + len));
  }

  #toPeer(alloc: Allocation, ip: string, port: number, family: 4 | 6, data: Buffer) {
    const perm = alloc.permissions.get(ip);
    // RFC 8656 §10.2/§12.4: no permission for the peer → discard silently.
    if (!perm || perm.expiresAt <= this.#clock.now()) {
      this.counters.noPermissionDropped++;
      return;
    }
    const relay = alloc.relayFor(family);
    if (!relay) return this.#drop('peer family has no relay', alloc.client);
    if (!this.#spend(alloc, data.length)) return;
    this.counters.packetsToPeers++;
    this.counters.bytesToPeers += data.length;
    relay.send(ip, port, data);
  }

  /** RFC 8656 §10.3 / §12.5: a datagram from a peer on a relay socket. */
  #handleRelayPacket(alloc: Allocation, fromIp: string, fromPort: number, data: Buffer) {
    if (alloc.state !== 'active') return;
    const now = this.#clock.now();
    const ip = fromIp.startsWith('::ffff:') ? canonicalIp(fromIp) : fromIp;
    const perm = alloc.permissions.get(ip);
    if (!perm || perm.expiresAt <= now) {
      this.counters.noPermissionDropped++;
      return;
    }
    if (!this.#spend(alloc, data.length)) return;
    this.counters.packetsFromPeers++;
    this.counters.bytesFromPeers += data.length;
    const ch = alloc.channelsByPeer.get(`${ip}|${fromPort}`);
    if (ch && ch.expiresAt > now) {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt16BE(ch.number, 0);
      header.writeUInt16BE(data.length, 2);
      // RFC 8656 §12.5: over TCP, ChannelData is padded to a multiple of four bytes.
      const pad = alloc.client.protocol === 'tcp' ? (4 - (data.length & 3)) & 3 : 0;
      alloc.client.send(pad ? [header, data, PADDING[pad]!] : [header, data]);
      return;
    }
    const tid = this.#indicationBase;
    tid.writeUInt32BE(this.#indicationSeq++ >>> 0, 8);
    const family = ip.includes(':') ? 6 : 4;
    const ind = new StunBuilder(Method.data, StunClass.indication, Buffer.from(tid))
      .add(Attr.XOR_PEER_ADDRESS, encodeAddress({ family, address: ip, port: fromPort }, true, tid))
      .add(Attr.DATA, data)
      .finish();
    alloc.client.send(ind);
  }

  // ─── helpers ───────────────────────────────────────────────────────────────────────────────────────────

  #reply(client: ClientTransport, req: StunMessage, auth: Auth | undefined, reply: Reply): void {
    this.#respond(client, req, auth, reply);
  }

  /** Builds, sends and returns a response (success or error) to `req`. */
  #respond(client: ClientTransport, req: StunMessage, auth: Auth | undefined, reply: Reply): Buffer {
    const isError = 'code' in reply;
    const b = new StunBuilder(req.method, isError ? StunClass.error : StunClass.success, req.transactionId);
    if (isError) {
      this.counters.errorResponses++;
      b.add(Attr.ERROR_CODE, encodeErrorCode(reply.code, reply.reason ?? ERROR_REASONS[reply.code] ?? 'Error'));
    }
    for (const [t, v] of reply.attrs ?? []) b.add(t, v);
    if (this.#software) b.add(Attr.SOFTWARE, this.#software);
    const out = b.finish({
      ...(auth && !auth.sha256 ? { integrityKey: auth.key } : {}),
      ...(auth?.sha256 ? { integritySha256Key: auth.key } : {}),
      fingerprint: req.fingerprintOffset >= 0,
    });
    client.send(out);
    return out;
  }

  /** RFC 8656 §7.2/§8.2: lifetime granted for a requested one. */
  #grantedLifetime(requested: { ok: true; value: number } | { ok: false } | undefined, allocate: boolean): number {
    const { allocationDefaultSeconds: def, allocationMaxSeconds: max } = this.#cfg.lifetimes;
    if (!requested?.ok) return def;
    if (!allocate && requested.value === 0) return 0;
    const v = Math.min(requested.value, max);
    return allocate ? Math.max(v, Math.min(def, max)) : v;
  }

  /** A 4xx code when the client may not reach this peer, else undefined. */
  #checkPeer(alloc: Allocation, peer: TransportAddress): number | undefined {
    // RFC 8656 §9.2: a peer of a family the allocation has no relay for → 443.
    if (!alloc.relayFor(peer.family)) return ErrorCode.peerAddressFamilyMismatch;
    const verdict = this.#policy.check(peer.address);
    if (verdict !== 'allowed') {
      this.counters.peerDenied++;
      this.#bad.warn(`peer-${verdict}`, `peer ${peer.address} (${verdict}) => 403`, { user: alloc.username });
      return ErrorCode.forbidden;
    }
    return undefined;
  }

  #installPermission(alloc: Allocation, ip: string): void {
    let p = alloc.permissions.get(ip);
    if (!p) {
      p = { ip, expiresAt: 0, timer: undefined, timerDue: 0 };
      alloc.permissions.set(ip, p);
    }
    p.expiresAt = this.#clock.now() + this.#cfg.lifetimes.permissionSeconds * 1000;
    const perm = p;
    this.#armExpiry(perm, () => {
      if (alloc.permissions.get(ip) === perm) alloc.permissions.delete(ip);
    });
  }

  #removeChannel(alloc: Allocation, ch: Channel): void {
    ch.timer?.cancel();
    ch.timer = undefined;
    ch.cooldown?.cancel();
    ch.cooldown = undefined;
    if (alloc.channels.get(ch.number) === ch) alloc.channels.delete(ch.number);
    if (alloc.channelsByPeer.get(ch.peerKey) === ch) alloc.channelsByPeer.delete(ch.peerKey);
  }

  /**
   * One timer per object: it fires at the recorded due time; when the object was refreshed meanwhile it re-arms
   * for the new expiry instead of firing `onExpire`. A refresh that shortens the lifetime re-arms at once.
   */
  #armExpiry(obj: Expiring, onExpire: () => void): void {
    if (obj.timer && obj.timerDue <= obj.expiresAt) return;
    obj.timer?.cancel();
    obj.timerDue = obj.expiresAt;
    obj.timer = this.#clock.setTimer(obj.expiresAt - this.#clock.now(), () => {
      obj.timer = undefined;
      if (obj.expiresAt > this.#clock.now()) this.#armExpiry(obj, onExpire);
      else onExpire();
    });
  }

  #expireAllocation(alloc: Allocation): void {
    this.counters.allocationsExpired++;
    this.#deleteAllocation(alloc, 'lifetime expired');
  }

  #deleteAllocation(alloc: Allocation, why: string): void {
    // The only transition of an allocation: active → closed (expired, refreshed to 0, connection gone, shutdown).
    if (alloc.state === 'closed') return;
    alloc.state = 'closed';
    alloc.timer?.cancel();
    for (const p of alloc.permissions.values()) p.timer?.cancel();
    for (const c of alloc.channels.values()) {
      c.timer?.cancel();
      c.cooldown?.cancel();
    }
    alloc.permissions.clear();
    alloc.channels.clear();
    alloc.channelsByPeer.clear();
    for (const link of [...alloc.connections.values()]) this.#closeLink(alloc, link);
    for (const r of alloc.relays) this.#closeRelay(r);
    if (this.#allocations.get(alloc.client.key) === alloc) this.#allocations.delete(alloc.client.key);
    const n = (this.#perUser.get(alloc.quotaKey) ?? 1) - 1;
    if (n <= 0) this.#perUser.delete(alloc.quotaKey);
    else this.#perUser.set(alloc.quotaKey, n);
    const listener = listenerKey(alloc.client.local);
    const l = (this.#perListener.get(listener) ?? 1) - 1;
    if (l <= 0) this.#perListener.delete(listener);
    else this.#perListener.set(listener, l);
    this.counters.allocationsActive = this.#allocations.size;
    this.#log.debug({ client: alloc.client.key, why }, 'allocation deleted');
  }

  #closeRelay(r: RelayHandle): void {
    r.close();
    this.#portsInUse[r.address.family].delete(r.address.port);
  }

  /** Picks and binds a relay port from the range; with `reserveNext`, port+1 is held for a later allocation. */
  async #bindRelay(
    family: 4 | 6,
    even: boolean,
    reserveNext: boolean,
    open: (family: 4 | 6, port: number) => Promise<RelayHandle | undefined>,
  ): Promise<{ handle: RelayHandle; reservedPort?: number } | undefined> {
    const used = this.#portsInUse[family];
    const { from, to } = this.#range;
    const span = to - from + 1;
    for (let attempt = 0; attempt < 32; attempt++) {
      let port = -1;
      const start = Math.floor(this.#random() * span);
      for (let i = 0; i < span; i++) {
        const p = from + ((start + i) % span);
        if (used.has(p)) continue;
        if (even && (p & 1) !== 0) continue;
        if (reserveNext && (p + 1 > to || used.has(p + 1))) continue;
        port = p;
        break;
      }
      if (port < 0) return undefined;
      used.add(port);
      if (reserveNext) used.add(port + 1);
      const handle = await open(family, port);
      if (handle) return reserveNext ? { handle, reservedPort: port + 1 } : { handle };
      if (reserveNext) used.delete(port + 1);
      // Taken by another process: leave it marked for a while so we do not retry it at once.
      this.#clock.setTimer(60_000, () => used.delete(port));
    }
    return undefined;
  }

  /** RFC 8656 §14.9: holds `port` for a later Allocate carrying the returned RESERVATION-TOKEN. */
  #reserve(family: 4 | 6, port: number): Buffer {
    const token = randomBytes(8);
    const key = token.toString('hex');
    const timer = this.#clock.setTimer(this.#cfg.lifetimes.reservationSeconds * 1000, () => {
      if (this.#reservations.delete(key)) this.#portsInUse[family].delete(port);
    });
    this.#reservations.set(key, { port, family, timer });
    return token;
  }

  /**
   * ALTERNATE-SERVER (RFC 8656 §7.2, RFC 8489 §10): only Allocates that arrive on a front listener are redirected —
   * one in `redirectFrom`, or, when that is empty, one that is not itself an alternate — so that a node listing its
   * own ports never sends a client round in circles; the threshold counts the allocations of that listener.
   */
  #pickAlternate(client: ClientTransport): TransportAddress | undefined {
    const list = this.#cfg.alternateServers;
    if (list.length === 0) return undefined;
    const local = client.local;
    const localIp = canonicalIp(local.address);
    const isLocal = (alt: { address: string; port: number }) =>
      alt.port === local.port && canonicalIp(alt.address) === localIp;
    const front = this.#cfg.redirectFrom;
    if (front.length > 0 ? !front.includes(local.port) : list.some(isLocal)) return undefined;
    if ((this.#perListener.get(listenerKey(local)) ?? 0) < this.#cfg.alternateAboveAllocations) return undefined;
    for (let i = 0; i < list.length; i++) {
      const alt = list[this.#alternateIndex++ % list.length]!;
      if (isLocal(alt)) continue;
      return { family: alt.address.includes(':') ? 6 : 4, address: alt.address, port: alt.port };
    }
    return undefined;
  }

  /** Tops up an allocation's token bucket for the time since its last use (at most one second's worth). */
  #refill(alloc: Allocation, rate: number): void {
    const now = this.#clock.now();
    alloc.tokens = Math.min(rate, alloc.tokens + ((now - alloc.tokensAt) * rate) / 1000);
    alloc.tokensAt = now;
  }

  /** Bandwidth quota: a token bucket per allocation refilled lazily from the clock. */
  #spend(alloc: Allocation, bytes: number): boolean {
    const rate = this.#cfg.quotas.bandwidthBytesPerSecond;
    if (rate === 0) return true;
    this.#refill(alloc, rate);
    if (alloc.tokens < bytes) {
      this.counters.bandwidthDropped++;
      return false;
    }
    alloc.tokens -= bytes;
    return true;
  }

  #drop(reason: string, client: ClientTransport): void {
    this.counters.malformedDropped++;
    this.#bad.warn(reason, `${reason} => dropped`, { from: client.remote.address });
  }
}

function listenerKey(local: TransportAddress): string {
  return `${local.address}|${local.port}`;
}

const PADDING = [Buffer.alloc(0), Buffer.alloc(1), Buffer.alloc(2), Buffer.alloc(3)];
