import { ConfigError, InternalError } from '../common/errors.ts';
import type { CrosswayConfig } from '../config/schema.ts';
import {
  contains,
  count,
  formatRange,
  type PortRange,
  ports,
  shift,
  single,
  span,
  UNPRIVILEGED,
} from './port-range.ts';
import type {
  AddressSide,
  Flow,
  FlowEnd,
  Listener,
  ListenerId,
  MediaPool,
  NodeKind,
  NodePlan,
  NotOpened,
  PlanTable,
  PortPlan,
  PortPool,
  Protocol,
  RangeId,
} from './types.ts';

/**
 * The seed's numbers (`/work/shared/seed/port-reference.md`), in one place. Nothing else in Crossway writes a port
 * number: every module asks the plan.
 */
export const SEED = Object.freeze({
  sipUdp: 5060,
  sipTcp: 5060,
  sipTls: 5061,
  sipMtls: 5062,
  /** Traversal zone n (1-based) listens on 7000 + n (SIP) and 6000 + n (H.323 RAS). */
  traversalSipBase: 7000,
  traversalRasBase: 6000,
  h323Ras: 1719,
  /** H.225.0 gatekeeper discovery: multicast group 224.0.1.41, UDP 1718 (not in the seed's table: off by default). */
  h323Discovery: 1718,
  h323DiscoveryGroup: '224.0.1.41',
  h323Q931: 1720,
  /** Assent: Q.931 and H.245 on TCP 2776; H.460.18: H.245 on TCP 2777. Legacy UDP demux: 2776/2777. */
  assent: 2776,
  h46018H245: 2777,
  /** Demux ports default to the first pair of the media range: 36000/36001; a large edge uses 36000–36011. */
  turn: 3478,
  turnLargeTo: 3483,
  snmp: 161,
  http: 80,
  https: 443,
  ldap: 389,
  ldaps: 636,
  media: span(36000, 59999),
  outboundSip: span(25000, 29999),
  h323Dynamic: span(15000, 19999),
  turnRelay: span(24000, 29999),
  ldapOutbound: span(30000, 35999),
});

/**
 * Features of the seed Crossway does not implement yet. Their listeners and flows are planned apart
 * (`plan.notOpened`): no node binds them and no firewall ruleset opens them, and the tables say why.
 */
export const NOT_OPENED = Object.freeze({
  assent: 'not opened yet: Assent (call signalling and H.245 on listener h323-assent) is not implemented',
  h46018:
    "not opened yet: H.460.18 (H.245 on listener h323-h245-h46018, Q.931 from the core to the edge's private side) " +
    'is not implemented',
  h323Traversal:
    'not opened yet: H.323 traversal between core and edge (RAS on listener traversal-ras:n, the media of its calls) ' +
    'is not implemented',
});

/** Added to a privileged listener port when a `lab` process has no privilege (80 → 8080, 161 → 8161, 443 → 8443). */
export const UNPRIVILEGED_REMAP = 8000;

export interface PlanOptions {
  /**
   * Whether the process may bind ports below `unprivilegedPortStart`. Default `true` (plan the seed's ports).
   * When `false`, a `lab` plan remaps those ports by +8000; other roles keep them, and `checkPrivileges` refuses.
   */
  privileged?: boolean;
  /** `/proc/sys/net/ipv4/ip_unprivileged_port_start`; default 1024. */
  unprivilegedPortStart?: number;
}

interface NodeSettings {
  udp: boolean;
  tcp: boolean;
  tls: boolean;
  mtls: boolean;
}

/** Role defaults: on the edge SIP UDP and TCP are off unless enabled (seed: "not recommended for internet"). */
function transportsFor(config: CrosswayConfig, node: NodeKind): NodeSettings {
  const t = config.sip.transports;
  const onByDefault = node === 'core';
  return {
    udp: t.udp.enabled ?? onByDefault,
    tcp: t.tcp.enabled ?? onByDefault,
    tls: t.tls.enabled ?? true,
    mtls: t.mtls.enabled ?? true,
  };
}

