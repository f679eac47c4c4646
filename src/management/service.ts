import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { type H323RegistrationSource, h323Registrations, nodeStatus } from '../calls/status.ts';
import { ConfigError } from '../common/errors.ts';
import { category, type Logger, RateLimitedLog } from '../common/log.ts';
import type { Clock } from '../common/timers.ts';
import type { CrosswayConfig } from '../config/schema.ts';
import { planToDocument } from '../ports/render-json.ts';
import type { NodeKind, PortPlan } from '../ports/types.ts';
import type { NodeAddresses, SipService } from '../roles/sip-service.ts';
import type { TransportTlsOptions } from '../sip/transport/index.ts';
import type { NodeStore } from '../store/database.ts';
import { AdminStore } from './admin-store.ts';
import { AlarmTable } from './alarms.ts';
import { buildApp, type H323Admin } from './api/app.ts';
import { Authenticator } from './authenticator.ts';
import { ConfigAdmin, type ConfigCheck, makePatch } from './config-admin.ts';
import { EventBus } from './events.ts';
import { FeedbackDeliverer, type FeedbackTarget } from './feedback/deliverer.ts';
import { httpFeedbackPost } from './feedback/http-post.ts';
import { AdminDirectory } from './ldap/directory.ts';
import { ManagementMetrics } from './metrics.ts';
import { SessionTable } from './sessions.ts';
import { SnmpAgent } from './snmp/agent.ts';
import { StatusRegistry } from './status.ts';

const VERSION = '0.1.0';
/** Longest list a status section returns (the counts stay exact). */
const STATUS_LIST_CAP = 1000;

/** What management reads from a media relay. */
export interface MediaView {
  readonly core: {
    readonly callCount: number;
    readonly portsInUse: number;
    readonly muxIdCount: number;
    readonly counters: Readonly<Record<string, number>>;
  };
}

/** What management reads from a call registry. */
interface CallsView {
  active(): unknown[];
  readonly activeCount: number;
  history(limit?: number): unknown[];
}

/** One socket management opened (for the port-plan check and status). */
export interface ManagementSocket {
  node: NodeKind;
  listener: 'https' | 'http' | 'snmp';
  protocol: 'tcp' | 'udp';
  address: string;
  port: number;
}

export interface ManagementOptions {
  /** The running configuration (the file with the changes saved through the API laid over it). */
  config: Readonly<CrosswayConfig>;
  /** The file's configuration: what the store keeps is the API's changes relative to it (default: `config`). */
  fileConfig?: Readonly<CrosswayConfig>;
  plan: PortPlan;
  kinds: readonly NodeKind[];
  sip: ReadonlyMap<NodeKind, SipService>;
  stores: ReadonlyMap<NodeKind, NodeStore>;
  addresses: ReadonlyMap<NodeKind, NodeAddresses>;
  tls: TransportTlsOptions | undefined;
  clock: Clock;
  log: Logger;
  /** The media relay of each node kind (status: calls relayed, port pairs in use). */
  media?: ReadonlyMap<NodeKind, MediaView>;
  /**
   * The H.323 gatekeeper of each node kind: its registrations are listed and counted with the SIP bindings, and an
   * administrator may remove one through the API.
   */
  h323?: ReadonlyMap<NodeKind, { gatekeeper: H323RegistrationSource & H323Admin }>;
  /** Told the one-time setup token of a node with no administrator (default: printed on stderr). */
  onSetupToken?: (node: NodeKind, token: string) => void;
  /** Feedback POSTs (tests may inject); default: real HTTP(S) with certificate verification. */
  post?: ConstructorParameters<typeof FeedbackDeliverer>[0]['post'];
}

/** The management of one node kind: its stores, status, events, HTTP app, SNMP agent and feedback delivery. */
export class NodeManagement {
  readonly kind: NodeKind;
  readonly bus: EventBus;
  readonly status = new StatusRegistry();
  readonly alarms: AlarmTable;
  readonly admin: AdminStore;
  readonly sessions: SessionTable;
  readonly deliverer: FeedbackDeliverer;
  readonly metrics: ManagementMetrics;
  /** The setup token created at this start (absent when an administrator exists or a token was made before). */
  readonly setupToken: string | undefined;
  readonly apps: FastifyInstance[] = [];
  readonly servers: (HttpServer | HttpsServer)[] = [];
  snmp: SnmpAgent | undefined;
  readonly #zoneStates = new Map<string, string>();
  zoneTimer: { cancel(): void } | undefined;

