import type { PeerCertificate } from 'node:tls';
import type { SipMessage, SipRequest, SipResponse } from '../message/types.ts';

/**
 * The contract of the transaction layer with the transport layer below it and the transaction user (TU) above it.
 * The layer is sans-I/O: it reads no socket and no clock of its own; the transport layer hands it messages and
 * transport errors, the injected `Clock` fires its timers, and everything it wants sent goes through a
 * `TransactionSender`.
 */

/** A transport address; IPv6 without brackets. */
export interface Endpoint {
  address: string;
  port: number;
}

/**
 * Where an inbound message came from. Structurally a subset of the transport layer's `InboundInfo`, so that
 * object can be handed in as is.
 */
export interface TransportInfo {
  /** Via transport token: UDP, TCP, TLS, SCTP, WS, WSS… */
  transport: string;
  /** Reliable transports (everything but UDP) turn off retransmissions and zero the wait timers. */
  reliable: boolean;
  source: Endpoint;
  local: Endpoint;
  /** The connection it arrived on (stream transports). */
  connectionId?: string;
  /** TLS: the peer's certificate, when it offered one that the node's CA bundle verified. */
  tlsPeerCertificate?: PeerCertificate;
}

/** Where a client transaction sends its request (the TU chose it by RFC 3263 or a route). */
export interface Destination extends Endpoint {
  transport: string;
  /** Defaults to `transport !== 'UDP'`. */
  reliable?: boolean;
  /** Reuse this connection when still open. */
  connectionId?: string;
  /** For TLS: the name to verify the server certificate against. */
  serverName?: string;
  /**
   * The node's own socket to send from (UDP: that listener; a new TCP/TLS connection binds its address): the listener
   * the target is reached through, e.g. the one a registration arrived on. Default: the first of the target's family.
   */
  local?: Endpoint;
}

/**
 * What the transaction layer asks the transport layer to send: a request (or the ACK for a non-2xx response) to a
 * destination, or a response back along the way the request came (RFC 3261 §18.2.2: the transport layer picks the
 * address from the request's top Via and the connection it arrived on).
 */
export type OutboundTarget =
  | { kind: 'request'; destination: Destination }
  | {
      kind: 'response';
      /** How the request arrived (always set by server transactions; absent for a stateless forward by Via). */
      replyTo?: TransportInfo;
      request?: SipRequest;
    };

/**
 * A message serialized once with its resolved destination, opaque to the transaction layer: what a completed non-INVITE
 * server transaction keeps to answer retransmissions without its messages.
 */
export interface PreparedSend {
  readonly bytes: Buffer;
  readonly to: unknown;
}

/** Implemented by the transport layer. Must not throw; failures come back through `TransactionLayer.transportError`. */
export interface TransactionSender {
  send(message: SipMessage, target: OutboundTarget, transactionKey?: string): void;
  /**
   * Optional: serializes `message` and resolves where `target` sends it, once, so that it can be re-sent by
   * `sendPrepared` byte for byte. Undefined when it has nowhere to go (then `send` reports the error as usual).
   */
  prepare?(message: SipMessage, target: OutboundTarget): PreparedSend | undefined;
  /** Sends what `prepare` made. */
  sendPrepared?(prepared: PreparedSend, transactionKey?: string): void;
}

/** T1/T2/T4 (RFC 3261 Table 4, config `sip.timers`) plus the two values RFC 3261 does not derive from them. */
export interface TransactionTimerConfig {
  /** RTT estimate (ms), RFC 3261 default 500. */
  t1: number;
  /** Cap on non-INVITE request and INVITE response retransmit intervals (ms), default 4000. */
  t2: number;
  /** Maximum time a message stays in the network (ms), default 5000. */
  t4: number;
  /** Timer D on unreliable transports (ms); RFC 3261 §17.1.1.2: "at least 32 seconds". Default max(32000, 64*T1). */
  timerD?: number;
  /**
   * RFC 3261 §17.2.1: the INVITE server transaction sends 100 Trying when the TU has not responded within this many
   * ms (default 200); 0 sends it at once, before the TU sees the request; a negative value never sends it.
   */
  trying100Ms?: number;
}

export type TransactionKind = 'ict' | 'nict' | 'ist' | 'nist';

/** What every transaction exposes to the TU. */
export interface TransactionHandle {
  /** Unique key in the layer's table; what the transport layer passes back in `transportError`. */
  readonly key: string;
  readonly kind: TransactionKind;
  readonly state: string;
  /** The request that created the transaction. */
  readonly request: SipRequest;
}

/** A client transaction as the TU sees it. */
export interface ClientTransactionHandle extends TransactionHandle {
  readonly kind: 'ict' | 'nict';
  readonly branch: string;
  readonly destination: Destination;
}

/** A server transaction as the TU sees it: respond through it. */
export interface ServerTransactionHandle extends TransactionHandle {
  readonly kind: 'ist' | 'nist';
  /** Where the request came from; responses go back per RFC 3261 §18.2.2 through the transport layer. */
  readonly transportInfo: TransportInfo;
  /**
   * Sends a response (built by the TU, e.g. with `createResponse`). Returns false when the state does not allow it
   * (a final response was already sent, or the transaction ended): the response is not sent.
   */
  respond(response: SipResponse): boolean;
  /**
   * Non-INVITE only: sends a final response and ends the transaction without keeping Completed state (RFC 3261 §8.2.7
   * stateless UAS, for challenges). False when not allowed (provisional response, already answered).
   */
  respondStateless?(response: SipResponse): boolean;
  /** For a CANCEL: the INVITE server transaction it cancels (RFC 3261 §9.2), when one matched. */
  readonly cancels?: ServerTransactionHandle;
}

/**
 * The transaction user's callbacks. A throwing callback is caught and logged: it never breaks the layer.
 */
export interface TransactionUser {
  /** A new request (not ACK) with the server transaction to respond through. */
  onRequest(request: SipRequest, transaction: ServerTransactionHandle, info: TransportInfo): void;
  /**
   * An ACK no server transaction absorbed: the ACK for a 2xx (RFC 3261 §17.2.3, RFC 6026 §8.7), or one that matches
   * nothing. `transaction` is the INVITE server transaction in Accepted it matched, if any.
   */
  onAck(ack: SipRequest, info: TransportInfo, transaction?: ServerTransactionHandle): void;
  /** A response matched to a client transaction (provisional, final, and 2xx retransmissions in Accepted). */
  onResponse(response: SipResponse, transaction: ClientTransactionHandle, info: TransportInfo): void;
  /**
   * A response matching no client transaction. RFC 6026 §7.2 says a stateful proxy MUST NOT forward it; a UA core
   * may still need to see it (a 2xx retransmission after its transaction ended).
   */
  onStrayResponse(response: SipResponse, info: TransportInfo): void;
  /** Timer B/F fired (client), or Timer H (server: the ACK never came). */
  onTimeout(transaction: TransactionHandle): void;
  /** The transport layer reported a failure for this transaction. */
  onTransportError(transaction: TransactionHandle): void;
  /**
   * The transaction entered Terminated and left the table. A non-INVITE server transaction completed over UDP lives on
   * as a compact record (key, response bytes, destination) until Timer J; at that point this is called with its handle
   * if the handle is still referenced (by the TU, the only party that can have kept state about it).
   */
  onTerminated?(transaction: TransactionHandle): void;
}
