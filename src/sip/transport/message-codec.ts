/**
 * The one place where the transport layer touches the message layer (`src/sip/message/index.ts`): parsing,
 * serializing, stream framing and the top Via. Keeps the rest of the transport independent of its exact shapes.
 */
import type { Result } from '../../common/result.ts';
import {
  createResponse,
  type Frame,
  getTopVia,
  parseMessage,
  StreamFramer,
  serializeMessage,
  setTopViaParams,
} from '../message/index.ts';
import type { MessageLimits, ParseFailure, SipMessage, SipRequest, SipResponse, Via } from '../message/types.ts';

export function decode(bytes: Buffer, limits: MessageLimits, stream: boolean): Result<SipMessage, ParseFailure> {
  return parseMessage(bytes, limits, { transport: stream ? 'stream' : 'datagram' });
}

export function encode(msg: SipMessage): Buffer {
  return serializeMessage(msg);
}

/** The top Via of a message, or undefined when it has none or it does not parse. */
export function topVia(msg: SipMessage): Via | undefined {
  const v = getTopVia(msg);
  return v?.ok ? v.value : undefined;
}

/** Sets (or replaces) `received` / `rport` on the top Via in place; false when the top Via is unusable. */
export function setViaParams(msg: SipMessage, set: { received?: string; rport?: number }): boolean {
  return setTopViaParams(msg, set);
}

/** A stateless error response to a (partly parsed) request. */
export function errorResponse(request: SipRequest, status: number, reason: string): SipResponse {
  return createResponse(request, status, reason);
}

export type { Frame };

/** Per-connection framing state. */
export interface Framer {
  push(chunk: Buffer): void;
  pull(): Frame | undefined;
}

export function newFramer(limits: MessageLimits): Framer {
  return new StreamFramer(limits);
}
