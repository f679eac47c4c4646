/**
 * Blocks kept in the node's store (`security_blocks`), so that they survive a restart and the `crossway blocks` CLI can
 * list them even when the node is down. The running node is the writer; the CLI reaches a running node through the
 * control socket (`security.blocks.*`) and writes the table itself only when no node runs.
 */
import type { NodeStore } from '../store/database.ts';
import type { Block } from './intrusion.ts';

const MIGRATIONS = [
  `CREATE TABLE security_blocks (
     address TEXT PRIMARY KEY,
     category TEXT NOT NULL,
     since INTEGER NOT NULL,
     until INTEGER NOT NULL,
     events INTEGER NOT NULL
   );`,
];

interface Row {
  address: string;
  category: Block['category'];
  since: number;
  until: number;
  events: number;
}

/** The persisted blocks of one node store. */
export class BlockStore {
  readonly #store: NodeStore;

  constructor(store: NodeStore) {
    store.migrate('security', MIGRATIONS);
    this.#store = store;
  }

  save(b: Block): void {
    if (this.#store.closed) return;
    this.#store.db
      .prepare(
        `INSERT INTO security_blocks (address, category, since, until, events) VALUES (@address, @category, @since,
           @until, @events) ON CONFLICT (address) DO UPDATE SET category = excluded.category, since = excluded.since,
           until = excluded.until, events = excluded.events`,
      )
      .run(b);
  }

  delete(address: string): boolean {
    if (this.#store.closed) return false;
    return this.#store.db.prepare('DELETE FROM security_blocks WHERE address = ?').run(address).changes > 0;
  }

  deleteAll(): number {
    if (this.#store.closed) return 0;
    return this.#store.db.prepare('DELETE FROM security_blocks').run().changes;
  }

  /** Blocks still running at `now` (wall ms), oldest first; expired rows are purged on the way. */
  active(now: number): Block[] {
    if (this.#store.closed) return [];
    this.#store.db.prepare('DELETE FROM security_blocks WHERE until <= ?').run(now);
    return (this.#store.db.prepare('SELECT * FROM security_blocks ORDER BY since').all() as Row[]).map((r) => ({
      address: r.address,
      category: r.category,
      since: r.since,
      until: r.until,
      events: r.events,
    }));
  }
}
