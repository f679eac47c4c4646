import { randomInt } from 'node:crypto';
import type { MediaPool } from '../ports/types.ts';

/**
 * Even/odd port pairs from the port plan's media pool (RTP on the even port, RTCP on the next odd one), never a demux
 * port (the plan's pool already leaves them out). Allocation walks the pool round-robin from where it last stopped,
 * so a port just released is the last to be reused (late packets of a finished call do not reach the next one).
 * O(1) release, amortised O(1) allocation; no per-call objects.
 */
export class PortAllocator {
  /** RTP port of each pair, in pool order. */
  readonly #rtp: Int32Array;
  readonly #index = new Map<number, number>();
  readonly #used: Uint8Array;
  #cursor = 0;
  #inUse = 0;

  /**
   * `randomStart`: the walk begins at a random pair instead of the first, so relays of several processes on one host
   * (test runs, a second instance) do not all walk the same end of a shared pool.
   */
  constructor(pool: Pick<MediaPool, 'ranges'>, options: { randomStart?: boolean } = {}) {
    const rtp: number[] = [];
    for (const r of pool.ranges) {
      const first = r.from % 2 === 0 ? r.from : r.from + 1;
      for (let p = first; p + 1 <= r.to; p += 2) rtp.push(p);
    }
    this.#rtp = Int32Array.from(rtp);
    this.#used = new Uint8Array(rtp.length);
    for (let i = 0; i < rtp.length; i++) this.#index.set(rtp[i]!, i);
    if (options.randomStart && rtp.length > 0) this.jump();
  }

  /**
   * Moves the walk to a random pair: after a pair was found taken by another process, whose sockets often hold a
   * block of consecutive ports, the next attempt looks elsewhere in the pool.
   */
  jump(): void {
    if (this.#rtp.length > 0) this.#cursor = randomInt(this.#rtp.length);
  }

  /** Number of pairs in the pool. */
  get capacity(): number {
    return this.#rtp.length;
  }

  /** Pairs allocated now. */
  get inUse(): number {
    return this.#inUse;
  }

  /** The RTP port of a free pair (RTCP is RTP + 1), or undefined when every pair is taken. */
  allocate(): number | undefined {
    const n = this.#rtp.length;
    if (this.#inUse >= n) return undefined;
    for (let k = 0; k < n; k++) {
      const i = this.#cursor;
      this.#cursor = i + 1 === n ? 0 : i + 1;
      if (this.#used[i] === 0) {
        this.#used[i] = 1;
        this.#inUse++;
        return this.#rtp[i]!;
      }
    }
    return undefined;
  }

  /** Gives a pair back; false when the port was not allocated (a double release is refused, not counted twice). */
  release(rtpPort: number): boolean {
    const i = this.#index.get(rtpPort);
    if (i === undefined || this.#used[i] === 0) return false;
    this.#used[i] = 0;
    this.#inUse--;
    return true;
  }

  isAllocated(rtpPort: number): boolean {
    const i = this.#index.get(rtpPort);
    return i !== undefined && this.#used[i] === 1;
  }
}
