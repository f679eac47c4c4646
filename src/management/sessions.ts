import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccessLevel } from '../config/schema.ts';

/** A logged-in administrator. */
export interface Session {
  readonly id: string;
  readonly user: string;
  readonly level: AccessLevel;
  /** Where the user was authenticated: `local` or `ldap`. */
  readonly via: 'local' | 'ldap';
  /** Sent back with every state-changing request (form field or `x-csrf-token` header). */
  readonly csrf: string;
  readonly source: string;
  /** Monotonic ms of the last request. */
  lastSeen: number;
}

/**
 * Administrator sessions in memory, closed after `idleMs` without a request (checked on lookup, no sweeping timer).
 * At most `max` sessions: the least recently used one goes first.
 */
export class SessionTable {
  readonly #now: () => number;
  #idleMs: number;
  readonly #max: number;
  /** Insertion order is use order: a lookup moves the session to the end. */
  readonly #byId = new Map<string, Session>();

  constructor(now: () => number, idleMs: number, max = 1000) {
    this.#now = now;
    this.#idleMs = idleMs;
    this.#max = max;
  }

  create(user: string, level: AccessLevel, via: 'local' | 'ldap', source: string): Session {
    while (this.#byId.size >= this.#max) {
      const oldest = this.#byId.keys().next().value;
      if (oldest === undefined) break;
      this.#byId.delete(oldest);
    }
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      user,
      level,
      via,
      csrf: randomBytes(24).toString('base64url'),
      source,
      lastSeen: this.#now(),
    };
    this.#byId.set(s.id, s);
    return s;
  }

  /** The live session with this id (and marks it used), or `undefined` when unknown or idle too long. */
  touch(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.#byId.get(id);
    if (!s) return undefined;
    const now = this.#now();
    this.#byId.delete(id);
    if (now - s.lastSeen > this.#idleMs) return undefined;
    s.lastSeen = now;
    this.#byId.set(id, s);
    return s;
  }

  /** Changes the idle timeout (configuration change, applies to open sessions too). */
  set idleMs(ms: number) {
    this.#idleMs = ms;
  }

  end(id: string): boolean {
    return this.#byId.delete(id);
  }

  /** Ends every session of a user (account deleted or password changed). */
  endUser(user: string): number {
    let n = 0;
    for (const [id, s] of this.#byId) if (s.user === user && this.#byId.delete(id)) n++;
    return n;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Constant-time CSRF token check. */
  static csrfMatches(session: Session, token: unknown): boolean {
    if (typeof token !== 'string') return false;
    const a = Buffer.from(session.csrf);
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}
