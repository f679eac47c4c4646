import { serializeMessage } from '../message/index.ts';
import type { SipMessage } from '../message/types.ts';
import { responseTarget, viaTransport } from '../transport/index.ts';
import type { InboundInfo, SendTarget } from '../transport/types.ts';
import type { OutboundTarget, PreparedSend, TransactionSender } from './types.ts';

/** The one method of the SIP transport layer (`SipTransportLayer`) the transaction layer needs. */
export interface MessageTransport {
  send(message: SipMessage, target: SendTarget): Promise<void>;
  /** Already serialized bytes (retransmissions from a compact record). */
  sendBytes?(bytes: Buffer, target: SendTarget): Promise<void>;
  /** `sendBytes` without a promise: `onError` is called, asynchronously, only on failure. */
  sendBytesNoWait?(bytes: Buffer, target: SendTarget, onError: (err: Error) => void): void;
}

/**
 * Glue for the composition roots: a `TransactionSender` on top of the transport layer. Requests go to the
 * destination the TU chose; responses go where RFC 3261 §18.2.2 / RFC 3581 say, worked out by the transport layer's
 * `responseTarget` from the response's top Via and the request's inbound info (same connection on streams).
 * A send that fails, or has nowhere to go, is reported through `onError` with the transaction key (wire it to
 * `TransactionLayer.transportError`), always asynchronously.
 */
export function transportSender(
  transport: MessageTransport,
  onError: (transactionKey: string | undefined, error: unknown) => void,
): TransactionSender {
  return {
    send(message: SipMessage, target: OutboundTarget, transactionKey?: string): void {
      const sendTarget = toSendTarget(message, target);
      if (typeof sendTarget === 'string') {
        const reason = sendTarget;
        queueMicrotask(() => onError(transactionKey, new Error(reason)));
        return;
      }
      if (transport.sendBytesNoWait) {
        let bytes: Buffer;
        try {
          bytes = serializeMessage(message);
        } catch (err) {
          queueMicrotask(() => onError(transactionKey, err));
          return;
        }
        transport.sendBytesNoWait(bytes, sendTarget, (err) => onError(transactionKey, err));
        return;
      }
      transport.send(message, sendTarget).catch((err: unknown) => onError(transactionKey, err));
    },
    ...(transport.sendBytes
      ? {
          prepare(message: SipMessage, target: OutboundTarget): PreparedSend | undefined {
            const to = toSendTarget(message, target);
            return typeof to === 'string' ? undefined : { bytes: serializeMessage(message), to };
          },
          sendPrepared(prepared: PreparedSend, transactionKey?: string): void {
            if (transport.sendBytesNoWait) {
              transport.sendBytesNoWait(prepared.bytes, prepared.to as SendTarget, (err) =>
                onError(transactionKey, err),
              );
              return;
            }
            transport.sendBytes!(prepared.bytes, prepared.to as SendTarget).catch((err: unknown) =>
              onError(transactionKey, err),
            );
          },
        }
      : {}),
  };
}

function toSendTarget(message: SipMessage, target: OutboundTarget): SendTarget | string {
  if (target.kind === 'request') {
    const d = target.destination;
    const transport = viaTransport(d.transport);
    if (!transport) return `transport ${d.transport} not supported`;
    const out: SendTarget = { transport, address: d.address, port: d.port };
    if (d.connectionId !== undefined) out.connectionId = d.connectionId;
    if (d.serverName !== undefined) out.serverName = d.serverName;
    if (d.local !== undefined) out.local = { address: d.local.address, port: d.local.port };
    return out;
  }
  const via = target.replyTo;
  const inbound = via && viaTransport(via.transport) ? (via as InboundInfo) : undefined;
  return responseTarget(message, inbound) ?? 'response has no usable top Via';
}
