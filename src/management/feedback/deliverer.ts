import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { ManagementEvent } from '../events.ts';

/** Where events go: a management system's URL, the events it wants (empty: all) and its credentials. */
export interface FeedbackTarget {
  /** Stable key (`config:0`, `api:12`): a subscriber keeps its queue across a change of the list. */
  readonly key: string;
  readonly url: string;
  readonly events: readonly string[];
  readonly username?: string;
  readonly password?: string;
}

/** Sends one POST; resolves with the HTTP status, rejects on a network or TLS failure. */
export type FeedbackPost = (target: FeedbackTarget, body: string) => Promise<number>;

export interface DelivererOptions {
  clock: Clock;
  post: FeedbackPost;
  /** Events queued per subscriber; when full the oldest is dropped and counted. */
  queueLimit: number;
  retryMinMs: number;
  retryMaxMs: number;
  /** Told of each failed attempt (for a rate-limited log line). */
  onFailure?: (target: FeedbackTarget, reason: string) => void;
}

/** Delivery counters of one subscriber (status page, metrics). */
export interface SubscriberStatus {
  key: string;
  url: string;
  queued: number;
  delivered: number;
  /** Dropped because the queue was full (the subscriber was down for long). */
  dropped: number;
  /** Refused by the subscriber with a 4xx other than 408/429: not retried. */
  rejected: number;
  failures: number;
  lastError?: string;
  /** Delay before the next attempt while retrying (ms). */
  retryInMs?: number;
}

class Subscriber {
  target: FeedbackTarget;
  readonly queue: string[] = [];
  head = 0;
  inFlight = false;
  timer: TimerHandle | undefined;
  retryMs = 0;
  retryAt: number | undefined;
  delivered = 0;
  dropped = 0;
  rejected = 0;
  failures = 0;
  lastError: string | undefined;
  closed = false;

  constructor(target: FeedbackTarget) {
    this.target = target;
  }

  get length(): number {
    return this.queue.length - this.head;
  }

  shift(): void {
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}

/**
 * Feedback events: each event a subscriber wants is queued for it and POSTed as JSON, one at a time so the subscriber
 * sees them in order; a failed POST is retried after a delay doubling from `retryMinMs` to `retryMaxMs`; a full
 * queue drops its oldest event and counts it. Sans-I/O: time from the clock, the POST injected.
 */
export class FeedbackDeliverer {
  readonly #o: DelivererOptions;
  readonly #subs = new Map<string, Subscriber>();
  #closed = false;

  constructor(options: DelivererOptions) {
    this.#o = options;
  }

  /** Replaces the subscriber list; subscribers whose key stays keep their queue. */
  setTargets(targets: readonly FeedbackTarget[]): void {
    const keep = new Set(targets.map((t) => t.key));
    for (const [key, s] of this.#subs) {
      if (keep.has(key)) continue;
      s.closed = true;
      s.timer?.cancel();
      this.#subs.delete(key);
    }
    for (const t of targets) {
      const s = this.#subs.get(t.key);
      if (s) s.target = t;
      else this.#subs.set(t.key, new Subscriber(t));
    }
  }

  /** Queues the event for every subscriber that wants it. */
  publish(event: ManagementEvent): void {
    if (this.#closed) return;
    let body: string | undefined;
    for (const s of this.#subs.values()) {
      if (s.target.events.length > 0 && !s.target.events.includes(event.event)) continue;
      body ??= JSON.stringify(event);
      if (s.length >= this.#o.queueLimit) {
        // The oldest undelivered event goes; the one in flight (at head) is kept so ordering holds.
        const at = s.inFlight ? s.head + 1 : s.head;
        if (at < s.queue.length) {
          s.queue.splice(at, 1);
          s.dropped++;
        }
      }
      s.queue.push(body);
      this.#pump(s);
    }
  }

  #pump(s: Subscriber): void {
    if (s.inFlight || s.timer || s.closed || this.#closed || s.length === 0) return;
    const body = s.queue[s.head]!;
    s.inFlight = true;
    const done = (ok: boolean, drop: boolean, reason?: string) => {
      s.inFlight = false;
      if (s.closed || this.#closed) return;
      if (ok || drop) {
        s.shift();
        if (ok) s.delivered++;
        else s.rejected++;
        s.retryMs = 0;
        s.retryAt = undefined;
        if (reason) s.lastError = reason;
        this.#pump(s);
        return;
      }
      s.failures++;
      s.lastError = reason;
      this.#o.onFailure?.(s.target, reason ?? 'failed');
      s.retryMs = s.retryMs === 0 ? this.#o.retryMinMs : Math.min(s.retryMs * 2, this.#o.retryMaxMs);
      s.retryAt = this.#o.clock.now() + s.retryMs;
      s.timer = this.#o.clock.setTimer(s.retryMs, () => {
        s.timer = undefined;
        this.#pump(s);
      });
    };
    let p: Promise<number>;
    try {
      p = this.#o.post(s.target, body);
    } catch (err) {
      p = Promise.reject(err);
    }
    p.then(
      (status) => {
        if (status >= 200 && status < 300) done(true, false);
        else if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          done(false, true, `HTTP ${status}`);
        } else done(false, false, `HTTP ${status}`);
      },
      (err: unknown) => done(false, false, (err as Error)?.message ?? String(err)),
    );
  }

  status(): SubscriberStatus[] {
    const now = this.#o.clock.now();
    return [...this.#subs.values()].map((s) => ({
      key: s.target.key,
      url: s.target.url,
      queued: s.length,
      delivered: s.delivered,
      dropped: s.dropped,
      rejected: s.rejected,
      failures: s.failures,
      ...(s.lastError ? { lastError: s.lastError } : {}),
      ...(s.retryAt !== undefined && s.timer ? { retryInMs: Math.max(0, s.retryAt - now) } : {}),
    }));
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#subs.values()) {
      s.closed = true;
      s.timer?.cancel();
    }
  }
}
