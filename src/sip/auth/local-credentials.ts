/**
 * The local credential database, in the node's store (`credentials` table). A user is kept per realm as the HA1 of
 * every supported algorithm (RFC 7616 §3.4.2) and the userhash of each (§3.4.4) — never the password. The node reads
 * through to SQLite on each lookup (an indexed read of 2–4 µs, of the one HA1 needed), so users added by `crossway users add` on the same
 * store file are seen at once, without a restart or a cache to go stale.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import { OperationalError } from '../../common/errors.ts';
import type { NodeStore } from '../../store/database.ts';
import type { CredentialLookup, CredentialQuery, CredentialSource } from './credentials.ts';
import { computeHa1, computeUserhash, DIGEST_ALGORITHMS, type DigestAlgorithm } from './digest.ts';

const MIGRATIONS = [
  `CREATE TABLE credentials (
     realm TEXT NOT NULL,
     username TEXT NOT NULL,
     ha1_md5 TEXT NOT NULL,
     ha1_sha256 TEXT NOT NULL,
     ha1_sha512_256 TEXT NOT NULL,
     userhash_md5 TEXT NOT NULL,
     userhash_sha256 TEXT NOT NULL,
     userhash_sha512_256 TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (realm, username)
   );
   CREATE INDEX credentials_userhash_md5 ON credentials (userhash_md5);
   CREATE INDEX credentials_userhash_sha256 ON credentials (userhash_sha256);
   CREATE INDEX credentials_userhash_sha512_256 ON credentials (userhash_sha512_256);
   CREATE TABLE auth_secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL, created_at INTEGER NOT NULL);`,
  // H.235.1 (H.323 RAS tokens) keys on SHA-1 of the password: kept beside the HA1s, set by add/passwd. Users made
  // before this migration have none until their next passwd.
  'ALTER TABLE credentials ADD COLUMN h235_key TEXT',
];

const COLUMN: Readonly<Record<DigestAlgorithm, { ha1: string; userhash: string }>> = {
  MD5: { ha1: 'ha1_md5', userhash: 'userhash_md5' },
  'SHA-256': { ha1: 'ha1_sha256', userhash: 'userhash_sha256' },
  'SHA-512-256': { ha1: 'ha1_sha512_256', userhash: 'userhash_sha512_256' },
};

interface Row {
  username: string;
  ha1_md5: string;
  ha1_sha256: string;
  ha1_sha512_256: string;
}

/** A user as listed (no secrets). */
export interface UserInfo {
  realm: string;
  username: string;
  createdAt: number;
  updatedAt: number;
}

