import { category, type Logger, silentLogger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { Binding, LocatedBinding, LocationService, RegistrationStore } from './types.ts';

interface AorEntry {
  bindings: Binding[];
  timer: TimerHandle | undefined;
  /** Wall-clock ms the armed timer fires at (Infinity when none). */
  timerAt: number;
}

export interface LocationTableOptions {
  clock: Clock;
  /** Where bindings persist; without one the table lives in memory only. */
  store?: RegistrationStore;
  log?: Logger;
}

/**
 * A stored binding as a restarted node may use it. Connections do not survive a restart: an outbound binding
 * (RFC 5626) over TCP/TLS is only reachable on its flow, which is gone, so it is dropped (RFC 5626 §6: a failed flow
 * removes its bindings; the UA re-registers on a new flow). Other bindings lose their connection id only: the proxy
 * reaches them on a new connection, or by their UDP source address, which survives.
 */
function afterRestart(b: Binding): Binding | undefined {
  if (b.flow.connectionId === undefined) return b;
  if (b.regId !== undefined) return undefined;
  const { connectionId: _gone, ...flow } = b.flow;
  return { ...b, flow };
}

const byPreference = (a: Binding, b: Binding) => b.q - a.q || b.updatedAt - a.updatedAt;

/**
 * The location service: an in-memory index of bindings per AOR in front of a `RegistrationStore`. Expiry is checked
 * lazily on lookup, and each AOR has at most one timer, armed for its earliest expiry: nothing sweeps every binding.
 * A refresh that moves an expiry later leaves the timer as it is; when it fires it re-arms for the new earliest.
 */
export class LocationTable implements LocationService {
  readonly #clock: Clock;
  readonly #store: RegistrationStore | undefined;
  readonly #log: Logger;
  readonly #aors = new Map<string, AorEntry>();
  /**
   * Told when an AOR gains its first binding (`registered`) or loses its last one (`unregistered`: removed, expired or
   * its flow failed); refreshes are not reported. Must not throw (a throw is swallowed).
   */
  onChange: ((aor: string, change: 'registered' | 'unregistered', bindings: number) => void) | undefined;
  /** connection id → AORs with a binding on that flow. */
  readonly #flows = new Map<string, Set<string>>();
  #bindings = 0;
  #closed = false;

  constructor(opts: LocationTableOptions) {
    this.#clock = opts.clock;
    this.#store = opts.store;
    this.#log = category(opts.log ?? silentLogger, 'sip.location');
  }

  /** Creates a table and fills it with the store's live bindings (a restarted node serves them at once). */
  static async open(opts: LocationTableOptions): Promise<LocationTable> {
    const table = new LocationTable(opts);
    if (opts.store) {
      const rows = await opts.store.load(opts.clock.wallNow());
      const grouped = new Map<string, Binding[]>();
      let flowsLost = 0;
      for (const stored of rows) {
        const b = afterRestart(stored);
        if (!b) {
          flowsLost++;
          opts.store.delete(stored.aor, stored.contact);
          continue;
        }
        const list = grouped.get(b.aor);
        if (list) list.push(b);
        else grouped.set(b.aor, [b]);
      }
      for (const [aor, list] of grouped) table.#set(aor, list);
      table.#log.info(
        { aors: grouped.size, bindings: rows.length - flowsLost, flowsLost },
        'bindings loaded from the store',
      );
    }
    return table;
  }

  get aorCount(): number {
    return this.#aors.size;
  }

  get bindingCount(): number {
    return this.#bindings;
  }

  aors(): IterableIterator<string> {
    return this.#aors.keys();
  }

  lookup(aor: string): LocatedBinding[] {
    const entry = this.#aors.get(aor);
    if (!entry) return [];
    const now = this.#clock.wallNow();
    if (entry.bindings.some((b) => b.expiresAt <= now)) {
      this.#expire(aor, entry, now);
      if (!this.#aors.has(aor)) return [];
    }
    return entry.bindings
      .slice()
      .sort(byPreference)
      .map((b) => ({ ...b, expiresIn: Math.max(0, Math.ceil((b.expiresAt - now) / 1000)) }));
  }

  replace(aor: string, bindings: readonly Binding[]): void {
    if (this.#closed) return;
    const old = this.#aors.get(aor)?.bindings ?? [];
    if (this.#store) {
      const kept = new Set(bindings.map((b) => b.contact));
      for (const b of old) if (!kept.has(b.contact)) this.#store.delete(aor, b.contact);
      for (const b of bindings) this.#store.put(b);
    }
    this.#set(aor, bindings.slice());
  }

  removeFlow(connectionId: string): number {
    const aors = this.#flows.get(connectionId);
    if (!aors) return 0;
    let removed = 0;
    for (const aor of [...aors]) {
      const entry = this.#aors.get(aor);
      if (!entry) continue;
      const keep: Binding[] = [];
      for (const b of entry.bindings) {
        if (b.flow.connectionId !== connectionId) keep.push(b);
        else if (b.regId === undefined) {
          // Not an outbound binding: the contact stays reachable on a new connection; only the flow is forgotten.
          const { connectionId: _closed, ...flow } = b.flow;
          keep.push({ ...b, flow });
        } else removed++;
      }
      this.replace(aor, keep);
    }
    this.#flows.delete(connectionId);
    return removed;
  }

  /** Cancels the timers and makes every queued write durable. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#aors.values()) e.timer?.cancel();
    await this.#store?.close();
  }

  #set(aor: string, bindings: Binding[]): void {
    const entry = this.#aors.get(aor);
    const oldCount = entry?.bindings.length ?? 0;
    if (entry) this.#unindexFlows(aor, entry.bindings);
    this.#bindings += bindings.length - oldCount;
    if ((oldCount === 0) !== (bindings.length === 0) && this.onChange) {
      try {
        this.onChange(aor, bindings.length > 0 ? 'registered' : 'unregistered', bindings.length);
      } catch {
        // a listener's failure is not the registrar's
      }
    }
    if (bindings.length === 0) {
      if (entry) {
        entry.timer?.cancel();
        this.#aors.delete(aor);
      }
      return;
    }
    const e: AorEntry = entry ?? { bindings, timer: undefined, timerAt: Number.POSITIVE_INFINITY };
    e.bindings = bindings;
    if (!entry) this.#aors.set(aor, e);
    for (const b of bindings) {
      const id = b.flow.connectionId;
      if (id === undefined) continue;
      const set = this.#flows.get(id);
      if (set) set.add(aor);
      else this.#flows.set(id, new Set([aor]));
    }
    this.#arm(aor, e);
  }

  #unindexFlows(aor: string, bindings: readonly Binding[]): void {
    for (const b of bindings) {
      const id = b.flow.connectionId;
      if (id === undefined) continue;
      const set = this.#flows.get(id);
      if (!set) continue;
      set.delete(aor);
      if (set.size === 0) this.#flows.delete(id);
    }
  }

  #arm(aor: string, e: AorEntry): void {
    let earliest = Number.POSITIVE_INFINITY;
    for (const b of e.bindings) if (b.expiresAt < earliest) earliest = b.expiresAt;
    // A timer armed earlier than needed stays: it re-arms when it fires. Only an earlier expiry re-arms now.
    if (e.timer && e.timerAt <= earliest) return;
    e.timer?.cancel();
    e.timerAt = earliest;
    e.timer = this.#clock.setTimer(earliest - this.#clock.wallNow(), () => {
      e.timer = undefined;
      e.timerAt = Number.POSITIVE_INFINITY;
      if (this.#aors.get(aor) !== e) return;
      this.#expire(aor, e, this.#clock.wallNow());
    });
  }

  #expire(aor: string, e: AorEntry, now: number): void {
    const live = e.bindings.filter((b) => b.expiresAt > now);
    if (live.length !== e.bindings.length) {
      this.#log.debug({ aor, expired: e.bindings.length - live.length }, 'bindings expired');
      this.replace(aor, live);
    } else {
      this.#arm(aor, e);
    }
  }
}
