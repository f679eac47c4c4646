import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccessLevel } from '../config/schema.ts';
import type { NodeStore } from '../store/database.ts';
import { hashPassword } from './passwords.ts';

/** A local administrator account. */
export interface Account {
  name: string;
  level: AccessLevel;
  createdAt: number;
  updatedAt: number;
}

/** One line of the audit log: who did what, when, from where. */
export interface AuditRecord {
  id: number;
  /** Wall-clock ms. */
  at: number;
  /** Account name (`-` before login, `cli` for the command line). */
  who: string;
  /** Source address of the request (`local` for the command line). */
  source: string;
  /** `login`, `login-failed`, `logout`, `config-change`, `account-add`, `subscription-add`, … */
  action: string;
  detail: string;
}

/** A feedback subscription registered through the API (configured ones live in the configuration). */
export interface StoredSubscription {
  id: number;
  url: string;
  events: string[];
  username?: string;
  password?: string;
  createdBy: string;
  createdAt: number;
}

const MIGRATIONS = [
  `CREATE TABLE mgmt_accounts (name TEXT PRIMARY KEY, level TEXT NOT NULL, hash TEXT NOT NULL,
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
   CREATE TABLE mgmt_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, who TEXT NOT NULL,
     source TEXT NOT NULL, action TEXT NOT NULL, detail TEXT NOT NULL);
   CREATE TABLE mgmt_subscriptions (id INTEGER PRIMARY KEY AUTOINCREMENT, url TEXT NOT NULL, events TEXT NOT NULL,
     username TEXT, password TEXT, created_by TEXT NOT NULL, created_at INTEGER NOT NULL);
   CREATE TABLE mgmt_config (id INTEGER PRIMARY KEY CHECK (id = 1), doc TEXT NOT NULL, updated_at INTEGER NOT NULL,
     updated_by TEXT NOT NULL);
   CREATE TABLE mgmt_setup_token (id INTEGER PRIMARY KEY CHECK (id = 1), digest BLOB NOT NULL,
     created_at INTEGER NOT NULL);`,
];

const AUDIT_KEEP = 100_000;

/**
 * Management's tables in the node store: local administrator accounts (scrypt hashes), the audit log, feedback
 * subscriptions registered through the API, the configuration changed through the API, and the one-time setup token.
 */
export class AdminStore {
  readonly #store: NodeStore;
  readonly #wallNow: () => number;

  constructor(store: NodeStore, wallNow: () => number = Date.now) {
    this.#store = store;
    this.#wallNow = wallNow;
    store.migrate('management', MIGRATIONS);
  }

