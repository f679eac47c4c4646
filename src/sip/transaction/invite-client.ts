import { InternalError } from '../../common/errors.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';
import { buildNon2xxAck } from './ack.ts';
import { TransactionBase, type TransactionEnv } from './transaction.ts';
import type { ClientTransactionHandle, Destination, TransportInfo } from './types.ts';

/** RFC 3261 Figure 5 as updated by RFC 6026 §7.2 (Accepted). */
export type InviteClientState = 'Calling' | 'Proceeding' | 'Accepted' | 'Completed' | 'Terminated';

const EDGES: Readonly<Record<InviteClientState, readonly InviteClientState[]>> = {
  Calling: ['Proceeding', 'Accepted', 'Completed', 'Terminated'],
  Proceeding: ['Accepted', 'Completed', 'Terminated'],
  Accepted: ['Terminated'],
  Completed: ['Terminated'],
  Terminated: [],
};

/** The INVITE client transaction (ICT): timers A, B, D, M. */
export class InviteClientTransaction extends TransactionBase implements ClientTransactionHandle {
  readonly kind = 'ict' as const;
  readonly branch: string;
  readonly destination: Destination;
  #state: InviteClientState = 'Calling';
  #intervalA = 0;
  #ack: SipRequest | undefined;

  constructor(key: string, request: SipRequest, branch: string, destination: Destination, env: TransactionEnv) {
    super(key, request, env);
    this.branch = branch;
    this.destination = destination;
  }

  get state(): InviteClientState {
    return this.#state;
  }

  /** The ACK sent for a non-2xx final response, once there is one. */
  get ack(): SipRequest | undefined {
    return this.#ack;
  }

  /** Entry work of Calling: send the INVITE, arm A (unreliable only) and B. */
  start(): void {
    this.send(this.request, { kind: 'request', destination: this.destination });
    const { A, B } = this.env.timers;
    // RFC 3261 §17.1.1.2: "If an unreliable transport is being used, the client transaction MUST start timer A with
    // a value of T1. If a reliable transport is being used, the client transaction SHOULD NOT start timer A".
    if (A !== undefined) {
      this.#intervalA = A;
      this.arm('A', A, () => this.#timerA());
    }
    // "For any transport, the client transaction MUST start timer B with a value of 64*T1 seconds".
    this.arm('B', B, () => this.#timerB());
  }

  /** A response matched to this transaction by the layer. */
  receiveResponse(response: SipResponse, info: TransportInfo): void {
    const status = response.status;
    switch (this.#state) {
      case 'Calling':
      case 'Proceeding':
        if (status < 200) {
          if (this.#state === 'Calling') this.transition('Proceeding');
          // RFC 3261 §17.1.1.2: "any further provisional responses MUST be passed up to the TU while in the
          // Proceeding state".
          this.env.events.response(this, response, info);
        } else if (status < 300) {
          // RFC 6026 §7.2 (Figure 5 updated): a 2xx in Calling or Proceeding is passed to the TU and the
          // transaction moves to Accepted, so that 2xx retransmissions still match it.
          this.transition('Accepted', response, info);
        } else {
          this.transition('Completed', response, info);
        }
        return;
      case 'Accepted':
        // RFC 6026 §7.2: 2xx responses received in Accepted are passed up to the TU (retransmissions, forks).
        if (status >= 200 && status < 300) this.env.events.response(this, response, info);
        return;
      case 'Completed':
        // RFC 3261 §17.1.1.2: "Any retransmissions of the final response that are received while in the Completed
        // state MUST cause the ACK to be re-passed to the transport layer for retransmission, but the newly received
        // response MUST NOT be passed up to the TU."
        if (status >= 300 && this.#ack) this.send(this.#ack, { kind: 'request', destination: this.destination });
        return;
      case 'Terminated':
        return;
    }
  }

  transportError(): void {
    switch (this.#state) {
      case 'Calling':
      case 'Proceeding':
      case 'Completed':
        // RFC 3261 §17.1.1.2: a transport failure "should be treated as if a 503 ... were received": inform the TU
        // and go to Terminated (Figure 5: "Transport Err. / Inform TU").
        this.env.events.transportError(this);
        this.terminate();
        return;
      default:
        // Accepted sends nothing (RFC 6026 Figure 5 has no transport error edge there); Terminated is over.
        return;
    }
  }

  terminate(): void {
    if (this.#state !== 'Terminated') this.transition('Terminated');
  }

  /**
   * Moves to `to` and does its entry work. `response`/`info` are the message that caused the move, handed to the TU
   * on entering Accepted and Completed.
   */
  transition(to: InviteClientState, response?: SipResponse, info?: TransportInfo): void {
    const from = this.#state;
    if (!EDGES[from].includes(to)) throw new InternalError('ERR_TSX_ILLEGAL_TRANSITION', `ICT ${from} -> ${to}`);
    this.#state = to;
    this.env.log.trace({ key: this.key, from, to }, 'ict transition');
    switch (to) {
      case 'Proceeding':
        // RFC 3261 §17.1.1.2: "In the Proceeding state, the client transaction SHOULD NOT retransmit the request any
        // longer"; Timer B only bounds the Calling state.
        this.disarm('A', 'B');
        return;
      case 'Accepted':
        this.disarm('A', 'B');
        if (response && info) this.env.events.response(this, response, info);
        // RFC 6026 §7.2: Timer M (64*T1) bounds the Accepted state.
        if (this.#state === 'Accepted') this.arm('M', this.env.timers.M, () => this.transition('Terminated'));
        return;
      case 'Completed': {
        this.disarm('A', 'B');
        if (response) {
          this.#ack = buildNon2xxAck(this.request, response);
          this.send(this.#ack, { kind: 'request', destination: this.destination });
        }
        if (response && info) this.env.events.response(this, response, info);
        if (this.#state !== 'Completed') return;
        // RFC 3261 §17.1.1.2: "The client transaction SHOULD start timer D when it enters the Completed state, with a
        // value of at least 32 seconds for unreliable transports, and a value of zero seconds for reliable
        // transports."
        const d = this.env.timers.D;
        if (d <= 0) this.transition('Terminated');
        else this.arm('D', d, () => this.transition('Terminated'));
        return;
      }
      case 'Terminated':
        this.disarmAll();
        this.env.events.terminated(this);
        return;
      case 'Calling':
        return;
    }
  }

  #timerA(): void {
    if (this.#state !== 'Calling') return;
    // RFC 3261 §17.1.1.2: "When timer A fires, the client transaction MUST retransmit the request ... and MUST reset
    // the timer with a value of 2*T1 ... the request is retransmitted with intervals that double after each
    // transmission." (No T2 cap for INVITE: that applies to Timer E and Timer G.)
    this.send(this.request, { kind: 'request', destination: this.destination });
    this.#intervalA *= 2;
    this.arm('A', this.#intervalA, () => this.#timerA());
  }

  #timerB(): void {
    if (this.#state !== 'Calling') return;
    // RFC 3261 §17.1.1.2: "If the client transaction is still in the Calling state when timer B fires, the client
    // transaction SHOULD inform the TU that a timeout has occurred. The client transaction MUST NOT generate an ACK."
    this.env.events.timeout(this);
    this.terminate();
  }
}
