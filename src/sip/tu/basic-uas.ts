import { createResponse, getHeaders, getRequestUri, getToTag, newTag } from '../message/index.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';
import type {
  ClientTransactionHandle,
  ServerTransactionHandle,
  TransactionHandle,
  TransactionUser,
  TransportInfo,
} from '../transaction/types.ts';
import { ClientRequests } from './client-requests.ts';

/** Methods of RFC 3261 and its extensions that this stack knows by name. */
export const KNOWN_METHODS: ReadonlySet<string> = new Set([
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'REGISTER',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'INFO',
  'REFER',
  'MESSAGE',
  'UPDATE',
]);

/** What the node itself answers out of dialog; request handlers (registrar, proxy) add their methods. */
export const ALLOWED_METHODS: readonly string[] = ['OPTIONS', 'ACK', 'CANCEL'];

/** SIP extensions (option tags) the node itself supports; handlers add theirs. */
export const SUPPORTED_OPTION_TAGS: readonly string[] = [];

/** What the node advertises and accepts: the union of its own capabilities and its handlers'. */
export interface Capabilities {
  allow: readonly string[];
  supported: readonly string[];
}

const BASE_CAPABILITIES: Capabilities = { allow: ALLOWED_METHODS, supported: SUPPORTED_OPTION_TAGS };

/**
 * A transaction user in front of the basic UAS (registrar, proxy core…). The node offers each new request to its
 * handlers in order; the first that takes it answers it through the server transaction.
 */
export interface RequestHandler {
  readonly name: string;
  /** Methods this handler serves; listed in Allow. */
  readonly methods: readonly string[];
  /** Option tags this handler supports; listed in Supported and accepted in Require. */
  readonly optionTags?: readonly string[];
  /** Returns true when it takes the request (it then responds through `transaction`, now or later). */
  handle(request: SipRequest, transaction: ServerTransactionHandle, info: TransportInfo): boolean;
  /** An ACK no server transaction absorbed (for a 2xx); return true when it was the handler's. */
  handleAck?(ack: SipRequest, info: TransportInfo): boolean;
  /** A response to a client transaction the handler started (a proxy's branch); true when it was the handler's. */
  onResponse?(response: SipResponse, transaction: ClientTransactionHandle, info: TransportInfo): boolean;
  /** Timer B/F (or H) of a transaction of the handler; true when it was the handler's. */
  onTimeout?(transaction: TransactionHandle): boolean;
  /** A transport failure of a transaction of the handler; true when it was the handler's. */
  onTransportError?(transaction: TransactionHandle): boolean;
  /** A transaction left the layer's table; true when it was the handler's. */
  onTerminated?(transaction: TransactionHandle): boolean;
}

/** Content types the node accepts in bodies it processes. */
export const ACCEPTED_CONTENT_TYPES: readonly string[] = ['application/sdp'];

function withCapabilities(caps: Capabilities): [string, string][] {
  return [
    ['Allow', caps.allow.join(', ')],
    ['Accept', ACCEPTED_CONTENT_TYPES.join(', ')],
    ['Supported', caps.supported.join(', ')],
  ];
}

/**
 * The node's own answer to a request no other transaction user has claimed (RFC 3261 §8.2), or `undefined` for an
 * ACK (never answered). Pure: the caller sends the response through the server transaction.
 */
export function basicAnswer(
  req: SipRequest,
  isCancelMatched = false,
  caps: Capabilities = BASE_CAPABILITIES,
): SipResponse | undefined {
  const method = req.method;
  if (method === 'ACK') return undefined;
  const toTag = newTag();

  // RFC 3261 §8.2.1: an unknown method is answered 501; a known one this node does not serve, 405 with Allow.
  if (!KNOWN_METHODS.has(method)) return createResponse(req, 501, 'Not Implemented', { toTag });

  // RFC 3261 §8.2.2.1: a Request-URI scheme we do not understand → 416.
  const ruri = getRequestUri(req);
  if (!ruri.ok) return createResponse(req, 416, 'Unsupported URI Scheme', { toTag });

  // RFC 3261 §8.2.2.3: option tags in Require that we do not support → 420 with Unsupported listing them
  // (not for CANCEL, and ACK was handled above).
  if (method !== 'CANCEL') {
    const unsupported = getHeaders(req, 'require')
      .map((t) => t.trim())
      .filter((t) => t !== '' && !caps.supported.includes(t.toLowerCase()));
    if (unsupported.length > 0) {
      return createResponse(req, 420, 'Bad Extension', { toTag, headers: [['Unsupported', unsupported.join(', ')]] });
    }
  }

  // RFC 3261 §9.2: a CANCEL that matches no transaction → 481. (A matching one is answered 200 by the layer's user.)
  if (method === 'CANCEL') {
    return isCancelMatched
      ? createResponse(req, 200, 'OK', { toTag })
      : createResponse(req, 481, 'Call/Transaction Does Not Exist', { toTag });
  }

  // RFC 3261 §12.2.2: a request within a dialog this node does not know → 481.
  if (getToTag(req) !== undefined) return createResponse(req, 481, 'Call/Transaction Does Not Exist');

  if (method === 'OPTIONS') {
    // RFC 3261 §11.2: 200 with Allow, Accept and Supported.
    return createResponse(req, 200, 'OK', { toTag, headers: withCapabilities(caps) });
  }
  return createResponse(req, 405, 'Method Not Allowed', { toTag, headers: [['Allow', caps.allow.join(', ')]] });
}