  get #db() {
    return this.#store.db;
  }

  // ---- accounts ------------------------------------------------------------------------------------------------

  accountCount(): number {
    return (this.#db.prepare('SELECT COUNT(*) AS n FROM mgmt_accounts').get() as { n: number }).n;
  }

  listAccounts(): Account[] {
    return (
      this.#db.prepare('SELECT name, level, created_at, updated_at FROM mgmt_accounts ORDER BY name').all() as {
        name: string;
        level: AccessLevel;
        created_at: number;
        updated_at: number;
      }[]
    ).map((r) => ({ name: r.name, level: r.level, createdAt: r.created_at, updatedAt: r.updated_at }));
  }

  /** The account and its password hash, for login. */
  findAccount(name: string): (Account & { hash: string }) | undefined {
    const r = this.#db
      .prepare('SELECT name, level, hash, created_at, updated_at FROM mgmt_accounts WHERE name = ?')
      .get(name) as
      | { name: string; level: AccessLevel; hash: string; created_at: number; updated_at: number }
      | undefined;
    return r && { name: r.name, level: r.level, hash: r.hash, createdAt: r.created_at, updatedAt: r.updated_at };
  }

  /** Creates or replaces an account (the password is hashed with scrypt here; it is never stored or logged). */
  async setAccount(name: string, level: AccessLevel, password: string): Promise<void> {
    const hash = await hashPassword(password);
    const now = this.#wallNow();
    this.#db
      .prepare(
        `INSERT INTO mgmt_accounts (name, level, hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET level = excluded.level, hash = excluded.hash, updated_at = excluded.updated_at`,
      )
      .run(name, level, hash, now, now);
  }

  deleteAccount(name: string): boolean {
    return this.#db.prepare('DELETE FROM mgmt_accounts WHERE name = ?').run(name).changes > 0;
  }

  // ---- setup token ---------------------------------------------------------------------------------------------

  /**
   * Creates the one-time setup token when the node has no account and no token yet; returns it (to print once) or
   * `undefined`. Only its SHA-256 digest is stored.
   */
  ensureSetupToken(): string | undefined {
    if (this.accountCount() > 0) return undefined;
    const has = this.#db.prepare('SELECT 1 FROM mgmt_setup_token WHERE id = 1').get();
    if (has) return undefined;
    const token = randomBytes(24).toString('base64url');
    this.#db
      .prepare('INSERT INTO mgmt_setup_token (id, digest, created_at) VALUES (1, ?, ?)')
      .run(createHash('sha256').update(token).digest(), this.#wallNow());
    return token;
  }

  /** Replaces a lost setup token (the old one stops working); only while there is no account. */
  resetSetupToken(): string | undefined {
    this.#db.prepare('DELETE FROM mgmt_setup_token').run();
    return this.ensureSetupToken();
  }

  hasSetupToken(): boolean {
    return this.#db.prepare('SELECT 1 FROM mgmt_setup_token WHERE id = 1').get() !== undefined;
  }

  /** Checks and consumes the setup token (one use). */
  consumeSetupToken(token: string): boolean {
    const row = this.#db.prepare('SELECT digest FROM mgmt_setup_token WHERE id = 1').get() as
      | { digest: Buffer }
      | undefined;
    if (!row) return false;
    const d = createHash('sha256').update(token).digest();
    if (!timingSafeEqual(d, row.digest)) return false;
    this.#db.prepare('DELETE FROM mgmt_setup_token WHERE id = 1').run();
    return true;
  }

  // ---- audit ---------------------------------------------------------------------------------------------------

  audit(who: string, source: string, action: string, detail = ''): AuditRecord {
    const at = this.#wallNow();
    const r = this.#db
      .prepare('INSERT INTO mgmt_audit (at, who, source, action, detail) VALUES (?, ?, ?, ?, ?)')
      .run(at, who, source, action, detail.slice(0, 4000));
    const id = Number(r.lastInsertRowid);
    if (id % 1000 === 0) this.#db.prepare('DELETE FROM mgmt_audit WHERE id <= ?').run(id - AUDIT_KEEP);
    return { id, at, who, source, action, detail };
  }

  /** The newest audit records first. */
  auditLog(limit = 200, beforeId?: number): AuditRecord[] {
    const rows = this.#db
      .prepare('SELECT id, at, who, source, action, detail FROM mgmt_audit WHERE id < ? ORDER BY id DESC LIMIT ?')
      .all(beforeId ?? Number.MAX_SAFE_INTEGER, Math.max(1, Math.min(limit, 1000)));
    return rows as AuditRecord[];
  }

  // ---- subscriptions -------------------------------------------------------------------------------------------

  addSubscription(s: Omit<StoredSubscription, 'id' | 'createdAt'>): StoredSubscription {
    const createdAt = this.#wallNow();
    const r = this.#db
      .prepare(
        'INSERT INTO mgmt_subscriptions (url, events, username, password, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      )
      .run(s.url, JSON.stringify(s.events), s.username ?? null, s.password ?? null, s.createdBy, createdAt);
    return { ...s, id: Number(r.lastInsertRowid), createdAt };
  }

  listSubscriptions(): StoredSubscription[] {
    const rows = this.#db
      .prepare('SELECT id, url, events, username, password, created_by, created_at FROM mgmt_subscriptions ORDER BY id')
      .all() as {
      id: number;
      url: string;
      events: string;
      username: string | null;
      password: string | null;
      created_by: string;
      created_at: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      url: r.url,
      events: JSON.parse(r.events) as string[],
      ...(r.username ? { username: r.username } : {}),
      ...(r.password ? { password: r.password } : {}),
      createdBy: r.created_by,
      createdAt: r.created_at,
    }));
  }

  deleteSubscription(id: number): boolean {
    return this.#db.prepare('DELETE FROM mgmt_subscriptions WHERE id = ?').run(id).changes > 0;
  }

  // ---- configuration -------------------------------------------------------------------------------------------

  /** The configuration document last saved through the API, if any. */
  storedConfig(): { doc: unknown; updatedAt: number; updatedBy: string } | undefined {
    const r = this.#db.prepare('SELECT doc, updated_at, updated_by FROM mgmt_config WHERE id = 1').get() as
      | { doc: string; updated_at: number; updated_by: string }
      | undefined;
    return r && { doc: JSON.parse(r.doc) as unknown, updatedAt: r.updated_at, updatedBy: r.updated_by };
  }

  saveConfig(doc: unknown, who: string): void {
    this.#db
      .prepare(
        `INSERT INTO mgmt_config (id, doc, updated_at, updated_by) VALUES (1, ?, ?, ?)
         ON CONFLICT(id) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      )
      .run(JSON.stringify(doc), this.#wallNow(), who);
  }
}
