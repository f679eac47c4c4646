import { isIP } from 'node:net';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { RoutingConfig } from '../../routing/config.ts';
import { LOCAL_ZONE, Router, type Zone, type ZoneSearcher } from '../../routing/router.ts';
import { type AliasText, aliasFromText, aliasToText, fromH225Address, h225Address, type IpPort } from '../api.ts';
import type {
  AliasAddress,
  LocationConfirm,
  LocationReject,
  LocationRejectReason,
  LocationRequest,
  RasMessage,
  RequestInProgress,
} from '../per/generated/types.ts';
import type { Gatekeeper, H323Route, H323Target, NeighbourHook } from './gatekeeper.ts';
import { NeighbourAuth } from './neighbour-auth.ts';
import { type HostLookup, NeighbourDns, type Resolved } from './neighbour-dns.ts';

/**
 * Neighbor gatekeepers (H.225.0 §7.8 location, H.323 §7.2.2 zones): routing zones of type `neighbor` with
 * `protocol: h323`. The node's search rules (src/routing, the same ones SIP uses) decide where an alias is looked
 * for; a neighbor zone is searched by sending it an LRQ and waiting for LCF/LRJ (a RIP extends the wait, silence
 * ends it after the zone's `lrqTimeoutMs`). LRQs from neighbors are answered by the same rules: an alias registered
 * here gets an LCF whose callSignalAddress is the node itself (routed model), others LRJ. Loops are cut by hop count
 * (an LRQ is forwarded with hopCount − 1, never back to the zone it came from, and never without hops left) and by
 * refusing an LRQ that comes back while we are still forwarding it. A zone named by host name is looked up when the
 * node starts and when it is used (`NeighbourDns`: cached a minute, looked up again after); a name that gives no
 * address is an unreachable neighbour (no LRQ, the search goes on). Sans-I/O: RAS goes out through the gatekeeper's
 * `send`, timers through the injected clock, name lookups through the injected resolver.
 */

/** A configured H.323 neighbor gatekeeper. */
export interface NeighbourZone {
  name: string;
  /** As configured: an IP address, or a host name looked up when the zone is used. */
  host: string;
  /** Its RAS port. */
  port: number;
  /** The zone's RAS address when `host` is an IP address; undefined for a host name (resolved on use). */
  address: IpPort | undefined;
  gatekeeperIdentifier: string | undefined;
  hopCount: number;
  lrqTimeoutMs: number;
  trusted: boolean;
  /** The zone shares a password with us (`authentication`): its LRQs must be signed, ours to it are (the password is
   * kept by `NeighbourAuth`, never here, so that no status or log shows it). */
  h235: boolean;
}

/** What a search carries through the router to the zone searcher. */
interface SearchContext {
  /** Hops an LRQ sent from this search may have (undefined: the zone's own hopCount). */
  hops?: number;
  /** The zone the request came from: never searched again (loop). */
  fromZone?: string;
  /** Set when a neighbor zone would have been searched but no hop was left. */
  exhausted?: boolean;
  sourceInfo?: AliasAddress[];
  callIdentifier?: Uint8Array;
}

interface Pending {
  zone: NeighbourZone;
  /** Where the LRQ went: answers from another address are not its answers. */
  to: IpPort;
  alias: string;
  timer: TimerHandle;
  done: (a: IpPort | undefined) => void;
}

export interface NeighbourCounters {
  lrqReceived: number;
  lcfSent: number;
  lrjSent: Record<string, number>;
  ripSent: number;
  lrqSent: number;
  lcfReceived: number;
  lrjReceived: Record<string, number>;
  ripReceived: number;
  timeouts: number;
  /** LCF/LRJ/RIP that match no LRQ in flight, or come from another address than the LRQ went to. */
  unexpected: number;
  /** LRQs from an address that is no neighbor zone (answered LRJ requestDenied). */
  unknownSource: number;
  /** LRQs refused because they came back while being forwarded. */
  loops: number;
  cacheHits: number;
  /** Searches of a zone named by host name that sent no LRQ: the name gave no address (failed or too slow). */
  unresolved: number;
  /** LRQs from a zone with a password whose H.235 token was good. */
  authenticated: number;
  /** LRQs from a zone with a password refused for their token (missing, bad, stale; LRJ securityDenial). */
  securityDenied: number;
  /** LCF/LRJ/RIP from a zone with a password that carried a bad token (dropped: the search waits as if unanswered). */
  badAnswerTokens: number;
}

