import { createRequest } from '../message/index.ts';
import type { Header, SipRequest } from '../message/types.ts';
import { cseq, firstHeader, headerLines, topViaText } from './sip-access.ts';

/**
 * The CANCEL for an INVITE a client transaction sent, RFC 3261 §9.1: "The Request-URI, Call-ID, To, the numeric part
 * of CSeq, and From header fields in the CANCEL request MUST be identical to those in the request being cancelled,
 * including tags. A CANCEL constructed by a client MUST have only a single Via header field value matching the top Via
 * value in the request being cancelled. ... If the request being cancelled contains a Route header field, the CANCEL
 * request MUST include that Route header field's values."
 */
export function buildCancel(invite: SipRequest): SipRequest {
  const headers: Header[] = [];
  const via = topViaText(invite);
  if (via !== undefined) headers.push({ name: 'Via', value: via });
  headers.push({ name: 'Max-Forwards', value: firstHeader(invite, 'max-forwards') ?? '70' });
  for (const route of headerLines(invite, 'route')) headers.push({ name: 'Route', value: route.value });
  for (const name of ['from', 'to', 'call-id']) {
    const line = headerLines(invite, name)[0];
    if (line) headers.push({ name: line.name, value: line.value });
  }
  headers.push({ name: 'CSeq', value: `${cseq(invite)?.seq ?? 0} CANCEL` });
  return createRequest({ method: 'CANCEL', uri: invite.uri, headers });
}
