import { createHmac } from 'node:crypto';
import type { Clock } from '../common/timers.ts';
import { PasswordAlgorithm } from '../stun/constants.ts';
import { longTermKey, userHash } from '../stun/integrity.ts';
import type { TurnConfig } from './config.ts';

/**
 * Where the TURN server gets long-term keys (RFC 8489 §9.2): `StoreCredentials` (store-credentials.ts) from the
 * node's credential store, in front of `ConfigCredentials` from the `turn` configuration.
 */
export interface LongTermCredentials {
  /**
   * The key for a user: MD5(username ":" realm ":" password) for `algorithm` 1 (MD5), SHA-256 of the same for 2.
   * Undefined when the user is unknown or has no key for that algorithm.
   */
  lookupLongTermKey(
    username: string,
    realm: string,
    algorithm?: number,
  ): Buffer | undefined | Promise<Buffer | undefined>;
  /** The user name whose USERHASH (SHA-256(username ":" realm)) this is, when the store can tell. */
  lookupUserHash?(hash: Buffer, realm: string): string | undefined | Promise<string | undefined>;
  /**
   * Whether every user this source accepts can be found by USERHASH: only then do nonces announce username
   * anonymity (RFC 8489 §9.2.1), since a client told so may send USERHASH instead of USERNAME.
   */
  readonly supportsUserHash?: boolean;
  /**
   * What an allocation of this user counts against for `quotas.allocationsPerUser` (default: the user name). TURN
   * REST names `expiry:name` count against `name`, so fresh expiries do not buy fresh quota.
   */
  quotaKey?(username: string): string;
}

/** Static users and TURN REST credentials from the configuration. */
export class ConfigCredentials implements LongTermCredentials {
  readonly #users = new Map<string, { password?: string; ha1?: Buffer }>();
  /** Keys of static users, derived once per realm and algorithm. */
  readonly #keys = new Map<string, Buffer>();
  readonly #hashes = new Map<string, string>();
  readonly #secret: string | undefined;
  readonly #separator: string;
  readonly #clock: Clock;
  /** REST user names cannot be listed, so USERHASH works only without a shared secret. */
  readonly supportsUserHash: boolean;

  constructor(config: Pick<TurnConfig, 'users' | 'sharedSecret' | 'restSeparator' | 'realm'>, clock: Clock) {
    for (const u of config.users) {
      this.#users.set(u.username, {
        ...(u.password !== undefined ? { password: u.password } : {}),
        ...(u.ha1 !== undefined ? { ha1: Buffer.from(u.ha1, 'hex') } : {}),
      });
      this.#hashes.set(userHash(u.username, config.realm).toString('hex'), u.username);
    }
    this.#secret = config.sharedSecret;
    this.supportsUserHash = config.sharedSecret === undefined;
    this.#separator = config.restSeparator;
    this.#clock = clock;
  }

  lookupLongTermKey(username: string, realm: string, algorithm: number = PasswordAlgorithm.md5): Buffer | undefined {
    const u = this.#users.get(username);
    if (u) {
      if (u.password !== undefined) {
        const k = `${algorithm}|${realm}|${username}`;
        let key = this.#keys.get(k);
        if (!key) {
          key = longTermKey(username, realm, u.password, algorithm);
          if (this.#keys.size < 100_000) this.#keys.set(k, key);
        }
        return key;
      }
      return algorithm === PasswordAlgorithm.md5 ? u.ha1 : undefined;
    }
    const password = this.restPassword(username);
    return password === undefined ? undefined : longTermKey(username, realm, password, algorithm);
  }

  lookupUserHash(hash: Buffer, _realm: string): string | undefined {
    return this.#hashes.get(hash.toString('hex'));
  }

  quotaKey(username: string): string {
    if (this.#secret === undefined || this.#users.has(username)) return username;
    const sep = username.indexOf(this.#separator);
    if (sep < 1 || !/^\d{1,12}$/.test(username.slice(0, sep))) return username;
    return `\u0000rest\u0000${username.slice(sep + 1)}`;
  }

  /**
   * TURN REST convention (draft-uberti-behave-turn-rest): the user name is `expiry<sep>user` with expiry in Unix
   * seconds; the password is base64(HMAC-SHA1(secret, username)). Expired or malformed names have no password.
   */
  restPassword(username: string): string | undefined {
    if (this.#secret === undefined) return undefined;
    const sep = username.indexOf(this.#separator);
    const stamp = sep < 0 ? username : username.slice(0, sep);
    if (!/^\d{1,12}$/.test(stamp)) return undefined;
    if (Number(stamp) * 1000 < this.#clock.wallNow()) return undefined;
    return createHmac('sha1', this.#secret).update(username, 'utf8').digest('base64');
  }
}