export interface NeighboursOptions {
  gatekeeper: Gatekeeper;
  routing: Readonly<RoutingConfig>;
  /** `sip.domains`, for `%localdomains%` in patterns. */
  domains?: readonly string[];
  clock: Clock;
  /** How long an LCF's address is reused for the same zone and alias (ARQ then Setup ask once); 0: never. */
  cacheMs?: number;
  /** A RIP goes to a neighbor whose LRQ is still being searched after this many ms. */
  ripAfterMs?: number;
  /** Resolves zones named by host name (default: the system resolver, node:dns). */
  lookup?: HostLookup;
  /** How long a neighbor's resolved address is used before its name is looked up again (ms, default 60 000). */
  dnsTtlMs?: number;
  /** Largest difference between an H.235 token's timeStamp and our wall clock (s, default 300). */
  timestampWindowSeconds?: number;
}

/** The H.323 neighbor zones of a routing configuration (zones of type neighbor with protocol h323). */
export function h323NeighbourZones(routing: Readonly<RoutingConfig>): NeighbourZone[] {
  return routing.zones
    .filter((z) => z.type === 'neighbor' && z.protocol === 'h323' && z.address !== undefined)
    .map((z) => ({
      name: z.name,
      host: z.address!,
      port: z.port ?? 1719,
      address: isIP(z.address!) !== 0 ? { ip: z.address!, port: z.port ?? 1719 } : undefined,
      gatekeeperIdentifier: z.gatekeeperIdentifier,
      hopCount: z.hopCount ?? 2,
      lrqTimeoutMs: z.lrqTimeoutMs ?? 2000,
      trusted: z.trusted,
      h235: z.authentication !== undefined,
    }));
}

/** The ways a text alias from the router may be registered here (an H.323-ID also finds an E.164 of the same text). */
function candidates(alias: string): AliasText[] {
  const typed = aliasToText(aliasFromText(alias));
  return typed.kind === 'h323-ID' ? [typed] : [{ kind: 'h323-ID', value: alias }, typed];
}

const hex = (b: Uint8Array | undefined) => (b ? Buffer.from(b).toString('hex') : '');
/** For the search history's label: who signed the ARQ or Setup with H.235.1, if anyone did. */
const signedBy = (user: string | undefined) => (user !== undefined ? ` signed by ${user}` : '');

export class Neighbours implements NeighbourHook {
  readonly router: Router<H323Target>;
  readonly zones = new Map<string, NeighbourZone>();
  readonly counters: NeighbourCounters = {
    lrqReceived: 0,
    lcfSent: 0,
    lrjSent: {},
    ripSent: 0,
    lrqSent: 0,
    lcfReceived: 0,
    lrjReceived: {},
    ripReceived: 0,
    timeouts: 0,
    unexpected: 0,
    unknownSource: 0,
    loops: 0,
    cacheHits: 0,
    unresolved: 0,
    authenticated: 0,
    securityDenied: 0,
    badAnswerTokens: 0,
  };
  readonly #gk: Gatekeeper;
  readonly #clock: Clock;
  readonly #cacheMs: number;
  readonly #ripAfterMs: number;
  readonly #dns: NeighbourDns;
  readonly #auth: NeighbourAuth;
  readonly #pending = new Map<number, Pending>();
  readonly #cache = new Map<string, { address: IpPort; until: number }>();
  /** LRQs being searched because a neighbor asked (loop key → count). */
  readonly #inProgress = new Map<string, number>();
  #seq = 0;
  #closed = false;

