import type { DeploymentSize, Role } from '../config/schema.ts';
import type { PortRange } from './port-range.ts';

/** A Crossway node kind. A `lab` process runs both. */
export type NodeKind = 'edge' | 'core';

/** Which of a node's addresses a listener binds: an edge's public side, its private side, or both. */
export type AddressSide = 'public' | 'private' | 'both';

/** Protocol as the seed's tables name it; `tls` and `mtls` are TCP on the wire. */
export type Protocol = 'udp' | 'tcp' | 'tls' | 'mtls';

/** The four tables of the seed. */
export type PlanTable = 'SIP' | 'H.323' | 'management' | 'LDAP';

/** Who is at one end of a flow. */
export type PeerKind =
  | 'edge'
  | 'core'
  /** Anything on the internet: endpoints, their firewalls' egress addresses, TURN peers. */
  | 'internet'
  /** SIP/H.323 endpoints on the inside network, reached by the core directly. */
  | 'inside-endpoint'
  /** A management system (the seed's TMS): SNMP/HTTP(S) poller and feedback-event subscriber, on the inside. */
  | 'management-system'
  /** An LDAP directory server, on the inside. */
  | 'directory'
  /** A neighbour zone's SIP server or H.323 gatekeeper (`routing.zones`) the edge reaches from its public side. */
  | 'outside-neighbour'
  /** A neighbour zone's SIP server or H.323 gatekeeper (`routing.zones`) the core reaches, on the inside. */
  | 'inside-neighbour';

/** Where a peer sits: the two firewalls are outside↔DMZ and DMZ↔inside. */
export type NetworkZone = 'outside' | 'dmz' | 'inside';

/** Stable listener ids; the zone-numbered ones are `traversal-sip:1`, `traversal-ras:2`, … */
export type ListenerId =
  | 'sip-udp'
  | 'sip-tcp'
  | 'sip-tls'
  | 'sip-mtls'
  | `traversal-sip:${number}`
  | `traversal-ras:${number}`
  | 'h323-ras'
  | 'h323-ras-discovery'
  | 'h323-q931'
  | 'h323-assent'
  | 'h323-h245-h46018'
  | 'mux-rtp'
  | 'mux-rtcp'
  | 'turn-udp'
  | 'turn-tcp'
  | 'snmp'
  | 'http'
  | 'https';

/** Port pools a node allocates from on demand (binds one port at a time) or uses as outbound source ports. */
export type RangeId =
  /** RTP/RTCP port pairs, 36000–59999 (even RTP, odd RTCP). Use `mediaPool()` to allocate: it skips demux ports. */
  | 'media'
  /** Source ports of outbound SIP TCP/TLS connections (traversal zone client, connections to endpoints). */
  | 'outbound-sip'
  /** H.323: outbound Q.931 source ports and H.245 listeners, 15000–19999. */
  | 'h323-dynamic'
  /** TURN relayed transport addresses, 24000–29999. */
  | 'turn-relay'
  /** Source ports of LDAP connections, 30000–35999. */
  | 'ldap-outbound';

/** A socket a node keeps open (or, for a range, each port of it: TURN 3478–3483 and large mux ports). */
export interface Listener {
  readonly id: ListenerId;
  readonly node: NodeKind;
  /** Wire protocol of the socket. */
  readonly transport: 'udp' | 'tcp';
  /** Security on top of TCP, when any. */
  readonly security?: 'tls' | 'mtls';
  readonly side: AddressSide;
  /** The ports to bind, with the offset and any unprivileged remapping applied. */
  readonly ports: PortRange;
  readonly purpose: string;
  /** The configuration field that makes this listener exist. */
  readonly setting: string;
  /** A multicast group the socket is bound to and joins on the node's `side` address (H.323 discovery). */
  readonly group?: string;
}

export interface PortPool {
  readonly id: RangeId;
  readonly node: NodeKind;
  readonly ports: PortRange;
  readonly purpose: string;
  readonly setting: string;
  /**
   * Addresses the pool's sockets are also bound on besides the node's sides: the TURN relays of
   * `turn.additionalRelayAddress` (each with the setting that adds it).
   */
  readonly alsoOn?: readonly { readonly address: string; readonly setting: string }[];
}

