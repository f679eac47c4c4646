import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/**
 * The node's embedded store: one SQLite file in the data directory (`crossway.db`), in WAL mode. Each module owns
 * its tables and brings its own ordered migrations (`migrate('registrar', [...])`); applied versions are recorded per
 * module, so modules evolve their schemas independently. A cluster backend (Redis) will implement the modules'
 * store interfaces, not this class.
 */
export class NodeStore {
  readonly db: SqliteDatabase;
  readonly path: string;
  #closed = false;

  private constructor(db: SqliteDatabase, path: string) {
    this.db = db;
    this.path = path;
  }

  /** Opens (creating when needed) the store of a data directory; `:memory:` for tests. */
  static open(dataDir: string | ':memory:'): NodeStore {
    let path: string = dataDir;
    if (dataDir !== ':memory:') {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      path = join(dataDir, 'crossway.db');
    }
    const db = new Database(path);
    // WAL: readers never block the writer; NORMAL: a commit is durable once the WAL is synced at checkpoint, which
    // survives a process crash (not a power cut). See docs/store.md for the durability rule of each module.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (module TEXT NOT NULL, version INTEGER NOT NULL, ' +
        'applied_at INTEGER NOT NULL, PRIMARY KEY (module, version))',
    );
    return new NodeStore(db, path);
  }

  /**
   * Applies the migrations of `module` not applied yet, in order, each in its own transaction. Migration `i` (0-based)
   * is version `i + 1`; never edit or reorder a released migration, append a new one.
   */
  migrate(module: string, migrations: readonly string[]): void {
    const applied = new Set(
      this.db
        .prepare('SELECT version FROM schema_migrations WHERE module = ?')
        .all(module)
        .map((r) => (r as { version: number }).version),
    );
    const record = this.db.prepare('INSERT INTO schema_migrations (module, version, applied_at) VALUES (?, ?, ?)');
    migrations.forEach((sql, i) => {
      const version = i + 1;
      if (applied.has(version)) return;
      this.db.transaction(() => {
        this.db.exec(sql);
        record.run(module, version, Date.now());
      })();
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.db.close();
  }
}
