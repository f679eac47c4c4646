import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeStatus } from '../calls/status.ts';
import { ConfigError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import { createLogger } from '../common/log.ts';
import { systemClock } from '../common/timers.ts';
import type { CrosswayConfig } from '../config/schema.ts';
import { h323CallRecorder } from '../h323/call-records.ts';
import { type GatekeeperService, startGatekeeperService } from '../h323/gatekeeper/service.ts';
import { protectGatekeeper } from '../h323/security/node-protection.ts';
import { withStoredChanges } from '../management/persisted-config.ts';
import { type RunningManagement, registerTurnStatus, startManagement } from '../management/service.ts';
import { type MediaRelay, startMediaRelay } from '../media/start-relay.ts';
import {
  checkPrivileges,
  computePortPlan,
  detectPrivileges,
  type NodeKind,
  type PortPlan,
  type PrivilegeInfo,
  ports as rangePorts,
} from '../ports/index.ts';
import { createNodeSecurity, type NodeSecurity, registerSecurityControl } from '../security/node-security.ts';
import type { CredentialSource } from '../sip/auth/credentials.ts';
import type { TransportTlsOptions } from '../sip/transport/index.ts';
import { NodeStore } from '../store/database.ts';
import { ConfigCredentials } from '../turn/credentials.ts';
import { startTurnServer, type TurnServerHandle } from '../turn/server.ts';
import { StoreCredentials } from '../turn/store-credentials.ts';
import { ensureSelfSignedCertificate } from './certificates.ts';
import { ControlServer } from './control.ts';
import { type BoundSocket, type NodeAddresses, SipService } from './sip-service.ts';

/** Loopback addresses of the two halves of a `lab` process: each keeps the seed's ports. */
export const LAB_ADDRESSES: Readonly<Record<NodeKind, NodeAddresses>> = Object.freeze({
  edge: Object.freeze({ public: '127.0.0.1', private: '127.0.0.1' }),
  core: Object.freeze({ public: '127.0.0.2', private: '127.0.0.2' }),
});

/** A running node: what the CLI and tests hold on to. */
export interface RunningNode {
  readonly log: Logger;
  readonly config: Readonly<CrosswayConfig>;
  readonly plan: PortPlan;
  /** The SIP stack of each node kind this process runs (both in `lab`). */
  readonly sip: ReadonlyMap<NodeKind, SipService>;
  /** The media relay of each node kind (docs/media.md); an edge with traversal zones binds the demux ports. */
  readonly media: ReadonlyMap<NodeKind, MediaRelay>;
  /** Where each node kind listens. */
  readonly addresses: ReadonlyMap<NodeKind, NodeAddresses>;
  /** The embedded store of each node kind (in `lab`, `DATADIR/edge` and `DATADIR/core`). */
  readonly stores: ReadonlyMap<NodeKind, NodeStore>;
  /** Digest authentication and intrusion protection of each node kind (docs/authentication.md). */
  readonly security: ReadonlyMap<NodeKind, NodeSecurity>;
  /** The H.323 gatekeeper of each node kind, when `h323.enabled` (docs/h323.md). */
  readonly h323: ReadonlyMap<NodeKind, GatekeeperService>;
  /** The edge's TURN server, when `turn.enabled`. */
  readonly turn: TurnServerHandle | undefined;
  /** The local control socket: modules register the commands the CLI calls on a running node. */
  readonly control: ControlServer;
  /** Management (HTTPS API and web UI, SNMP, feedback events, metrics, audit) of each node kind. */
  readonly management: RunningManagement | undefined;
  /** Every socket the process bound, for the port-plan check and status. */
  sockets(): BoundSocket[];
  close(): Promise<void>;
  readonly closed: boolean;
}

export interface StartOptions {
  /** Overrides privilege detection (tests). */
  privileges?: PrivilegeInfo;
  log?: Logger;
  /** Told the one-time setup token of a node with no administrator (default: printed on stderr). */
  onSetupToken?: (node: NodeKind, token: string) => void;
}

function kindsOf(config: Readonly<CrosswayConfig>): NodeKind[] {
  return config.role === 'lab' ? ['edge', 'core'] : [config.role];
}

function addressesFor(config: Readonly<CrosswayConfig>, kind: NodeKind): NodeAddresses {
  if (config.role === 'lab') return LAB_ADDRESSES[kind];
  const n = config.network;
  if (!n.address) {
    throw new ConfigError([{ path: 'network.address', message: `required for the ${config.role} role` }]);
  }
  return { private: n.address, public: kind === 'edge' ? (n.publicAddress ?? n.address) : n.address };
}

async function tlsFor(config: Readonly<CrosswayConfig>): Promise<TransportTlsOptions | undefined> {
  const t = config.tls;
  const read = (path: string, field: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new ConfigError([{ path: field, message: `cannot read ${path}: ${(err as Error).message}` }]);
    }
  };
  if (t.certificate && t.privateKey) {
    return {
      certificate: read(t.certificate, 'tls.certificate'),
      privateKey: read(t.privateKey, 'tls.privateKey'),
      ...(t.caCertificates ? { caCertificates: read(t.caCertificates, 'tls.caCertificates') } : {}),
      verifyPeer: t.verifyPeer,
      minVersion: t.minVersion,
    };
  }
  if (t.certificate || t.privateKey) {
    throw new ConfigError([
      { path: t.certificate ? 'tls.privateKey' : 'tls.certificate', message: 'certificate and key go together' },
    ]);
  }
  if (config.role !== 'lab') return undefined;
  // lab: a self-signed identity kept in the data directory. It is also the CA its MTLS listener trusts, so the
  // lab's own halves (and a tester holding the lab's certificate) can authenticate; nothing else can.
  const own = await ensureSelfSignedCertificate(config.dataDir, ['localhost', '127.0.0.1', '127.0.0.2']);
  const ca = t.caCertificates ? read(t.caCertificates, 'tls.caCertificates') : own.cert;
  return {
    certificate: own.cert,
    privateKey: own.key,
    caCertificates: ca,
    verifyPeer: t.verifyPeer,
    minVersion: t.minVersion,
  };
}

