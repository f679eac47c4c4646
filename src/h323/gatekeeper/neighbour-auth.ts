import { randomInt } from 'node:crypto';
import type { RoutingConfig } from '../../routing/config.ts';
import type { CryptoH323Token, RasMessage } from '../per/generated/types.ts';
import {
  findHashedToken,
  findPwdHash,
  gkPwdHashToken,
  h235Key,
  ReplayCache,
  signRas,
  verifyHash,
  verifyPwdHash,
} from '../security/h235.ts';

/**
 * H.235 between neighbour gatekeepers (docs/h323.md "Routing and neighbour gatekeepers"): an h323 neighbour zone
 * with `authentication: { username, password }` shares that password with the neighbour, as GnuGk's
 * `[Neighbor::…]` `Password` (checks its LRQs) and `SendPassword` (signs ours) do. What we send the zone carries a
 * procedure I token (H.235.1, HMAC-SHA1-96 over the whole message, sendersID `username`), and our LRQs also GnuGk's
 * MD5 pwdHash (`cryptoGKPwdHash` naming `username`), the only scheme GnuGk checks on an LRQ. What the zone sends is
 * checked with either: procedure I when present (recipient, timestamp window, hash over the datagram, replay), else
 * the pwdHash (timestamp window, hash). When the zone names its `gatekeeperIdentifier`, the token must be signed by
 * that name. The password stays here: zones, status and logs say only whether a zone has one.
 */

export interface NeighbourAuthOptions {
  routing: Readonly<RoutingConfig>;
  /** Ours: the recipient an incoming procedure I token must name, when it names one. */
  gatekeeperIdentifier: string;
  /** Wall-clock ms. */
  wallNow: () => number;
  /** Largest difference between a token's timeStamp and our clock (s). */
  timestampWindowSeconds: number;
}

/** The zone as the check needs it. */
export interface AuthZone {
  name: string;
  gatekeeperIdentifier: string | undefined;
}

export type NeighbourVerdict = { ok: true; scheme: 'procedure I' | 'pwdHash' } | { ok: false; reason: string };

interface Credentials {
  username: string;
  password: string;
  key: Buffer;
}

export class NeighbourAuth {
  readonly #o: NeighbourAuthOptions;
  readonly #creds = new Map<string, Credentials>();
  readonly #replay = new ReplayCache(10_000);
  #random = randomInt(1, 0x7fffffff);

  constructor(o: NeighbourAuthOptions) {
    this.#o = o;
    for (const z of o.routing.zones) {
      if (z.type !== 'neighbor' || z.protocol !== 'h323' || !z.authentication) continue;
      const { username, password } = z.authentication;
      this.#creds.set(z.name, { username, password, key: h235Key(password) });
    }
  }

  /** Makes the datagram of a message to the zone, signed (undefined: the zone has no password). */
  encoder(zone: AuthZone): ((m: RasMessage) => Uint8Array) | undefined {
    const c = this.#creds.get(zone.name);
    if (!c) return undefined;
    return (m) => {
      const timeStamp = Math.floor(this.#o.wallNow() / 1000);
      this.#random = (this.#random % 0x7ffffffe) + 1;
      const others = m.choice === 'locationRequest' ? [gkPwdHashToken(c.username, c.password, timeStamp)] : [];
      return signRas(
        m,
        {
          key: c.key,
          sendersID: c.username,
          ...(zone.gatekeeperIdentifier !== undefined ? { generalID: zone.gatekeeperIdentifier } : {}),
          timeStamp,
          random: this.#random,
        },
        others,
      );
    };
  }

  /** Checks the tokens of a message from the zone against its password (`raw`: the datagram, for procedure I). */
  check(zone: AuthZone, tokens: readonly CryptoH323Token[] | undefined, raw: Uint8Array | undefined): NeighbourVerdict {
    const c = this.#creds.get(zone.name);
    if (!c) return { ok: false, reason: 'zone has no password' };
    const now = this.#o.wallNow();
    const windowMs = this.#o.timestampWindowSeconds * 1000;
    const fresh = (ts: number) => Math.abs(now - ts * 1000) <= windowMs;
    const expected = zone.gatekeeperIdentifier;
    const hashed = findHashedToken(tokens);
    if (hashed && !hashed.ok) return { ok: false, reason: `malformed H.235.1 token: ${hashed.reason}` };
    if (hashed) {
      const { clear, hash } = hashed.token;
      if (clear.generalID !== undefined && clear.generalID !== this.#o.gatekeeperIdentifier)
        return { ok: false, reason: `token for gatekeeper ${clear.generalID}` };
      if (expected !== undefined && clear.sendersID !== expected)
        return { ok: false, reason: `token signed by ${clear.sendersID ?? 'nobody'}` };
      if (clear.timeStamp === undefined || clear.random === undefined)
        return { ok: false, reason: 'token without timeStamp or random' };
      if (!fresh(clear.timeStamp)) return { ok: false, reason: `timeStamp ${clear.timeStamp} outside the window` };
      if (!raw || !verifyHash(raw, hash, c.key)) return { ok: false, reason: 'bad hash' };
      const seen = this.#replay.admit(zone.name, clear.timeStamp, clear.random, hash, now, now + 2 * windowMs + 1000);
      if (seen === 'replay') return { ok: false, reason: 'replayed token' };
      return { ok: true, scheme: 'procedure I' };
    }
    const pwd = findPwdHash(tokens);
    if (!pwd) return { ok: false, reason: 'no H.235 token' };
    if (expected !== undefined && pwd.sender !== expected)
      return { ok: false, reason: `token signed by ${pwd.sender}` };
    if (!fresh(pwd.timeStamp)) return { ok: false, reason: `timeStamp ${pwd.timeStamp} outside the window` };
    if (!verifyPwdHash(pwd, c.password)) return { ok: false, reason: 'bad hash' };
    return { ok: true, scheme: 'pwdHash' };
  }
}
