import { InternalError } from '../common/errors.ts';
import type { Clock, TimerHandle } from '../common/timers.ts';

/** States of a traversal client zone, as the administrator sees them. */
export type ZoneState = 'checking' | 'active' | 'failed' | 'stopped';

export interface ZoneStatus {
  readonly name: string;
  /** `server`: the edge's end of a zone (src/traversal/server-zone.ts); absent: the core's client zone. */
  readonly role?: 'client' | 'server';
  /** `host:port` of the edge's traversal listener. */
  readonly peer: string;
  readonly state: ZoneState;
  /** Wall-clock ms since the zone is in this state. */
  readonly since: number;
  /** Why the last probe failed, while failed (and kept after recovery for the record). */
  readonly lastError?: string;
  readonly probes: number;
  readonly failures: number;
  /** Delay before the next reconnect attempt while failed (ms). */
  readonly retryInMs?: number;
}

export interface ClientZoneOptions {
  name: string;
  peer: string;
  clock: Clock;
  /** Interval of keepalive probes while active (ms). */
  keepaliveMs: number;
  /** First reconnect delay after a failure; doubles up to `retryMaxMs`. */
  retryMinMs: number;
  retryMaxMs: number;
  /**
   * Sends one keepalive (an OPTIONS on the zone's flow; the transport opens the connection when there is none).
   * Resolves when the edge answered, rejects with the reason otherwise.
   */
  probe: () => Promise<void>;
  /** Told of every state change. Must not throw (a throw is swallowed). */
  onChange?: (status: ZoneStatus) => void;
}

const EDGES: Readonly<Record<ZoneState, readonly ZoneState[]>> = {
  checking: ['active', 'failed', 'stopped'],
  active: ['failed', 'stopped'],
  failed: ['active', 'stopped'],
  stopped: [],
};

/**
 * The core's end of a traversal zone: keeps a flow to the edge alive with periodic probes, and reconnects with
 * exponential backoff when a probe fails. Sans-I/O: the probe is injected, time comes from the clock.
 */
export class TraversalClientZone {
  readonly #o: ClientZoneOptions;
  #state: ZoneState = 'checking';
  #since: number;
  #lastError: string | undefined;
  #probes = 0;
  #failures = 0;
  #retryMs: number;
  #timer: TimerHandle | undefined;
  #inFlight = false;
  /** Bumped when the flow is declared lost: the outcome of a probe sent before that no longer counts. */
  #generation = 0;
  #started = false;

  constructor(options: ClientZoneOptions) {
    if (!(options.keepaliveMs > 0 && options.retryMinMs > 0 && options.retryMaxMs >= options.retryMinMs)) {
      throw new InternalError('ERR_ZONE_TIMERS', 'invalid traversal zone timers');
    }
    this.#o = options;
    this.#since = options.clock.wallNow();
    this.#retryMs = options.retryMinMs;
  }

  /** `host:port` of the edge's traversal listener. */
  get peer(): string {
    return this.#o.peer;
  }

  get state(): ZoneState {
    return this.#state;
  }

  status(): ZoneStatus {
    return {
      name: this.#o.name,
      peer: this.#o.peer,
      state: this.#state,
      since: this.#since,
      probes: this.#probes,
      failures: this.#failures,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#state === 'failed' ? { retryInMs: this.#retryMs } : {}),
    };
  }

  /** Starts probing at once. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule(0);
  }

  stop(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#state !== 'stopped') this.#transition('stopped');
  }

  /**
   * The zone's connection closed (reset by a firewall, closed by the edge): the flow has failed (RFC 5626 §4.4.1), so
   * the zone goes to failed at once and reconnects after `retryMinMs`, instead of waiting for the keepalive sent on the
   * dead connection to time out. A probe still in flight is disregarded.
   */
  flowClosed(reason = 'flow closed'): void {
    if (!this.#started || this.#state === 'stopped') return;
    this.#generation++;
    this.#inFlight = false;
    this.#failures++;
    this.#lastError = reason;
    this.#retryMs = this.#o.retryMinMs;
    if (this.#state !== 'failed') this.#transition('failed');
    else this.#notify();
    this.#schedule(this.#retryMs);
  }

  #schedule(ms: number): void {
    this.#timer?.cancel();
    this.#timer = this.#o.clock.setTimer(ms, () => {
      this.#timer = undefined;
      this.#probe();
    });
  }

  #probe(): void {
    if (this.#state === 'stopped' || this.#inFlight) return;
    this.#inFlight = true;
    this.#probes++;
    const generation = this.#generation;
    let settled: Promise<void>;
    try {
      settled = this.#o.probe();
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled.then(
      () => generation === this.#generation && this.#probeDone(undefined),
      (err: unknown) =>
        generation === this.#generation && this.#probeDone(err instanceof Error ? err.message : String(err)),
    );
  }

  #probeDone(error: string | undefined): void {
    this.#inFlight = false;
    if (this.#state === 'stopped') return;
    if (error === undefined) {
      this.#retryMs = this.#o.retryMinMs;
      if (this.#state !== 'active') this.#transition('active');
      this.#schedule(this.#o.keepaliveMs);
      return;
    }
    this.#failures++;
    this.#lastError = error;
    if (this.#state !== 'failed') {
      this.#retryMs = this.#o.retryMinMs;
      this.#transition('failed');
    } else {
      this.#retryMs = Math.min(this.#retryMs * 2, this.#o.retryMaxMs);
      this.#notify();
    }
    this.#schedule(this.#retryMs);
  }

  #transition(to: ZoneState): void {
    if (!EDGES[this.#state].includes(to)) {
      throw new InternalError('ERR_ZONE_STATE', `traversal zone ${this.#o.name}: ${this.#state} → ${to}`);
    }
    this.#state = to;
    this.#since = this.#o.clock.wallNow();
    this.#notify();
  }

  #notify(): void {
    try {
      this.#o.onChange?.(this.status());
    } catch {
      // a listener's failure is not the zone's
    }
  }
}
