import type { Header, SipRequest, SipResponse } from '../message/types.ts';
import { headerLines } from './sip-access.ts';

const COPIED = ['via', 'from', 'to', 'call-id', 'cseq', 'timestamp'];

/**
 * The 100 Trying an INVITE server transaction sends on its own (RFC 3261 §17.2.1). RFC 3261 §8.2.6.1: the response
 * copies Via, From, To, Call-ID and CSeq from the request ("If there is a Timestamp header field in the request, then
 * the 100 MUST copy it"); the To tag is left as it is (a 100 Trying creates no dialog).
 */
export function build100Trying(request: SipRequest): SipResponse {
  const headers: Header[] = [];
  for (const name of COPIED) for (const h of headerLines(request, name)) headers.push({ name: h.name, value: h.value });
  headers.push({ name: 'Content-Length', value: '0' });
  return { kind: 'response', status: 100, reason: 'Trying', version: request.version, headers, body: Buffer.alloc(0) };
}
