/**
 * A per-source rate limit: at most `perSecond` events per source address in each one-second window. Sans-I/O (the
 * monotonic clock is injected); the table is bounded (sources not seen for a window are pruned when it fills, and
 * past `maxSources` a new source is let through untracked rather than growing memory).
 */
export class SourceRateLimiter {
  readonly #perSecond: number;
  readonly #now: () => number;
  readonly #max: number;
  readonly #table = new Map<string, { start: number; n: number }>();

  constructor(perSecond: number, now: () => number, maxSources = 100_000) {
    this.#perSecond = perSecond;
    this.#now = now;
    this.#max = maxSources;
  }

  /** Counts one event from `address`; false when it is over the limit (a limit of 0 lets everything through). */
  allow(address: string): boolean {
    if (this.#perSecond <= 0) return true;
    const now = this.#now();
    let e = this.#table.get(address);
    if (!e) {
      if (this.#table.size >= this.#max) {
        for (const [a, x] of this.#table) if (now - x.start >= 1000) this.#table.delete(a);
        if (this.#table.size >= this.#max) return true;
      }
      e = { start: now, n: 0 };
      this.#table.set(address, e);
    } else if (now - e.start >= 1000) {
      e.start = now;
      e.n = 0;
    }
    if (e.n >= this.#perSecond) return false;
    e.n++;
    return true;
  }

  get trackedSources(): number {
    return this.#table.size;
  }
}
