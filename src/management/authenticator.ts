import type { Logger } from '../common/log.ts';
import type { AccessLevel } from '../config/schema.ts';
import type { AdminStore } from './admin-store.ts';
import type { AdminDirectory } from './ldap/directory.ts';
import { dummyHash, verifyPassword } from './passwords.ts';

export type LoginResult =
  | { ok: true; user: string; level: AccessLevel; via: 'local' | 'ldap' }
  | { ok: false; reason: string; outage?: boolean };

export interface AuthenticatorOptions {
  store: AdminStore;
  source: 'local' | 'remote' | 'both';
  /** With `remote`: let local accounts in while the directory is unreachable. */
  fallbackToLocal: boolean;
  directory?: AdminDirectory;
  log: Logger;
  /** Told whether the directory answered at each remote attempt (alarm raise/lower). */
  onDirectory?: (reachable: boolean, reason?: string) => void;
}

/**
 * Administrator authentication: local accounts (scrypt), the LDAP directory, or both (local first, then the
 * directory). The reason of a refusal goes to the log and the audit log, never to the client.
 */
export class Authenticator {
  readonly #o: AuthenticatorOptions;

  constructor(options: AuthenticatorOptions) {
    this.#o = options;
  }

  async #local(user: string, password: string): Promise<LoginResult> {
    const acct = this.#o.store.findAccount(user);
    // Same scrypt cost whether the account exists or not.
    const ok = await verifyPassword(password, acct?.hash ?? (await dummyHash()));
    if (!acct) return { ok: false, reason: 'unknown local user' };
    if (!ok) return { ok: false, reason: 'wrong password' };
    return { ok: true, user: acct.name, level: acct.level, via: 'local' };
  }

  async #remote(user: string, password: string): Promise<LoginResult> {
    const dir = this.#o.directory;
    if (!dir) return { ok: false, reason: 'no directory configured', outage: true };
    const r = await dir.login(user, password);
    this.#o.onDirectory?.(r.ok || r.kind !== 'outage', r.ok ? undefined : r.reason);
    if (r.ok) return { ok: true, user, level: r.level, via: 'ldap' };
    return { ok: false, reason: `directory: ${r.reason}`, outage: r.kind === 'outage' };
  }

  async login(user: string, password: string): Promise<LoginResult> {
    if (!user || user.length > 256 || password.length > 1024) return { ok: false, reason: 'malformed credentials' };
    const { source } = this.#o;
    if (source === 'local') return this.#local(user, password);
    if (source === 'both') {
      const l = await this.#local(user, password);
      if (l.ok) return l;
      const r = await this.#remote(user, password);
      if (!r.ok && r.outage) this.#o.log.warn({ user, reason: r.reason }, 'LDAP directory unreachable => local only');
      return r.ok ? r : { ok: false, reason: `${l.reason}; ${r.reason}`, ...(r.outage ? { outage: true } : {}) };
    }
    const r = await this.#remote(user, password);
    if (r.ok || !r.outage) return r;
    if (!this.#o.fallbackToLocal) {
      this.#o.log.warn({ user, reason: r.reason }, 'LDAP directory unreachable => login refused (no fallback)');
      return r;
    }
    this.#o.log.warn({ user, reason: r.reason }, 'LDAP directory unreachable => falling back to local accounts');
    const l = await this.#local(user, password);
    return l.ok ? l : { ok: false, reason: `${r.reason}; fallback: ${l.reason}`, outage: true };
  }
}
