import { answerChallenge, type DigestChallenge, readChallenge } from '../auth/client.ts';
import type { DigestAlgorithm } from '../auth/digest.ts';
import { canonicalName } from '../message/headers.ts';
import { getHeaders } from '../message/index.ts';
import type { SipResponse } from '../message/types.ts';

/**
 * The proxy answering a neighbor zone's digest challenge with the zone's configured credentials (the client side of
 * RFC 3261 §22.2/§22.3 and RFC 7616 §3.4, as a proxy does it for a peer that wants it authenticated): one answer per
 * realm challenged, nonce counts kept per nonce so a nonce reused by the peer gets nc 2, 3 …
 */

/** What the proxy sends again with: the header to add and its values, and whether the peer said the nonce was stale. */
export interface ChallengeAnswer {
  /** `Authorization` for a 401, `Proxy-Authorization` for a 407. */
  header: 'Authorization' | 'Proxy-Authorization';
  values: string[];
  realms: string[];
  /** RFC 7616 §3.3: the previous answer was right but its nonce had expired. */
  stale: boolean;
}

const SUPPORTED: readonly DigestAlgorithm[] = ['SHA-512-256', 'SHA-256', 'MD5'];

export class NeighborAuth {
  /** `zone \n realm \n nonce` → the last nc sent with it; oldest dropped first beyond `maxNonces`. */
  readonly #nc = new Map<string, number>();
  readonly #maxNonces: number;

  constructor(maxNonces = 1024) {
    this.#maxNonces = maxNonces;
  }

  /**
   * The credentials answering the challenges of a 401/407 for a request (`method`, Request-URI `uri`); undefined
   * when the response carries no digest challenge this side can compute.
   */
  answer(
    res: SipResponse,
    zone: string,
    credentials: { username: string; password: string },
    method: string,
    uri: string,
  ): ChallengeAnswer | undefined {
    const proxy = res.status === 407;
    const raw = getHeaders(res, proxy ? 'proxy-authenticate' : 'www-authenticate');
    // RFC 8760 §2.4: per realm, the first challenge whose algorithm is supported, in the peer's order.
    const byRealm = new Map<string, DigestChallenge>();
    for (const v of raw) {
      const c = readChallenge(v);
      if (!c.ok || !SUPPORTED.includes(c.value.algorithm) || byRealm.has(c.value.realm)) continue;
      byRealm.set(c.value.realm, c.value);
    }
    if (byRealm.size === 0) return undefined;
    const values: string[] = [];
    let stale = false;
    for (const c of byRealm.values()) {
      const key = `${zone}\n${c.realm}\n${c.nonce}`;
      const nc = (this.#nc.get(key) ?? 0) + 1;
      this.#nc.delete(key);
      this.#nc.set(key, nc);
      if (this.#nc.size > this.#maxNonces) this.#nc.delete(this.#nc.keys().next().value!);
      values.push(answerChallenge(c, { ...credentials, method, uri, nc }));
      stale ||= c.stale;
    }
    return {
      header: proxy ? 'Proxy-Authorization' : 'Authorization',
      values,
      realms: [...byRealm.keys()],
      stale,
    };
  }
}

/** Drops the `header` values naming one of `realms` (the previous answer, before a new one is added). */
export function dropCredentials(headers: { name: string; value: string }[], header: string, realms: string[]) {
  const name = canonicalName(header);
  return headers.filter((h) => {
    if (canonicalName(h.name) !== name) return true;
    const m = /realm\s*=\s*"([^"]*)"/i.exec(h.value) ?? /realm\s*=\s*([^,\s]+)/i.exec(h.value);
    return m === null || !realms.includes(m[1]!);
  });
}
