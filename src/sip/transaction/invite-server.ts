import { InternalError } from '../../common/errors.ts';
import type { SipRequest, SipResponse } from '../message/types.ts';
import { toTagOf } from './sip-access.ts';
import { TransactionBase, type TransactionEnv } from './transaction.ts';
import { build100Trying } from './trying.ts';
import type { ServerTransactionHandle, TransportInfo } from './types.ts';

/** RFC 3261 Figure 7 as updated by RFC 6026 §7.1 (Accepted). */
export type InviteServerState = 'Proceeding' | 'Accepted' | 'Completed' | 'Confirmed' | 'Terminated';

const EDGES: Readonly<Record<InviteServerState, readonly InviteServerState[]>> = {
  Proceeding: ['Accepted', 'Completed', 'Terminated'],
  Accepted: ['Terminated'],
  Completed: ['Confirmed', 'Terminated'],
  Confirmed: ['Terminated'],
  Terminated: [],
};

/** What the INVITE server transaction did with an ACK matched to it. */
export type AckDisposition = 'absorbed' | 'to-tu';

/** The INVITE server transaction (IST): timers G, H, I, L, and the 100 Trying timer. */
export class InviteServerTransaction extends TransactionBase implements ServerTransactionHandle {
  readonly kind = 'ist' as const;
  readonly transportInfo: TransportInfo;
  /** For RFC 2543 matching: the To tag of the INVITE that created the transaction. */
  readonly requestToTag: string | undefined;
  #state: InviteServerState = 'Proceeding';
  #lastProvisional: SipResponse | undefined;
  #final: SipResponse | undefined;
  #intervalG = 0;

  constructor(key: string, request: SipRequest, transportInfo: TransportInfo, env: TransactionEnv) {
    super(key, request, env);
    this.transportInfo = transportInfo;
    this.requestToTag = toTagOf(request);
  }

  get state(): InviteServerState {
    return this.#state;
  }

  /** The To tag of the final response sent, which an RFC 2543 ACK must carry. */
  get responseToTag(): string | undefined {
    return this.#final ? toTagOf(this.#final) : undefined;
  }