/** Counters of the basic UAS, for status and tests. */
export interface BasicUasCounters {
  /** New requests seen (retransmissions absorbed by the transaction layer are not counted), per method. */
  requests: Record<string, number>;
  /** Responses sent, per status code. */
  responses: Record<number, number>;
  acks: number;
}

/**
 * The minimal transaction user of the foundation: answers every request with `basicAnswer`. Later transaction users
 * (registrar, proxy) sit in front of it and hand it what they do not handle.
 */
export class BasicUas implements TransactionUser {
  readonly counters: BasicUasCounters = { requests: {}, responses: {}, acks: 0 };
  /** Requests the node originates; their client-transaction callbacks are routed there. */
  readonly client = new ClientRequests();
  readonly #handlers: RequestHandler[] = [];
  #caps: Capabilities = BASE_CAPABILITIES;

  /** Puts a handler in front of the basic answers (in the order added). */
  use(handler: RequestHandler): void {
    this.#handlers.push(handler);
    const allow = new Set(ALLOWED_METHODS);
    const supported = new Set(SUPPORTED_OPTION_TAGS);
    for (const h of this.#handlers) {
      for (const m of h.methods) allow.add(m);
      for (const t of h.optionTags ?? []) supported.add(t);
    }
    this.#caps = { allow: [...allow], supported: [...supported] };
  }

  get capabilities(): Capabilities {
    return this.#caps;
  }

  onRequest(request: SipRequest, transaction: ServerTransactionHandle, info: TransportInfo): void {
    this.counters.requests[request.method] = (this.counters.requests[request.method] ?? 0) + 1;
    for (const h of this.#handlers) {
      if (h.methods.includes(request.method) && h.handle(request, transaction, info)) return;
    }
    const response = basicAnswer(request, request.method === 'CANCEL' && transaction.cancels !== undefined, this.#caps);
    if (!response) return;
    if (transaction.respond(response)) {
      this.counters.responses[response.status] = (this.counters.responses[response.status] ?? 0) + 1;
    }
    // RFC 3261 §9.2: once the CANCEL is answered, the INVITE it cancels gets 487 if no final response was sent yet.
    if (request.method === 'CANCEL' && transaction.cancels) {
      transaction.cancels.respond(
        createResponse(transaction.cancels.request, 487, 'Request Terminated', { toTag: newTag() }),
      );
    }
  }

  onAck(ack: SipRequest, info: TransportInfo): void {
    this.counters.acks++;
    for (const h of this.#handlers) if (h.handleAck?.(ack, info)) return;
  }

  onResponse(response: SipResponse, transaction: ClientTransactionHandle, info: TransportInfo): void {
    if (this.client.onResponse(response, transaction)) return;
    for (const h of this.#handlers) if (h.onResponse?.(response, transaction, info)) return;
  }

  onStrayResponse(_response: SipResponse, _info: TransportInfo): void {}

  onTimeout(transaction: TransactionHandle): void {
    if (this.client.onTimeout(transaction)) return;
    for (const h of this.#handlers) if (h.onTimeout?.(transaction)) return;
  }

  onTransportError(transaction: TransactionHandle): void {
    if (this.client.onTransportError(transaction)) return;
    for (const h of this.#handlers) if (h.onTransportError?.(transaction)) return;
  }

  onTerminated(transaction: TransactionHandle): void {
    for (const h of this.#handlers) if (h.onTerminated?.(transaction)) return;
  }
}
