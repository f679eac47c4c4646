import type { NodeStore } from '../../store/database.ts';
import type { Gatekeeper, H323Registration } from './gatekeeper.ts';

/**
 * Keeps the gatekeeper's registrations in the node's store (table `h323_registrations`) so a restart loses none:
 * full registrations and removals are written through; keep-alives are not (a restored registration gets a fresh
 * timeToLive, so the endpoint's next keep-alive is recognised).
 */
export class RegistrationStore {
  readonly #store: NodeStore;

  constructor(store: NodeStore) {
    this.#store = store;
    store.migrate('h323-gatekeeper', [
      'CREATE TABLE h323_registrations (endpoint_id TEXT PRIMARY KEY, record TEXT NOT NULL, registered_at INTEGER NOT NULL)',
    ]);
  }

  load(): H323Registration[] {
    const rows = this.#store.db.prepare('SELECT record FROM h323_registrations').all() as Array<{ record: string }>;
    const out: H323Registration[] = [];
    for (const r of rows) {
      try {
        out.push(JSON.parse(r.record) as H323Registration);
      } catch {
        // a damaged row is skipped: that endpoint is told fullRegistrationRequired on its next keep-alive
      }
    }
    return out;
  }

  /** Restores what the store holds into `gk` and writes every later registration and removal through. */
  attach(gk: Gatekeeper): number {
    const n = gk.restore(this.load());
    const put = this.#store.db.prepare(
      'INSERT OR REPLACE INTO h323_registrations (endpoint_id, record, registered_at) VALUES (?, ?, ?)',
    );
    const del = this.#store.db.prepare('DELETE FROM h323_registrations WHERE endpoint_id = ?');
    gk.on((e) => {
      if (e.kind === 'registered')
        put.run(e.registration.endpointIdentifier, JSON.stringify(e.registration), e.registration.registeredAt);
      else del.run(e.registration.endpointIdentifier);
    });
    return n;
  }
}