/**
 * Registrations (SIP address-of-record bindings and H.323 gatekeeper registrations) and calls of each node kind
 * reported on its management event bus (feedback, metrics).
 */
function wireEvents(
  sip: ReadonlyMap<NodeKind, SipService>,
  h323: ReadonlyMap<NodeKind, GatekeeperService>,
  management: RunningManagement,
): void {
  for (const [kind, gk] of h323) {
    const bus = management.nodes.get(kind)?.bus;
    if (!bus) continue;
    // An endpoint registering again replaces itself under the same identifier: neither half is news, as a SIP
    // refresh is not.
    const replacing = new Set<string>();
    gk.gatekeeper.on((e) => {
      const r = e.registration;
      const data = {
        protocol: 'h323',
        endpointIdentifier: r.endpointIdentifier,
        aliases: r.aliases.map((a) => `${a.kind}:${a.value}`),
        callSignalAddress: r.callSignalAddresses.map((a) => `${a.ip}:${a.port}`).join(','),
      };
      if (e.kind === 'unregistered') {
        if (e.reason === 'replaced') replacing.add(r.endpointIdentifier);
        else bus.emit('unregistration', { ...data, reason: e.reason });
      } else if (!replacing.delete(r.endpointIdentifier)) bus.emit('registration', data);
    });
  }
  for (const [kind, svc] of sip) {
    const bus = management.nodes.get(kind)?.bus;
    if (!bus) continue;
    if (svc.location) {
      svc.location.onChange = (aor, change, bindings) =>
        bus.emit(change === 'registered' ? 'registration' : 'unregistration', { protocol: 'sip', aor, bindings });
    }
    if (svc.calls) {
      svc.calls.onEvent = (e) => {
        const base = { callId: e.call.id, protocol: e.call.protocol, from: e.call.from, to: e.call.to };
        if (e.kind === 'attempt') bus.emit('call-attempt', { ...base, sourceZone: e.call.sourceZone });
        else if (e.kind === 'connected') bus.emit('call-connected', { ...base, targetZone: e.call.targetZone ?? null });
        else bus.emit('call-disconnected', { ...base, status: e.call.status ?? null, cause: e.call.cause ?? null });
      };
    }
  }
}

