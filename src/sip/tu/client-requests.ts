import { OperationalError } from '../../common/errors.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';
import type { TransactionLayer } from '../transaction/transaction-layer.ts';
import type { ClientTransactionHandle, Destination, TransactionHandle } from '../transaction/types.ts';

interface Pending {
  resolve(res: SipResponse): void;
  reject(err: Error): void;
}

/**
 * Requests the node itself originates (keepalives, probes) as promises: one per client transaction, resolved with the
 * final response, rejected with an `OperationalError` on Timer B/F (`ERR_SIP_TIMEOUT`) or a transport failure
 * (`ERR_SIP_TRANSPORT`). The node's transaction user feeds it the client-side callbacks.
 */
export class ClientRequests {
  readonly #pending = new Map<string, Pending>();
  #layer: TransactionLayer | undefined;

  /** Binds the transaction layer requests are sent through (set once by the composition root). */
  attach(layer: TransactionLayer): void {
    this.#layer = layer;
  }

  get pending(): number {
    return this.#pending.size;
  }

  send(request: SipRequest, destination: Destination): Promise<SipResponse> {
    const layer = this.#layer;
    if (!layer) return Promise.reject(new OperationalError('ERR_SIP_NOT_READY', 'no transaction layer attached'));
    return new Promise<SipResponse>((resolve, reject) => {
      let tx: ClientTransactionHandle;
      try {
        tx = layer.sendRequest(request, destination);
      } catch (err) {
        reject(err as Error);
        return;
      }
      this.#pending.set(tx.key, { resolve, reject });
    });
  }

  /** A response for a client transaction: final responses settle the request. */
  onResponse(response: SipResponse, transaction: ClientTransactionHandle): boolean {
    const p = this.#pending.get(transaction.key);
    if (!p) return false;
    if (response.status >= 200) {
      this.#pending.delete(transaction.key);
      p.resolve(response);
    }
    return true;
  }

  onTimeout(transaction: TransactionHandle): boolean {
    return this.#fail(transaction, 'ERR_SIP_TIMEOUT', 'no final response in time');
  }

  onTransportError(transaction: TransactionHandle): boolean {
    return this.#fail(transaction, 'ERR_SIP_TRANSPORT', 'transport failure');
  }

  /** Rejects everything still pending (node shutting down). */
  close(): void {
    for (const [key, p] of this.#pending) {
      this.#pending.delete(key);
      p.reject(new OperationalError('ERR_SIP_CLOSED', 'SIP service closed'));
    }
  }

  #fail(transaction: TransactionHandle, code: string, message: string): boolean {
    const p = this.#pending.get(transaction.key);
    if (!p) return false;
    this.#pending.delete(transaction.key);
    p.reject(new OperationalError(code, `${transaction.request.method}: ${message}`));
    return true;
  }
}