  constructor(kind: NodeKind, bus: EventBus, admin: AdminStore, deliverer: FeedbackDeliverer, o: ManagementOptions) {
    this.kind = kind;
    this.bus = bus;
    this.admin = admin;
    this.deliverer = deliverer;
    this.alarms = new AlarmTable(bus, () => o.clock.wallNow());
    this.sessions = new SessionTable(() => o.clock.now(), o.config.management.sessionIdleMinutes * 60_000);
    const sip = o.sip.get(kind);
    this.metrics = new ManagementMetrics(
      { ...(sip ? { sip } : {}), alarms: this.alarms, deliverer, sessions: this.sessions, counts: () => this.counts() },
      kind,
    );
    bus.on((e) => this.metrics.events.inc({ event: e.event }));
    this.setupToken = admin.ensureSetupToken();
  }

  /** Exact counts modules expose (a status section may be capped for display). */
  readonly countSources = new Map<string, () => number>();

  /**
   * Counts for metrics (`crossway_module_count{what}`) and SNMP, from the sections other modules provide (absent: 0).
   * `registrations` is SIP bindings plus H.323 registrations; `h323-registrations` the H.323 ones alone.
   */
  counts(): Record<string, number> {
    const n = (section: string) => {
      const exact = this.countSources.get(section);
      if (exact) return exact();
      const v = this.status.get(section);
      return Array.isArray(v)
        ? v.length
        : typeof (v as { count?: unknown })?.count === 'number'
          ? (v as { count: number }).count
          : 0;
    };
    return {
      registrations: n('registrations'),
      'h323-registrations': n('h323-registrations'),
      calls: n('calls'),
      'turn-allocations': n('turn'),
      'media-port-pairs': n('media-port-pairs'),
    };
  }

  /** Traversal zone changes → `zone-state` events and alarms (checked once a second: zones are few). */
  checkZones(zones: readonly { name: string; state: string; peer: string; lastError?: string }[]): void {
    for (const z of zones) {
      const prev = this.#zoneStates.get(z.name);
      if (prev === z.state) continue;
      this.#zoneStates.set(z.name, z.state);
      if (prev !== undefined || z.state !== 'checking') {
        this.bus.emit('zone-state', { zone: z.name, peer: z.peer, state: z.state, previous: prev ?? null });
      }
      if (z.state === 'failed') {
        this.alarms.raise(
          `zone:${z.name}`,
          'major',
          `traversal zone ${z.name} to ${z.peer} failed: ${z.lastError ?? ''}`,
        );
      } else if (z.state === 'active') this.alarms.lower(`zone:${z.name}`);
    }
  }
}

/** What start.ts holds: every node kind's management, and one close(). */
export interface RunningManagement {
  readonly nodes: ReadonlyMap<NodeKind, NodeManagement>;
  readonly config: ConfigAdmin;
  sockets(): ManagementSocket[];
  close(): Promise<void>;
}

function hostsFor(side: 'public' | 'private' | 'both', a: NodeAddresses): string[] {
  if (side === 'public') return [a.public];
  if (side === 'private') return [a.private];
  return [...new Set([a.public, a.private])];
}