/** The edge's TURN server on the plan's TURN listeners (both sides of the edge) with relays on its public side. */
async function startTurn(
  config: Readonly<CrosswayConfig>,
  plan: PortPlan,
  edge: NodeAddresses | undefined,
  credentials: CredentialSource | undefined,
  log: Logger,
): Promise<TurnServerHandle | undefined> {
  if (!edge || !plan.has('turn-udp', 'edge')) return undefined;
  const udp = plan.node('edge').listener('turn-udp')!;
  const hosts = [...new Set([edge.public, edge.private])];
  const listen = hosts.flatMap((address) =>
    rangePorts(udp.ports).map((port) => ({ address, port, protocols: ['udp', 'tcp'] as const })),
  );
  const family = (a: string) => (a.includes(':') ? ('ipv6' as const) : ('ipv4' as const));
  const relayAddresses: { ipv4?: string; ipv6?: string } = { [family(edge.public)]: edge.public };
  const second = config.turn.additionalRelayAddress;
  if (second !== undefined) {
    if (family(second) === family(edge.public)) {
      throw new ConfigError([
        { path: 'turn.additionalRelayAddress', message: `must be of the other family than ${edge.public}` },
      ]);
    }
    relayAddresses[family(second)] = second;
  }
  const external = config.network.externalAddress;
  return startTurnServer({
    config: config.turn,
    listen,
    relayAddresses,
    ...(external ? { advertisedRelayAddresses: { [family(external)]: external } } : {}),
    relayRange: plan.range('turn-relay', 'edge'),
    // Users of the edge's credential store (realm turn.realm) first, then turn.users and the shared secret.
    ...(credentials && config.turn.credentialStore
      ? { credentials: new StoreCredentials(credentials, new ConfigCredentials(config.turn, systemClock)) }
      : {}),
    log,
  });
}

/**
 * Starts the node for the configured role: computes the port plan, refuses ports it may not bind, and starts each
 * node kind's services on the plan's listeners. The composition root: the only code that owns sockets and the real
 * clock.
 */