  constructor(o: NeighboursOptions) {
    this.#gk = o.gatekeeper;
    this.#clock = o.clock;
    this.#cacheMs = o.cacheMs ?? 10_000;
    this.#ripAfterMs = o.ripAfterMs ?? 500;
    this.#dns = new NeighbourDns({
      clock: o.clock,
      family: isIP(o.gatekeeper.options.rasAddress.ip) === 6 ? 6 : 4,
      ...(o.lookup ? { lookup: o.lookup } : {}),
      ...(o.dnsTtlMs !== undefined ? { ttlMs: o.dnsTtlMs } : {}),
    });
    for (const z of h323NeighbourZones(o.routing)) this.zones.set(z.name, z);
    this.#auth = new NeighbourAuth({
      routing: o.routing,
      gatekeeperIdentifier: o.gatekeeper.options.gatekeeperIdentifier,
      wallNow: () => o.clock.wallNow(),
      timestampWindowSeconds: o.timestampWindowSeconds ?? 300,
    });
    const searcher: ZoneSearcher<H323Target> = { search: (zone, alias, ctx) => this.#search(zone, alias, ctx) };
    this.router = new Router<H323Target>({
      config: o.routing,
      domains: o.domains ?? [],
      searcher,
      wallNow: () => o.clock.wallNow(),
    });
  }

  /**
   * Admissions and Setups always go through the router (pre-search transforms, call policy, search rules), as SIP
   * requests do, whether or not a neighbor zone exists: the default search rule sends any alias to the local zone,
   * i.e. this gatekeeper's registrations.
   */
  get routesAdmissions(): boolean {
    return true;
  }

  /**
   * The neighbor zone a request from `ip` (naming `gatekeeperIdentifier`, when it does) comes from: by its configured
   * IP address, or the address its host name last resolved to.
   */
  zoneOf(ip: string, gatekeeperIdentifier?: string): NeighbourZone | undefined {
    for (const z of this.zones.values()) {
      if ((z.address?.ip ?? this.#dns.known(z.host)) !== ip) continue;
      if (gatekeeperIdentifier && z.gatekeeperIdentifier && gatekeeperIdentifier !== z.gatekeeperIdentifier) continue;
      return z;
    }
    return undefined;
  }

  /**
   * Looks up every zone named by host name now (the node does when its gatekeeper starts, without waiting), so that
   * `zoneOf` knows a neighbour's address before any search or request needs it. A failure is counted
   * (`dns.failures`) and answered, not thrown; the name is looked up again when the zone is next used, as always.
   */
  lookUpNames(): Promise<Array<{ zone: string; host: string; result: Resolved }>> {
    const named = [...this.zones.values()].filter((z) => !z.address);
    return Promise.all(
      named.map(async (z) => ({ zone: z.name, host: z.host, result: await this.#dns.lookUp(z.host) })),
    );
  }

  /** LRQ, LCF, LRJ and RIP handed over by the gatekeeper. Answers to LRQs go out through `send`, to replyAddress. */
  handle(m: RasMessage, from: IpPort, raw?: Uint8Array): RasMessage | undefined {
    if (this.#closed) return undefined;
    switch (m.choice) {
      case 'locationRequest':
        this.#lrq(m.value, from, raw);
        return undefined;
      case 'locationConfirm':
      case 'locationReject':
      case 'requestInProgress':
        this.#answer(m.choice, m.value, from, raw);
        return undefined;
      default:
        return undefined;
    }
  }

  /**
   * Routes a call from a registered endpoint (ARQ) through the search rules; the first alias found wins. The route
   * names the zone it was found in and the alias searched there (`found`). An ARQ that carried a good H.235.1 token
   * (`caller.authUser`) is authenticated, as a SIP request with good digest credentials is.
   */
  route(
    destination: AliasText[],
    caller: { endpointIdentifier: string; aliases: AliasText[]; authUser?: string },
  ): Promise<H323Route> {
    return this.#routeAliases(destination, {
      sourceZone: LOCAL_ZONE,
      sourceAlias: caller.aliases[0]?.value ?? '',
      authenticated: caller.authUser !== undefined,
      label: `ARQ from ${caller.endpointIdentifier}${signedBy(caller.authUser)}`,
      sourceInfo: caller.aliases.map((a) => aliasFromText(a.value)),
    });
  }

  /**
   * Routes a Setup that reached the node's call signalling from `from`: a neighbor's Setup comes from that zone (and
   * is never sent back to it); any other comes from the local zone (the endpoint was admitted by this gatekeeper).
   * Authenticated when it comes from a trusted zone or carried a good H.235.1 token (`authUser`: who signed it).
   */
  async routeSetup(destination: AliasText[], source: AliasText[], from: IpPort, authUser?: string): Promise<H323Route> {
    const zone =
      this.zoneOf(from.ip) ?? (this.#namesToLookUp().length > 0 ? await this.#zoneAfterLookup(from.ip) : undefined);
    return this.#routeAliases(destination, {
      sourceZone: zone?.name ?? LOCAL_ZONE,
      sourceAlias: source[0]?.value ?? '',
      authenticated: (zone?.trusted ?? false) || authUser !== undefined,
      label: `Setup from ${from.ip}${signedBy(authUser)}`,
      sourceInfo: source.map((a) => aliasFromText(a.value)),
      ...(zone ? { fromZone: zone.name } : {}),
    });
  }

  async #routeAliases(
    destination: AliasText[],
    o: {
      sourceZone: string;
      sourceAlias: string;
      authenticated: boolean;
      label: string;
      sourceInfo: AliasAddress[];
      fromZone?: string;
    },
  ): Promise<H323Route> {
    for (const d of destination) {
      if (!d.value) continue;
      const context: SearchContext = { sourceInfo: o.sourceInfo };
      if (o.fromZone !== undefined) context.fromZone = o.fromZone;
      const r = await this.router.route({
        protocol: 'h323',
        alias: d.value,
        sourceAlias: o.sourceAlias,
        sourceZone: o.sourceZone,
        authenticated: o.authenticated,
        label: o.label,
        context,
      });
      const sourceZone = o.sourceZone;
      if (r.kind === 'found') {
        const t = r.targets[0]!;
        return { ...t.target, found: { zone: t.zone, alias: t.alias, dialled: d.value }, sourceZone };
      }
      if (r.kind === 'rejected') return { kind: 'rejected', reason: r.reason, sourceZone };
    }
    return { kind: 'not-found', sourceZone: o.sourceZone };
  }

  async #search(zone: Zone, alias: string, context: unknown): Promise<H323Target[]> {
    const ctx = (context ?? {}) as SearchContext;
    if (zone.type === 'local') {
      const t = this.#gk.resolve(candidates(alias));
      return t ? [t] : [];
    }
    if (zone.type !== 'neighbor' || zone.protocol !== 'h323') return [];
    const nz = this.zones.get(zone.name);
    if (!nz || ctx.fromZone === nz.name) return [];
    const hops = ctx.hops === undefined ? nz.hopCount : Math.min(ctx.hops, nz.hopCount);
    if (hops < 1) {
      ctx.exhausted = true;
      return [];
    }
    const address = await this.locate(nz, alias, {
      hops,
      sourceInfo: ctx.sourceInfo,
      callIdentifier: ctx.callIdentifier,
    });
    return address ? [{ kind: 'address', address, zone: nz.name }] : [];
  }

  /**
   * Asks a neighbor where `alias` is: LRQ, then the callSignalAddress of its LCF, or undefined after an LRJ or
   * silence. A recent LCF for the same zone and alias is reused.
   */
  async locate(
    zone: NeighbourZone,
    alias: string,
    o: { hops?: number; sourceInfo?: AliasAddress[] | undefined; callIdentifier?: Uint8Array | undefined } = {},
  ): Promise<IpPort | undefined> {
    if (this.#closed) return undefined;
    const key = `${zone.name}|${alias}`;
    const hit = this.#cache.get(key);
    if (hit && hit.until > this.#clock.now()) {
      this.counters.cacheHits++;
      return hit.address;
    }
    if (hit) this.#cache.delete(key);
    const to = await this.#addressOf(zone);
    if (!to || this.#closed) return undefined;
    this.#seq = (this.#seq % 65535) + 1;
    const seq = this.#seq;
    const gk = this.#gk.options;
    const lrq: LocationRequest = {
      requestSeqNum: seq,
      destinationInfo: [aliasFromText(alias)],
      replyAddress: h225Address(gk.rasAddress.ip, gk.rasAddress.port),
      gatekeeperIdentifier: gk.gatekeeperIdentifier,
      hopCount: Math.max(1, Math.min(255, o.hops ?? zone.hopCount)),
      canMapAlias: false,
    };
    if (o.sourceInfo && o.sourceInfo.length > 0) lrq.sourceInfo = o.sourceInfo;
    if (o.callIdentifier) lrq.callIdentifier = { guid: o.callIdentifier };
    return new Promise<IpPort | undefined>((resolve) => {
      const done = (a: IpPort | undefined) => {
        this.#pending.delete(seq);
        if (a && this.#cacheMs > 0) this.#cache.set(key, { address: a, until: this.#clock.now() + this.#cacheMs });
        resolve(a);
      };
      const timer = this.#clock.setTimer(zone.lrqTimeoutMs, () => {
        this.counters.timeouts++;
        done(undefined);
      });
      this.#pending.get(seq)?.done(undefined); // a wrapped sequence number: the old request gives up
      this.#pending.set(seq, { zone, to, alias, timer, done });
      this.counters.lrqSent++;
      this.#send(zone, { choice: 'locationRequest', value: lrq }, to);
    });
  }

  /**
   * Where to send a zone's LRQs: its IP address, or what its host name resolves to (cached; waited for at most the
   * zone's lrqTimeoutMs). A name that gives no address is counted and answers undefined, as a silent neighbor would.
   */
  async #addressOf(zone: NeighbourZone): Promise<IpPort | undefined> {
    if (zone.address) return zone.address;
    const r = await this.#dns.resolve(zone.host, zone.lrqTimeoutMs);
    if (r.ok) return { ip: r.ip, port: zone.port };
    this.counters.unresolved++;
    return undefined;
  }

  /** Zones named by host name whose address is not fresh in the cache. */
  #namesToLookUp(): NeighbourZone[] {
    return [...this.zones.values()].filter((z) => !z.address && this.#dns.stale(z.host));
  }

  /** `zoneOf` once the stale names are looked up again (a request from a neighbor whose address may have changed). */
  async #zoneAfterLookup(ip: string, gatekeeperIdentifier?: string): Promise<NeighbourZone | undefined> {
    await Promise.all(this.#namesToLookUp().map((z) => this.#dns.resolve(z.host, z.lrqTimeoutMs)));
    return this.zoneOf(ip, gatekeeperIdentifier);
  }

  #answer(
    kind: 'locationConfirm' | 'locationReject' | 'requestInProgress',
    v: LocationConfirm | LocationReject | RequestInProgress,
    from: IpPort,
    raw: Uint8Array | undefined,
  ): void {
    const p = this.#pending.get(v.requestSeqNum);
    if (!p || p.to.ip !== from.ip) {
      this.counters.unexpected++;
      return;
    }
    // A zone with a password: an answer carrying a token must carry a good one (GnuGk signs none of its answers, so
    // an unsigned answer is taken, as from a zone without one); a bad one is dropped as if never received.
    if (p.zone.h235 && v.cryptoTokens && v.cryptoTokens.length > 0) {
      const verdict = this.#auth.check(p.zone, v.cryptoTokens, raw);
      if (!verdict.ok) {
        this.counters.badAnswerTokens++;
        return;
      }
    }
    if (kind === 'requestInProgress') {
      // H.225.0 §7.8: the neighbor needs more time; wait for what it says (at most 30 s more).
      this.counters.ripReceived++;
      p.timer.cancel();
      const delay = Math.min(30_000, Math.max(0, (v as RequestInProgress).delay)) + p.zone.lrqTimeoutMs;
      p.timer = this.#clock.setTimer(delay, () => {
        this.counters.timeouts++;
        p.done(undefined);
      });
      return;
    }
    p.timer.cancel();
    if (kind === 'locationConfirm') {
      this.counters.lcfReceived++;
      p.done(fromH225Address((v as LocationConfirm).callSignalAddress));
      return;
    }
    const reason = (v as LocationReject).rejectReason.choice;
    this.counters.lrjReceived[reason] = (this.counters.lrjReceived[reason] ?? 0) + 1;
    p.done(undefined);
  }

  /** Sends to a neighbour: signed with the zone's password when it has one (`NeighbourAuth.encoder`). */
  #send(zone: NeighbourZone | undefined, m: RasMessage, to: IpPort): void {
    const encode = zone?.h235 ? this.#auth.encoder(zone) : undefined;
    this.#gk.send(m, to, encode);
  }

  #lrj(l: LocationRequest, to: IpPort, reason: LocationRejectReason['choice'], zone?: NeighbourZone): void {
    this.counters.lrjSent[reason] = (this.counters.lrjSent[reason] ?? 0) + 1;
    this.#send(
      zone,
      {
        choice: 'locationReject',
        value: {
          requestSeqNum: l.requestSeqNum,
          rejectReason: { choice: reason, value: null } as LocationRejectReason,
        },
      },
      to,
    );
  }

  // H.225.0 §7.8: an LRQ from a neighbor — LCF naming the node (routed model) when the search rules find the alias.
  #lrq(l: LocationRequest, from: IpPort, raw: Uint8Array | undefined): void {
    this.counters.lrqReceived++;
    const reply = (l.replyAddress && fromH225Address(l.replyAddress)) || from;
    const zone = this.zoneOf(from.ip, l.gatekeeperIdentifier);
    // not from a known address: a neighbor named by host name may have moved (or not be looked up yet)
    if (!zone && this.#namesToLookUp().length > 0) {
      void this.#zoneAfterLookup(from.ip, l.gatekeeperIdentifier).then(
        (z) => this.#lrqFrom(l, reply, z, raw),
        () => this.#lrqFrom(l, reply, undefined, raw),
      );
      return;
    }
    this.#lrqFrom(l, reply, zone, raw);
  }

  #lrqFrom(l: LocationRequest, reply: IpPort, zone: NeighbourZone | undefined, raw: Uint8Array | undefined): void {
    if (this.#closed) return;
    if (!zone) {
      this.counters.unknownSource++;
      this.#lrj(l, reply, 'requestDenied');
      return;
    }
    // A zone sharing a password with us: its LRQ must carry a good H.235 token (GnuGk's pwdHash, or procedure I).
    if (zone.h235) {
      const verdict = this.#auth.check(zone, l.cryptoTokens, raw);
      if (!verdict.ok) {
        this.counters.securityDenied++;
        this.#lrj(l, reply, 'securityDenial', zone);
        return;
      }
      this.counters.authenticated++;
    }
    const aliases = l.destinationInfo.map(aliasToText).filter((a) => a.value !== '');
    if (aliases.length === 0) {
      this.#lrj(l, reply, 'incompleteAddress', zone);
      return;
    }
    const loopKey = `${hex(l.callIdentifier?.guid)}|${aliases.map((a) => a.value).join(',')}|${(l.sourceInfo ?? [])
      .map((a) => aliasToText(a).value)
      .join(',')}`;
    if (this.#inProgress.has(loopKey)) {
      // It came back to us while we are still looking for it: a loop through the neighbors.
      this.counters.loops++;
      this.#lrj(l, reply, 'requestDenied', zone);
      return;
    }
    this.#inProgress.set(loopKey, 1);
    // hopCount absent: the LRQ is not forwarded; present: it may go on with one hop less.
    const context: SearchContext = { hops: (l.hopCount ?? 1) - 1, fromZone: zone.name };
    if (l.sourceInfo) context.sourceInfo = l.sourceInfo;
    if (l.callIdentifier) context.callIdentifier = l.callIdentifier.guid;
    const rip = this.#clock.setTimer(this.#ripAfterMs, () => {
      if (this.#closed) return;
      this.counters.ripSent++;
      this.#send(zone, { choice: 'requestInProgress', value: { requestSeqNum: l.requestSeqNum, delay: 5000 } }, reply);
    });
    const finish = (found: AliasText | undefined, reason: LocationRejectReason['choice']) => {
      rip.cancel();
      this.#inProgress.delete(loopKey);
      if (this.#closed) return;
      if (!found) {
        this.#lrj(l, reply, reason, zone);
        return;
      }
      const gk = this.#gk.options;
      this.counters.lcfSent++;
      this.#send(
        zone,
        {
          choice: 'locationConfirm',
          value: {
            requestSeqNum: l.requestSeqNum,
            callSignalAddress: h225Address(gk.callSignalAddress.ip, gk.callSignalAddress.port),
            rasAddress: h225Address(gk.rasAddress.ip, gk.rasAddress.port),
            destinationInfo: [aliasFromText(found.value)],
          },
        },
        reply,
      );
    };
    void (async () => {
      let rejected = false;
      for (const a of aliases) {
        const r = await this.router.route({
          protocol: 'h323',
          alias: a.value,
          sourceAlias: (l.sourceInfo ?? []).map(aliasToText)[0]?.value ?? '',
          sourceZone: zone.name,
          authenticated: zone.trusted,
          label: `LRQ from ${zone.name}`,
          context,
        });
        if (r.kind === 'found') return finish(a, 'notRegistered');
        if (r.kind === 'rejected') rejected = true;
      }
      finish(undefined, rejected ? 'requestDenied' : context.exhausted ? 'hopCountExceeded' : 'notRegistered');
    })().catch(() => finish(undefined, 'undefinedReason'));
  }

  status(): Record<string, unknown> {
    return {
      zones: [...this.zones.values()].map((z) => {
        const ip = z.address?.ip ?? this.#dns.known(z.host);
        return {
          name: z.name,
          host: z.host,
          // a host name's address as last resolved (null: not resolved yet)
          address: ip ? { ip, port: z.port } : null,
          gatekeeperIdentifier: z.gatekeeperIdentifier ?? null,
          hopCount: z.hopCount,
          // whether LRQs are signed and checked with a shared password (the password itself is never shown)
          h235: z.h235,
        };
      }),
      pendingLrqs: this.#pending.size,
      counters: this.counters,
      dns: this.#dns.counters,
      // what H.323 routing decided lately (ARQs, Setups, LRQs), newest first: policy, rules, authenticated or not
      searches: this.router.history.recent(20),
    };
  }

  close(): void {
    this.#closed = true;
    for (const p of [...this.#pending.values()]) {
      p.timer.cancel();
      p.done(undefined);
    }
    this.#cache.clear();
  }
}
