import { type CallInfo, type CallMedia, CallRegistry } from '../calls/call-registry.ts';
import { SqliteCallStore } from '../calls/call-store.ts';
import { category, type Logger } from '../common/log.ts';
import type { Clock } from '../common/timers.ts';
import type { CrosswayConfig } from '../config/schema.ts';
import { mediaPathOf, mediaTotals } from '../media/call-media.ts';
import { DialogRelease } from '../media/dialog-release.ts';
import type { CallStats } from '../media/relay-core.ts';
import type { Flow, ListenerId, NodeKind, NodePlan } from '../ports/index.ts';
import { Router } from '../routing/router.ts';
import { policyFor } from '../sip/auth/policy.ts';
import type { RequestAuthenticator } from '../sip/auth/types.ts';
import { LocationTable } from '../sip/location/location-table.ts';
import { SqliteRegistrationStore } from '../sip/location/sqlite-store.ts';
import { getParam, parseUri } from '../sip/message/index.ts';
import { StatefulProxy, sipZoneSearcher } from '../sip/proxy/proxy.ts';
import { systemDns } from '../sip/proxy/resolver.ts';
import type { ProxyListener, ProxyMedia, SipTarget } from '../sip/proxy/types.ts';
import { Registrar } from '../sip/registrar/registrar.ts';
import { TransactionLayer } from '../sip/transaction/transaction-layer.ts';
import { transportSender } from '../sip/transaction/transport-sender.ts';
import type { TransactionUser } from '../sip/transaction/types.ts';
import {
  type ListenerInfo,
  type ListenProtocol,
  SipTransportLayer,
  type TransportTlsOptions,
} from '../sip/transport/index.ts';
import { BasicUas } from '../sip/tu/basic-uas.ts';
import type { NodeStore } from '../store/database.ts';
import { TraversalClientZone, type ZoneStatus } from '../traversal/client-zone.ts';
import { FlowTokens } from '../traversal/flow-token.ts';
import { type ClientZoneRoute, TraversalRoutes } from '../traversal/routes.ts';
import { type ServerZoneStatus, TraversalServerZone } from '../traversal/server-zone.ts';
import { zoneProbe } from '../traversal/zone-probe.ts';

/** The addresses one node binds: its public side (edge) and its private side; equal on a one-interface node. */
export interface NodeAddresses {
  public: string;
  private: string;
}

export interface SipServiceOptions {
  kind: NodeKind;
  config: Readonly<CrosswayConfig>;
  plan: NodePlan;
  /** The whole plan's flows: a core finds the edge's traversal ports there. */
  flows: readonly Flow[];
  /** Where a core's traversal zones connect when `peerAddress` is not set (the lab's own edge). */
  defaultEdgeAddress?: string;
  addresses: NodeAddresses;
  /** The node's embedded store (registrations, credentials, records). */
  store: NodeStore;
  /** Digest authentication for the registrar (and later the proxy); without it REGISTER is not authenticated. */
  authenticator?: RequestAuthenticator;
  tls: TransportTlsOptions | undefined;
  clock: Clock;
  log: Logger;
}

/** One bound socket of a node, as the port-plan check compares it with the plan. */
export interface BoundSocket extends ListenerInfo {
  node: NodeKind;
  listener: ListenerId;
}

const SIP_LISTENERS: readonly [ListenerId, ListenProtocol][] = [
  ['sip-udp', 'udp'],
  ['sip-tcp', 'tcp'],
  ['sip-tls', 'tls'],
  ['sip-mtls', 'mtls'],
];

/**
 * The SIP stack of one node: transports on the listeners the port plan gives, the transaction layer, and the
 * transaction user. Only composition roots create it (it owns sockets).
 */
