/**
 * The SIP transaction layer (RFC 3261 §17 with RFC 6026): four sans-I/O state machines and the table that matches
 * messages to them. Other layers import only from here.
 */
export { buildNon2xxAck } from './ack.ts';
export { buildCancel } from './cancel.ts';
export { type InviteClientState, InviteClientTransaction } from './invite-client.ts';
export { type AckDisposition, type InviteServerState, InviteServerTransaction } from './invite-server.ts';
export { clientKey, isRfc3261Branch, MAGIC_COOKIE, type ServerMatch, serverMatch } from './keys.ts';
export { type NonInviteClientState, NonInviteClientTransaction } from './non-invite-client.ts';
export { type NonInviteServerState, NonInviteServerTransaction } from './non-invite-server.ts';
export { resolveTimers, type TimerValues } from './timer-values.ts';
export {
  type CancelOutcome,
  type ClientTransaction,
  DEFAULT_MAX_COMPLETED_TRANSACTIONS,
  DEFAULT_MAX_TRANSACTIONS,
  type ReceiveOutcome,
  type ServerTransaction,
  type Transaction,
  type TransactionCounters,
  TransactionLayer,
  type TransactionLayerOptions,
} from './transaction-layer.ts';
export { type MessageTransport, transportSender } from './transport-sender.ts';
export type * from './types.ts';
