import { OperationalError } from '../common/errors.ts';
import type { CredentialSource } from '../sip/auth/credentials.ts';
import type { DigestAlgorithm } from '../sip/auth/digest.ts';
import { PasswordAlgorithm } from '../stun/constants.ts';
import type { LongTermCredentials } from './credentials.ts';

/**
 * Long-term TURN credentials from the node's credential source (the local store that `crossway users` fills, or the
 * LDAP directory), in front of another source (the configuration's static users and shared secret).
 *
 * The store keeps per realm HA1 = H(username ":" realm ":" password) of each digest algorithm, hex (RFC 7616
 * §3.4.2). RFC 8489 §9.2.2 defines the long-term key as MD5(username ":" realm ":" password) for algorithm 1 and
 * SHA-256 of the same for algorithm 2: the same bytes, so the HA1 is the key, and the store never needs the
 * password. The store's SHA-256 userhash H(username ":" realm) is RFC 8489 §14.4's USERHASH. Both hold when the TURN
 * realm is the realm the user was stored under. (RFC 8489 applies OpaqueString to realm and password; the HA1s do
 * not: only passwords or realms with non-ASCII characters that the profile changes give a different key.)
 */
export class StoreCredentials implements LongTermCredentials {
  readonly #source: CredentialSource;
  readonly #next: LongTermCredentials | undefined;
  readonly supportsUserHash: boolean;

  constructor(source: CredentialSource, next?: LongTermCredentials) {
    this.#source = source;
    this.#next = next;
    // Every user must be findable by USERHASH before a nonce may invite clients to send one.
    this.supportsUserHash = source.supportsUserhash && (next === undefined || next.supportsUserHash === true);
  }

  async lookupLongTermKey(
    username: string,
    realm: string,
    algorithm: number = PasswordAlgorithm.md5,
  ): Promise<Buffer | undefined> {
    const alg: DigestAlgorithm | undefined =
      algorithm === PasswordAlgorithm.md5 ? 'MD5' : algorithm === PasswordAlgorithm.sha256 ? 'SHA-256' : undefined;
    let unavailable: string | undefined;
    if (alg !== undefined) {
      const r = await this.#source.lookup({ realm, username, algorithm: alg });
      if (r.kind === 'found') {
        const ha1 = r.ha1[alg];
        // A user the store holds without this algorithm's HA1 (an LDAP directory of MD5 digests) has no key for it.
        return ha1 !== undefined && /^[0-9a-f]+$/i.test(ha1) ? Buffer.from(ha1, 'hex') : undefined;
      }
      if (r.kind === 'unavailable') unavailable = r.reason;
    }
    const key = await this.#next?.lookupLongTermKey(username, realm, algorithm);
    if (key) return key;
    // The store cannot tell: refuse with a server error (500), never as if the password were wrong.
    if (unavailable !== undefined) throw new OperationalError('ERR_TURN_CREDENTIALS_UNAVAILABLE', unavailable);
    return undefined;
  }

  quotaKey(username: string): string {
    return this.#next?.quotaKey?.(username) ?? username;
  }

  async lookupUserHash(hash: Buffer, realm: string): Promise<string | undefined> {
    if (this.#source.supportsUserhash && hash.length === 32) {
      const r = await this.#source.lookup({ realm, username: hash.toString('hex'), userhash: 'SHA-256' });
      if (r.kind === 'found') return r.username;
    }
    return this.#next?.lookupUserHash?.(hash, realm);
  }
}
