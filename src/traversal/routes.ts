import type { Zone, ZoneSearcher } from '../routing/router.ts';
import type { ProxyListener, ProxyTraversal, SipTarget } from '../sip/proxy/types.ts';
import type { Destination } from '../sip/transaction/types.ts';
import type { TraversalServerZone } from './server-zone.ts';

/** The core's end of one zone as routing needs it: where the edge's traversal listener is. */
export interface ClientZoneRoute {
  name: string;
  transport: 'TLS' | 'TCP';
  host: string;
  port: number;
  /** TLS verify subject name: what the edge's certificate must carry when the flow is (re)opened. */
  serverName?: string;
}

export interface TraversalRoutesOptions {
  /** Edge: the server zones (the cores' authenticated flows). */
  servers: readonly TraversalServerZone[];
  /** Core: the client zones (the edges' traversal listeners). */
  clients: readonly ClientZoneRoute[];
  /** Edge: domain → traversal zone serving it (REGISTER proxied down the zone). */
  domains: ReadonlyMap<string, string>;
  /** Routing zones of type `traversal` (their names are traversal zones' names). */
  zoneNames: ReadonlySet<string>;
  /** Edge: traversal zones with delegated credential checking (their domains' callers are checked by the core). */
  delegating?: ReadonlySet<string>;
}

/**
 * How requests cross a traversal zone (docs/traversal.md). On the edge, everything for the inside goes down the core's
 * own authenticated connection (the inside firewall never opens an inbound port); on the core, everything for the
 * edge goes to the edge's traversal listener, which the transport reaches on the zone's open flow.
 */
export class TraversalRoutes implements ProxyTraversal {
  readonly #o: TraversalRoutesOptions;

  constructor(o: TraversalRoutesOptions) {
    this.#o = o;
  }

  sourceZone(info: {
    transport: string;
    source: { address: string; port: number };
    connectionId?: string;
  }): string | undefined {
    for (const s of this.#o.servers) {
      if (info.connectionId !== undefined && s.flow?.connectionId === info.connectionId) return s.zoneName;
    }
    for (const c of this.#o.clients) {
      if (c.host === info.source.address && c.port === info.source.port && c.transport === info.transport.toUpperCase())
        return c.name;
    }
    return undefined;
  }

  isTraversalZone(zone: string): boolean {
    return this.#o.zoneNames.has(zone);
  }

  /** The zone's flow toward the other node, while it is up (edge) or configured (core). */
  flowOf(zone: string): Destination | undefined {
    const s = this.#o.servers.find((x) => x.zoneName === zone);
    if (s) return s.flow ? { ...s.flow } : undefined;
    const c = this.#o.clients.find((x) => x.name === zone);
    return c ? clientFlow(c) : undefined;
  }

  /**
   * A next hop naming the other node goes onto the zone's flow: on the edge, the core's flow address and port or a
   * `host:port` the core names itself by on the flow (its Via, hence its Record-Route); on the core, the edge's
   * traversal listener (address and port: its Record-Route and Path name it). Anything else at the same address
   * (another port of the edge, an outside endpoint behind the core's NAT) is sent as routed, not up the zone.
   */
  viaFlow(d: Destination): Destination {
    for (const s of this.#o.servers) {
      const f = s.flow;
      if (f && s.namesPeer(d.address, d.port)) return { ...f };
    }
    for (const c of this.#o.clients) {
      if (c.host === d.address && c.port === d.port) return clientFlow(c);
    }
    return d;
  }

  isFlow(d: Destination): boolean {
    if (this.#o.servers.some((s) => s.flow !== undefined && s.flow.connectionId === d.connectionId)) return true;
    return this.#o.clients.some((c) => c.host === d.address && c.port === d.port);
  }

  flowListener(d: Destination): ProxyListener | undefined {
    for (const s of this.#o.servers) {
      const f = s.flow;
      const l = s.local;
      if (f && l && f.connectionId === d.connectionId) {
        return { transport: f.transport.toUpperCase() === 'TCP' ? 'TCP' : 'TLS', address: l.address, port: l.port };
      }
    }
    return undefined;
  }

  delegatedTarget(domain: string): { zone: string; target: SipTarget } | undefined {
    const zone = this.#o.domains.get(domain);
    if (zone === undefined || !this.#o.delegating?.has(zone)) return undefined;
    if (!this.#o.servers.some((s) => s.zoneName === zone)) return undefined;
    const flow = this.flowOf(zone);
    return { zone, target: { uri: '', routes: [], ...(flow ? { destinations: [flow] } : {}) } };
  }

  registerTarget(domain: string): { zone: string; target: SipTarget } | undefined {
    const zone = this.#o.domains.get(domain);
    if (zone === undefined || !this.#o.servers.some((s) => s.zoneName === zone)) return undefined;
    const flow = this.flowOf(zone);
    return { zone, target: { uri: '', routes: [], ...(flow ? { destinations: [flow] } : {}) } };
  }

  /** Routing's searcher with traversal zones: an alias found in such a zone goes down (or up) its flow. */
  searcher(base: ZoneSearcher<SipTarget>): ZoneSearcher<SipTarget> {
    return {
      search: (zone: Zone, alias: string) => {
        if (zone.type !== 'traversal') return base.search(zone, alias);
        const flow = this.flowOf(zone.name);
        return flow ? [{ uri: `sip:${alias}`, routes: [], destinations: [flow] }] : [];
      },
    };
  }
}

function clientFlow(c: ClientZoneRoute): Destination {
  return {
    transport: c.transport,
    address: c.host,
    port: c.port,
    ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
  };
}
