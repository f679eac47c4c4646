/**
 * Nonce-count replay protection (RFC 7616 §3.3 nc, §5.11): a bounded table of the nonces in use, each with the highest
 * nc seen and a 64-wide window of the counts below it (requests on one nonce may arrive out of order, e.g. a REGISTER
 * and an INVITE sent together). A count seen twice, or older than the window, is a replay.
 *
 * The table is bounded: when full, the least recently used nonce is forgotten and the `horizon` moves up to its issue
 * time. A nonce the table does not know is accepted only if it was issued after the horizon (so it cannot have been
 * forgotten); an older unknown nonce is answered `unknown`, and the caller re-challenges with stale=true — safe, and
 * the client just retries. After a restart the horizon is the start time: every older nonce is re-challenged once.
 */
const WINDOW = 64n;

interface Entry {
  issuedAt: number;
  max: number;
  /** Bit i set: count `max - i` was seen (bit 0 is `max` itself). */
  seen: bigint;
}

/** What `use` says about a nonce count. */
export type NcCheck = 'fresh' | 'replay' | 'unknown';

export class NonceCountTracker {
  readonly #capacity: number;
  readonly #entries = new Map<string, Entry>();
  #horizon: number;
  #replays = 0;

  /** `horizon`: nonces issued at or before it (wall ms) and not in the table are `unknown`. */
  constructor(capacity: number, horizon: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError('tracker capacity must be a positive integer');
    this.#capacity = capacity;
    this.#horizon = horizon;
  }

  get size(): number {
    return this.#entries.size;
  }

  get horizon(): number {
    return this.#horizon;
  }

  get replays(): number {
    return this.#replays;
  }

  /**
   * Records the use of count `nc` on `nonce` (issued at `issuedAt`, wall ms). Returns `fresh` and records it when the
   * count was never seen, `replay` when it was (or is too old to tell), `unknown` when the nonce may have been
   * forgotten. Call it only for requests whose digest was verified: forged requests must not touch the table.
   */
  use(nonce: string, issuedAt: number, nc: number): NcCheck {
    if (!Number.isSafeInteger(nc) || nc < 1) {
      this.#replays++;
      return 'replay';
    }
    let e = this.#entries.get(nonce);
    if (e) {
      // Most recently used last: re-insert.
      this.#entries.delete(nonce);
      this.#entries.set(nonce, e);
    } else {
      if (issuedAt <= this.#horizon) return 'unknown';
      e = { issuedAt, max: 0, seen: 0n };
      this.#insert(nonce, e);
    }
    if (nc > e.max) {
      const shift = BigInt(nc - e.max);
      e.seen = shift >= WINDOW ? 1n : ((e.seen << shift) | 1n) & ((1n << WINDOW) - 1n);
      e.max = nc;
      return 'fresh';
    }
    const back = BigInt(e.max - nc);
    if (back >= WINDOW || (e.seen >> back) & 1n) {
      this.#replays++;
      return 'replay';
    }
    e.seen |= 1n << back;
    return 'fresh';
  }

  #insert(nonce: string, e: Entry): void {
    while (this.#entries.size >= this.#capacity) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      const gone = this.#entries.get(oldest.value)!;
      this.#entries.delete(oldest.value);
      if (gone.issuedAt > this.#horizon) this.#horizon = gone.issuedAt;
    }
    this.#entries.set(nonce, e);
  }
}
