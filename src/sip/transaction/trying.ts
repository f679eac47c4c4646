import { createResponse } from '../message/index.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';

/**
 * The 100 Trying an INVITE server transaction sends on its own (RFC 3261 §17.2.1). RFC 3261 §8.2.6.1: it copies Via,
 * From, To, Call-ID, CSeq and Timestamp from the request; no To tag is added (a 100 creates no dialog).
 */
export function build100Trying(request: SipRequest): SipResponse {
  return createResponse(request, 100, 'Trying');
}
