import { fail, ok, type Result } from '../../common/result.ts';
import type { DecodeLimits } from '../per/codec.ts';
import type { PerError } from '../per/errors.ts';
import type {
  H323_UserInformation,
  MultimediaSystemControlMessage,
  OpenLogicalChannel,
} from '../per/generated/types.ts';
import { h245Codec, openLogicalChannelCodec, userInformationCodec } from '../per/schema.ts';
import {
  decodeQ931,
  encodeQ931,
  IE,
  iePath,
  Q931Error,
  type Q931Message,
  q931MessageName,
  UUIE_PROTOCOL_DISCRIMINATOR,
} from './q931.ts';

/**
 * An H.225.0 call signalling message: the Q.931 message and the `H323-UserInformation` carried in its user-user
 * information element (H.225.0 §7.2.2.?: protocol discriminator 5, then the PER encoding).
 */
export interface CallSignallingMessage {
  q931: Q931Message;
  /** Absent when the message carries no user-user IE (allowed for some messages). */
  uu?: H323_UserInformation;
}

/**
 * Decodes a TPKT payload on the call signalling channel; never throws. A failure is a Q931Error whose path runs
 * from the Q.931 message into the user-user IE and on through the PER fields of `H323-UserInformation`.
 */
export function decodeCallSignalling(
  payload: Uint8Array,
  limits?: Partial<DecodeLimits>,
): Result<CallSignallingMessage, Q931Error> {
  const q = decodeQ931(payload);
  if (!q.ok) return q;
  const i = q.value.ies.findIndex((x) => x.id === IE.userUser);
  if (i < 0) return ok({ q931: q.value });
  const ie = q.value.ies[i]!;
  const t = q.value.messageType;
  const at = `Q931.${q931MessageName(t) ?? `0x${t.toString(16).padStart(2, '0')}`}.${iePath(i, ie.id)}`;
  if (ie.data.length < 2) return fail(new Q931Error(at, `${ie.data.length} octets, too short`));
  if (ie.data[0] !== UUIE_PROTOCOL_DISCRIMINATOR)
    return fail(new Q931Error(at, `protocol discriminator ${ie.data[0]} (expected ${UUIE_PROTOCOL_DISCRIMINATOR})`));
  const uu = userInformationCodec.decode(ie.data.subarray(1), limits);
  if (!uu.ok) return fail(new Q931Error(`${at}.${uu.reason.path()}`, uu.reason.detail, { cause: uu.reason }));
  return ok({ q931: q.value, uu: uu.value });
}

/** Encodes the message; the user-user IE is re-encoded from `uu` (or added at its place in ascending IE order). */
export function encodeCallSignalling(m: CallSignallingMessage): Uint8Array {
  if (!m.uu) return encodeQ931(m.q931);
  const per = userInformationCodec.encode(m.uu);
  const data = new Uint8Array(per.length + 1);
  data[0] = UUIE_PROTOCOL_DISCRIMINATOR;
  data.set(per, 1);
  const ies = m.q931.ies.slice();
  const at = ies.findIndex((x) => x.id === IE.userUser);
  if (at >= 0) ies[at] = { id: IE.userUser, data };
  else {
    // Q.931 §4.5.1: variable-length IEs in ascending order of identifier
    const pos = ies.findIndex((x) => (x.id & 0x80) === 0 && x.id > IE.userUser);
    ies.splice(pos < 0 ? ies.length : pos, 0, { id: IE.userUser, data });
  }
  return encodeQ931({ ...m.q931, ies });
}

/** The H.245 messages tunnelled in `h245Control` (H.225.0 §7.?; H.323 §8.2.1), each decoded. */
export function tunnelledH245(uu: H323_UserInformation): Array<Result<MultimediaSystemControlMessage, PerError>> {
  return (uu['h323-uu-pdu'].h245Control ?? []).map((b) => h245Codec.decode(b));
}

/** The fast-start `OpenLogicalChannel` proposals or answers of a Setup, CallProceeding, Alerting, Connect… */
export function fastStartOf(uu: H323_UserInformation): Uint8Array[] | undefined {
  const body = uu['h323-uu-pdu']['h323-message-body'];
  switch (body.choice) {
    case 'setup':
    case 'callProceeding':
    case 'connect':
    case 'alerting':
    case 'progress':
    case 'facility':
      return body.value.fastStart;
    default:
      return undefined;
  }
}

/** Decodes each fast-start element as an H.245 OpenLogicalChannel. */
export function decodeFastStart(uu: H323_UserInformation): Array<Result<OpenLogicalChannel, PerError>> {
  return (fastStartOf(uu) ?? []).map((b) => openLogicalChannelCodec.decode(b));
}
