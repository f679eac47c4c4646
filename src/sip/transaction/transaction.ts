import type { Logger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { SipMessage, SipRequest, SipResponse } from '../message/types.ts';
import type { TimerValues } from './timer-values.ts';
import type { OutboundTarget, PreparedSend, TransactionKind, TransactionSender, TransportInfo } from './types.ts';

/** Upcalls from a transaction machine to the layer that owns it (which routes them to the TU). */
export interface TransactionEvents {
  /** A client transaction hands a response up. */
  response(tx: TransactionBase, response: SipResponse, info: TransportInfo): void;
  timeout(tx: TransactionBase): void;
  transportError(tx: TransactionBase): void;
  /** Entered Terminated: every timer is already cancelled; the layer removes it from its table. */
  terminated(tx: TransactionBase): void;
  /**
   * A non-INVITE server transaction entered Completed on an unreliable transport with this final response (and its
   * prepared bytes, when the sender prepares). True when the layer took over Completed with a compact record (it then
   * absorbs retransmissions and runs Timer J); false when the transaction must run Completed itself.
   */
  completed?(
    tx: TransactionBase,
    response: SipResponse,
    prepared: PreparedSend | undefined,
    target: OutboundTarget,
  ): boolean;
}

/** What a machine needs from the world: injected clock, resolved timers, the sender, the layer's upcalls. */
export interface TransactionEnv {
  readonly clock: Clock;
  readonly timers: TimerValues;
  readonly sender: TransactionSender;
  readonly events: TransactionEvents;
  readonly log: Logger;
}

/** Named timers and sending shared by the four machines; the states and transitions live in each machine's file. */
export abstract class TransactionBase {
  abstract readonly kind: TransactionKind;
  abstract get state(): string;
  readonly key: string;
  readonly request: SipRequest;
  protected readonly env: TransactionEnv;
  /** Created on first use: a transaction answered at once never arms a timer of its own. */
  #timers: Map<string, TimerHandle> | undefined;

  constructor(key: string, request: SipRequest, env: TransactionEnv) {
    this.key = key;
    this.request = request;
    this.env = env;
  }

  /** Names of the timers armed now (for tests and diagnostics). */
  get armedTimers(): string[] {
    return this.#timers ? [...this.#timers.keys()].sort() : [];
  }

  /** True once in Terminated. */
  get terminated(): boolean {
    return this.state === 'Terminated';
  }

  /** Arms (or re-arms) a named timer. */
  protected arm(name: string, delayMs: number, fire: () => void): void {
    this.#timers ??= new Map();
    const timers = this.#timers;
    timers.get(name)?.cancel();
    // A send may report a transport error synchronously and end the transaction: never arm after Terminated.
    if (this.terminated) return;
    const handle = this.env.clock.setTimer(delayMs, () => {
      if (timers.get(name) !== handle) return;
      timers.delete(name);
      fire();
    });
    timers.set(name, handle);
  }

  protected disarm(...names: string[]): void {
    const timers = this.#timers;
    if (!timers) return;
    for (const name of names) {
      timers.get(name)?.cancel();
      timers.delete(name);
    }
  }

  protected disarmAll(): void {
    if (!this.#timers) return;
    for (const handle of this.#timers.values()) handle.cancel();
    this.#timers = undefined;
  }

  protected send(message: SipMessage, target: OutboundTarget): void {
    this.env.sender.send(message, target, this.key);
  }

  /**
   * Sends a message serialized once through the sender's `prepare`, when it has one, and returns what was prepared
   * (to re-send the same bytes later); otherwise sends it as usual and returns undefined.
   */
  protected sendOnce(message: SipMessage, target: OutboundTarget): PreparedSend | undefined {
    const sender = this.env.sender;
    const prepared = sender.prepare && sender.sendPrepared ? sender.prepare(message, target) : undefined;
    if (prepared) sender.sendPrepared!(prepared, this.key);
    else sender.send(message, target, this.key);
    return prepared;
  }

  /** Ends the transaction from outside (layer shutdown): no TU notification but `terminated`. */
  abstract terminate(): void;

  /** The transport layer reported a failure sending for this transaction. */
  abstract transportError(): void;
}
