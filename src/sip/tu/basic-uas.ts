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

/** What the node answers to out of dialog today (grows with the registrar, proxy and traversal issues). */
export const ALLOWED_METHODS: readonly string[] = ['OPTIONS', 'ACK', 'CANCEL'];

/** SIP extensions (option tags) this node supports; advertised in `Supported`, checked against `Require`. */
export const SUPPORTED_OPTION_TAGS: readonly string[] = [];

/** Content types the node accepts in bodies it processes. */
export const ACCEPTED_CONTENT_TYPES: readonly string[] = ['application/sdp'];

function withCapabilities(headers: [string, string][] = []): [string, string][] {
  return [
    ...headers,
    ['Allow', ALLOWED_METHODS.join(', ')],
    ['Accept', ACCEPTED_CONTENT_TYPES.join(', ')],
    ['Supported', SUPPORTED_OPTION_TAGS.join(', ')],
  ];
}

/**
 * The node's own answer to a request no other transaction user has claimed (RFC 3261 §8.2), or `undefined` for an
 * ACK (never answered). Pure: the caller sends the response through the server transaction.
 */
export function basicAnswer(req: SipRequest, isCancelMatched = false): SipResponse | undefined {
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
      .filter((t) => t !== '' && !SUPPORTED_OPTION_TAGS.includes(t.toLowerCase()));
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
    return createResponse(req, 200, 'OK', { toTag, headers: withCapabilities() });
  }
  return createResponse(req, 405, 'Method Not Allowed', { toTag, headers: [['Allow', ALLOWED_METHODS.join(', ')]] });
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

  onRequest(request: SipRequest, transaction: ServerTransactionHandle, _info: TransportInfo): void {
    this.counters.requests[request.method] = (this.counters.requests[request.method] ?? 0) + 1;
    const response = basicAnswer(request, request.method === 'CANCEL' && transaction.cancels !== undefined);
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

  onAck(_ack: SipRequest, _info: TransportInfo): void {
    this.counters.acks++;
  }

  onResponse(response: SipResponse, transaction: ClientTransactionHandle, _info: TransportInfo): void {
    this.client.onResponse(response, transaction);
  }

  onStrayResponse(_response: SipResponse, _info: TransportInfo): void {}

  onTimeout(transaction: TransactionHandle): void {
    this.client.onTimeout(transaction);
  }

  onTransportError(transaction: TransactionHandle): void {
    this.client.onTransportError(transaction);
  }
}
