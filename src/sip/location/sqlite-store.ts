import { category, type Logger, silentLogger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { NodeStore } from '../../store/database.ts';
import type { Binding, RegistrationStore } from './types.ts';

const MIGRATIONS: readonly string[] = [
  'CREATE TABLE registrar_bindings (aor TEXT NOT NULL, contact TEXT NOT NULL, expires_at INTEGER NOT NULL, ' +
    'data TEXT NOT NULL, PRIMARY KEY (aor, contact)) WITHOUT ROWID; ' +
    'CREATE INDEX registrar_bindings_expiry ON registrar_bindings (expires_at);',
];

export interface SqliteRegistrationStoreOptions {
  store: NodeStore;
  clock: Clock;
  /** Queued writes are committed in one transaction at most this long after the first of them (ms). */
  flushIntervalMs: number;
  /** A batch this large is committed at once, without waiting for the interval. */
  maxBatch: number;
  log?: Logger;
}

/**
 * Bindings in the node's SQLite file, written behind: `put`/`delete` only queue (the last write per binding wins),
 * and the queue is committed in one transaction every `flushIntervalMs` or every `maxBatch` writes, so REGISTER
 * throughput is not bound by the disk. Durability rule (docs/store.md): a binding answered 200 is on disk within
 * `flushIntervalMs` (plus the WAL's own synchronous=NORMAL rule); a crash inside that window loses at most those
 * writes, and the UA's next refresh restores them. `close()` commits everything queued.
 */
export class SqliteRegistrationStore implements RegistrationStore {
  readonly #opts: SqliteRegistrationStoreOptions;
  readonly #log: Logger;
  /** key `aor\ncontact` → binding to write, or null to delete. */
  #pending = new Map<string, Binding | null>();
  #timer: TimerHandle | undefined;
  #closed = false;
  readonly #upsert;
  readonly #remove;
  readonly #commit;
  /** Counters: transactions committed and rows written, for status and benchmarks. */
  readonly stats = { commits: 0, rows: 0, failures: 0 };

  constructor(opts: SqliteRegistrationStoreOptions) {
    this.#opts = opts;
    this.#log = category(opts.log ?? silentLogger, 'store.registrar');
    opts.store.migrate('registrar', MIGRATIONS);
    const db = opts.store.db;
    this.#upsert = db.prepare(
      'INSERT INTO registrar_bindings (aor, contact, expires_at, data) VALUES (?, ?, ?, ?) ' +
        'ON CONFLICT (aor, contact) DO UPDATE SET expires_at = excluded.expires_at, data = excluded.data',
    );
    this.#remove = db.prepare('DELETE FROM registrar_bindings WHERE aor = ? AND contact = ?');
    this.#commit = db.transaction((batch: Map<string, Binding | null>) => {
      for (const [key, b] of batch) {
        if (b) this.#upsert.run(b.aor, b.contact, b.expiresAt, JSON.stringify(b));
        else {
          const nl = key.indexOf('\n');
          this.#remove.run(key.slice(0, nl), key.slice(nl + 1));
        }
      }
    });
  }

  async load(wallNow: number): Promise<Binding[]> {
    const db = this.#opts.store.db;
    const purged = db.prepare('DELETE FROM registrar_bindings WHERE expires_at <= ?').run(wallNow).changes;
    if (purged > 0) this.#log.info({ purged }, 'expired bindings purged at start');
    const out: Binding[] = [];
    for (const row of db.prepare('SELECT data FROM registrar_bindings').iterate()) {
      try {
        out.push(JSON.parse((row as { data: string }).data) as Binding);
      } catch {
        this.#log.warn('unreadable stored binding => skipped');
      }
    }
    return out;
  }

  put(binding: Binding): void {
    this.#queue(`${binding.aor}\n${binding.contact}`, binding);
  }

  delete(aor: string, contact: string): void {
    this.#queue(`${aor}\n${contact}`, null);
  }

  /** Writes queued and not yet committed. */
  get pending(): number {
    return this.#pending.size;
  }

  async flush(): Promise<void> {
    this.#flushNow();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#flushNow();
    this.#closed = true;
  }

  #queue(key: string, value: Binding | null): void {
    if (this.#closed) return;
    this.#pending.set(key, value);
    if (this.#pending.size >= this.#opts.maxBatch) this.#flushNow();
    else this.#timer ??= this.#opts.clock.setTimer(this.#opts.flushIntervalMs, () => this.#flushNow());
  }

  #flushNow(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
    if (this.#pending.size === 0 || this.#opts.store.closed) return;
    const batch = this.#pending;
    this.#pending = new Map();
    try {
      this.#commit(batch);
      this.stats.commits++;
      this.stats.rows += batch.size;
    } catch (err) {
      // The disk failed us: keep the writes queued (newer ones win) and retry at the next interval.
      this.stats.failures++;
      this.#log.error({ err: (err as Error).message, rows: batch.size }, 'binding write failed => retried');
      for (const [k, v] of batch) if (!this.#pending.has(k)) this.#pending.set(k, v);
      this.#timer = this.#opts.clock.setTimer(this.#opts.flushIntervalMs, () => this.#flushNow());
    }
  }
}
