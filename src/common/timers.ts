/**
 * Time is injected. Protocol engines never call `Date.now()` or `setTimeout`: they receive a `Clock`, and ask it
 * for timers. The composition roots (`src/roles/`) pass `systemClock`; tests pass a `FakeClock` and advance it,
 * so RFC timers run deterministically in microseconds of real time.
 */
export interface TimerHandle {
  /** Cancels the timer; a no-op when it already fired or was cancelled. */
  cancel(): void;
}

export interface Clock {
  /** Milliseconds on a monotonic time line (not wall-clock: never jumps back). */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for things that leave the process (Date headers, records, nonces). */
  wallNow(): number;
  /** Calls `fn` once after `delayMs` (clamped to ≥ 0). */
  setTimer(delayMs: number, fn: () => void): TimerHandle;
}

class SystemTimer implements TimerHandle {
  readonly #t: NodeJS.Timeout;
  constructor(t: NodeJS.Timeout) {
    this.#t = t;
  }
  cancel(): void {
    clearTimeout(this.#t);
  }
}

/** The real clock, used only by composition roots. Timers are `unref`ed: a pending timer never keeps a node up. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimer(delayMs, fn) {
    const t = setTimeout(fn, Math.max(0, delayMs));
    t.unref();
    return new SystemTimer(t);
  },
};

interface FakeEntry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/**
 * A deterministic clock for tests: time moves only when `advance`/`advanceTo`/`runAll` is called; timers due
 * fire in order of due time, then of creation.
 */
export class FakeClock implements Clock {
  #now: number;
  #wallOffset: number;
  #seq = 0;
  #queue: FakeEntry[] = [];

  constructor(start = 0, wallStart = Date.UTC(2026, 0, 1)) {
    this.#now = start;
    this.#wallOffset = wallStart - start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  setTimer(delayMs: number, fn: () => void): TimerHandle {
    const entry: FakeEntry = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#queue.push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Number of timers still armed. */
  get pending(): number {
    return this.#queue.filter((e) => !e.cancelled).length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due on the way (including ones armed meanwhile). */
  advance(ms: number): void {
    this.advanceTo(this.#now + ms);
  }

  advanceTo(t: number): void {
    for (;;) {
      const next = this.#nextDue(t);
      if (!next) break;
      this.#now = next.at;
      next.cancelled = true;
      next.fn();
    }
    this.#now = Math.max(this.#now, t);
    this.#queue = this.#queue.filter((e) => !e.cancelled);
  }

  /** Fires timers until none is left or `limit` have fired; returns how many fired. */
  runAll(limit = 10_000): number {
    let fired = 0;
    for (; fired < limit; fired++) {
      const next = this.#nextDue(Number.POSITIVE_INFINITY);
      if (!next) break;
      this.#now = Math.max(this.#now, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.#queue = this.#queue.filter((e) => !e.cancelled);
    return fired;
  }

  #nextDue(limit: number): FakeEntry | undefined {
    let best: FakeEntry | undefined;
    for (const e of this.#queue) {
      if (e.cancelled || e.at > limit) continue;
      if (!best || e.at < best.at || (e.at === best.at && e.seq < best.seq)) best = e;
    }
    return best;
  }
}