export class SipService {
  readonly kind: NodeKind;
  readonly transport: SipTransportLayer;
  readonly transactions: TransactionLayer;
  readonly user: BasicUas;
  /** The dialogs the node proxies, for ending them on a media timeout (docs/media.md). */
  readonly dialogs: DialogRelease;
  readonly #sockets: BoundSocket[] = [];
  readonly #zones: TraversalClientZone[] = [];
  readonly #serverZones: TraversalServerZone[] = [];
  readonly #clientRoutes: ClientZoneRoute[] = [];
  /** Last reason an outbound connection to a client zone's edge failed to open, by `host:port`. */
  readonly #dialFailures = new Map<string, string>();
  #traversal: TraversalRoutes | undefined;
  #media: ProxyMedia | undefined;
  #stats: ((callId: string) => CallStats | undefined) | undefined;
  #registrar: Registrar | undefined;
  #proxy: StatefulProxy | undefined;
  #router: Router<SipTarget> | undefined;
  #calls: CallRegistry | undefined;
  #callStore: SqliteCallStore | undefined;
  #location: LocationTable | undefined;
  readonly #log: Logger;
  readonly #opts: SipServiceOptions;

  private constructor(opts: SipServiceOptions) {
    this.#opts = opts;
    this.kind = opts.kind;
    this.#log = category(opts.log, 'sip', { node: opts.kind });
    const { config } = opts;
    this.user = new BasicUas();
    this.transport = new SipTransportLayer({
      clock: opts.clock,
      log: opts.log.child({ node: opts.kind }),
      limits: config.sip.limits,
      connections: config.sip.connections,
      outboundPorts: opts.plan.range('outbound-sip'),
      udpReceiveBufferBytes: config.sip.udpReceiveBufferBytes,
      ...(opts.tls ? { tls: opts.tls } : {}),
      // RFC 5626 §4.4: keepalives keep the registrar's outbound UDP flows alive.
      onKeepalive: (e) => this.#registrar?.flowAlive(e.transport, e.local, e.source),
      onConnectionEvent: (ev) => {
        // RFC 5626 §6: a closed connection is a failed flow for the registrations that arrived on it.
        // Why the core's flow to an edge could not open (TLS verify subject name, refused): the zone's last error.
        if (ev.type === 'failed' && ev.connection.direction === 'outbound') {
          const k = `${ev.connection.remote.address}:${ev.connection.remote.port}`;
          if (this.#clientRoutes.some((c) => `${c.host}:${c.port}` === k)) this.#dialFailures.set(k, ev.reason ?? '');
        }
        if (ev.type === 'closed') {
          this.#registrar?.flowClosed(ev.connection.id);
          for (const z of this.#serverZones) z.connectionClosed(ev.connection.id);
          // The core's own zone flow closed (reset, closed by the edge): the zone fails now and reconnects.
          const remote = `${ev.connection.remote.address}:${ev.connection.remote.port}`;
          if (ev.connection.direction === 'outbound')
            for (const z of this.#zones) if (z.peer === remote) z.flowClosed();
        }
      },
    });
    const log = this.#log;
    this.transactions = new TransactionLayer({
      clock: opts.clock,
      timers: config.sip.timers,
      maxTransactions: config.sip.transactions.maxTransactions,
      maxCompletedTransactions: config.sip.transactions.maxCompletedTransactions,
      log: opts.log.child({ node: opts.kind }),
      user: this.user as TransactionUser,
      sender: transportSender(this.transport, (key, err) => {
        log.debug({ err: (err as Error)?.message }, 'send failed => transaction told');
        if (key) this.transactions.transportError(key);
      }),
    });
    this.user.client.attach(this.transactions);
    this.dialogs = new DialogRelease({
      clock: opts.clock,
      send: (req, dest) => this.user.client.send(req, dest),
      ownUri: (uri) => this.#ownsUri(uri),
    });
    this.transport.onMessage = (msg, info) => {
      // The dialogs the node proxies, followed so a media timeout can end them (docs/media.md).
      this.dialogs.observe(msg, info);
      // Any message on an outbound UDP flow shows it alive (O(1), nothing when no such flow is registered).
      if (info.transport === 'UDP') this.#registrar?.flowAlive('UDP', info.local, info.source);
      this.transactions.receive(msg, info);
    };
  }

  /** Creates the service and binds every SIP listener of the plan (and each traversal zone's SIP listener). */
  static async start(opts: SipServiceOptions): Promise<SipService> {
    const svc = new SipService(opts);
    try {
      svc.#startTraversal();
      await svc.#startRegistrar();
      svc.#startProxy();
      await svc.#bindAll();
      if (opts.kind === 'core') svc.#startZones();
    } catch (err) {
      await svc.close();
      throw err;
    }
    return svc;
  }

  /**
   * Traversal zones (docs/traversal.md). On the edge, each zone's listener is guarded by a server zone (the core
   * authenticates on its flow) placed before every other handler, and REGISTERs for the zone's domains go to the proxy
   * before the registrar sees them. On the core, the client zones start after the listeners are bound.
   */
  #startTraversal(): void {
    const { config, plan, clock } = this.#opts;
    if (this.kind === 'edge') {
      config.traversalZones.forEach((zone, i) => {
        const l = plan.listener(`traversal-sip:${i + 1}`);
        if (!l) return;
        const log = this.#log.child({ zone: zone.name });
        const authenticate = zone.authenticate ?? zone.username !== undefined;
        if (!authenticate) log.warn('traversal zone accepts an unauthenticated core => set its username');
        const sz = new TraversalServerZone({
          name: zone.name,
          port: zone.port ?? l.ports.from,
          realm: zone.realm,
          ...(authenticate && this.#opts.authenticator ? { authenticator: this.#opts.authenticator } : {}),
          ...(zone.username !== undefined ? { username: zone.username } : {}),
          ...(zone.tlsVerifySubjectName !== undefined ? { verifySubjectName: zone.tlsVerifySubjectName } : {}),
          clock,
          onChange: (st) => {
            const fields = { state: st.state, peer: st.peer, lastError: st.lastError };
            if (st.state === 'failed') log.warn(fields, 'traversal server zone failed');
            else log.info(fields, `traversal server zone ${st.state}`);
          },
        });
        this.#serverZones.push(sz);
        this.user.use(sz);
      });
    }
    this.#traversal = new TraversalRoutes({
      servers: this.#serverZones,
      clients: this.#clientRoutes,
      domains: new Map(config.traversalZones.flatMap((z) => z.domains.map((d) => [d.toLowerCase(), z.name] as const))),
      zoneNames: new Set(config.routing.zones.filter((z) => z.type === 'traversal').map((z) => z.name)),
      delegating: new Set(config.traversalZones.filter((z) => z.delegatedCredentialChecking).map((z) => z.name)),
    });
    if (this.#serverZones.length > 0) {
      this.user.use({
        name: 'traversal-register',
        methods: ['REGISTER'],
        handle: (req, tx, info) => req.method === 'REGISTER' && (this.#proxy?.handleRegister(req, tx, info) ?? false),
      });
    }
  }

  /**
   * The node's media relay: from now on the proxy anchors the SDP of the calls it forwards (docs/media.md). With its
   * per-call statistics, a call's media totals go into its call record when the proxy releases it.
   */
  attachMedia(media: ProxyMedia & { stats?(callId: string): CallStats | undefined }): void {
    if (!media.stats) {
      this.#media = media;
      return;
    }
    const stats = media.stats.bind(media);
    this.#stats = stats;
    this.#media = {
      offer: (r) => media.offer(r),
      answer: (r) => media.answer(r),
      has: (id) => media.has(id),
      delete: (id) => {
        // The record is best effort; the call's ports go back whatever happens to it.
        try {
          const st = stats(id);
          if (st) this.#recordMedia(st);
        } catch (err) {
          this.#log.error({ err, callId: id }, 'media totals of a released call not recorded => ignored');
        }
        return media.delete(id);
      },
    };
  }

  /**
   * Per-direction totals of the relay's call `st`, its caller being the party whose tag keys the call in the registry
   * (party 0, the first offerer, unless the call began with a late offer).
   */
  mediaOf(st: CallStats): CallMedia {
    const key = this.#registryKey(st);
    return this.#totals(st, key ? key.slice(key.lastIndexOf(';') + 1) : (st.tags[0] ?? ''));
  }

  #totals(st: CallStats, callerTag: string): CallMedia {
    const clock = this.#opts.clock;
    return mediaTotals(st, callerTag, (ms) => clock.wallNow() - (clock.now() - ms));
  }

