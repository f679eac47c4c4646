import { InternalError } from '../../common/errors.ts';
import { releaseParsed } from '../message/index.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';
import { TransactionBase, type TransactionEnv } from './transaction.ts';
import type { OutboundTarget, PreparedSend, ServerTransactionHandle, TransportInfo } from './types.ts';

/** RFC 3261 Figure 8. */
export type NonInviteServerState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

const EDGES: Readonly<Record<NonInviteServerState, readonly NonInviteServerState[]>> = {
  Trying: ['Proceeding', 'Completed', 'Terminated'],
  Proceeding: ['Completed', 'Terminated'],
  Completed: ['Terminated'],
  Terminated: [],
};

/** The non-INVITE server transaction (NIST): timer J. */
export class NonInviteServerTransaction extends TransactionBase implements ServerTransactionHandle {
  readonly kind = 'nist' as const;
  readonly transportInfo: TransportInfo;
  /** For a CANCEL: the INVITE server transaction it cancels (RFC 3261 §9.2), set by the layer. */
  cancels: ServerTransactionHandle | undefined;
  #state: NonInviteServerState = 'Trying';
  #lastResponse: SipResponse | undefined;
  /** Completed is run by the layer's compact record (Timer J included). */
  #compact = false;

  constructor(key: string, request: SipRequest, transportInfo: TransportInfo, env: TransactionEnv) {
    super(key, request, env);
    this.transportInfo = transportInfo;
  }

  get state(): NonInviteServerState {
    return this.#state;
  }

  /** Timer J of a compact Completed is armed in the layer's expiry ring, on this transaction's behalf. */
  override get armedTimers(): string[] {
    return this.#compact && this.#state === 'Completed' ? ['J'] : super.armedTimers;
  }

  /** Entry work of Trying: none (the layer passes the request to the TU). */
  start(): void {}

  /** A retransmission of the request. */
  receiveRequest(): void {
    switch (this.#state) {
      case 'Trying':
        // RFC 3261 §17.2.2: "Once in the Trying state, any further request retransmissions are discarded."
        return;
      case 'Proceeding':
      // "If a retransmission of the request is received while in the Proceeding state, the most recently sent
      // provisional response MUST be passed to the transport layer for retransmission."
      case 'Completed':
        // "While in the Completed state, the server transaction MUST pass the final response to the transport layer
        // for retransmission whenever a retransmission of the request is received."
        if (this.#lastResponse) this.#sendResponse(this.#lastResponse);
        return;
      case 'Terminated':
        return;
    }
  }

  respond(response: SipResponse): boolean {
    if (this.#state !== 'Trying' && this.#state !== 'Proceeding') {
      // RFC 3261 §17.2.2: "Any other final responses passed by the TU to the server transaction MUST be discarded
      // while in the Completed state."
      return false;
    }
    if (response.status < 200) {
      // "While in the Trying state, if the TU passes a provisional response to the server transaction, the server
      // transaction MUST enter the Proceeding state. ... Any further provisional responses that are received from
      // the TU while in the Proceeding state MUST be passed to the transport layer for transmission."
      this.#lastResponse = response;
      this.#sendResponse(response);
      if (this.#state === 'Trying') this.transition('Proceeding');
    } else {
      this.transition('Completed', response);
    }
    return true;
  }

  /**
   * Sends a final response and ends the transaction at once, without Completed (RFC 3261 §8.2.7, a stateless UAS: its
   * common use is answering unauthenticated requests with a challenge, so floods of them create no transaction
   * state). A retransmission of the request is then a new request and gets a new answer. False (nothing sent) for a
   * provisional response or when a final response was already sent.
   */
  respondStateless(response: SipResponse): boolean {
    if (response.status < 200 || (this.#state !== 'Trying' && this.#state !== 'Proceeding')) return false;
    this.send(response, this.#target());
    this.terminate();
    return true;
  }

  transportError(): void {
    if (this.#state === 'Terminated') return;
    // RFC 3261 §17.2.4 and Figure 8: "Transport Err. / Inform TU", to Terminated.
    this.env.events.transportError(this);
    this.terminate();
  }

  terminate(): void {
    if (this.#state !== 'Terminated') this.transition('Terminated');
  }

  /** Moves to `to` and does its entry work; `response` is the final response that caused the move to Completed. */
  transition(to: NonInviteServerState, response?: SipResponse): void {
    const from = this.#state;
    if (!EDGES[from].includes(to)) throw new InternalError('ERR_TSX_ILLEGAL_TRANSITION', `NIST ${from} -> ${to}`);
    this.#state = to;
    this.env.log.trace({ key: this.key, from, to }, 'nist transition');
    switch (to) {
      case 'Completed': {
        let prepared: PreparedSend | undefined;
        if (response) {
          this.#lastResponse = response;
          prepared = this.sendOnce(response, this.#target());
        }
        if (this.#state !== 'Completed') return;
        // RFC 3261 §17.2.2: "When the server transaction enters the Completed state, it MUST set Timer J to fire in
        // 64*T1 seconds for unreliable transports, and zero seconds for reliable transports."
        const j = this.env.timers.J;
        if (j <= 0) {
          this.transition('Terminated');
          return;
        }
        // Completed lasts 64*T1 on UDP and only re-sends: the layer keeps a compact record (key, response bytes,
        // destination) and runs Timer J for it; this object lets go of its messages.
        const last = this.#lastResponse;
        if (last && this.env.events.completed?.(this, last, prepared, this.#target())) {
          this.#compact = true;
          this.#lastResponse = undefined;
          releaseParsed(this.request);
          return;
        }
        this.arm('J', j, () => this.transition('Terminated'));
        // Kept here: the messages, not their parsed headers (≈ 5 KiB).
        releaseParsed(this.request);
        if (this.#lastResponse) releaseParsed(this.#lastResponse);
        return;
      }
      case 'Terminated':
        this.disarmAll();
        this.env.events.terminated(this);
        return;
      case 'Trying':
      case 'Proceeding':
        return;
    }
  }

  #target(): OutboundTarget {
    return { kind: 'response', replyTo: this.transportInfo, request: this.request };
  }

  #sendResponse(response: SipResponse): void {
    this.send(response, this.#target());
  }
}
