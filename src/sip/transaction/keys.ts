import type { SipMessage, SipRequest, Via } from '../message/types.ts';
import { callIdOf, cseq, fromTagOf, param, topVia, topViaText, toTagOf } from './sip-access.ts';

/** RFC 3261 §8.1.1.7: branches of RFC 3261 elements start with this cookie. */
export const MAGIC_COOKIE = 'z9hG4bK';

/**
 * True when a branch was made by an RFC 3261 element: it starts with the magic cookie and carries something after it.
 * RFC 4475 §3.2.1 (badbranch): a bare `z9hG4bK` identifies nothing; such a request falls back to RFC 2543 matching.
 */
export function isRfc3261Branch(branch: string | null | undefined): branch is string {
  return typeof branch === 'string' && branch.length > MAGIC_COOKIE.length && branch.startsWith(MAGIC_COOKIE);
}

/** The branch parameter of a Via, if any. */
export function branchOf(via: Via | undefined): string | undefined {
  if (!via) return undefined;
  return param(via.params, 'branch') ?? undefined;
}

/** RFC 3261 §17.1.3: a response matches the client transaction with its top Via branch and its CSeq method. */
export function clientKey(branch: string, method: string): string {
  return `c ${branch} ${method}`;
}

/** The client key of a response, or why it has none. */
export function clientKeyOfResponse(msg: SipMessage): string | undefined {
  const branch = branchOf(topVia(msg));
  const cs = cseq(msg);
  if (branch === undefined || branch === '' || !cs) return undefined;
  return clientKey(branch, cs.method);
}

function defaultPort(transport: string): number {
  return transport === 'TLS' || transport === 'WSS' ? 5061 : 5060;
}

/** The sent-by of a Via, normalised (host lower-cased, default port filled in) for comparison. */
export function sentBy(via: Via): string {
  return `${via.host.toLowerCase()}:${via.port ?? defaultPort(via.transport)}`;
}

/**
 * How a request is matched to a server transaction (RFC 3261 §17.2.3).
 * - `key`: the table key. For ACK and for a CANCEL looking for the INVITE it cancels, computed as for the INVITE.
 * - `toTag`: for RFC 2543 matching of INVITE, ACK and CANCEL, the To tag is compared after the lookup (the INVITE's
 *   To tag for a retransmitted INVITE or a CANCEL, the tag of the response sent for an ACK), so it is not in the key.
 */
export interface ServerMatch {
  key: string;
  rfc2543: boolean;
  toTag: string | undefined;
}

/**
 * Computes the server-transaction match for a request. `asMethod` overrides the method the key is computed for:
 * RFC 3261 §9.2 finds the transaction a CANCEL cancels by applying §17.2.3 as if its method were the INVITE's.
 * Returns undefined when the request lacks what matching needs (top Via, CSeq).
 */
export function serverMatch(request: SipRequest, asMethod?: string): ServerMatch | undefined {
  const viaText = topViaText(request);
  const via = viaText === undefined ? undefined : topVia(request);
  const cs = cseq(request);
  if (!via || viaText === undefined || !cs) return undefined;
  const method = asMethod ?? (request.method === 'ACK' ? 'INVITE' : request.method);
  const branch = branchOf(via);
  if (isRfc3261Branch(branch)) {
    // RFC 3261 §17.2.3: branch equal, sent-by equal, and the method equal, except for ACK, where the method of the
    // request that created the transaction is INVITE.
    return { key: `s ${branch} ${sentBy(via)} ${method}`, rfc2543: false, toTag: undefined };
  }
  // RFC 3261 §17.2.3 (RFC 2543 fallback): Request-URI, To tag, From tag, Call-ID, CSeq and top Via equal to those of
  // the request that created the transaction; for an ACK the CSeq number (not the method) and the To tag of the
  // response sent.
  const toTag = toTagOf(request);
  const common = `${request.uri}\n${fromTagOf(request) ?? ''}\n${callIdOf(request) ?? ''}\n${cs.seq}\n${viaText.replace(/\s+/g, '')}`;
  if (method === 'INVITE') return { key: `s2543 INVITE\n${common}`, rfc2543: true, toTag };
  return { key: `s2543 ${method}\n${toTag ?? ''}\n${common}`, rfc2543: true, toTag: undefined };
}
