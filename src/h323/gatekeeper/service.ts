import { InternalError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { Clock } from '../../common/timers.ts';
import type { RelayCore } from '../../media/relay-core.ts';
import { type NodeKind, type NodePlan, ports as rangePorts } from '../../ports/index.ts';
import { type RoutingConfig, routingConfigSchema } from '../../routing/config.ts';
import type { NodeStore } from '../../store/database.ts';
import { CallServer } from '../calls/call-server.ts';
import { codecPolicy } from '../calls/capabilities.ts';
import type { H323Config } from '../config.ts';
import { DiscoveryServer } from './discovery.ts';
import { Gatekeeper } from './gatekeeper.ts';
import { Neighbours } from './neighbours.ts';
import { RasServer } from './ras-server.ts';
import { RegistrationStore } from './registration-store.ts';

/** A node's running gatekeeper: the engine, its RAS socket and what the control socket shows. */
export interface GatekeeperService {
  readonly kind: NodeKind;
  readonly gatekeeper: Gatekeeper;
  readonly server: RasServer;
  /** Neighbor gatekeepers (LRQ/LCF/LRJ) and the search rules H.323 calls are routed by. */
  readonly neighbours: Neighbours;
  /** Routed call signalling on `h323-q931`, when the plan has it. */
  readonly calls: CallServer | undefined;
  /** Multicast gatekeeper discovery (`h323.gatekeeper.multicastDiscovery`), when the plan has it. */
  readonly discovery: DiscoveryServer | undefined;
  /** The sockets this service listens on, for the port-plan check. */
  sockets(): Array<{
    listener: 'h323-ras' | 'h323-ras-discovery' | 'h323-q931';
    protocol: 'udp' | 'tcp';
    address: string;
    port: number;
  }>;
  status(): Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * Starts the gatekeeper of one node kind on the plan's `h323-ras` listener (the edge's public address, the core's
 * private one), with registrations restored from the node's store. Admitted calls are routed to the plan's
 * `h323-q931` port on the same address. Returns undefined when the plan has no RAS listener for this node.
 */
export async function startGatekeeperService(o: {
  kind: NodeKind;
  config: Readonly<H323Config>;
  plan: NodePlan;
  address: string;
  store: NodeStore;
  clock: Clock;
  log: Logger;
  /** The node's media relay, on which routed calls anchor their fast-start media. */
  media?: RelayCore;
  /** The node's routing (zones, search rules): H.323 neighbor zones and the rules that search them. */
  routing?: Readonly<RoutingConfig>;
  /** `sip.domains`, for `%localdomains%` in routing patterns. */
  domains?: readonly string[];
}): Promise<GatekeeperService | undefined> {
  const ras = o.plan.listener('h323-ras');
  if (!o.config.enabled || !ras) return undefined;
  const rasPort = rangePorts(ras.ports)[0]!;
  // the plan has Q.931 wherever it has RAS: the gatekeeper advertises it as its callSignalAddress
  const q931 = o.plan.listener('h323-q931');
  if (!q931) throw new InternalError('ERR_PORT_PLAN', `the ${o.kind}'s port plan has h323-ras without h323-q931`);
  const q931Port = rangePorts(q931.ports)[0]!;
  const g = o.config.gatekeeper;
  const gatekeeper = new Gatekeeper(
    {
      gatekeeperIdentifier: g.identifier ?? `crossway-${o.kind}`,
      rasAddress: { ip: o.address, port: rasPort },
      callSignalAddress: { ip: o.address, port: q931Port },
      timeToLive: g.timeToLive,
      expiryGraceSeconds: g.expiryGraceSeconds,
      maxRegistrations: g.maxRegistrations,
      policy: g.policy,
      allowDialledIp: g.allowDialledIp,
      maxBandwidthPerCall: g.maxBandwidthPerCall,
      maxAdmittedCalls: g.maxAdmittedCalls,
    },
    o.clock,
  );
  const restored = new RegistrationStore(o.store).attach(gatekeeper);
  const log = o.log.child({ category: 'h323.gk', node: o.kind });
  gatekeeper.on((e) => {
    if (e.kind === 'registered')
      log.info({ endpoint: e.registration.endpointIdentifier, aliases: e.registration.aliases }, 'H.323 registered');
    else log.info({ endpoint: e.registration.endpointIdentifier, reason: e.reason }, 'H.323 unregistered');
  });
  const neighbours = new Neighbours({
    gatekeeper,
    routing: o.routing ?? routingConfigSchema.parse({}),
    domains: o.domains ?? [],
    clock: o.clock,
    // H.235 tokens of neighbours sharing a password: the same clock tolerance as endpoints' tokens
    timestampWindowSeconds: g.security.timestampWindowSeconds,
  });
  gatekeeper.neighbours = neighbours;
  // neighbours named by host name: looked up now (not waited for) so that their requests are recognised from the start
  void neighbours.lookUpNames().then((names) => {
    for (const n of names) {
      if (n.result.ok) log.info({ zone: n.zone, host: n.host, address: n.result.ip }, 'neighbour gatekeeper resolved');
      else
        log.warn(
          { zone: n.zone, host: n.host, reason: n.result.reason },
          'neighbour gatekeeper name not resolved => looked up again when the zone is used',
        );
    }
  });
  const server = await RasServer.start(gatekeeper, o.address, rasPort);
  const disc = o.plan.listener('h323-ras-discovery');
  let discovery: DiscoveryServer | undefined;
  if (disc) {
    try {
      discovery = await DiscoveryServer.start(gatekeeper, {
        port: rangePorts(disc.ports)[0]!,
        interfaceAddress: o.address,
        ...(disc.group ? { group: disc.group } : {}),
      });
    } catch (err) {
      await server.close();
      throw err;
    }
  }
  let calls: CallServer | undefined;
  if (o.plan.pools.some((p) => p.id === 'h323-dynamic')) {
    const r = o.plan.range('h323-dynamic');
    try {
      calls = await CallServer.start({
        gatekeeper,
        listen: { ip: o.address, port: q931Port },
        outboundPorts: { from: r.from, to: r.to },
        clock: o.clock,
        log,
        ...(o.media ? { media: o.media } : {}),
        // Setups go through the same transforms, call policy and search rules as ARQs and SIP requests
        route: (dest, src, from, authUser) => neighbours.routeSetup(dest, src, from, authUser),
        calls: {
          codecs: codecPolicy(o.config.calls.codecs),
          terminalType: o.config.calls.terminalType,
          answerTimeoutSeconds: o.config.calls.answerTimeoutSeconds,
        },
      });
    } catch (err) {
      await discovery?.close();
      await server.close();
      throw err;
    }
  }
  log.info({ address: o.address, port: rasPort, q931: calls ? q931Port : null, restored }, 'gatekeeper listening');
  return {
    kind: o.kind,
    gatekeeper,
    server,
    neighbours,
    status: () => ({
      node: o.kind,
      gatekeeperIdentifier: gatekeeper.options.gatekeeperIdentifier,
      ras: server.address(),
      registrations: gatekeeper.size,
      admittedCalls: gatekeeper.activeCalls,
      counters: gatekeeper.counters,
      neighbours: neighbours.status(),
      calls: calls ? { counters: calls.counters, active: calls.active(), ended: calls.ended.slice(-20) } : null,
      discovery: discovery ? { ...discovery.address(), counters: discovery.counters } : null,
    }),
    calls,
    discovery,
    sockets: () => [
      { listener: 'h323-ras', protocol: 'udp', ...ipPort(server.address()) },
      ...(discovery
        ? [{ listener: 'h323-ras-discovery' as const, protocol: 'udp' as const, ...ipPort(discovery.address()) }]
        : []),
      ...(calls ? [{ listener: 'h323-q931' as const, protocol: 'tcp' as const, ...ipPort(calls.address()) }] : []),
    ],
    close: async () => {
      neighbours.close();
      await discovery?.close();
      await calls?.close();
      await server.close();
    },
  };
}

function ipPort(a: { ip: string; port: number }): { address: string; port: number } {
  return { address: a.ip, port: a.port };
}
