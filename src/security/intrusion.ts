/**
 * Intrusion protection: per source address, failed authentications and malformed requests are counted in a sliding
 * window; a source reaching a category's threshold is blocked for a while, and the transport drops its packets before
 * parsing them (`SourcePolicy`). Exempt networks (CIDRs) are never blocked. Sans-I/O: time comes from the injected
 * clock; blocks are checked lazily on lookup, and the tables are bounded.
 */
import { BlockList, isIP } from 'node:net';
import type { Clock } from '../common/timers.ts';

/** What is counted against a source. */
export type IntrusionCategory = 'auth' | 'malformed' | 'flood';

/** Thresholds of one category: `threshold` events within `windowMs` block the source for `blockMs`. */
export interface CategoryLimits {
  threshold: number;
  windowMs: number;
  blockMs: number;
}

export interface IntrusionGuardOptions {
  clock: Clock;
  enabled: boolean;
  limits: Readonly<Record<IntrusionCategory, CategoryLimits>>;
  /** CIDRs (or single addresses) never blocked. */
  exempt: readonly string[];
  /** Sources tracked at most (oldest forgotten first). */
  maxTrackedSources: number;
  /** Told when a source gets blocked (persistence, logs). Must not throw. */
  onBlock?: (block: Block) => void;
  /** Told when a block ends early (cleared) or is found expired. Must not throw. */
  onUnblock?: (address: string, why: 'cleared' | 'expired') => void;
}

/** A blocked source. */
export interface Block {
  address: string;
  category: IntrusionCategory | 'manual';
  /** Wall-clock ms. */
  since: number;
  until: number;
  /** Events counted in the window when the block started. */
  events: number;
}

/** Counters, for status and tests. */
export interface IntrusionCounters {
  blocksStarted: number;
  droppedPackets: number;
  refusedConnections: number;
  events: Record<IntrusionCategory, number>;
}

/** What the transport asks before handling a packet or a connection (see `SipTransportLayer.setSourcePolicy`). */
export interface SourcePolicy {
  /** False: drop the packet / refuse the connection, before parsing. Called per packet: O(1). */
  allows(address: string): boolean;
  /** A malformed message came from `address`. */
  onMalformed(address: string): void;
}

/** Ring of the last `threshold` event times of one category. */
interface Ring {
  times: Float64Array;
  next: number;
  n: number;
}

interface Tracked {
  rings: Partial<Record<IntrusionCategory, Ring>>;
}

/** Normalizes an address as tables key it (IPv4-mapped IPv6 → IPv4, IPv6 lower-case, no brackets). */
export function normalizeAddress(address: string): string {
  let a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  if (a.startsWith('::ffff:') && a.includes('.')) a = a.slice(7);
  return a.toLowerCase();
}

/** Parses an exemption entry (`10.0.0.0/8`, `2001:db8::/32`, `192.0.2.7`) into a BlockList; throws on a bad one. */
export function buildNetworkList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const e of entries) {
    const [addr, len] = e.split('/') as [string, string | undefined];
    const family = isIP(addr);
    if (family === 0) throw new RangeError(`not an IP address or CIDR: ${e}`);
    const type = family === 6 ? 'ipv6' : 'ipv4';
    if (len === undefined) {
      list.addAddress(addr, type);
      continue;
    }
    const prefix = Number(len);
    if (!/^\d+$/.test(len) || prefix > (family === 6 ? 128 : 32)) throw new RangeError(`bad prefix length in ${e}`);
    list.addSubnet(addr, prefix, type);
  }
  return list;
}

/** The per-node intrusion guard. */
export class IntrusionGuard implements SourcePolicy {
  readonly #o: IntrusionGuardOptions;
  readonly #exempt: BlockList;
  readonly #tracked = new Map<string, Tracked>();
  readonly #blocks = new Map<string, Block>();
  readonly counters: IntrusionCounters = {
    blocksStarted: 0,
    droppedPackets: 0,
    refusedConnections: 0,
    events: { auth: 0, malformed: 0, flood: 0 },
  };

  constructor(o: IntrusionGuardOptions) {
    this.#o = o;
    this.#exempt = buildNetworkList(o.exempt);
  }

  get enabled(): boolean {
    return this.#o.enabled;
  }

