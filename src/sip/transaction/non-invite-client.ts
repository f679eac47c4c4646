import { InternalError } from '../../common/errors.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';
import { TransactionBase, type TransactionEnv } from './transaction.ts';
import type { ClientTransactionHandle, Destination, TransportInfo } from './types.ts';

/** RFC 3261 Figure 6. */
export type NonInviteClientState = 'Trying' | 'Proceeding' | 'Completed' | 'Terminated';

const EDGES: Readonly<Record<NonInviteClientState, readonly NonInviteClientState[]>> = {
  Trying: ['Proceeding', 'Completed', 'Terminated'],
  Proceeding: ['Completed', 'Terminated'],
  Completed: ['Terminated'],
  Terminated: [],
};

/** The non-INVITE client transaction (NICT): timers E, F, K. */
export class NonInviteClientTransaction extends TransactionBase implements ClientTransactionHandle {
  readonly kind = 'nict' as const;
  readonly branch: string;
  readonly destination: Destination;
  #state: NonInviteClientState = 'Trying';
  #intervalE = 0;

  constructor(key: string, request: SipRequest, branch: string, destination: Destination, env: TransactionEnv) {
    super(key, request, env);
    this.branch = branch;
    this.destination = destination;
  }

  get state(): NonInviteClientState {
    return this.#state;
  }

  /** Entry work of Trying: send the request, arm E (unreliable only) and F. */
  start(): void {
    this.send(this.request, { kind: 'request', destination: this.destination });
    const { E, F } = this.env.timers;
    // RFC 3261 §17.1.2.2: "The 'Trying' state is entered when the TU initiates a new client transaction with a
    // request. When entering this state, the client transaction SHOULD set timer F to fire in 64*T1 seconds. ... If
    // an unreliable transport is in use, the client transaction MUST set timer E to fire in T1 seconds."
    if (E !== undefined) {
      this.#intervalE = E;
      this.arm('E', E, () => this.#timerE());
    }
    this.arm('F', F, () => this.#timerF());
  }

  receiveResponse(response: SipResponse, info: TransportInfo): void {
    switch (this.#state) {
      case 'Trying':
      case 'Proceeding':
        if (response.status < 200) {
          // RFC 3261 §17.1.2.2: "If a provisional response is received while in the Trying state, the response MUST
          // be passed to the TU, and then the client transaction SHOULD move to the Proceeding state."
          this.env.events.response(this, response, info);
          if (this.#state === 'Trying') this.transition('Proceeding');
        } else {
          // "If a final response (status codes 200-699) is received while in the Trying state [or Proceeding], the
          // response MUST be passed to the TU, and the client transaction MUST transition to the Completed state."
          this.transition('Completed', response, info);
        }
        return;
      case 'Completed':
        // RFC 3261 §17.1.2.2: the Completed state buffers response retransmissions: they are absorbed.
        return;
      case 'Terminated':
        return;
    }
  }

  transportError(): void {
    if (this.#state !== 'Trying' && this.#state !== 'Proceeding') return;
    // RFC 3261 §17.1.2.2 / Figure 6: "Transport Err. / Inform TU" from Trying and Proceeding to Terminated.
    this.env.events.transportError(this);
    this.terminate();
  }

  terminate(): void {
    if (this.#state !== 'Terminated') this.transition('Terminated');
  }

  /** Moves to `to` and does its entry work; `response`/`info` are handed to the TU on entering Completed. */
  transition(to: NonInviteClientState, response?: SipResponse, info?: TransportInfo): void {
    const from = this.#state;
    if (!EDGES[from].includes(to)) throw new InternalError('ERR_TSX_ILLEGAL_TRANSITION', `NICT ${from} -> ${to}`);
    this.#state = to;
    this.env.log.trace({ key: this.key, from, to }, 'nict transition');
    switch (to) {
      case 'Proceeding':
        return;
      case 'Completed': {
        this.disarm('E', 'F');
        if (response && info) this.env.events.response(this, response, info);
        if (this.#state !== 'Completed') return;
        // RFC 3261 §17.1.2.2: "Once the client transaction enters the Completed state, it MUST set Timer K to fire in
        // T4 seconds for unreliable transports, and zero seconds for reliable transports."
        const k = this.env.timers.K;
        if (k <= 0) this.transition('Terminated');
        else this.arm('K', k, () => this.transition('Terminated'));
        return;
      }
      case 'Terminated':
        this.disarmAll();
        this.env.events.terminated(this);
        return;
      case 'Trying':
        return;
    }
  }

  #timerE(): void {
    if (this.#state === 'Trying') {
      // RFC 3261 §17.1.2.2: "If timer E fires while still in this state, the timer is reset, but this time with a
      // value of MIN(2*T1, T2). When the timer fires again, it is reset to a MIN(4*T1, T2)."
      this.#intervalE = Math.min(2 * this.#intervalE, this.env.timers.t2);
    } else if (this.#state === 'Proceeding') {
      // "If Timer E fires while in the Proceeding state, the request MUST be passed to the transport layer for
      // retransmission, and Timer E MUST be reset with a value of T2 seconds."
      this.#intervalE = this.env.timers.t2;
    } else {
      return;
    }
    this.send(this.request, { kind: 'request', destination: this.destination });
    this.arm('E', this.#intervalE, () => this.#timerE());
  }

  #timerF(): void {
    if (this.#state !== 'Trying' && this.#state !== 'Proceeding') return;
    // RFC 3261 §17.1.2.2: "If Timer F fires while the client transaction is still in the Trying state [or
    // Proceeding], the client transaction SHOULD inform the TU about the timeout, and then it SHOULD enter the
    // Terminated state."
    this.env.events.timeout(this);
    this.terminate();
  }
}