export async function startNode(
  fileConfig: Readonly<CrosswayConfig>,
  options: StartOptions = {},
): Promise<RunningNode> {
  const log = options.log ?? createLogger({ level: fileConfig.log.level, name: `crossway-${fileConfig.role}` });
  // Changes made through the management API are kept in the store and laid over the file.
  const config = withStoredChanges(fileConfig, log);
  const privileges = options.privileges ?? detectPrivileges();
  const plan = computePortPlan(config, privileges);
  const allowed = checkPrivileges(plan, privileges);
  if (!allowed.ok) {
    throw new ConfigError(allowed.reason.map((p) => ({ path: p.listener.setting, message: p.message })));
  }
  for (const r of plan.remapped) log.warn({ from: r.from, to: r.to }, 'no privilege for a port below 1024 => remapped');

  const tls = await tlsFor(config);
  const sip = new Map<NodeKind, SipService>();
  const addresses = new Map<NodeKind, NodeAddresses>();
  const stores = new Map<NodeKind, NodeStore>();
  const media = new Map<NodeKind, MediaRelay>();
  const security = new Map<NodeKind, NodeSecurity>();
  const h323 = new Map<NodeKind, GatekeeperService>();
  const control = new ControlServer(config.dataDir, log);
  let turn: TurnServerHandle | undefined;
  let management: RunningManagement | undefined;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await management?.close();
    await control.close();
    await turn?.close();
    await Promise.allSettled([...sip.values()].map((s) => s.close()));
    await Promise.allSettled([...security.values()].map((s) => s.close()));
    await Promise.allSettled([...h323.values()].map((g) => g.close()));
    for (const m of media.values()) m.close();
    for (const s of stores.values()) s.close();
    log.info('stopped');
  };
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    await control.listen();
    for (const kind of kindsOf(config)) {
      const addr = addressesFor(config, kind);
      addresses.set(kind, addr);
      const store = NodeStore.open(config.role === 'lab' ? join(config.dataDir, kind) : config.dataDir);
      stores.set(kind, store);
      const sec = createNodeSecurity({
        config,
        plan: plan.node(kind),
        store,
        clock: systemClock,
        log,
        localAddress: addr.private,
      });
      security.set(kind, sec);
      const svc = await SipService.start({
        kind,
        config,
        plan: plan.node(kind),
        flows: plan.flows,
        ...(config.role === 'lab' ? { defaultEdgeAddress: LAB_ADDRESSES.edge.private } : {}),
        addresses: addr,
        store,
        tls,
        clock: systemClock,
        log,
        authenticator: sec.auth.authenticator,
      });
      // Blocked sources are dropped before parsing (intrusion protection, src/security).
      svc.transport.setSourcePolicy(sec.guard);
      sip.set(kind, svc);
      /** Calls of this node whose media timed out and whose BYEs are not all answered yet. */
      let tearingDown = 0;
      const publicAdvertise = kind === 'edge' ? (config.network.externalAddress ?? addr.public) : addr.private;
      media.set(
        kind,
        await startMediaRelay({
          node: kind,
          config: config.media,
          pool: plan.mediaPool(kind),
          muxPorts: plan.node(kind).muxPorts(),
          muxAlsoOn: [addr.public],
          addresses: {
            endpoint: { bind: kind === 'edge' ? addr.public : addr.private, advertise: publicAdvertise },
            traversal: { bind: addr.private, advertise: addr.private },
          },
          clock: systemClock,
          log,
          // The relay already released the call's ports; the node ends the call (BYE to both parties) and raises one
          // alarm naming the latest call, lowered once no timed-out call is still being torn down (docs/media.md).
          onTimeout: (t) => {
            log.warn({ node: kind, callId: t.callId, idleMs: Math.round(t.idleMs) }, 'media timeout => call released');
            const alarms = () => management?.nodes.get(kind)?.alarms;
            tearingDown++;
            alarms()?.raise(
              'media-timeout',
              'warning',
              `no media for ${Math.round(t.idleMs / 1000)} s on call ${t.callId}: its media ports were released ` +
                'and BYE sent to both parties',
            );
            void svc
              .releaseCall(t.callId, t.stats)
              .catch((err: unknown) => log.error({ err, callId: t.callId }, 'media timeout BYE failed => ignored'))
              .finally(() => {
                if (--tearingDown === 0) alarms()?.lower('media-timeout');
              });
          },
        }),
      );
      // The proxy anchors the media of the calls it forwards on this node's relay.
      svc.attachMedia(media.get(kind)!.core);
    }
    for (const [kind, addr] of addresses) {
      const gk = await startGatekeeperService({
        kind,
        config: config.h323,
        plan: plan.node(kind),
        address: kind === 'edge' ? addr.public : addr.private,
        store: stores.get(kind)!,
        clock: systemClock,
        log,
        media: media.get(kind)!.core,
        routing: config.routing,
        domains: config.sip.domains,
      });
      if (gk) {
        h323.set(kind, gk);
        // H.235.1, intrusion protection and flood limits (src/h323/security); calls recorded with SIP's
        protectGatekeeper({
          gatekeeper: gk.gatekeeper,
          calls: gk.calls,
          config: config.h323,
          sip: { domains: config.sip.domains, realms: config.auth.realms },
          guard: security.get(kind)?.guard,
          store: stores.get(kind)!,
          clock: systemClock,
          log,
          neighbours: gk.neighbours,
        });
        const registry = sip.get(kind)?.calls;
        if (gk.calls && registry) gk.calls.onCallState = h323CallRecorder(registry);
      }
    }
    management = await startManagement({
      config,
      fileConfig,
      plan,
      kinds: kindsOf(config),
      sip,
      media,
      h323,
      stores,
      addresses,
      tls,
      clock: systemClock,
      log,
      ...(options.onSetupToken ? { onSetupToken: options.onSetupToken } : {}),
    });
    turn = await startTurn(config, plan, addresses.get('edge'), security.get('edge')?.auth.credentials, log);
    registerTurnStatus(management, turn);
    if (management) wireEvents(sip, h323, management);
  } catch (err) {
    await close();
    throw err;
  }
  const node: RunningNode = {
    log,
    config,
    plan,
    sip,
    media,
    addresses,
    stores,
    security,
    h323,
    control,
    management,
    turn,
    sockets: () => [
      ...(turn?.listening ?? []).map((t) => ({
        node: 'edge' as const,
        listener: t.protocol === 'udp' ? ('turn-udp' as const) : ('turn-tcp' as const),
        protocol: t.protocol,
        address: t.address,
        port: t.port,
        family: t.address.includes(':') ? ('IPv6' as const) : ('IPv4' as const),
      })),
      ...[...sip.values()].flatMap((s) => s.sockets()),
      ...[...h323.values()].flatMap((g) =>
        g.sockets().map((x) => ({
          node: g.kind,
          ...x,
          family: x.address.includes(':') ? ('IPv6' as const) : ('IPv4' as const),
        })),
      ),
      ...[...media].flatMap(([kind, m]) =>
        m.muxSockets.map((x) => ({
          node: kind,
          listener: x.listener,
          protocol: 'udp' as const,
          address: x.address,
          port: x.port,
          family: x.address.includes(':') ? ('IPv6' as const) : ('IPv4' as const),
        })),
      ),
      ...(management?.sockets() ?? []).map((m) => ({
        node: m.node,
        listener: m.listener,
        protocol: m.listener === 'https' ? ('tls' as const) : m.protocol,
        address: m.address,
        port: m.port,
        family: m.address.includes(':') ? ('IPv6' as const) : ('IPv4' as const),
      })),
    ],
    close,
    get closed() {
      return closed;
    },
  };
  if (turn) {
    const t = turn;
    control.register('turn.status', () => ({ counters: t.counters, allocations: t.allocations().length }));
  }
  registerSecurityControl(control, security, systemClock);
  control.register('h323.status', () => [...h323.values()].map((g) => g.status()));
  control.register('h323.registrations', () =>
    [...h323.values()].map((g) => ({ node: g.kind, registrations: g.gatekeeper.list() })),
  );
  // An administrator's removal (`crossway registrations remove h323 ID`): the gatekeeper sends the endpoint a URQ; the
  // node's audit log keeps it as the CLI's other changes (who `cli`, from `local`).
  control.register('h323.unregister', (args) => {
    const id = String(args.endpointIdentifier);
    for (const g of h323.values()) {
      const reg = g.gatekeeper.get(id);
      const aliases = reg?.aliases.map((a) => `${a.kind}:${a.value}`) ?? [];
      if (!reg || !g.gatekeeper.unregister(id)) continue;
      management?.nodes
        .get(g.kind)
        ?.admin.audit('cli', 'local', 'registration-remove', `h323 ${id} (${aliases.join(' ')})`);
      return true;
    }
    return false;
  });
  // H.225.0 §7.15.1: IRQ to a registered endpoint; its IRR's calls (or answered: false after 3 s of silence)
  control.register('h323.irq', async (args) => {
    const id = String(args.endpointIdentifier);
    const g = [...h323.values()].find((x) => x.gatekeeper.get(id));
    if (!g) return { answered: false, reason: 'not registered' };
    const irr = await g.gatekeeper.infoRequest(id);
    return irr
      ? { answered: true, node: g.kind, calls: (irr.perCallInfo ?? []).map((c) => c.callReferenceValue) }
      : { answered: false, node: g.kind, reason: 'no IRR' };
  });
  control.register('media.status', () =>
    [...media].map(([kind, m]) => ({
      node: kind,
      calls: m.core.callCount,
      portPairsInUse: m.core.portsInUse,
      portPairsQuarantined: m.core.portsQuarantined,
      muxIds: m.core.muxIdCount,
      sockets: m.io.openSockets,
      counters: { ...m.core.counters },
    })),
  );
  // The calls each relay holds now (at most `limit`, default 50), with how long since media or signalling touched them.
  control.register('media.calls', (args) => {
    const limit = Math.min(Math.max(Number(args.limit) || 50, 1), 1000);
    const now = systemClock.now();
    return [...media].map(([kind, m]) => ({
      node: kind,
      calls: m.core
        .list(limit)
        .map((c) => ({ ...c, ageMs: Math.round(now - c.createdAt), touchedMsAgo: Math.round(now - c.touchedAt) })),
    }));
  });
  // One call's media on each node that relays it: per direction and per stream (packets, bytes, last packet time).
  control.register('media.call', (args) => {
    const callId = typeof args.callId === 'string' ? args.callId.trim() : '';
    if (callId === '' || callId.length > 256) throw new Error("media.call needs callId: the call's SIP Call-ID");
    const found = [...media].flatMap(([kind, m]) => {
      const st = m.core.stats(callId);
      if (!st) return [];
      const svc = sip.get(kind);
      return svc ? [{ node: kind, ...svc.mediaOf(st), stats: st }] : [];
    });
    if (found.length === 0) throw new Error(`no media session for call ${callId} on this node's relays`);
    return found;
  });
  control.register('calls.status', (args) =>
    [...sip.values()].map((s) => {
      const gk = h323.get(s.kind);
      return nodeStatus(
        s,
        Number(args.limit) || 20,
        gk ? { gatekeeper: gk.gatekeeper, wallNow: systemClock.wallNow() } : undefined,
      );
    }),
  );
  control.register('sip.status', () =>
    [...sip.values()].map((s) => ({
      node: s.kind,
      sockets: s
        .sockets()
        .map((x) => ({ listener: x.listener, protocol: x.protocol, address: x.address, port: x.port })),
      transport: s.transport.counters(),
      transactions: { ...s.transactions.size, ...s.transactions.counters },
      zones: s.zones(),
    })),
  );
  log.info(
    {
      role: config.role,
      size: config.size,
      sockets: node
        .sockets()
        .map((s) => ({ node: s.node, listener: s.listener, protocol: s.protocol, address: s.address, port: s.port })),
    },
    'ready',
  );
  return node;
}
