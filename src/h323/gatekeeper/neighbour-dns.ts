import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Clock } from '../../common/timers.ts';

/** Resolves a host name to one address of `family`; rejects when it cannot. */
export type HostLookup = (host: string, family: 4 | 6) => Promise<string>;

/** The system resolver (`getaddrinfo` through node:dns: /etc/hosts, then DNS). */
export const systemLookup: HostLookup = async (host, family) => (await lookup(host, { family })).address;

/** A lookup's outcome: the address, or why the name gives none. */
export type Resolved = { ok: true; ip: string } | { ok: false; reason: string };

export interface NeighbourDnsCounters {
  /** Lookups started (a cached answer starts none). */
  lookups: number;
  /** Lookups that failed (no such name, resolver error, not an address). */
  failures: number;
  /** Waits that gave up before the lookup answered (the caller's bound). */
  timeouts: number;
  /** Answers given from the cache (good or failed). */
  cacheHits: number;
}

interface Entry {
  /** The last address the name resolved to (kept after expiry for recognising the neighbour's own requests). */
  ip?: string;
  /** Set when the last lookup failed. */
  reason?: string;
  /** Clock ms until which the entry answers without a lookup. */
  until: number;
  inFlight?: Promise<Resolved>;
}

export interface NeighbourDnsOptions {
  clock: Clock;
  lookup?: HostLookup;
  family: 4 | 6;
  /** How long a resolved address is used before the name is looked up again (default 60 s). */
  ttlMs?: number;
  /** How long a failed lookup is answered from the cache, so a burst of searches costs one lookup (default 5 s). */
  failureTtlMs?: number;
}

/**
 * Addresses of H.323 neighbour gatekeepers configured by host name: looked up when a zone is used, kept `ttlMs`,
 * looked up again after; concurrent searches share one lookup. A lookup never throws to the caller: a failure (or
 * one slower than the caller's bound) is counted and answered `{ ok: false }`, as an unreachable neighbour. The
 * lookup is injected (the node passes the system resolver); time comes from the clock.
 */
export class NeighbourDns {
  readonly counters: NeighbourDnsCounters = { lookups: 0, failures: 0, timeouts: 0, cacheHits: 0 };
  readonly #o: NeighbourDnsOptions;
  readonly #lookup: HostLookup;
  readonly #entries = new Map<string, Entry>();

  constructor(o: NeighbourDnsOptions) {
    this.#o = o;
    this.#lookup = o.lookup ?? systemLookup;
  }

  /** The address `host` last resolved to, whatever its age (undefined: never resolved). */
  known(host: string): string | undefined {
    return this.#entries.get(host.toLowerCase())?.ip;
  }

  /** True when `host` has no answer in the cache that is still fresh. */
  stale(host: string): boolean {
    const e = this.#entries.get(host.toLowerCase());
    return !e || e.until <= this.#o.clock.now();
  }

  /**
   * The address of `host`: from the cache while fresh, else from a lookup (waited for at most `timeoutMs`; a lookup
   * that answers later still fills the cache).
   */
  resolve(host: string, timeoutMs: number): Promise<Resolved> {
    const e = this.#entries.get(host.toLowerCase());
    if (e && e.until > this.#o.clock.now() && !e.inFlight) {
      this.counters.cacheHits++;
      return Promise.resolve(e.reason === undefined && e.ip ? { ok: true, ip: e.ip } : this.#failed(e));
    }
    const inFlight = this.lookUp(host);
    return new Promise<Resolved>((done) => {
      let settled = false;
      const timer = this.#o.clock.setTimer(timeoutMs, () => {
        if (settled) return;
        settled = true;
        this.counters.timeouts++;
        done({ ok: false, reason: `no answer within ${timeoutMs} ms` });
      });
      void inFlight.then((r) => {
        if (settled) return;
        settled = true;
        timer.cancel();
        done(r);
      });
    });
  }

  /**
   * Looks `host` up now, whatever the cache holds (one lookup shared with any already in flight), with no bound of its
   * own: the node looks its neighbours' names up this way when it starts, so that their requests are recognised
   * before any search. Never rejects; the answer fills the cache as `resolve`'s do.
   */
  lookUp(host: string): Promise<Resolved> {
    const key = host.toLowerCase();
    let e = this.#entries.get(key);
    if (!e) {
      e = { until: 0 };
      this.#entries.set(key, e);
    }
    const entry = e;
    if (!entry.inFlight) {
      this.counters.lookups++;
      entry.inFlight = this.#run(host).then((r) => {
        entry.inFlight = undefined;
        const at = this.#o.clock.now();
        if (r.ok) {
          entry.ip = r.ip;
          entry.reason = undefined;
          entry.until = at + (this.#o.ttlMs ?? 60_000);
        } else {
          this.counters.failures++;
          entry.reason = r.reason;
          entry.until = at + (this.#o.failureTtlMs ?? 5_000);
        }
        return r;
      });
    }
    return entry.inFlight;
  }

  #failed(e: Entry): Resolved {
    return { ok: false, reason: e.reason ?? 'not resolved' };
  }

  async #run(host: string): Promise<Resolved> {
    try {
      const ip = await this.#lookup(host, this.#o.family);
      return isIP(ip) !== 0 ? { ok: true, ip } : { ok: false, reason: 'the resolver gave no address' };
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      return { ok: false, reason: typeof code === 'string' ? code : String((err as Error)?.message ?? err) };
    }
  }
}
