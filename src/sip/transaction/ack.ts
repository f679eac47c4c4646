import { createRequest } from '../message/index.ts';
import type { Header, SipRequest, SipResponse } from '../message/types.ts';
import { cseq, firstHeader, headerLines, topViaText } from './sip-access.ts';

/**
 * The ACK an INVITE client transaction sends for a 300–699 response, RFC 3261 §17.1.1.3: "The ACK request
 * constructed by the client transaction MUST contain values for the Call-ID, From, and Request-URI that are equal to
 * the values of those header fields in the request passed to the transport by the client transaction (call this the
 * 'original request'). The To header field in the ACK MUST equal the To header field in the response being
 * acknowledged ... The ACK MUST contain a single Via header field, and this MUST be equal to the top Via header field
 * of the original request. The CSeq header field in the ACK MUST contain the same value for the sequence number as
 * was present in the original request, but the method parameter MUST be equal to 'ACK'." and "If the INVITE request
 * whose response is being acknowledged had Route header fields, those header fields MUST appear in the ACK."
 */
export function buildNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  const headers: Header[] = [];
  const via = topViaText(invite);
  if (via !== undefined) headers.push({ name: 'Via', value: via });
  headers.push({ name: 'Max-Forwards', value: firstHeader(invite, 'max-forwards') ?? '70' });
  for (const route of headerLines(invite, 'route')) headers.push({ name: 'Route', value: route.value });
  const from = firstHeader(invite, 'from');
  if (from !== undefined) headers.push({ name: 'From', value: from });
  const to = firstHeader(response, 'to');
  if (to !== undefined) headers.push({ name: 'To', value: to });
  const callId = firstHeader(invite, 'call-id');
  if (callId !== undefined) headers.push({ name: 'Call-ID', value: callId });
  headers.push({ name: 'CSeq', value: `${cseq(invite)?.seq ?? 0} ACK` });
  return createRequest({ method: 'ACK', uri: invite.uri, headers });
}
