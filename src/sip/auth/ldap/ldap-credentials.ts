/**
 * Digest credentials from an LDAP directory. The user is searched by the configured attribute (service-account bind);
 * the secret attribute holds the password (HA1 computed here for every algorithm) or an HA1 of one algorithm. A
 * directory that does not answer makes the lookup `unavailable` (503), never `unknown`. Positive lookups are cached
 * briefly (`cacheSeconds`); negative ones are not, so a user added to the directory is seen at once.
 */
import { category, type Logger, silentLogger } from '../../../common/log.ts';
import type { Clock } from '../../../common/timers.ts';
import type { LdapCredentialsConfig } from '../config.ts';
import type { CredentialLookup, CredentialQuery, CredentialSource } from '../credentials.ts';
import { computeHa1, DIGEST_ALGORITHMS, type DigestAlgorithm, HEX_LENGTH } from '../digest.ts';
import { escapeFilterValue, type LdapDirectory } from './directory.ts';

type Mapping = Pick<
  LdapCredentialsConfig,
  | 'baseDn'
  | 'usernameAttribute'
  | 'secretAttribute'
  | 'secretFormat'
  | 'filter'
  | 'realmAttribute'
  | 'cacheSeconds'
  | 'cacheEntries'
>;

const FORMAT_ALG: Readonly<Record<'ha1-md5' | 'ha1-sha256', DigestAlgorithm>> = {
  'ha1-md5': 'MD5',
  'ha1-sha256': 'SHA-256',
};

/** Counters, for status and tests. */
export interface LdapSourceCounters {
  searches: number;
  cacheHits: number;
  unavailable: number;
}

export class LdapCredentialSource implements CredentialSource {
  readonly name = 'ldap';
  readonly algorithms: readonly DigestAlgorithm[];
  readonly supportsUserhash = false;
  readonly #dir: LdapDirectory;
  readonly #m: Mapping;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #cache = new Map<string, { at: number; value: CredentialLookup & { kind: 'found' } }>();
  readonly counters: LdapSourceCounters = { searches: 0, cacheHits: 0, unavailable: 0 };

  constructor(dir: LdapDirectory, mapping: Mapping, clock: Clock, log: Logger = silentLogger) {
    this.#dir = dir;
    this.#m = mapping;
    this.#clock = clock;
    this.#log = category(log, 'sip.auth.ldap');
    this.algorithms = mapping.secretFormat === 'password' ? DIGEST_ALGORITHMS : [FORMAT_ALG[mapping.secretFormat]];
  }

  async lookup(q: CredentialQuery): Promise<CredentialLookup> {
    if (q.userhash) return { kind: 'unknown' };
    const key = `${q.realm}\0${q.username}`;
    const ttl = this.#m.cacheSeconds * 1000;
    const hit = this.#cache.get(key);
    if (hit && ttl > 0 && this.#clock.now() - hit.at < ttl) {
      this.counters.cacheHits++;
      return hit.value;
    }
    if (hit) this.#cache.delete(key);
    const m = this.#m;
    let filter = `(${m.usernameAttribute}=${escapeFilterValue(q.username)})`;
    if (m.realmAttribute) filter += `(${m.realmAttribute}=${escapeFilterValue(q.realm)})`;
    if (m.filter) filter += m.filter.startsWith('(') ? m.filter : `(${m.filter})`;
    filter = `(&${filter})`;
    this.counters.searches++;
    let entries: Awaited<ReturnType<LdapDirectory['search']>>;
    try {
      entries = await this.#dir.search(m.baseDn, filter, [m.usernameAttribute, m.secretAttribute], 2);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 4) {
        this.#log.warn({ user: q.username }, 'several directory entries match one user => refused');
        return { kind: 'unknown' };
      }
      if (code === 32) return { kind: 'unknown' }; // noSuchObject: the base DN holds nobody
      this.counters.unavailable++;
      return { kind: 'unavailable', reason: (err as Error).message };
    }
    if (entries.length !== 1) {
      if (entries.length > 1)
        this.#log.warn({ user: q.username }, 'several directory entries match one user => refused');
      return { kind: 'unknown' };
    }
    const e = entries[0]!;
    const secret = e.attributes[m.secretAttribute.toLowerCase()]?.[0];
    const stored = e.attributes[m.usernameAttribute.toLowerCase()]?.find((v) => v === q.username) ?? q.username;
    const found: CredentialLookup & { kind: 'found' } = { kind: 'found', username: stored, ha1: {} };
    if (secret === undefined) {
      this.#log.warn({ dn: e.dn }, 'directory entry has no secret attribute => cannot authenticate');
    } else if (m.secretFormat === 'password') {
      if (/^\{[A-Za-z0-9-]+\}/.test(secret)) {
        // A hashed userPassword ({SSHA}…) cannot serve digest: the directory must hold the password or an HA1.
        this.#log.warn({ dn: e.dn }, 'secret attribute holds a hashed password => cannot authenticate');
      } else {
        for (const alg of DIGEST_ALGORITHMS) found.ha1[alg] = computeHa1(alg, stored, q.realm, secret);
      }
    } else {
      const alg = FORMAT_ALG[m.secretFormat];
      const h = secret.trim().toLowerCase();
      if (h.length === HEX_LENGTH[alg] && /^[0-9a-f]+$/.test(h)) found.ha1[alg] = h;
      else this.#log.warn({ dn: e.dn }, `secret attribute is not an ${alg} HA1 => cannot authenticate`);
    }
    if (ttl > 0 && Object.keys(found.ha1).length > 0) {
      while (this.#cache.size >= m.cacheEntries) {
        const oldest = this.#cache.keys().next();
        if (oldest.done) break;
        this.#cache.delete(oldest.value);
      }
      this.#cache.set(key, { at: this.#clock.now(), value: found });
    }
    return found;
  }

  /** The directory client (connection status). */
  get directory(): LdapDirectory {
    return this.#dir;
  }

  async close(): Promise<void> {
    this.#cache.clear();
    await this.#dir.close();
  }
}
