import type { PeerCertificate } from 'node:tls';
import type { SipMessage } from '../message/types.ts';

/** What a listener is bound for: `mtls` is TLS that demands and verifies a client certificate. */
export type ListenProtocol = 'udp' | 'tcp' | 'tls' | 'mtls';

/** The Via transport token of a SIP transport (MTLS is TLS on the wire). */
export type SipTransportName = 'UDP' | 'TCP' | 'TLS';

/** A transport address; IPv6 without brackets. */
export interface HostPort {
  address: string;
  port: number;
}

/** What `listen` binds. Port 0 lets the system choose (tests). */
export interface ListenSpec extends HostPort {
  protocol: ListenProtocol;
  /**
   * TLS: ask the client for a certificate without requiring one (a traversal zone's TLS verify subject name); a
   * certificate the CA bundle verifies is then reported as `tlsPeerCertificate`. MTLS always asks and requires.
   */
  requestClientCertificate?: boolean;
}

/** A bound socket as reported by `listeners()`. */
export interface ListenerInfo extends HostPort {
  protocol: ListenProtocol;
  family: 'IPv4' | 'IPv6';
}

/** Where a message came from, handed up with every inbound message. */
export interface InboundInfo {
  transport: SipTransportName;
  secure: boolean;
  reliable: boolean;
  source: HostPort;
  local: HostPort;
  /** The connection it arrived on (TCP/TLS); a response may be sent back on it. */
  connectionId?: string;
  /** Which listener (`mtls` or `tls`) accepted the connection, for stream transports. */
  listener?: ListenProtocol;
  /** The verified client certificate on MTLS (and on TLS when the client offered one). */
  tlsPeerCertificate?: PeerCertificate;
}

/** Where to send a message. With `connectionId`, that connection is used when still open. */
export interface SendTarget extends HostPort {
  transport: SipTransportName;
  connectionId?: string;
  /** For TLS: the name to check the server certificate against (and to send as SNI); default the address. */
  serverName?: string;
  /**
   * Where to send from: UDP uses the listener bound to this address (and port, when given); a new TCP/TLS connection
   * binds this address. Default: the first listener of the target's family.
   */
  local?: { address: string; port?: number };
}

/** One open (or opening) TCP/TLS connection, as reported by `connections()`. */
export interface ConnectionInfo {
  id: string;
  transport: 'TCP' | 'TLS';
  direction: 'inbound' | 'outbound';
  state: ConnectionState;
  remote: HostPort;
  local: HostPort;
  /** Wall-clock ms when it was opened. */
  since: number;
  /** RFC 5923 aliases and sent-by addresses this connection may be reused for (`TRANSPORT host:port`). */
  aliases: string[];
}

/** States of a stream connection; see `stream-connection.ts`. */
export type ConnectionState = 'connecting' | 'handshaking' | 'open' | 'closed';

/** Receives every inbound message that parsed; must not throw (a throw is caught, counted and logged). */
export type MessageHandler = (msg: SipMessage, info: InboundInfo) => void;

/** TLS material and policy for TLS/MTLS listeners and outbound TLS connections. */
export interface TransportTlsOptions {
  /** PEM certificate chain of this node. */
  certificate: string;
  /** PEM private key of this node. */
  privateKey: string;
  /** PEM bundle of trusted CAs: client certificates on MTLS, servers we connect to. */
  caCertificates?: string;
  /** Verify server certificates of outbound TLS connections (default true). */
  verifyPeer?: boolean;
  /** Never lower than TLSv1.2. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** Limits on stream connections (see `sip.connections` in the configuration). */
export interface ConnectionLimits {
  maxConnections: number;
  idleTimeoutSeconds: number;
  /** New inbound connections accepted per source address per second; 0 = unlimited. */
  newConnectionsPerSecondPerSource: number;
  /** A TCP connect plus TLS handshake must complete within this (ms); default 10 000. */
  connectTimeoutMs?: number;
  /** Bytes queued on one connection (while connecting or under back-pressure) before sends fail; default 1 MiB. */
  maxQueuedBytes?: number;
}

/** Counters of the transport layer (monotonic since start). */
export interface TransportCounters {
  received: Record<SipTransportName, number>;
  sent: Record<SipTransportName, number>;
  /** Inbound bytes or messages dropped, by reason (`parse:bad-via`, `oversize-datagram`, `framing`, …). */
  drops: Record<string, number>;
  /** Stateless error responses (400/413/505) sent for malformed requests. */
  errorResponses: number;
  connections: { opened: number; closed: number; refused: number; failed: number };
  /** RFC 5626 keepalives received: STUN Binding requests on UDP listeners (answered), CRLF pings on connections. */
  keepalives: { stun: number; crlf: number };
}

/**
 * An RFC 5626 keepalive arrived on a flow: a STUN Binding request on a UDP listener (§4.4.2, answered with its
 * XOR-MAPPED-ADDRESS) or a double-CRLF ping on a TCP/TLS connection (§4.4.1, answered with a CRLF).
 */
export interface KeepaliveEvent {
  transport: SipTransportName;
  /** Where it came from (the flow's far end). */
  source: HostPort;
  /** The local socket it arrived on. */
  local: HostPort;
  connectionId?: string;
}