  /** True when `address` is in an exempt network. */
  isExempt(address: string): boolean {
    const a = normalizeAddress(address);
    const family = isIP(a);
    if (family === 0) return false;
    return this.#exempt.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }

  /** The active block of `address`, if any (an expired one is removed on the way). */
  blockOf(address: string): Block | undefined {
    if (this.#blocks.size === 0) return undefined;
    const a = normalizeAddress(address);
    const b = this.#blocks.get(a);
    if (!b) return undefined;
    if (b.until <= this.#o.clock.wallNow()) {
      this.#blocks.delete(a);
      this.#notifyUnblock(a, 'expired');
      return undefined;
    }
    return b;
  }

  allows(address: string): boolean {
    if (this.#blocks.size === 0) return true;
    if (!this.blockOf(address)) return true;
    this.counters.droppedPackets++;
    return false;
  }

  /** Like `allows`, for a new connection (counted apart). */
  allowsConnection(address: string): boolean {
    if (this.#blocks.size === 0 || !this.blockOf(address)) return true;
    this.counters.refusedConnections++;
    return false;
  }

  onMalformed(address: string): void {
    this.record(address, 'malformed');
  }

  /** A failed authentication from `address`. */
  onAuthFailure(address: string): void {
    this.record(address, 'auth');
  }

  /** A request over a rate limit from `address` (H.323 RAS/Setup floods). */
  onFlood(address: string): void {
    this.record(address, 'flood');
  }

  /** Counts one event; returns the block it started, if any. */
  record(address: string, category: IntrusionCategory): Block | undefined {
    this.counters.events[category]++;
    if (!this.#o.enabled) return undefined;
    const a = normalizeAddress(address);
    if (this.isExempt(a) || this.blockOf(a)) return undefined;
    const limits = this.#o.limits[category];
    if (limits.threshold <= 0) return undefined;
    let t = this.#tracked.get(a);
    if (t) {
      this.#tracked.delete(a);
    } else {
      t = { rings: {} };
      while (this.#tracked.size >= this.#o.maxTrackedSources) {
        const oldest = this.#tracked.keys().next();
        if (oldest.done) break;
        this.#tracked.delete(oldest.value);
      }
    }
    this.#tracked.set(a, t);
    let ring = t.rings[category];
    if (!ring) {
      ring = { times: new Float64Array(limits.threshold), next: 0, n: 0 };
      t.rings[category] = ring;
    }
    const now = this.#o.clock.now();
    ring.times[ring.next] = now;
    ring.next = (ring.next + 1) % ring.times.length;
    ring.n = Math.min(ring.n + 1, ring.times.length);
    // The ring holds the last `threshold` events; the oldest is at `next` once full. Sliding window: block when the
    // last `threshold` events all fall within `windowMs`.
    if (ring.n < limits.threshold) return undefined;
    const oldest = ring.times[ring.next]!;
    if (now - oldest > limits.windowMs) return undefined;
    this.#tracked.delete(a);
    return this.block(a, category, limits.blockMs, limits.threshold);
  }

  /** Blocks `address` for `durationMs` (also used to restore persisted blocks and for manual blocks). */
  block(address: string, category: Block['category'], durationMs: number, events = 0, since?: number): Block {
    const a = normalizeAddress(address);
    const now = this.#o.clock.wallNow();
    const b: Block = { address: a, category, since: since ?? now, until: now + durationMs, events };
    this.#blocks.set(a, b);
    this.counters.blocksStarted++;
    try {
      this.#o.onBlock?.(b);
    } catch {
      // a hook must not break the guard
    }
    return b;
  }

  /** Restores a block read back from the store (no hook call). Expired ones are ignored. */
  restore(b: Block): void {
    if (b.until <= this.#o.clock.wallNow()) return;
    this.#blocks.set(normalizeAddress(b.address), { ...b, address: normalizeAddress(b.address) });
  }

  /** Ends the block of `address` (and forgets its counts); false when it was not blocked. */
  clear(address: string): boolean {
    const a = normalizeAddress(address);
    this.#tracked.delete(a);
    const had = this.#blocks.delete(a);
    if (had) this.#notifyUnblock(a, 'cleared');
    return had;
  }

  /** Ends every block; returns how many there were. */
  clearAll(): number {
    const all = [...this.#blocks.keys()];
    this.#blocks.clear();
    this.#tracked.clear();
    for (const a of all) this.#notifyUnblock(a, 'cleared');
    return all.length;
  }

  /** Active blocks, oldest first. */
  blocks(): Block[] {
    const now = this.#o.clock.wallNow();
    for (const [a, b] of this.#blocks) {
      if (b.until <= now) {
        this.#blocks.delete(a);
        this.#notifyUnblock(a, 'expired');
      }
    }
    return [...this.#blocks.values()].sort((x, y) => x.since - y.since).map((b) => ({ ...b }));
  }

  get trackedSources(): number {
    return this.#tracked.size;
  }

  #notifyUnblock(address: string, why: 'cleared' | 'expired'): void {
    try {
      this.#o.onUnblock?.(address, why);
    } catch {
      // a hook must not break the guard
    }
  }
}