function listen(server: HttpServer | HttpsServer, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

function targetsOf(config: Readonly<CrosswayConfig>, admin: AdminStore): FeedbackTarget[] {
  const fromConfig = config.feedback.subscribers.map((s, i) => ({
    key: `config:${i}:${s.url}`,
    url: s.url,
    events: s.events,
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
  }));
  const fromApi = admin.listSubscriptions().map((s) => ({
    key: `api:${s.id}`,
    url: s.url,
    events: s.events,
    ...(s.username ? { username: s.username } : {}),
    ...(s.password ? { password: s.password } : {}),
  }));
  return [...fromConfig, ...fromApi];
}

/**
 * Starts management for every node kind of the process: HTTPS API and web UI on the plan's `https` listener (HTTP on
 * `http`, redirecting unless plain HTTP is on), the SNMP agent on `snmp`, feedback delivery, metrics and audit.
 * Called by the composition root after the SIP services; closed before them.
 */
export async function startManagement(o: ManagementOptions): Promise<RunningManagement> {
  const log = category(o.log, 'mgmt');
  const configAdmin = new ConfigAdmin(o.config as CrosswayConfig);
  const nodes = new Map<NodeKind, NodeManagement>();
  const sockets: ManagementSocket[] = [];
  const startedAt = o.clock.wallNow();
  const startedMono = o.clock.now();

  const close = async () => {
    for (const n of nodes.values()) {
      n.zoneTimer?.cancel();
      n.deliverer.close();
      n.snmp?.close();
      for (const s of n.servers) {
        s.close();
        s.closeAllConnections();
      }
      await Promise.allSettled(n.apps.map((a) => a.close()));
    }
  };

  const applyConfig = (check: Extract<ConfigCheck, { ok: true }>, who: string, source: string) => {
    configAdmin.commit(check.config);
    const cfg = check.config;
    if (check.live.some((p) => p.startsWith('log.level'))) o.log.level = cfg.log.level;
    const patch = makePatch(o.fileConfig ?? o.config, cfg);
    for (const n of nodes.values()) {
      n.admin.saveConfig(patch, who);
      n.sessions.idleMs = cfg.management.sessionIdleMinutes * 60_000;
      n.deliverer.setTargets(targetsOf(cfg, n.admin));
      n.admin.audit(who, source, 'config-change', check.changed.join(', ') || 'nothing changed');
      n.bus.emit('config-change', {
        by: who,
        from: source,
        changed: check.changed,
        restartRequired: check.restartRequired,
      });
    }
    log.info(
      { by: who, source, changed: check.changed, restartRequired: check.restartRequired },
      'configuration changed',
    );
  };

  try {
    for (const kind of o.kinds) {
      const store = o.stores.get(kind);
      const addr = o.addresses.get(kind);
      if (!store || !addr) continue;
      const nodePlan = o.plan.node(kind);
      const nlog = log.child({ node: kind });
      const failLog = new RateLimitedLog(nlog, () => o.clock.now(), 60_000);
      const admin = new AdminStore(store, () => o.clock.wallNow());
      const bus = new EventBus(kind, () => o.clock.wallNow());
      const m = o.config.management;
      const deliverer = new FeedbackDeliverer({
        clock: o.clock,
        post:
          o.post ??
          httpFeedbackPost({
            ...(o.tls?.caCertificates ? { ca: o.tls.caCertificates } : {}),
            verify: true,
            userAgent: `Crossway/${VERSION}`,
          }),
        queueLimit: m.feedbackQueueLimit,
        retryMinMs: m.feedbackRetryMinMs,
        retryMaxMs: Math.max(m.feedbackRetryMinMs, m.feedbackRetryMaxMs),
        onFailure: (t, reason) =>
          failLog.warn(`feedback:${t.key}`, 'feedback delivery failed => retry with backoff', { url: t.url, reason }),
      });
      deliverer.setTargets(targetsOf(o.config, admin));
      bus.on((e) => deliverer.publish(e));
      const n = new NodeManagement(kind, bus, admin, deliverer, o);
      nodes.set(kind, n);
      if (n.setupToken) {
        (
          o.onSetupToken ??
          ((k, t) => process.stderr.write(`crossway ${k}: no administrator yet; one-time setup token: ${t}\n`))
        )(kind, n.setupToken);
      }

      const sip = o.sip.get(kind);
      const name = o.config.name ?? `crossway-${kind}`;
      n.status.register('system', () => ({
        name,
        role: o.config.role,
        node: kind,
        size: o.config.size,
        version: VERSION,
        startedAt: new Date(startedAt).toISOString(),
        uptimeSeconds: Math.floor((o.clock.now() - startedMono) / 1000),
        addresses: addr,
      }));
      n.status.register('sip', () =>
        sip
          ? {
              counters: sip.transport.counters(),
              transactions: sip.transactions.size,
              connections: sip.transport.connections().length,
              listeners: sip
                .sockets()
                .map((s) => ({ listener: s.listener, protocol: s.protocol, address: s.address, port: s.port })),
            }
          : null,
      );
      n.status.register('zones', () => sip?.zones() ?? []);
      const location = sip?.location;
      const gk = o.h323?.get(kind)?.gatekeeper;
      if (location || gk) {
        // SIP bindings and H.323 registrations in one listing (`protocol` tells them apart), one count
        n.status.register('registrations', () => {
          const out: Record<string, unknown>[] = [];
          for (const aor of location?.aors() ?? []) {
            for (const b of location!.lookup(aor)) {
              out.push({
                protocol: 'sip',
                aor: b.aor,
                contact: b.contact,
                expiresIn: b.expiresIn,
                transport: b.flow.transport,
                source: `${b.flow.source.address}:${b.flow.source.port}`,
                natted: b.natted,
                userAgent: b.userAgent ?? '',
              });
              if (out.length >= STATUS_LIST_CAP) return out;
            }
          }
          if (gk) {
            for (const r of h323Registrations(gk, o.clock.wallNow(), STATUS_LIST_CAP - out.length)) {
              out.push({ protocol: 'h323', ...r });
            }
          }
          return out;
        });
        n.countSources.set('registrations', () => (location?.bindingCount ?? 0) + (gk?.size ?? 0));
        if (gk) n.countSources.set('h323-registrations', () => gk.size);
      }
      // Media relay usage: relayed calls and port pairs against the pool.
      const relay = o.media?.get(kind);
      if (relay) {
        const pairs = o.plan.mediaPool(kind).pairs;
        n.status.register('media', () => ({
          calls: relay.core.callCount,
          portPairsInUse: relay.core.portsInUse,
          portPairsTotal: pairs,
          muxIds: relay.core.muxIdCount,
          counters: { ...relay.core.counters },
        }));
        n.countSources.set('media-port-pairs', () => relay.core.portsInUse);
      }
      // Routing: search history and the routing zones (local, neighbor, DNS, traversal).
      const router = sip?.router;
      if (sip && router) {
        n.status.register(
          'searchHistory',
          () => nodeStatus({ kind, router, zones: () => [] }, STATUS_LIST_CAP).searches,
        );
        n.status.register('routingZones', () => nodeStatus({ kind, router, zones: () => [] }, STATUS_LIST_CAP).zones);
      }
      // Calls: the call registry of the SIP service.
      const calls: CallsView | undefined = sip?.calls;
      if (calls) {
        // Active calls with the media the relay carried for each so far (per direction).
        n.status.register('calls', () => sip?.activeCalls(STATUS_LIST_CAP) ?? calls.active().slice(0, STATUS_LIST_CAP));
        n.status.register('callHistory', () => calls.history(STATUS_LIST_CAP));
        // Call detail records from the store (they outlive a restart), with media totals and media path.
        const records = sip?.callStore;
        if (records) n.status.register('callRecords', () => records.recent(STATUS_LIST_CAP));
        n.countSources.set('calls', () => calls.activeCount);
      }
      n.status.register('alarms', () => n.alarms.list());
      n.status.register('ports', () => planToDocument(o.plan));
      n.status.register('feedback', () => deliverer.status());
      if (sip) {
        const tick = () => {
          n.checkZones(sip.zones());
          n.zoneTimer = o.clock.setTimer(1000, tick);
        };
        tick();
      }

      // ---- administrator authentication --------------------------------------------------------------------
      let directory: AdminDirectory | undefined;
      if (m.ldap) {
        const servers = o.config.ldap.servers;
        if (servers.length === 0 && m.authSource !== 'local') {
          throw new ConfigError([
            { path: 'ldap.servers', message: `management.authSource ${m.authSource} needs an LDAP server` },
          ]);
        }
        let ca: string | undefined = o.tls?.caCertificates;
        if (m.ldap.caCertificates) {
          const { readFileSync } = await import('node:fs');
          try {
            ca = readFileSync(m.ldap.caCertificates, 'utf8');
          } catch (err) {
            throw new ConfigError([
              {
                path: 'management.ldap.caCertificates',
                message: `cannot read ${m.ldap.caCertificates}: ${(err as Error).message}`,
              },
            ]);
          }
        }
        directory = new AdminDirectory({
          servers,
          config: m.ldap,
          ...(ca ? { ca } : {}),
          ...(nodePlan.pools.some((p) => p.id === 'ldap-outbound')
            ? { sourcePorts: nodePlan.range('ldap-outbound') }
            : {}),
          localAddress: addr.private,
        });
      }
      const auth = new Authenticator({
        store: admin,
        source: m.authSource,
        fallbackToLocal: m.fallbackToLocal,
        ...(directory ? { directory } : {}),
        log: nlog,
        onDirectory: (up, reason) => {
          if (up) n.alarms.lower('ldap-directory');
          else
            n.alarms.raise(
              'ldap-directory',
              'major',
              `LDAP directory unreachable for administrator login: ${reason ?? ''}`,
            );
        },
      });

      // ---- HTTP(S) ------------------------------------------------------------------------------------------
      const ctx = {
        nodeName: name,
        plan: o.plan,
        store: admin,
        sessions: n.sessions,
        auth,
        config: configAdmin,
        status: n.status,
        alarms: n.alarms,
        metrics: n.metrics,
        log: nlog,
        now: () => o.clock.now(),
        applyConfig,
        subscriptions: () => ({
          configured: configAdmin.current.feedback.subscribers.map((s) => ({ url: s.url, events: s.events })),
          registered: admin
            .listSubscriptions()
            .map((s) => ({ id: s.id, url: s.url, events: s.events, createdBy: s.createdBy })),
          delivery: deliverer.status(),
        }),
        subscriptionsChanged: () => deliverer.setTargets(targetsOf(configAdmin.current, admin)),
        ...(gk ? { h323: gk } : {}),
      };
      const https = nodePlan.listener('https');
      const http = nodePlan.listener('http');
      let httpsPort: number | undefined;
      if (https) {
        if (!o.tls) {
          throw new ConfigError([
            { path: 'management.https', message: 'the HTTPS management needs tls.certificate and tls.privateKey' },
          ]);
        }
        const app = buildApp(ctx, { secure: true });
        await app.ready();
        n.apps.push(app);
        for (const host of hostsFor(https.side, addr)) {
          const srv = createHttpsServer(
            { cert: o.tls.certificate, key: o.tls.privateKey, minVersion: o.tls.minVersion },
            (req, res) => app.routing(req, res),
          );
          srv.headersTimeout = 20_000;
          srv.requestTimeout = 60_000;
          n.servers.push(srv);
          const a = await listen(srv, host, https.ports.from);
          httpsPort = a.port;
          sockets.push({ node: kind, listener: 'https', protocol: 'tcp', address: a.address, port: a.port });
        }
      }
      if (http) {
        let handler: (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => void;
        if (m.plainHttp) {
          const app = buildApp(ctx, { secure: false });
          await app.ready();
          n.apps.push(app);
          handler = (req, res) => app.routing(req, res);
        } else {
          handler = (req, res) => {
            const hostHeader = req.headers.host ?? '';
            const host = /^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/.test(hostHeader.replace(/:\d+$/, ''))
              ? hostHeader.replace(/:\d+$/, '')
              : addr.private.includes(':')
                ? `[${addr.private}]`
                : addr.private;
            const path = (req.url ?? '/').startsWith('/') ? (req.url ?? '/') : '/';
            const portPart = httpsPort && httpsPort !== 443 ? `:${httpsPort}` : '';
            res.writeHead(301, { location: `https://${host}${portPart}${path}`, 'content-length': 0 });
            res.end();
          };
        }
        for (const host of hostsFor(http.side, addr)) {
          const srv = createHttpServer(handler);
          srv.headersTimeout = 20_000;
          n.servers.push(srv);
          const a = await listen(srv, host, http.ports.from);
          sockets.push({ node: kind, listener: 'http', protocol: 'tcp', address: a.address, port: a.port });
        }
      }

      // ---- SNMP ---------------------------------------------------------------------------------------------
      const snmp = nodePlan.listener('snmp');
      if (snmp) {
        n.snmp = await SnmpAgent.start({
          node: n,
          config: o.config,
          name,
          addresses: hostsFor(snmp.side, addr),
          port: snmp.ports.from,
          clock: o.clock,
          log: nlog,
          sip,
        });
        for (const s of n.snmp.sockets) sockets.push({ node: kind, listener: 'snmp', protocol: 'udp', ...s });
      }
      nlog.info({ sockets: sockets.filter((s) => s.node === kind) }, 'management listening');
    }
  } catch (err) {
    await close();
    throw err;
  }

  return { nodes, config: configAdmin, sockets: () => [...sockets], close };
}

/** What management reads from the edge's TURN server. */
export interface TurnView {
  readonly counters: { readonly allocationsActive: number };
  allocations(): unknown[];
}

/** Adds the TURN server's status (allocations, counters) to the edge's management (the TURN server starts later). */
export function registerTurnStatus(management: RunningManagement | undefined, turn: TurnView | undefined): void {
  const edge = management?.nodes.get('edge');
  if (!edge || !turn) return;
  edge.status.register('turn', () => ({
    count: turn.counters.allocationsActive,
    counters: { ...turn.counters },
    allocations: turn.allocations().slice(0, STATUS_LIST_CAP),
  }));
  edge.countSources.set('turn', () => turn.counters.allocationsActive);
}