function urlPort(url: string, fallback: number): number {
  const m = /^[a-z]+:\/\/(?:\[[^\]]*\]|[^/:?#]*)(?::(\d+))?/i.exec(url);
  const p = m?.[1] ? Number(m[1]) : fallback;
  return p >= 1 && p <= 65535 ? p : fallback;
}

class Builder {
  readonly listeners: Listener[] = [];
  readonly pools: PortPool[] = [];
  readonly flows: Flow[] = [];
  readonly notOpenedListeners: NotOpened<Listener>[] = [];
  readonly notOpenedFlows: NotOpened<Flow>[] = [];
  readonly remapped: { from: number; to: number }[] = [];
  readonly #config: CrosswayConfig;
  readonly #present: ReadonlySet<NodeKind>;
  readonly #remap: boolean;
  readonly #unprivStart: number;
  readonly #ids = new Map<string, number>();

  constructor(config: CrosswayConfig, present: ReadonlySet<NodeKind>, options: PlanOptions) {
    this.#config = config;
    this.#present = present;
    this.#unprivStart = options.unprivilegedPortStart ?? 1024;
    this.#remap = options.privileged === false && config.role === 'lab';
  }

  /** A default port of ours: offset applied, then the lab's unprivileged remapping. */
  ours(port: number, setting = 'portOffset'): number {
    const p = port + this.#config.portOffset;
    return this.#check(this.#remapPort(p), setting);
  }

  /** An explicitly configured port: taken as given (no offset), remapped in an unprivileged lab. */
  explicit(port: number, setting: string): number {
    return this.#check(this.#remapPort(port), setting);
  }

  oursRange(r: PortRange, setting = 'portOffset'): PortRange {
    const s = shift(r, this.#config.portOffset);
    this.#check(s.from, setting);
    this.#check(s.to, setting);
    return s;
  }

  #remapPort(p: number): number {
    if (!this.#remap || p >= this.#unprivStart) return p;
    const to = p + UNPRIVILEGED_REMAP;
    if (!this.remapped.some((r) => r.from === p)) this.remapped.push({ from: p, to });
    return to;
  }

  #check(p: number, setting: string): number {
    if (p < 1 || p > 65535) {
      throw new ConfigError([{ path: setting, message: `puts a port of the plan at ${p}, outside 1–65535` }]);
    }
    return p;
  }

  present(node: NodeKind): boolean {
    return this.#present.has(node);
  }

  listen(
    node: NodeKind,
    id: ListenerId,
    transport: 'udp' | 'tcp',
    side: AddressSide,
    portsOf: PortRange,
    purpose: string,
    setting: string,
    security?: 'tls' | 'mtls',
    group?: string,
    notOpened?: string,
  ): void {
    if (!this.present(node)) return;
    const l: Listener = {
      id,
      node,
      transport,
      side,
      ports: portsOf,
      purpose,
      setting,
      ...(security ? { security } : {}),
      ...(group ? { group } : {}),
    };
    if (notOpened) this.notOpenedListeners.push(Object.freeze({ ...l, notOpened }));
    else this.listeners.push(Object.freeze(l));
  }

  pool(
    node: NodeKind,
    id: RangeId,
    portsOf: PortRange,
    purpose: string,
    setting: string,
    alsoOn: readonly { address: string; setting: string }[] = [],
  ): void {
    if (!this.present(node)) return;
    const more = alsoOn.length ? { alsoOn: Object.freeze(alsoOn.map((a) => Object.freeze({ ...a }))) } : {};
    this.pools.push(Object.freeze({ id, node, ports: portsOf, purpose, setting, ...more }));
  }

  flow(f: Omit<Flow, 'id'> & { notOpened?: string }): void {
    const ours = (e: FlowEnd) => (e.peer === 'edge' || e.peer === 'core') && this.present(e.peer);
    if (!ours(f.from) && !ours(f.to)) return;
    const slug =
      `${f.table}/${f.purpose}/${f.from.peer}>${f.to.peer}/${f.protocols.join('+')}/${formatRange(f.to.ports)}`
        .toLowerCase()
        .replace(/[^a-z0-9/>+.-]+/g, '-');
    const n = (this.#ids.get(slug) ?? 0) + 1;
    this.#ids.set(slug, n);
    const id = n === 1 ? slug : `${slug}#${n}`;
    const frozen = Object.freeze({
      id,
      ...f,
      from: Object.freeze({ ...f.from }),
      to: Object.freeze({ ...f.to }),
      protocols: Object.freeze([...f.protocols]),
    });
    if (f.notOpened) this.notOpenedFlows.push(frozen as NotOpened<Flow>);
    else this.flows.push(frozen);
  }
}

const ANY: PortRange = UNPRIVILEGED;
const TCP_TLS: Protocol[] = ['tcp', 'tls'];

function end(peer: FlowEnd['peer'], portsOf: PortRange, side?: 'public' | 'private'): FlowEnd {
  return side ? { peer, side, ports: portsOf } : { peer, ports: portsOf };
}

/**
 * Computes the port plan of the node(s) a configuration describes: every listener, every pool of ports allocated on
 * demand, and every flow a firewall between the outside, the DMZ and the inside must allow. Pure: no I/O.
 * Throws `ConfigError` when the offset or an override pushes a port outside 1–65535.
 */
export function computePortPlan(config: Readonly<CrosswayConfig>, options: PlanOptions = {}): PortPlan {
  const present = new Set<NodeKind>(config.role === 'lab' ? ['edge', 'core'] : [config.role]);
  const b = new Builder(config, present, options);
  const large = config.size === 'large';
  const edgeT = transportsFor(config, 'edge');
  const coreT = transportsFor(config, 'core');
  const zones = config.traversalZones;
  const h323 = config.h323.enabled;
  const t = config.sip.transports;

  // ---- pools -------------------------------------------------------------------------------------------------
  const media = config.media.range ? span(config.media.range.from, config.media.range.to) : b.oursRange(SEED.media);
  const mediaSetting = 'media.range';
  const outboundSip = config.outboundPorts
    ? span(config.outboundPorts.from, config.outboundPorts.to)
    : b.oursRange(SEED.outboundSip);
  const h323Dyn = b.oursRange(SEED.h323Dynamic);
  const relay = config.turn.relayRange
    ? span(config.turn.relayRange.from, config.turn.relayRange.to)
    : b.oursRange(SEED.turnRelay, 'turn.relayRange');
  const ldapOut = b.oursRange(SEED.ldapOutbound);
  const even = span(media.from % 2 === 0 ? media.from : media.from + 1, media.to, 2);
  const odd = span(media.from % 2 === 1 ? media.from : media.from + 1, media.to, 2);

  for (const node of ['edge', 'core'] as const) {
    b.pool(node, 'media', media, 'RTP/RTCP port pairs (even RTP, odd RTCP)', mediaSetting);
    b.pool(node, 'outbound-sip', outboundSip, 'source ports of outbound SIP TCP/TLS', 'outboundPorts');
    if (h323) b.pool(node, 'h323-dynamic', h323Dyn, 'H.323 outbound Q.931 and H.245 ports', 'h323.enabled');
    if (config.ldap.servers.length > 0) {
      b.pool(node, 'ldap-outbound', ldapOut, 'source ports of LDAP connections', 'ldap.servers');
    }
  }
  // the relays of the other family (start refuses one of the public address's family) bind there, not on a side
  const relayAlso = config.turn.additionalRelayAddress;
  const relayAlsoOn = relayAlso ? [{ address: relayAlso, setting: 'turn.additionalRelayAddress' }] : [];
  if (config.turn.enabled) {
    b.pool('edge', 'turn-relay', relay, 'TURN relayed addresses', 'turn.relayRange', relayAlsoOn);
  }

  // ---- SIP listeners ------------------------------------------------------------------------------------------
  const sipPorts = {
    udp: t.udp.port !== undefined ? b.explicit(t.udp.port, 'sip.transports.udp.port') : b.ours(SEED.sipUdp),
    tcp: t.tcp.port !== undefined ? b.explicit(t.tcp.port, 'sip.transports.tcp.port') : b.ours(SEED.sipTcp),
    tls: t.tls.port !== undefined ? b.explicit(t.tls.port, 'sip.transports.tls.port') : b.ours(SEED.sipTls),
    mtls: t.mtls.port !== undefined ? b.explicit(t.mtls.port, 'sip.transports.mtls.port') : b.ours(SEED.sipMtls),
  };
  for (const [node, tr, side] of [
    ['edge', edgeT, 'public'],
    ['core', coreT, 'private'],
  ] as const) {
    if (tr.udp)
      b.listen(node, 'sip-udp', 'udp', side, single(sipPorts.udp), 'SIP over UDP', 'sip.transports.udp.enabled');
    if (tr.tcp)
      b.listen(node, 'sip-tcp', 'tcp', side, single(sipPorts.tcp), 'SIP over TCP', 'sip.transports.tcp.enabled');
    if (tr.tls) {
      b.listen(node, 'sip-tls', 'tcp', side, single(sipPorts.tls), 'SIP over TLS', 'sip.transports.tls.enabled', 'tls');
    }
    if (tr.mtls) {
      b.listen(
        node,
        'sip-mtls',
        'tcp',
        side,
        single(sipPorts.mtls),
        'SIP over mutual TLS',
        'sip.transports.mtls.enabled',
        'mtls',
      );
    }
  }

  // ---- traversal zones ----------------------------------------------------------------------------------------
  const zonePorts = zones.map((z, i) => ({
    sip: z.port !== undefined ? b.explicit(z.port, `traversalZones[${i}].port`) : b.ours(SEED.traversalSipBase + i + 1),
    ras: b.ours(SEED.traversalRasBase + i + 1),
    h323: h323 && z.h323,
    name: z.name,
  }));
  zonePorts.forEach((z, i) => {
    const n = i + 1;
    b.listen(
      'edge',
      `traversal-sip:${n}`,
      'tcp',
      'private',
      single(z.sip),
      `SIP traversal zone "${z.name}" (the core connects in)`,
      `traversalZones[${i}]`,
    );
    if (z.h323) {
      b.listen(
        'edge',
        `traversal-ras:${n}`,
        'udp',
        'private',
        single(z.ras),
        `H.323 RAS of traversal zone "${z.name}"`,
        `traversalZones[${i}].h323`,
        undefined,
        undefined,
        NOT_OPENED.h323Traversal,
      );
    }
  });

  // ---- media demultiplexing (edge) ----------------------------------------------------------------------------
  const legacyMux = !large && config.media.muxPorts === 'legacy-2776';
  // The default demux pair is the first pair of the media range (36000/36001); a large edge uses six pairs.
  const muxBase = even.from;
  const muxRtp = large ? span(muxBase, muxBase + 10, 2) : single(legacyMux ? b.ours(SEED.assent) : muxBase);
  const muxRtcp = large
    ? span(muxBase + 1, muxBase + 11, 2)
    : single(legacyMux ? b.ours(SEED.h46018H245) : muxBase + 1);
  const muxSetting = large ? 'size' : 'media.muxPorts';
  const muxNeeded = zones.length > 0 || h323;
  if (muxNeeded) {
    b.listen('edge', 'mux-rtp', 'udp', 'both', muxRtp, 'multiplexed traversal media (RTP)', muxSetting);
    b.listen('edge', 'mux-rtcp', 'udp', 'both', muxRtcp, 'multiplexed traversal media (RTCP)', muxSetting);
  }

  // ---- H.323 --------------------------------------------------------------------------------------------------
  const ras = b.ours(SEED.h323Ras);
  const q931 = b.ours(SEED.h323Q931);
  const assent = b.ours(SEED.assent);
  const h245 = b.ours(SEED.h46018H245);
  if (h323) {
    b.listen('edge', 'h323-ras', 'udp', 'public', single(ras), 'H.323 gatekeeper RAS', 'h323.enabled');
    // Q.931 from the core to the edge's private side is H.460.18 only (not implemented): the edge serves the public side
    b.listen('edge', 'h323-q931', 'tcp', 'public', single(q931), 'H.323 call signaling (Q.931/H.225)', 'h323.enabled');
    const why = 'h323.enabled';
    b.listen(
      'edge',
      'h323-assent',
      'tcp',
      'both',
      single(assent),
      'Assent call signaling and H.245',
      why,
      undefined,
      undefined,
      NOT_OPENED.assent,
    );
    b.listen(
      'edge',
      'h323-h245-h46018',
      'tcp',
      'both',
      single(h245),
      'H.460.18 H.245',
      why,
      undefined,
      undefined,
      NOT_OPENED.h46018,
    );
    b.listen('core', 'h323-ras', 'udp', 'private', single(ras), 'H.323 gatekeeper RAS', 'h323.enabled');
    b.listen('core', 'h323-q931', 'tcp', 'private', single(q931), 'H.323 call signaling (Q.931/H.225)', 'h323.enabled');
  }
  // multicast gatekeeper discovery (H.225.0 §7.2.1): GRQ to 224.0.1.41:1718 on the side endpoints register from
  const discovery = h323 && config.h323.gatekeeper.multicastDiscovery;
  const discoveryPort = b.ours(SEED.h323Discovery);
  if (discovery) {
    const why = 'H.323 multicast gatekeeper discovery (GRQ to 224.0.1.41)';
    const setting = 'h323.gatekeeper.multicastDiscovery';
    const group = SEED.h323DiscoveryGroup;
    b.listen('edge', 'h323-ras-discovery', 'udp', 'public', single(discoveryPort), why, setting, undefined, group);
    b.listen('core', 'h323-ras-discovery', 'udp', 'private', single(discoveryPort), why, setting, undefined, group);
  }

  // ---- TURN ---------------------------------------------------------------------------------------------------
  const turnPorts = large ? span(b.ours(SEED.turn), b.ours(SEED.turnLargeTo)) : single(b.ours(SEED.turn));
  if (config.turn.enabled) {
    b.listen('edge', 'turn-udp', 'udp', 'both', turnPorts, 'TURN server (STUN/TURN over UDP)', 'turn.enabled');
    b.listen('edge', 'turn-tcp', 'tcp', 'both', turnPorts, 'TURN server (STUN/TURN over TCP)', 'turn.enabled');
  }

  // ---- management ---------------------------------------------------------------------------------------------
  const m = config.management;
  const mgmtSide: AddressSide = m.exposePublic ? 'both' : 'private';
  const httpListens = m.https || m.plainHttp;
  // Computed only when used: an unused port must neither fail the offset check nor appear as remapped.
  const snmp = m.snmp ? b.ours(SEED.snmp) : 0;
  const http = httpListens ? b.ours(SEED.http) : 0;
  const https = m.https ? b.ours(SEED.https) : 0;
  for (const node of ['edge', 'core'] as const) {
    const side = node === 'edge' ? mgmtSide : 'private';
    if (m.snmp) b.listen(node, 'snmp', 'udp', side, single(snmp), 'SNMP agent', 'management.snmp');
    if (httpListens) {
      b.listen(
        node,
        'http',
        'tcp',
        side,
        single(http),
        m.plainHttp ? 'management over plain HTTP' : 'redirect to HTTPS',
        m.plainHttp ? 'management.plainHttp' : 'management.https',
      );
    }
    if (m.https) b.listen(node, 'https', 'tcp', side, single(https), 'management API and web UI', 'management.https');
  }

  // ---- flows: SIP table ---------------------------------------------------------------------------------------
  const F = (
    table: PlanTable,
    purpose: string,
    from: FlowEnd,
    protocols: Protocol[],
    to: FlowEnd,
    setting: string,
    extra: { listener?: ListenerId; note?: string; notOpened?: string } = {},
  ) => b.flow({ table, purpose, from, to, protocols, setting, ...extra });
  const sig = 'SIP signaling';
  zonePorts.forEach((z, i) => {
    F('SIP', sig, end('core', outboundSip), TCP_TLS, end('edge', single(z.sip), 'private'), `traversalZones[${i}]`, {
      listener: `traversal-sip:${i + 1}`,
      note: `traversal zone "${z.name}": the core connects out to the edge`,
    });
  });
  if (coreT.udp) {
    F(
      'SIP',
      sig,
      end('core', single(sipPorts.udp)),
      ['udp'],
      end('inside-endpoint', ANY),
      'sip.transports.udp.enabled',
      {
        note: 'endpoint port from registration or DNS (often 5060)',
      },
    );
  }
  if (coreT.tcp || coreT.tls) {
    F('SIP', sig, end('core', outboundSip), TCP_TLS, end('inside-endpoint', ANY), 'outboundPorts', {
      note: 'endpoint port from registration or DNS',
    });
  }
  for (const [id, proto, p] of [
    ['sip-udp', 'udp', sipPorts.udp],
    ['sip-tcp', 'tcp', sipPorts.tcp],
    ['sip-tls', 'tls', sipPorts.tls],
    ['sip-mtls', 'mtls', sipPorts.mtls],
  ] as const) {
    const key = proto === 'udp' ? 'udp' : proto === 'tcp' ? 'tcp' : proto;
    if (coreT[key]) {
      F('SIP', sig, end('inside-endpoint', ANY), [proto], end('core', single(p)), `sip.transports.${key}.enabled`, {
        listener: id,
      });
    }
    if (edgeT[key]) {
      F('SIP', sig, end('internet', ANY), [proto], end('edge', single(p), 'public'), `sip.transports.${key}.enabled`, {
        listener: id,
        note:
          proto === 'udp' || proto === 'tcp' ? 'off by default on the edge; not recommended facing the internet' : '',
      });
    }
  }
  if (edgeT.tcp || edgeT.tls) {
    F('SIP', sig, end('edge', outboundSip, 'public'), TCP_TLS, end('internet', ANY), 'outboundPorts', {
      note: 'endpoint port from registration or DNS',
    });
  }
  if (edgeT.udp) {
    F(
      'SIP',
      sig,
      end('edge', single(sipPorts.udp), 'public'),
      ['udp'],
      end('internet', ANY),
      'sip.transports.udp.enabled',
    );
  }
  if (zones.length > 0) {
    F('SIP', 'Assent RTP (traversed media)', end('core', media), ['udp'], end('edge', muxRtp, 'private'), muxSetting, {
      listener: 'mux-rtp',
    });
    F(
      'SIP',
      'Assent RTCP (traversed media)',
      end('core', media),
      ['udp'],
      end('edge', muxRtcp, 'private'),
      muxSetting,
      {
        listener: 'mux-rtcp',
      },
    );
  }
  F('SIP', 'Assent RTP (traversed media)', end('internet', ANY), ['udp'], end('edge', media, 'public'), mediaSetting, {
    note: "source may be the port where media left the endpoint's firewall",
  });
  F('SIP', 'Assent RTCP (traversed media)', end('internet', ANY), ['udp'], end('edge', media, 'public'), mediaSetting);
  F('SIP', 'Assent RTP (traversed media)', end('edge', media, 'public'), ['udp'], end('internet', ANY), mediaSetting, {
    note: 'latched: the edge sends to the address media arrives from',
  });
  F('SIP', 'media (inside)', end('core', media), ['udp'], end('inside-endpoint', ANY), mediaSetting);
  F('SIP', 'media (inside)', end('inside-endpoint', ANY), ['udp'], end('core', media), mediaSetting);
  if (config.turn.enabled) {
    const both: Protocol[] = ['udp', 'tcp'];
    F('SIP', 'TURN control', end('internet', ANY), both, end('edge', turnPorts, 'public'), 'turn.enabled', {
      listener: 'turn-udp',
    });
    F('SIP', 'TURN control', end('core', ANY), both, end('edge', turnPorts, 'private'), 'turn.enabled', {
      listener: 'turn-udp',
    });
    F('SIP', 'TURN media', end('edge', relay, 'public'), both, end('internet', ANY), 'turn.relayRange');
    F('SIP', 'TURN media', end('internet', ANY), both, end('edge', relay, 'public'), 'turn.relayRange', {
      note: 'from any ICE candidate of the peer',
    });
    if (relayAlso) {
      const at: FlowEnd = { peer: 'edge', address: relayAlso, ports: relay };
      F('SIP', 'TURN media', at, both, end('internet', ANY), 'turn.additionalRelayAddress', {
        note: 'relays of the other address family',
      });
      F('SIP', 'TURN media', end('internet', ANY), both, at, 'turn.additionalRelayAddress', {
        note: 'relays of the other address family, from any ICE candidate of the peer',
      });
    }
  }

  // ---- flows: H.323 table -------------------------------------------------------------------------------------
  if (h323) {
    const ras1 = single(ras);
    F('H.323', 'Initial RAS connection', end('internet', ras1), ['udp'], end('edge', ras1, 'public'), 'h323.enabled', {
      listener: 'h323-ras',
    });
    F('H.323', 'Initial RAS connection', end('edge', ras1, 'public'), ['udp'], end('internet', ras1), 'h323.enabled');
    F('H.323', 'Initial RAS connection', end('internet', ANY), ['udp'], end('edge', ras1, 'public'), 'h323.enabled', {
      listener: 'h323-ras',
      note: 'from the external address of the firewall protecting an off-premises endpoint',
    });
    if (discovery) {
      // not in the seed's table: multicast stays on the endpoints' own network segment (a LAN, not the Internet)
      const to = (node: 'edge' | 'core', side?: 'public' | 'private') => ({
        ...end(node, single(discoveryPort), side),
        group: SEED.h323DiscoveryGroup,
      });
      const setting = 'h323.gatekeeper.multicastDiscovery';
      const purpose = 'Gatekeeper discovery (multicast GRQ)';
      const note = 'GRQ to 224.0.1.41; the GCF goes back unicast from the RAS port to the GRQ rasAddress';
      F('H.323', purpose, end('internet', ANY), ['udp'], to('edge', 'public'), setting, {
        listener: 'h323-ras-discovery',
        note,
      });
      F('H.323', purpose, end('inside-endpoint', ANY), ['udp'], to('core'), setting, {
        listener: 'h323-ras-discovery',
        note,
      });
    }
    zonePorts.forEach((z, i) => {
      if (!z.h323) return;
      F(
        'H.323',
        'Initial RAS connection',
        end('core', ras1),
        ['udp'],
        end('edge', single(z.ras), 'private'),
        `traversalZones[${i}].h323`,
        { listener: `traversal-ras:${i + 1}`, notOpened: NOT_OPENED.h323Traversal },
      );
    });
    const q = 'Q.931 / H.225 signaling';
    F('H.323', q, end('internet', ANY), ['tcp'], end('edge', single(q931), 'public'), 'h323.enabled', {
      listener: 'h323-q931',
      note: 'endpoints in the internet, H.460.18/19 endpoints behind firewalls',
    });
    F('H.323', q, end('internet', ANY), ['tcp'], end('edge', single(assent), 'public'), 'h323.enabled', {
      listener: 'h323-assent',
      note: 'Assent endpoints behind firewalls',
      notOpened: NOT_OPENED.assent,
    });
    F('H.323', q, end('edge', h323Dyn, 'public'), ['tcp'], end('internet', ANY), 'h323.enabled', {
      note: 'endpoint signaling port from registration (often 1720)',
    });
    F('H.323', q, end('core', h323Dyn), ['tcp'], end('edge', single(assent), 'private'), 'h323.enabled', {
      listener: 'h323-assent',
      note: 'Assent calls',
      notOpened: NOT_OPENED.assent,
    });
    F('H.323', q, end('core', h323Dyn), ['tcp'], end('edge', single(q931), 'private'), 'h323.enabled', {
      listener: 'h323-q931',
      note: 'H.460.18 calls',
      notOpened: NOT_OPENED.h46018,
    });
    F('H.323', 'H.245', end('core', h323Dyn), ['tcp'], end('edge', single(assent), 'private'), 'h323.enabled', {
      listener: 'h323-assent',
      note: 'Assent calls',
      notOpened: NOT_OPENED.assent,
    });
    F('H.323', 'H.245', end('core', h323Dyn), ['tcp'], end('edge', single(h245), 'private'), 'h323.enabled', {
      listener: 'h323-h245-h46018',
      note: 'H.460.18 calls',
      notOpened: NOT_OPENED.h46018,
    });
    F('H.323', 'H.245', end('internet', ANY), ['tcp'], end('edge', h323Dyn, 'public'), 'h323.enabled');
    F('H.323', 'H.245', end('edge', h323Dyn, 'public'), ['tcp'], end('internet', ANY), 'h323.enabled');
    F('H.323', 'H.245', end('internet', ANY), ['tcp'], end('edge', single(assent), 'public'), 'h323.enabled', {
      listener: 'h323-assent',
      note: 'Assent endpoints behind firewalls',
      notOpened: NOT_OPENED.assent,
    });
    F('H.323', 'H.245', end('internet', ANY), ['tcp'], end('edge', single(h245), 'public'), 'h323.enabled', {
      listener: 'h323-h245-h46018',
      note: 'H.460.18/19 endpoints behind firewalls',
      notOpened: NOT_OPENED.h46018,
    });
    const rtpM = 'RTP (multiplexed traversal media)';
    const rtcpM = 'RTCP (multiplexed traversal media)';
    // core → edge media of H.323 traversal calls (SIP traversal media has its own rows, to the demux ports only)
    const later = { notOpened: NOT_OPENED.h323Traversal };
    F('H.323', rtpM, end('core', even), ['udp'], end('edge', muxRtp, 'private'), muxSetting, {
      listener: 'mux-rtp',
      ...later,
    });
    F('H.323', rtcpM, end('core', odd), ['udp'], end('edge', muxRtcp, 'private'), muxSetting, {
      listener: 'mux-rtcp',
      ...later,
    });
    const nonMux = (what: string, from: PortRange, to: PortRange) =>
      F('H.323', what, end('core', from), ['udp'], end('edge', to, 'private'), mediaSetting, later);
    nonMux('RTP (non-multiplexed traversal media)', even, even);
    nonMux('RTCP (non-multiplexed traversal media)', odd, odd);
    F('H.323', 'RTP (non-multiplexed)', end('edge', even, 'public'), ['udp'], end('internet', ANY), mediaSetting);
    F('H.323', 'RTCP (non-multiplexed)', end('edge', odd, 'public'), ['udp'], end('internet', ANY), mediaSetting);
    F('H.323', 'RTP (non-multiplexed)', end('internet', ANY), ['udp'], end('edge', even, 'public'), mediaSetting);
    F('H.323', 'RTCP (non-multiplexed)', end('internet', ANY), ['udp'], end('edge', odd, 'public'), mediaSetting);
    F('H.323', rtpM, end('internet', ANY), ['udp'], end('edge', muxRtp, 'public'), muxSetting, {
      listener: 'mux-rtp',
      note: 'H.460.18/19 endpoints, multiplexed media',
    });
    F('H.323', rtcpM, end('internet', ANY), ['udp'], end('edge', muxRtcp, 'public'), muxSetting, {
      listener: 'mux-rtcp',
      note: 'H.460.18/19 endpoints, multiplexed media',
    });
    F('H.323', rtpM, end('internet', ANY), ['udp'], end('edge', even, 'public'), mediaSetting, {
      note: 'H.460.18/19 endpoints, non-multiplexed media (the seed files it under "multiplexed")',
    });
    F('H.323', rtcpM, end('internet', ANY), ['udp'], end('edge', odd, 'public'), mediaSetting, {
      note: 'H.460.18/19 endpoints, non-multiplexed media (the seed files it under "multiplexed")',
    });
    F('H.323', 'H.323 (inside)', end('inside-endpoint', ANY), ['udp'], end('core', single(ras)), 'h323.enabled', {
      listener: 'h323-ras',
    });
    F('H.323', 'H.323 (inside)', end('inside-endpoint', ANY), ['tcp'], end('core', single(q931)), 'h323.enabled', {
      listener: 'h323-q931',
    });
    F('H.323', 'H.323 (inside)', end('core', h323Dyn), ['tcp'], end('inside-endpoint', ANY), 'h323.enabled');
  }

  // ---- flows: neighbour zones (routing.zones; not in the seed) -----------------------------------------------
  // The edge binds its SIP and H.323 sockets on its public side, so it reaches a neighbour from there (outside);
  // the core reaches its neighbours on the inside. Their ports are the neighbour's (no offset): `port`, else the
  // protocol's default (5060, 5061 for TLS; 1719 for a gatekeeper's RAS).
  config.routing.zones.forEach((z, i) => {
    if (z.type !== 'neighbor' || z.address === undefined) return;
    const setting = `routing.zones[${i}]`;
    for (const node of ['edge', 'core'] as const) {
      const side = node === 'edge' ? ('public' as const) : undefined;
      const peer = node === 'edge' ? ('outside-neighbour' as const) : ('inside-neighbour' as const);
      const me = (p: PortRange) => end(node, p, side);
      const them = (p: PortRange) => end(peer, p);
      const at = `neighbour zone "${z.name}" at ${z.address}`;
      if (z.protocol === 'h323') {
        if (!h323) continue;
        const lrq = 'H.323 neighbour zone (LRQ/LCF)';
        const neighbourRas = single(z.port ?? SEED.h323Ras);
        F('H.323', lrq, me(single(ras)), ['udp'], them(neighbourRas), setting, { note: `${at}: LRQ from our RAS` });
        F('H.323', lrq, them(ANY), ['udp'], me(single(ras)), setting, {
          listener: 'h323-ras',
          note: `${at}: its LRQs`,
        });
        const q = 'H.323 neighbour zone (Q.931 / H.225, H.245)';
        F('H.323', q, me(h323Dyn), ['tcp'], them(ANY), setting, {
          note: `${at}: call signalling to the LCF's callSignalAddress (often 1720), H.245 to the address it gives`,
        });
        F('H.323', q, them(ANY), ['tcp'], me(single(q931)), setting, {
          listener: 'h323-q931',
          note: `${at}: its calls to us`,
        });
        F('H.323', q, them(ANY), ['tcp'], me(h323Dyn), setting, { note: `${at}: H.245 to the address we gave` });
        continue;
      }
      const tr = node === 'edge' ? edgeT : coreT;
      const sip = 'SIP neighbour zone';
      const remote = single(z.port ?? (z.transport === 'tls' ? SEED.sipTls : SEED.sipUdp));
      if (z.transport === 'udp') {
        // UDP leaves from the node's SIP UDP socket: without one nothing is sent (docs/ports.md)
        if (!tr.udp) continue;
        F('SIP', sip, me(single(sipPorts.udp)), ['udp'], them(remote), setting, { note: at });
        F('SIP', sip, them(ANY), ['udp'], me(single(sipPorts.udp)), setting, { listener: 'sip-udp', note: at });
        continue;
      }
      F('SIP', sip, me(outboundSip), [z.transport], them(remote), setting, { note: at });
      if (tr[z.transport]) {
        F('SIP', sip, them(ANY), [z.transport], me(single(sipPorts[z.transport])), setting, {
          listener: z.transport === 'tls' ? 'sip-tls' : 'sip-tcp',
          note: `${at}: requests it opens a connection for`,
        });
      }
    }
  });

  // ---- flows: management table --------------------------------------------------------------------------------
  const eph = UNPRIVILEGED;
  for (const node of ['edge', 'core'] as const) {
    const side = node === 'edge' ? 'private' : undefined;
    const who = node === 'edge' ? 'the edge' : 'the core';
    const at = (p: number) => end(node, single(p), side);
    if (m.snmp) {
      F(
        'management',
        `SNMP for discovery of ${who}`,
        end('management-system', eph),
        ['udp'],
        at(snmp),
        'management.snmp',
        { listener: 'snmp' },
      );
    }
    if (httpListens) {
      F(
        'management',
        `HTTP Management of ${who}`,
        end('management-system', eph),
        ['tcp'],
        at(http),
        m.plainHttp ? 'management.plainHttp' : 'management.https',
        {
          listener: 'http',
          ...(m.plainHttp ? {} : { note: 'redirects to HTTPS' }),
        },
      );
    }
    if (m.https) {
      F(
        'management',
        `HTTPS Management of ${who}`,
        end('management-system', eph),
        ['tls'],
        at(https),
        'management.https',
        { listener: 'https' },
      );
    }
    if (node === 'edge' && m.exposePublic) {
      // not in the seed: management from the outside, on the edge's public side
      const pub = (p: number) => end('edge', single(p), 'public');
      const note = 'management.exposePublic: reachable from the internet';
      if (m.snmp) {
        F(
          'management',
          `SNMP for discovery of ${who}`,
          end('internet', eph),
          ['udp'],
          pub(snmp),
          'management.exposePublic',
          {
            listener: 'snmp',
            note,
          },
        );
      }
      if (httpListens) {
        F(
          'management',
          `HTTP Management of ${who}`,
          end('internet', eph),
          ['tcp'],
          pub(http),
          'management.exposePublic',
          {
            listener: 'http',
            note: m.plainHttp ? note : `${note}; redirects to HTTPS`,
          },
        );
      }
      if (m.https) {
        F(
          'management',
          `HTTPS Management of ${who}`,
          end('internet', eph),
          ['tls'],
          pub(https),
          'management.exposePublic',
          {
            listener: 'https',
            note,
          },
        );
      }
    }
    config.feedback.subscribers.forEach((s, i) => {
      const secure = s.url.toLowerCase().startsWith('https:');
      F(
        'management',
        secure ? 'Feedback events (HTTPS)' : 'Feedback events (HTTP)',
        end(node, eph, side),
        [secure ? 'tls' : 'tcp'],
        end('management-system', single(urlPort(s.url, secure ? SEED.https : SEED.http))),
        `feedback.subscribers[${i}]`,
      );
    });
    config.ldap.servers.forEach((s, i) => {
      const secure = s.url.toLowerCase().startsWith('ldaps:');
      F(
        'LDAP',
        `${secure ? 'Encrypted authentication' : 'Authentication'} requests from ${who}`,
        end(node, ldapOut, side),
        [secure ? 'tls' : 'tcp'],
        end('directory', single(urlPort(s.url, secure ? SEED.ldaps : SEED.ldap))),
        `ldap.servers[${i}]`,
        secure || !s.startTls ? {} : { note: 'StartTLS' },
      );
    });
  }

  const nodes = [...present].map((n) => makeNodePlan(n, b.listeners, b.pools, media));
  return makePlan(config, nodes, b);
}

function makeNodePlan(node: NodeKind, allL: Listener[], allP: PortPool[], media: PortRange): NodePlan {
  const listeners = Object.freeze(allL.filter((l) => l.node === node));
  const pools = Object.freeze(allP.filter((p) => p.node === node));
  const byId = new Map(listeners.map((l) => [l.id, l]));
  const mux = (() => {
    const rtp = byId.get('mux-rtp');
    const rtcp = byId.get('mux-rtcp');
    if (!rtp || !rtcp) return undefined;
    return Object.freeze({ rtp: Object.freeze(ports(rtp.ports)), rtcp: Object.freeze(ports(rtcp.ports)) });
  })();
  const excluded = new Set([...(mux?.rtp ?? []), ...(mux?.rtcp ?? [])]);
  const mediaPool = buildMediaPool(media, excluded);
  return Object.freeze({
    node,
    listeners,
    pools,
    has: (id: ListenerId) => byId.has(id),
    listener: (id: ListenerId) => byId.get(id),
    port(id: ListenerId): number {
      const l = byId.get(id);
      if (!l) throw new InternalError('ERR_PORT_PLAN', `listener ${id} is not in the ${node}'s port plan`);
      if (l.ports.from !== l.ports.to) {
        throw new InternalError('ERR_PORT_PLAN', `listener ${id} is a range (${formatRange(l.ports)}): use listener()`);
      }
      return l.ports.from;
    },
    range(id: RangeId): PortRange {
      const p = pools.find((x) => x.id === id);
      if (!p) throw new InternalError('ERR_PORT_PLAN', `range ${id} is not in the ${node}'s port plan`);
      return p.ports;
    },
    muxPorts: () => mux,
    mediaPool: () => mediaPool,
  });
}

/** The media range minus demux ports, cut into runs that start on an even port so RTP stays even. */
function buildMediaPool(media: PortRange, excluded: ReadonlySet<number>): MediaPool {
  const ranges: PortRange[] = [];
  let start = -1;
  let pairs = 0;
  const first = media.from % 2 === 0 ? media.from : media.from + 1;
  for (let p = first; p + 1 <= media.to; p += 2) {
    const free = !excluded.has(p) && !excluded.has(p + 1);
    if (free) {
      pairs++;
      if (start < 0) start = p;
    } else if (start >= 0) {
      ranges.push(span(start, p - 1));
      start = -1;
    }
  }
  if (start >= 0) {
    const last = media.to % 2 === 1 ? media.to : media.to - 1;
    ranges.push(span(start, last));
  }
  const frozen = Object.freeze(ranges);
  return Object.freeze({
    ranges: frozen,
    pairs,
    allows: (port: number) => frozen.some((r) => contains(r, port)),
  });
}

function makePlan(config: Readonly<CrosswayConfig>, nodes: NodePlan[], b: Builder): PortPlan {
  const pick = (kind?: NodeKind): NodePlan => {
    if (kind === undefined) {
      if (nodes.length === 1) return nodes[0]!;
      throw new InternalError('ERR_PORT_PLAN', 'this plan has an edge and a core: name the node');
    }
    const n = nodes.find((x) => x.node === kind);
    if (!n) throw new InternalError('ERR_PORT_PLAN', `the ${config.role} plan has no ${kind}`);
    return n;
  };
  return Object.freeze({
    role: config.role,
    size: config.size,
    portOffset: config.portOffset,
    remapped: Object.freeze(b.remapped.map((r) => Object.freeze(r))),
    nodes: Object.freeze(nodes),
    listeners: Object.freeze([...b.listeners]),
    pools: Object.freeze([...b.pools]),
    flows: Object.freeze([...b.flows]),
    notOpened: Object.freeze({
      listeners: Object.freeze([...b.notOpenedListeners]),
      flows: Object.freeze([...b.notOpenedFlows]),
    }),
    node: pick,
    port: (id: ListenerId, node?: NodeKind) => pick(node).port(id),
    has: (id: ListenerId, node?: NodeKind) => pick(node).has(id),
    range: (id: RangeId, node?: NodeKind) => pick(node).range(id),
    muxPorts: (node?: NodeKind) => pick(node).muxPorts(),
    mediaPool: (node?: NodeKind) => pick(node).mediaPool(),
  });
}

/** Number of ports in a listener (a range listener binds each). */
export function listenerPortCount(l: Listener): number {
  return count(l.ports);
}
