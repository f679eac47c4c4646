import type { SipMessage, SipRequest } from '../message/types.ts';
import type { CancelOutcome } from '../transaction/transaction-layer.ts';
import type { ClientTransactionHandle, Destination, OutboundTarget } from '../transaction/types.ts';

/**
 * What the proxy core needs from its neighbours, as small interfaces: the location service (registrar), the
 * transaction layer, and the node's own listeners.
 */

/** A registered contact as the proxy needs it (structurally a subset of the location service's binding). */
export interface ProxyBinding {
  contact: string;
  /** Path URIs (RFC 3327), first = nearest to the registrar: become Route headers, in order. */
  path: readonly string[];
  /** q in thousandths. */
  q: number;
  /** The flow the REGISTER came on: requests go back to its source (NAT) on its connection. */
  flow: {
    transport: string;
    source: { address: string; port: number };
    local: { address: string; port: number };
    connectionId?: string;
  };
}

/** The location service lookup: live bindings of a canonical AOR (`sip:user@host`), best first. */
export interface ProxyLocation {
  lookup(aor: string): readonly ProxyBinding[];
}

/** The transaction layer as the proxy uses it (structurally `TransactionLayer`). */
export interface ProxyTransactions {
  sendRequest(request: SipRequest, destination: Destination): ClientTransactionHandle;
  cancel(invite: ClientTransactionHandle): CancelOutcome;
  sendStateless(message: SipMessage, target: Destination | OutboundTarget): void;
}

/** One SIP listener of this node: where its Via and Record-Route point. */
export interface ProxyListener {
  transport: 'UDP' | 'TCP' | 'TLS';
  address: string;
  port: number;
}

/** A place a request is forwarded to, as the SIP side of routing finds it. */
export interface SipTarget {
  /** The new Request-URI. */
  uri: string;
  /** Routes to push (Path of a registration). */
  routes: readonly string[];
  /** Where to send, when already known (a registration's flow, a neighbor zone's resolved address). */
  destinations?: Destination[];
}

/** Traversal zones as the proxy sees them (docs/traversal.md); the node's traversal wiring implements it. */
export interface ProxyTraversal {
  /** The traversal zone a request arrived from (on that zone's flow), else undefined. */
  sourceZone(info: {
    transport: string;
    source: { address: string; port: number };
    connectionId?: string;
  }): string | undefined;
  /** True for a routing zone that is a traversal zone. */
  isTraversalZone(zone: string): boolean;
  /** A next hop naming the other node is moved onto the zone's flow (edge: the core's connection; core: edge:7001). */
  viaFlow(destination: Destination): Destination;
  /** True when a destination is a traversal zone's flow (the leg faces the other Crossway node). */
  isFlow(destination: Destination): boolean;
  /**
   * The node's own socket a zone flow runs on (the edge's traversal listener, on its private side), for the Via and
   * Record-Route of requests sent down it: the other node's responses and in-dialog requests then come back to the
   * socket it is allowed to reach. Undefined: the listener the destination names, else the one of the transport.
   */
  flowListener?(destination: Destination): ProxyListener | undefined;
  /** A REGISTER for `domain` served behind a traversal zone: where to proxy it; undefined: the local registrar's. */
  registerTarget(domain: string): { zone: string; target: SipTarget } | undefined;
  /**
   * Edge, delegated credential checking: a caller of `domain` is checked by the core behind a zone; its requests go
   * down that zone unchallenged (no destinations while the zone is down). Undefined: the edge checks as usual.
   */
  delegatedTarget?(domain: string): { zone: string; target: SipTarget } | undefined;
}

/** The media relay as the proxy drives it (structurally `RelayCore`, docs/media.md). */
export interface ProxyMedia {
  offer(req: {
    callId: string;
    fromTag: string;
    sdp: string;
    from: 'endpoint' | 'traversal';
    to: 'endpoint' | 'traversal';
    /** False: an offer in a call the relay should already have (in-dialog); refused when it is gone. Default true. */
    create?: boolean;
  }): Promise<{ ok: true; value: { sdp: string } } | { ok: false; reason: { status: number; message: string } }>;
  answer(req: {
    callId: string;
    fromTag: string;
    toTag: string;
    sdp: string;
  }): Promise<{ ok: true; value: { sdp: string } } | { ok: false; reason: { status: number; message: string } }>;
  delete(callId: string): boolean;
  has(callId: string): boolean;
}
