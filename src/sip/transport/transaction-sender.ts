import { OperationalError } from '../../common/errors.ts';
import { category, type Logger, silentLogger } from '../../common/log.ts';
import type { SipMessage } from '../message/types.ts';
import { responseTarget, viaTransport } from './response-target.ts';
import type { SipTransportLayer } from './transport-layer.ts';
import type { SendTarget } from './types.ts';

/**
 * What the transaction layer asks to send (structurally its `OutboundTarget`, declared here so the transport does
 * not depend on the layer above it).
 */
export type OutboundRequestTarget = {
  kind: 'request';
  destination: {
    transport: string;
    address: string;
    port: number;
    connectionId?: string;
    serverName?: string;
    local?: { address: string; port?: number };
  };
};
export type OutboundResponseTarget = {
  kind: 'response';
  /** The inbound info of the request, when known; without it the response goes by its top Via alone. */
  replyTo?: { transport: string; connectionId?: string; local?: { address: string; port: number } };
  request?: unknown;
};

/**
 * The transport layer as the transaction layer's `TransactionSender`: fire-and-forget `send`, with every failure
 * (no route, unsupported transport, connect/handshake/write error) reported as `onError(transactionKey, err)` so
 * the transaction can act on it (RFC 3261 §17.1.1.2 / §17.2.4: a transport error is reported to the TU).
 */
export class TransactionSenderAdapter {
  readonly #layer: SipTransportLayer;
  readonly #onError: (transactionKey: string, err: Error) => void;
  readonly #log: Logger;

  constructor(layer: SipTransportLayer, onError: (transactionKey: string, err: Error) => void, log?: Logger) {
    this.#layer = layer;
    this.#onError = onError;
    this.#log = category(log ?? silentLogger, 'sip.transport.send');
  }

  /** Where a message goes, or an error saying why it cannot. */
  static route(
    message: SipMessage,
    target: OutboundRequestTarget | OutboundResponseTarget,
  ): SendTarget | OperationalError {
    if (target.kind === 'response') {
      const transport = target.replyTo ? viaTransport(target.replyTo.transport) : undefined;
      const connectionId = target.replyTo?.connectionId;
      const local = target.replyTo?.local;
      const t = responseTarget(message, {
        ...(transport ? { transport } : {}),
        ...(connectionId ? { connectionId } : {}),
        ...(local ? { local } : {}),
      });
      return t ?? new OperationalError('ERR_SIP_TRANSPORT_NO_ROUTE', 'response has no usable top Via');
    }
    const d = target.destination;
    const transport = viaTransport(d.transport);
    if (!transport) {
      return new OperationalError('ERR_SIP_TRANSPORT_UNSUPPORTED', `transport ${d.transport} is not supported`);
    }
    const out: SendTarget = { transport, address: d.address, port: d.port };
    if (d.connectionId) out.connectionId = d.connectionId;
    if (d.serverName) out.serverName = d.serverName;
    if (d.local) out.local = { ...d.local };
    return out;
  }

  send(message: SipMessage, target: OutboundRequestTarget | OutboundResponseTarget, transactionKey?: string): void {
    const dest = TransactionSenderAdapter.route(message, target);
    if (dest instanceof Error) {
      this.#fail(transactionKey, dest);
      return;
    }
    this.#layer.send(message, dest).catch((err: unknown) => {
      this.#fail(transactionKey, err instanceof Error ? err : new Error(String(err)));
    });
  }

  #fail(key: string | undefined, err: Error): void {
    this.#log.debug({ key, code: (err as { code?: string }).code, err: err.message }, 'send failed');
    if (key === undefined) return;
    try {
      this.#onError(key, err);
    } catch (e) {
      this.#log.error({ err: e instanceof Error ? e.stack : String(e) }, 'transport error handler threw => ignored');
    }
  }
}