  /** The call registry's key (Call-ID;caller's tag) of the relay's call `st`, when the registry follows it. */
  #registryKey(st: CallStats): string | undefined {
    for (const tag of st.tags) {
      if (tag !== undefined && this.#calls?.get(`${st.callId};${tag}`)) return `${st.callId};${tag}`;
    }
    return undefined;
  }

  /**
   * The active calls (at most `limit`), each with what the relay carried so far (per direction) and its media path
   * (codecs of each side's SDP, relay ports facing each) when this node's relay anchors it.
   */
  activeCalls(limit: number): CallInfo[] {
    return (this.#calls?.active() ?? []).slice(0, limit).map((c) => {
      // the registry's key is Call-ID;caller's tag
      const at = c.id.lastIndexOf(';');
      const st = c.protocol === 'sip' && at > 0 ? this.#stats?.(c.id.slice(0, at)) : undefined;
      if (!st) return c;
      const callerTag = c.id.slice(at + 1);
      const mediaPath = mediaPathOf(st, callerTag);
      return { ...c, media: this.#totals(st, callerTag), ...(mediaPath ? { mediaPath } : {}) };
    });
  }

  /**
   * Media totals and the media path into the record of the call the relay's call belongs to (keyed by Call-ID and the
   * caller's tag).
   */
  #recordMedia(st: CallStats): void {
    const key = this.#registryKey(st);
    if (!key) return;
    const callerTag = key.slice(key.lastIndexOf(';') + 1);
    this.#calls?.setMedia(key, this.#totals(st, callerTag));
    const path = mediaPathOf(st, callerTag);
    if (path) this.#calls?.setMediaPath(key, path);
  }

  /** The traversal wiring (zones' flows, source zones, REGISTER targets). */
  get traversal(): TraversalRoutes | undefined {
    return this.#traversal;
  }

  /**
   * The node's registrar, for `sip.domains` and the node's own addresses, on a location table loaded from the node's
   * store (a restarted node serves its live bindings before its listeners open).
   */
  async #startRegistrar(): Promise<void> {
    const { config, clock, addresses } = this.#opts;
    const rc = config.registrar;
    if (!rc.enabled) return;
    const store = new SqliteRegistrationStore({
      store: this.#opts.store,
      clock,
      flushIntervalMs: rc.store.flushIntervalMs,
      maxBatch: rc.store.maxBatch,
      log: this.#log,
    });
    this.#location = await LocationTable.open({ clock, store, log: this.#log });
    this.#registrar = new Registrar({
      config: rc,
      domains: [...config.sip.domains, addresses.public, addresses.private],
      location: this.#location,
      clock,
      log: this.#log,
      realms: config.auth.realms,
      // REGISTERs from endpoints arrive on the default zone (zone classification of sources comes with routing).
      authPolicy: () => policyFor(config.auth.zones, 'default'),
      ...(this.#opts.authenticator ? { authenticator: this.#opts.authenticator } : {}),
    });
    this.user.use(this.#registrar);
  }

  /**
   * The stateful proxy after the registrar: routing (transforms, call policy, search rules over the local zone, neighbor
   * and DNS zones), calls and their records in the node's store.
   */
  #startProxy(): void {
    const { config, clock, store } = this.#opts;
    this.#callStore = new SqliteCallStore(store);
    this.#calls = new CallRegistry({
      historySize: config.routing.callHistorySize,
      wallNow: () => clock.wallNow(),
      sink: this.#callStore,
    });
    const base = sipZoneSearcher({ ...(this.#location ? { location: this.#location } : {}), dns: systemDns });
    const traversal = this.#traversal;
    this.#router = new Router<SipTarget>({
      config: config.routing,
      domains: config.sip.domains,
      searcher: traversal ? traversal.searcher(base) : base,
      wallNow: () => clock.wallNow(),
    });
    const transports: Record<string, ProxyListener['transport']> = { udp: 'UDP', tcp: 'TCP', tls: 'TLS' };
    let listeners: ProxyListener[] | undefined;
    this.#proxy = new StatefulProxy({
      settings: config.routing.proxy,
      router: this.#router,
      transactions: this.transactions,
      listeners: () => {
        // Every SIP socket is the node's own (Route and Request-URI recognition); the plain listeners come first
        // so that Via and Record-Route name them rather than the MTLS or traversal ports.
        const plain = (x: BoundSocket) => x.protocol !== 'mtls' && !x.listener.startsWith('traversal');
        if (listeners?.length === this.#sockets.length) return listeners;
        listeners = [...this.#sockets.filter(plain), ...this.#sockets.filter((x) => !plain(x))].map((x) => ({
          transport: transports[x.protocol] ?? 'TLS',
          address: x.address,
          port: x.port,
        }));
        return listeners;
      },
      domains: config.sip.domains,
      clock,
      dns: systemDns,
      ...(this.#location ? { location: this.#location } : {}),
      ...(this.#opts.authenticator ? { authenticator: this.#opts.authenticator } : {}),
      authPolicy: (zone) =>
        config.auth.zones[zone === 'DefaultZone' ? 'default' : zone] ?? config.auth.zones.default ?? 'check',
      realms: config.auth.realms,
      trustedZones: config.auth.trustedZones,
      calls: this.#calls,
      ...(traversal ? { traversal } : {}),
      // Path flow tokens signed with a key kept in the store: bindings made through this edge survive its restart.
      flowTokens: FlowTokens.fromStore(store),
      media: () => this.#media,
      log: this.#log,
    });
    this.user.use(this.#proxy);
  }

  /** The proxy core, its router and the node's calls. */
  get proxy(): StatefulProxy | undefined {
    return this.#proxy;
  }

  get router(): Router<SipTarget> | undefined {
    return this.#router;
  }

  get calls(): CallRegistry | undefined {
    return this.#calls;
  }

  get callStore(): SqliteCallStore | undefined {
    return this.#callStore;
  }

  /** The node's registrar (undefined when `registrar.enabled` is off). */
  get registrar(): Registrar | undefined {
    return this.#registrar;
  }

  /** The location service the proxy looks AORs up in. */
  get location(): LocationTable | undefined {
    return this.#location;
  }

  async #bindAll(): Promise<void> {
    const { plan, addresses } = this.#opts;
    const wanted: [ListenerId, ListenProtocol][] = [...SIP_LISTENERS];
    // A traversal zone's listener speaks the zone's transport: TLS, or TCP where the administrator allowed it.
    for (const l of plan.listeners) {
      if (!l.id.startsWith('traversal-sip:')) continue;
      const zone = this.#opts.config.traversalZones[Number(l.id.slice('traversal-sip:'.length)) - 1];
      wanted.push([l.id, zone?.transport === 'tcp' ? 'tcp' : 'tls']);
    }
    // Edge: a zone with a TLS verify subject name asks the core for its client certificate.
    const askCert = (id: string) =>
      this.kind === 'edge' &&
      this.#opts.config.traversalZones.some(
        (z, i) => z.tlsVerifySubjectName !== undefined && id === `traversal-sip:${i + 1}`,
      );
    for (const [id, protocol] of wanted) {
      const l = plan.listener(id);
      if (!l) continue;
      if ((protocol === 'tls' || protocol === 'mtls') && !this.#opts.tls) {
        throw new Error(
          `${this.kind} listener ${id} needs a TLS certificate and key (tls.certificate, tls.privateKey)`,
        );
      }
      const hosts =
        l.side === 'public'
          ? [addresses.public]
          : l.side === 'private'
            ? [addresses.private]
            : [...new Set([addresses.public, addresses.private])];
      for (const address of hosts) {
        const bound = await this.transport.listen({
          protocol,
          address,
          port: l.ports.from,
          ...(askCert(id) ? { requestClientCertificate: true } : {}),
        });
        this.#sockets.push({ ...bound, node: this.kind, listener: id });
      }
    }
    this.#log.info({ listeners: this.#sockets.map((s) => `${s.protocol}:${s.address}:${s.port}`) }, 'SIP listening');
  }

  /** The core's traversal client zones: one outbound flow to the edge each, kept alive by OPTIONS. */
  #startZones(): void {
    const { config, flows, clock } = this.#opts;
    config.traversalZones.forEach((zone, i) => {
      const flow = flows.find((f) => f.listener === `traversal-sip:${i + 1}` && f.from.peer === 'core');
      const host = zone.peerAddress ?? this.#opts.defaultEdgeAddress;
      if (!flow || !host) {
        this.#log.warn({ zone: zone.name }, 'traversal zone has no peerAddress => not started');
        return;
      }
      const port = flow.to.ports.from;
      const transport = zone.transport === 'tcp' ? 'TCP' : 'TLS';
      const local = this.#opts.addresses.private;
      const localPort = this.#opts.plan.listener(transport === 'TLS' ? 'sip-tls' : 'sip-tcp')?.ports.from;
      const log = this.#log.child({ zone: zone.name });
      // The edge's certificate must name the zone's TLS verify subject name (default: the address dialled).
      const serverName = transport === 'TLS' ? zone.tlsVerifySubjectName : undefined;
      this.#clientRoutes.push({ name: zone.name, transport, host, port, ...(serverName ? { serverName } : {}) });
      const tz = new TraversalClientZone({
        name: zone.name,
        peer: `${host}:${port}`,
        clock,
        keepaliveMs: zone.keepaliveSeconds * 1000,
        retryMinMs: zone.retryMinSeconds * 1000,
        retryMaxMs: zone.retryMaxSeconds * 1000,
        probe: this.#withDialFailure(
          `${host}:${port}`,
          zoneProbe({
            client: this.user.client,
            zone: zone.name,
            transport,
            host,
            port,
            local,
            ...(localPort ? { localPort } : {}),
            ...(serverName ? { serverName } : {}),
            ...(zone.username && zone.password
              ? { credentials: { username: zone.username, password: zone.password } }
              : {}),
          }),
        ),
        onChange: (st) => {
          const fields = { state: st.state, peer: st.peer, lastError: st.lastError, retryInMs: st.retryInMs };
          if (st.state === 'failed') log.warn(fields, 'traversal zone failed');
          else log.info(fields, `traversal zone ${st.state}`);
        },
      });
      this.#zones.push(tz);
      tz.start();
    });
  }

  /** A probe whose transport failure names why the connection to the edge did not open (e.g. a certificate mismatch). */
  #withDialFailure(peer: string, probe: () => Promise<void>): () => Promise<void> {
    return async () => {
      this.#dialFailures.delete(peer);
      try {
        await probe();
      } catch (err) {
        const why = this.#dialFailures.get(peer);
        const message = err instanceof Error ? err.message : String(err);
        throw new Error(why ? `${message}: ${why}` : message);
      }
    };
  }

  /** True for a URI naming one of this node's SIP sockets (a Record-Route it inserted). */
  #ownsUri(text: string): boolean {
    const u = parseUri(text);
    if (!u.ok || u.value.scheme === 'tel') return false;
    const tls = u.value.scheme === 'sips' || getParam(u.value.params, 'transport')?.toLowerCase() === 'tls';
    const port = u.value.port ?? (tls ? 5061 : 5060);
    const host = u.value.host.toLowerCase();
    return this.#sockets.some((s) => s.address === host && s.port === port);
  }

  /**
   * Media timeout of a call (docs/media.md): a BYE to both parties of each dialog of `callId` the node proxies, and the
   * call recorded as ended by `media timeout` (with the relay's last statistics of it, `stats`). Resolves when every
   * BYE was answered or failed.
   */
  async releaseCall(callId: string, stats?: CallStats): Promise<{ calls: string[]; sent: number; answered: number }> {
    if (stats) this.#recordMedia(stats);
    for (const key of this.dialogs.callKeys(callId)) this.#calls?.finish(key, 200, 'media timeout');
    const r = await this.dialogs.release(callId);
    this.#log.info({ callId, byes: r.sent, answered: r.answered }, 'media timeout => BYE sent to both parties');
    return r;
  }

  /** Status of the node's traversal zones: the core's client zones and the edge's server zones (`role: server`). */
  zones(): ZoneStatus[] {
    return [...this.#zones.map((z) => z.status()), ...this.#serverZones.map((z) => z.status())];
  }

  /** Status of the edge's traversal server zones (which core flow is authenticated, since when, last error). */
  serverZones(): ServerZoneStatus[] {
    return this.#serverZones.map((z) => z.status());
  }

  /** Every socket this service bound. */
  sockets(): readonly BoundSocket[] {
    return this.#sockets;
  }

  async close(): Promise<void> {
    for (const z of this.#zones) z.stop();
    this.user.client.close();
    this.transactions.close();
    // Connections closed by our own shutdown are not failed flows: bindings must survive a restart.
    this.#registrar?.close();
    this.#registrar = undefined;
    await this.transport.close();
    await this.#location?.close();
    this.#callStore?.close();
  }
}
