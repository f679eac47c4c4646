import type { Logger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { SipMessage, SipRequest, SipResponse } from '../message/types.ts';
import type { TimerValues } from './timer-values.ts';
import type { OutboundTarget, TransactionKind, TransactionSender, TransportInfo } from './types.ts';

/** Upcalls from a transaction machine to the layer that owns it (which routes them to the TU). */
export interface TransactionEvents {
  /** A client transaction hands a response up. */
  response(tx: TransactionBase, response: SipResponse, info: TransportInfo): void;
  timeout(tx: TransactionBase): void;
  transportError(tx: TransactionBase): void;
  /** Entered Terminated: every timer is already cancelled; the layer removes it from its table. */
  terminated(tx: TransactionBase): void;
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
  readonly #timers = new Map<string, TimerHandle>();

  constructor(key: string, request: SipRequest, env: TransactionEnv) {
    this.key = key;
    this.request = request;
    this.env = env;
  }

  /** Names of the timers armed now (for tests and diagnostics). */
  get armedTimers(): string[] {
    return [...this.#timers.keys()].sort();
  }

  /** True once in Terminated. */
  get terminated(): boolean {
    return this.state === 'Terminated';
  }

  /** Arms (or re-arms) a named timer. */
  protected arm(name: string, delayMs: number, fire: () => void): void {
    this.#timers.get(name)?.cancel();
    // A send may report a transport error synchronously and end the transaction: never arm after Terminated.
    if (this.terminated) return;
    const handle = this.env.clock.setTimer(delayMs, () => {
      if (this.#timers.get(name) !== handle) return;
      this.#timers.delete(name);
      fire();
    });
    this.#timers.set(name, handle);
  }

  protected disarm(...names: string[]): void {
    for (const name of names) {
      this.#timers.get(name)?.cancel();
      this.#timers.delete(name);
    }
  }

  protected disarmAll(): void {
    for (const handle of this.#timers.values()) handle.cancel();
    this.#timers.clear();
  }

  protected send(message: SipMessage, target: OutboundTarget): void {
    this.env.sender.send(message, target, this.key);
  }

  /** Ends the transaction from outside (layer shutdown): no TU notification but `terminated`. */
  abstract terminate(): void;

  /** The transport layer reported a failure sending for this transaction. */
  abstract transportError(): void;
}