/** Limits on what an administrator may store (digest parameters are quoted strings; keep them printable). */
const NAME = /^[^\s":\\\x00-\x1f\x7f]{1,128}$/u;

/** Creates the tables of the credentials module (idempotent). */
export function migrateCredentials(store: NodeStore): void {
  store.migrate('credentials', MIGRATIONS);
}

/**
 * A named secret of the node (nonce MAC key…), created at random on first use and kept in the store so it survives
 * restarts.
 */
export function nodeSecret(store: NodeStore, name: string, bytes = 32): Buffer {
  migrateCredentials(store);
  const db = store.db;
  db.prepare('INSERT OR IGNORE INTO auth_secrets (name, value, created_at) VALUES (?, ?, ?)').run(
    name,
    randomBytes(bytes),
    Date.now(),
  );
  const row = db.prepare('SELECT value FROM auth_secrets WHERE name = ?').get(name) as { value: Buffer };
  return Buffer.from(row.value);
}

/** The local credential database (source `local`), also used by the `crossway users` CLI. */
export class LocalCredentialStore implements CredentialSource {
  readonly name = 'local';
  readonly algorithms: readonly DigestAlgorithm[] = DIGEST_ALGORITHMS;
  readonly supportsUserhash = true;
  readonly #store: NodeStore;
  readonly #byName: Statement<[string, string]>;
  /** Per algorithm: the stored name and that algorithm's HA1 only (the lookup on every authenticated request). */
  readonly #ha1ByName: Readonly<Record<DigestAlgorithm, Statement<[string, string]>>>;
  readonly #h235: Statement<[string, string]>;
  readonly #byHash: Readonly<Record<DigestAlgorithm, Statement<[string, string]>>>;

  constructor(store: NodeStore) {
    migrateCredentials(store);
    this.#store = store;
    const db = store.db;
    this.#byName = db.prepare<[string, string]>(
      'SELECT username, ha1_md5, ha1_sha256, ha1_sha512_256 FROM credentials WHERE realm = ? AND username = ?',
    );
    const ha1ByName = (alg: DigestAlgorithm) =>
      db
        .prepare<[string, string]>(
          `SELECT username, ${COLUMN[alg].ha1} FROM credentials WHERE realm = ? AND username = ?`,
        )
        .raw();
    this.#ha1ByName = {
      MD5: ha1ByName('MD5'),
      'SHA-256': ha1ByName('SHA-256'),
      'SHA-512-256': ha1ByName('SHA-512-256'),
    };
    this.#h235 = db.prepare<[string, string]>('SELECT h235_key FROM credentials WHERE realm = ? AND username = ?');
    const byHash = (alg: DigestAlgorithm) =>
      db.prepare<[string, string]>(
        `SELECT username, ha1_md5, ha1_sha256, ha1_sha512_256 FROM credentials WHERE realm = ? AND ${COLUMN[alg].userhash} = ?`,
      );
    this.#byHash = { MD5: byHash('MD5'), 'SHA-256': byHash('SHA-256'), 'SHA-512-256': byHash('SHA-512-256') };
  }

  lookup(q: CredentialQuery): CredentialLookup {
    if (this.#store.closed) return { kind: 'unavailable', reason: 'store closed' };
    try {
      if (q.algorithm !== undefined && !q.userhash) {
        // The common case (a digest answer): one narrow row, the name as stored and the one HA1 the answer needs.
        const r = this.#ha1ByName[q.algorithm].get(q.realm, q.username) as [string, string] | undefined;
        if (!r) return { kind: 'unknown' };
        return { kind: 'found', username: r[0], ha1: { [q.algorithm]: r[1] } };
      }
      const row = (
        q.userhash
          ? this.#byHash[q.userhash].get(q.realm, q.username.toLowerCase())
          : this.#byName.get(q.realm, q.username)
      ) as Row | undefined;
      if (!row) return { kind: 'unknown' };
      return {
        kind: 'found',
        username: row.username,
        ha1: { MD5: row.ha1_md5, 'SHA-256': row.ha1_sha256, 'SHA-512-256': row.ha1_sha512_256 },
      };
    } catch (err) {
      return { kind: 'unavailable', reason: `credential store: ${(err as Error).message}` };
    }
  }

  #values(realm: string, username: string, password: string) {
    if (!NAME.test(username)) {
      throw new OperationalError('ERR_AUTH_BAD_USERNAME', 'user name: 1–128 printable characters, no space, " : or \\');
    }
    if (!NAME.test(realm)) {
      throw new OperationalError('ERR_AUTH_BAD_REALM', 'realm: 1–128 printable characters, no space, " : or \\');
    }
    if (password.length === 0) throw new OperationalError('ERR_AUTH_EMPTY_PASSWORD', 'empty password');
    const out: Record<string, string> = {};
    for (const alg of DIGEST_ALGORITHMS) {
      out[COLUMN[alg].ha1] = computeHa1(alg, username, realm, password);
      out[COLUMN[alg].userhash] = computeUserhash(alg, username, realm);
    }
    // H.235.1 §: the HMAC-SHA1-96 key is SHA-1 of the password (a password equivalent, like HA1, for H.323 only).
    out['h235_key'] = createHash('sha1').update(password, 'utf8').digest('hex');
    return out;
  }

  /** Adds a user; fails when it exists. */
  add(realm: string, username: string, password: string): void {
    const v = this.#values(realm, username, password);
    const now = Date.now();
    try {
      this.#store.db
        .prepare(
          `INSERT INTO credentials (realm, username, ha1_md5, ha1_sha256, ha1_sha512_256, userhash_md5, userhash_sha256,
             userhash_sha512_256, h235_key, created_at, updated_at)
           VALUES (@realm, @username, @ha1_md5, @ha1_sha256, @ha1_sha512_256, @userhash_md5, @userhash_sha256,
             @userhash_sha512_256, @h235_key, @now, @now)`,
        )
        .run({ realm, username, now, ...v });
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new OperationalError('ERR_AUTH_USER_EXISTS', `user ${username} already exists in realm ${realm}`);
      }
      throw err;
    }
  }

  /** Changes a user's password; fails when the user does not exist. */
  setPassword(realm: string, username: string, password: string): void {
    const v = this.#values(realm, username, password);
    const r = this.#store.db
      .prepare(
        `UPDATE credentials SET ha1_md5 = @ha1_md5, ha1_sha256 = @ha1_sha256, ha1_sha512_256 = @ha1_sha512_256,
           userhash_md5 = @userhash_md5, userhash_sha256 = @userhash_sha256, userhash_sha512_256 = @userhash_sha512_256,
           h235_key = @h235_key, updated_at = @now WHERE realm = @realm AND username = @username`,
      )
      .run({ realm, username, now: Date.now(), ...v });
    if (r.changes === 0) throw new OperationalError('ERR_AUTH_NO_USER', `no user ${username} in realm ${realm}`);
  }

  /**
   * The H.235.1 key of a user (SHA-1 of the password, 20 octets): `unknown` for no such user or one whose password
   * was set before H.235.1 keys were kept (a `users passwd` gives it one).
   */
  h235Key(
    realm: string,
    username: string,
  ): { kind: 'found'; key: Buffer } | { kind: 'unknown' } | { kind: 'unavailable' } {
    if (this.#store.closed) return { kind: 'unavailable' };
    try {
      const row = this.#h235.get(realm, username) as { h235_key: string | null } | undefined;
      if (!row?.h235_key) return { kind: 'unknown' };
      return { kind: 'found', key: Buffer.from(row.h235_key, 'hex') };
    } catch {
      return { kind: 'unavailable' };
    }
  }

  /** Removes a user; returns false when there was none. */
  remove(realm: string, username: string): boolean {
    return (
      this.#store.db.prepare('DELETE FROM credentials WHERE realm = ? AND username = ?').run(realm, username).changes >
      0
    );
  }

  /** Users, sorted by realm then name (no secrets). */
  list(realm?: string): UserInfo[] {
    const rows = (
      realm === undefined
        ? this.#store.db.prepare('SELECT * FROM credentials ORDER BY realm, username').all()
        : this.#store.db.prepare('SELECT * FROM credentials WHERE realm = ? ORDER BY username').all(realm)
    ) as Array<{ realm: string; username: string; created_at: number; updated_at: number }>;
    return rows.map((r) => ({
      realm: r.realm,
      username: r.username,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }
}
