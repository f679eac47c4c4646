import type { TransportAddress } from '../stun/address.ts';

/** One client 5-tuple as the socket adapter sees it. */
export interface ClientTransport {
  readonly protocol: 'udp' | 'tcp';
  /** The client's address as seen by the server (its NAT's, usually). */
  readonly remote: TransportAddress;
  /** The server address the client reached. */
  readonly local: TransportAddress;
  /** Stable key of the 5-tuple. */
  readonly key: string;
  /** Sends bytes to the client (one datagram, or written on the stream). */
  send(data: Buffer | readonly Buffer[]): void;
  /**
   * RFC 6062 data connection: after a successful ConnectionBind the stream stops carrying STUN and becomes a raw
   * pipe to the peer connection (TCP clients only).
   */
  attachPeer?(peer: PeerConnection, meter: TcpPipeMeter): void;
}

/**
 * The engine's side of an RFC 6062 data pipe: every byte the adapter reads from the client's data connection or
 * from the peer connection is asked for here before it is written on, so it is counted and held to the
 * allocation's bandwidth quota (`quotas.bandwidthBytesPerSecond`, shared with nothing else: a TCP allocation
 * relays no datagrams).
 */
export interface TcpPipeMeter {
  /**
   * `wanted` bytes read from one side: `granted` of them (counted in bytesToPeers / bytesFromPeers) may be written
   * now; the adapter keeps the rest, stops reading that side, and asks again after `retryInMs`. Undefined when the
   * allocation is gone (its sockets are being closed): write nothing.
   */
  take(direction: 'toPeer' | 'fromPeer', wanted: number): { granted: number; retryInMs: number } | undefined;
}

/** An RFC 6062 TCP connection between the relay and a peer. */
export interface PeerConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Stops reading from the peer until the client's data connection is attached. */
  pause(): void;
  close(): void;
  /** Called once when the connection ends, whoever ends it. */
  onClose(fn: () => void): void;
}

/** A bound relay socket. */
export interface RelayHandle {
  /** The relayed transport address advertised in XOR-RELAYED-ADDRESS. */
  readonly address: TransportAddress;
  send(peerAddress: string, peerPort: number, data: Buffer | readonly Buffer[]): void;
  close(): void;
}

/** Receives what arrives on a relay socket. */
export type RelaySink = (fromAddress: string, fromPort: number, data: Buffer) => void;

/** What the engine asks of the socket adapter. */
export interface TurnIo {
  /**
   * Binds a relay socket of this family on this port; undefined when the port is taken (the engine tries
   * another). Datagrams received go to `sink`.
   */
  openRelay(family: 4 | 6, port: number, sink: RelaySink): Promise<RelayHandle | undefined>;
  /** Families the node has relay addresses for. */
  readonly relayFamilies: ReadonlySet<4 | 6>;
  /** RFC 6062: listens for peer TCP connections on this port; undefined when the port is taken. */
  openTcpRelay?(family: 4 | 6, port: number, onPeer: (conn: PeerConnection) => void): Promise<RelayHandle | undefined>;
  /** RFC 6062: opens a TCP connection to a peer; undefined on failure or after `timeoutMs`. */
  connectTcp?(family: 4 | 6, ip: string, port: number, timeoutMs: number): Promise<PeerConnection | undefined>;
}

/** Counters of the TURN server (monotonic unless said otherwise). */
export interface TurnCounters {
  /** Current number of allocations (a gauge). */
  allocationsActive: number;
  allocationsCreated: number;
  allocationsExpired: number;
  allocationsDeleted: number;
  requests: number;
  errorResponses: number;
  authFailures: number;
  quotaRejections: number;
  peerDenied: number;
  /** Datagrams that were not STUN or ChannelData, or failed decoding: dropped silently. */
  malformedDropped: number;
  /** Data for a peer without permission, or from a peer without permission: dropped. */
  noPermissionDropped: number;
  /** Datagrams dropped because the allocation was over its bandwidth quota. */
  bandwidthDropped: number;
  /** RFC 6062 data pipes held back (reading paused) because the allocation was over its bandwidth quota. */
  bandwidthThrottled: number;
  /** RFC 6062 peer data connections opened (by Connect or by a peer). */
  tcpConnectionsOpened: number;
  /** Datagrams relayed to peers (RFC 6062 TCP pipes carry bytes, not datagrams: counted in bytes only). */
  packetsToPeers: number;
  /** Bytes relayed to peers: datagram payloads and RFC 6062 TCP pipe bytes. */
  bytesToPeers: number;
  packetsFromPeers: number;
  /** Bytes relayed from peers: datagram payloads and RFC 6062 TCP pipe bytes. */
  bytesFromPeers: number;
}

export function newCounters(): TurnCounters {
  return {
    allocationsActive: 0,
    allocationsCreated: 0,
    allocationsExpired: 0,
    allocationsDeleted: 0,
    requests: 0,
    errorResponses: 0,
    authFailures: 0,
    quotaRejections: 0,
    peerDenied: 0,
    malformedDropped: 0,
    noPermissionDropped: 0,
    bandwidthDropped: 0,
    bandwidthThrottled: 0,
    tcpConnectionsOpened: 0,
    packetsToPeers: 0,
    bytesToPeers: 0,
    packetsFromPeers: 0,
    bytesFromPeers: 0,
  };
}

/** A read-only view of one allocation for management. */
export interface AllocationInfo {
  client: string;
  protocol: 'udp' | 'tcp';
  username: string;
  relayed: TransportAddress[];
  expiresInSeconds: number;
  permissions: string[];
  channels: { number: number; peer: string }[];
}