  /** Entry work of Proceeding (the layer then passes the INVITE to the TU). */
  start(): void {
    // RFC 3261 §17.2.1: "The server transaction MUST generate a 100 (Trying) response unless it knows that the TU will
    // generate a provisional or final response within 200 ms, in which case it MAY generate a 100 (Trying)".
    const delay = this.env.timers.trying100;
    if (delay === 0) this.#sendTrying();
    else if (delay > 0) this.arm('Trying', delay, () => this.#sendTrying());
  }

  /** A retransmission of the INVITE. */
  receiveRequest(): void {
    switch (this.#state) {
      case 'Proceeding':
        // RFC 3261 §17.2.1: "If a request retransmission is received while in the Proceeding state, the most recent
        // provisional response that was received from the TU MUST be passed to the transport layer for
        // retransmission."
        if (this.#lastProvisional) this.#sendResponse(this.#lastProvisional);
        return;
      case 'Completed':
        // "while in the Completed state, if a request retransmission is received, the server SHOULD pass the
        // response to the transport for retransmission."
        if (this.#final) this.#sendResponse(this.#final);
        return;
      case 'Accepted':
      // RFC 6026 §7.1: in Accepted, retransmissions of the INVITE are absorbed, not passed to the TU.
      case 'Confirmed':
      // RFC 3261 §17.2.1: Confirmed absorbs everything until Timer I fires.
      case 'Terminated':
        return;
    }
  }

  /** An ACK matched to this transaction (same branch, or RFC 2543 matching). */
  receiveAck(): AckDisposition {
    switch (this.#state) {
      case 'Completed':
        // RFC 3261 §17.2.1: "If an ACK is received while the server transaction is in the Completed state, the server
        // transaction MUST transition to the Confirmed state."
        this.transition('Confirmed');
        return 'absorbed';
      case 'Accepted':
        // RFC 6026 §7.1: an ACK reaching the transaction in Accepted acknowledges the 2xx: the TU's business.
        return 'to-tu';
      default:
        return 'absorbed';
    }
  }

  respond(response: SipResponse): boolean {
    const status = response.status;
    switch (this.#state) {
      case 'Proceeding':
        if (status < 200) {
          // RFC 3261 §17.2.1: "The TU passes any number of provisional responses to the server transaction. So long
          // as the server transaction is in the Proceeding state, each of these MUST be passed to the transport".
          this.disarm('Trying');
          this.#lastProvisional = response;
          this.#sendResponse(response);
        } else if (status < 300) {
          this.transition('Accepted', response);
        } else {
          this.transition('Completed', response);
        }
        return true;
      case 'Accepted':
        // RFC 6026 §7.1: "2xx from TU / send response": the TU (UAS core, or a proxy forwarding 2xx retransmissions
        // and forked 2xx) retransmits 2xx through the transaction while it is Accepted.
        if (status >= 200 && status < 300) {
          this.#sendResponse(response);
          return true;
        }
        return false;
      default:
        return false;
    }
  }

  transportError(): void {
    switch (this.#state) {
      case 'Proceeding':
      case 'Completed':
        // RFC 3261 §17.2.4 and Figure 7: "Transport Err. / Inform TU", to Terminated.
        this.env.events.transportError(this);
        this.terminate();
        return;
      case 'Accepted':
        // RFC 6026 Figure 7 keeps Accepted until Timer L (INVITE retransmissions must still be absorbed); the TU
        // learns that a 2xx could not be sent and decides about the dialog.
        this.env.events.transportError(this);
        return;
      default:
        return;
    }
  }

  terminate(): void {
    if (this.#state !== 'Terminated') this.transition('Terminated');
  }

  /** Moves to `to` and does its entry work; `response` is the final response from the TU that caused the move. */
  transition(to: InviteServerState, response?: SipResponse): void {
    const from = this.#state;
    if (!EDGES[from].includes(to)) throw new InternalError('ERR_TSX_ILLEGAL_TRANSITION', `IST ${from} -> ${to}`);
    this.#state = to;
    this.env.log.trace({ key: this.key, from, to }, 'ist transition');
    const t = this.env.timers;
    switch (to) {
      case 'Accepted':
        this.disarm('Trying');
        this.#final = response;
        if (response) this.#sendResponse(response);
        // RFC 6026 §7.1: Timer L (64*T1) bounds the Accepted state; the transaction never retransmits the 2xx itself.
        if (this.#state === 'Accepted') this.arm('L', t.L, () => this.transition('Terminated'));
        return;
      case 'Completed':
        this.disarm('Trying');
        this.#final = response;
        if (response) this.#sendResponse(response);
        if (this.#state !== 'Completed') return;
        // RFC 3261 §17.2.1: "When the 'Completed' state is entered, timer H MUST be set to fire in 64*T1 seconds for
        // all transports. ... If an unreliable transport is being used, timer G is set to fire in T1 seconds, and is
        // not set to fire for reliable transports."
        if (t.G !== undefined) {
          this.#intervalG = t.G;
          this.arm('G', t.G, () => this.#timerG());
        }
        this.arm('H', t.H, () => this.#timerH());
        return;
      case 'Confirmed':
        // RFC 3261 §17.2.1: "When this state is entered, timer I is set to fire in T4 seconds for unreliable
        // transports, and zero seconds for reliable transports." Timers G and H no longer apply.
        this.disarm('G', 'H');
        if (t.I <= 0) this.transition('Terminated');
        else this.arm('I', t.I, () => this.transition('Terminated'));
        return;
      case 'Terminated':
        this.disarmAll();
        this.env.events.terminated(this);
        return;
      case 'Proceeding':
        return;
    }
  }

  #sendResponse(response: SipResponse): void {
    this.send(response, { kind: 'response', replyTo: this.transportInfo, request: this.request });
  }

  #sendTrying(): void {
    if (this.#state !== 'Proceeding' || this.#lastProvisional) return;
    this.#lastProvisional = build100Trying(this.request);
    this.#sendResponse(this.#lastProvisional);
  }

  #timerG(): void {
    if (this.#state !== 'Completed' || !this.#final) return;
    // RFC 3261 §17.2.1: "If timer G fires, the response is passed to the transport layer once more for
    // retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds. From then on, when timer G fires, the
    // response is passed to the transport again for transmission, and timer G is reset with a value that doubles,
    // unless that value exceeds T2, in which case it is reset with the value of T2."
    this.#sendResponse(this.#final);
    this.#intervalG = Math.min(2 * this.#intervalG, this.env.timers.t2);
    this.arm('G', this.#intervalG, () => this.#timerG());
  }

  #timerH(): void {
    if (this.#state !== 'Completed') return;
    // RFC 3261 §17.2.1: "If timer H fires while in the Completed state, it implies that the ACK was never received.
    // In this case, the server transaction MUST transition to the Terminated state, and MUST indicate to the TU that a
    // transaction failure has occurred."
    this.env.events.timeout(this);
    this.terminate();
  }
}