/** One end of a flow. */
export interface FlowEnd {
  readonly peer: PeerKind;
  /** For an edge end: which side. */
  readonly side?: 'public' | 'private';
  /**
   * For a node end that is neither side: the node's own address this end is bound to (`turn.additionalRelayAddress`,
   * an address of the other family). Matched by that address, in its family only.
   */
  readonly address?: string;
  readonly ports: PortRange;
  /** The destination is this multicast group (joined by the node), not one of the node's own addresses. */
  readonly group?: string;
}

/** A flow a firewall must allow (new connections or first packets in this direction; replies are stateful). */
export interface Flow {
  readonly id: string;
  readonly table: PlanTable;
  /** The seed's wording where the seed has the row. */
  readonly purpose: string;
  readonly from: FlowEnd;
  readonly to: FlowEnd;
  readonly protocols: readonly Protocol[];
  /** The configuration field that produces this flow. */
  readonly setting: string;
  /** The listener receiving the flow when the destination is a Crossway node. */
  readonly listener?: ListenerId;
  /** Remarks for the administrator (the seed's own comments, decisions where the seed contradicts itself). */
  readonly note?: string;
}

/**
 * A listener or flow the seed lists for this configuration that Crossway does not open yet, with why. Kept apart from
 * `listeners` and `flows` (never bound, never in a firewall ruleset); the tables list them under their own heading.
 */
export type NotOpened<T> = T & { readonly notOpened: string };

/** What one node opens and uses. */
export interface NodePlan {
  readonly node: NodeKind;
  readonly listeners: readonly Listener[];
  readonly pools: readonly PortPool[];
  /** The port of a single-port listener; throws `InternalError` when the listener is absent (ask `has` first). */
  port(id: ListenerId): number;
  /** Whether the listener is in the plan (its feature is enabled). */
  has(id: ListenerId): boolean;
  listener(id: ListenerId): Listener | undefined;
  /** A pool's range; throws `InternalError` when the pool is not in the plan. */
  range(id: RangeId): PortRange;
  /** Demux ports of traversal media (edge only): RTP and RTCP ports, pairwise. */
  muxPorts(): { rtp: readonly number[]; rtcp: readonly number[] } | undefined;
  /** The media range with the demux ports taken out, as ranges to allocate even/odd pairs from. */
  mediaPool(): MediaPool;
}

/** Media port allocation pool: pairs (even RTP, RTP+1 RTCP) inside `ranges`. */
export interface MediaPool {
  readonly ranges: readonly PortRange[];
  /** Whether `port` may be allocated (in the range and not a demux port). */
  allows(port: number): boolean;
  /** Number of RTP/RTCP pairs available. */
  readonly pairs: number;
}

/**
 * The frozen port plan of a node (or of both, for a `lab` process). The lookups take the node kind; it may be left
 * out when the plan has one node (roles `edge` and `core`); in a `lab` plan leaving it out is an `InternalError`.
 */
export interface PortPlan {
  readonly role: Role;
  readonly size: DeploymentSize;
  readonly portOffset: number;
  /** Ports below the unprivileged start that were remapped (+8000) because the `lab` has no privilege. */
  readonly remapped: readonly { readonly from: number; readonly to: number }[];
  readonly nodes: readonly NodePlan[];
  /** Every listener of every node of the plan. */
  readonly listeners: readonly Listener[];
  readonly pools: readonly PortPool[];
  /** Every flow touching a node of the plan. */
  readonly flows: readonly Flow[];
  /** The seed's listeners and flows for this configuration that no node opens yet (docs/ports.md). */
  readonly notOpened: {
    readonly listeners: readonly NotOpened<Listener>[];
    readonly flows: readonly NotOpened<Flow>[];
  };
  /** The plan of one node; throws `InternalError` when the node is not part of this plan. */
  node(kind?: NodeKind): NodePlan;
  port(id: ListenerId, node?: NodeKind): number;
  has(id: ListenerId, node?: NodeKind): boolean;
  range(id: RangeId, node?: NodeKind): PortRange;
  muxPorts(node?: NodeKind): { rtp: readonly number[]; rtcp: readonly number[] } | undefined;
  mediaPool(node?: NodeKind): MediaPool;
}

/** The network zone of each peer. */
export const PEER_ZONE: Readonly<Record<PeerKind, NetworkZone>> = Object.freeze({
  edge: 'dmz',
  core: 'inside',
  internet: 'outside',
  'inside-endpoint': 'inside',
  'management-system': 'inside',
  directory: 'inside',
  'outside-neighbour': 'outside',
  'inside-neighbour': 'inside',
});
