import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../common/timers.ts';
import { NONCE_COOKIE } from '../stun/constants.ts';

/** RFC 8489 §9.2: security feature bits, counted from the most significant bit of 24. */
export const SecurityFeature = { passwordAlgorithms: 0x800000, usernameAnonymity: 0x400000 } as const;

export type NonceCheck = 'ok' | 'stale' | 'invalid';

/**
 * Stateless nonces: `obMatJos2` + the base64 feature set (RFC 8489 §9.2) + expiry + an HMAC binding them to the
 * client's address. Nothing is stored per client; a nonce past its expiry is stale (438).
 */
export class NonceIssuer {
  readonly #key: Buffer;
  readonly #clock: Clock;
  readonly #lifetimeMs: number;
  readonly #prefix: string;

  constructor(clock: Clock, lifetimeSeconds: number, features: number, key: Buffer = randomBytes(32)) {
    this.#clock = clock;
    this.#lifetimeMs = lifetimeSeconds * 1000;
    this.#key = key;
    const f = Buffer.from([(features >> 16) & 0xff, (features >> 8) & 0xff, features & 0xff]);
    this.#prefix = NONCE_COOKIE + f.toString('base64');
  }

  issue(clientIp: string): string {
    const expiry = Math.floor((this.#clock.wallNow() + this.#lifetimeMs) / 1000).toString(16);
    return `${this.#prefix}${expiry}.${this.#mac(expiry, clientIp)}`;
  }

  check(nonce: string, clientIp: string): NonceCheck {
    if (!nonce.startsWith(this.#prefix)) return 'invalid';
    const rest = nonce.slice(this.#prefix.length);
    const dot = rest.indexOf('.');
    if (dot < 1 || dot > 12) return 'invalid';
    const expiry = rest.slice(0, dot);
    const mac = Buffer.from(rest.slice(dot + 1), 'utf8');
    const expected = Buffer.from(this.#mac(expiry, clientIp), 'utf8');
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return 'invalid';
    return Number.parseInt(expiry, 16) * 1000 <= this.#clock.wallNow() ? 'stale' : 'ok';
  }

  /** The nonce's announced security features (undefined when it carries no RFC 8489 cookie). */
  static features(nonce: string): number | undefined {
    if (!nonce.startsWith(NONCE_COOKIE) || nonce.length < NONCE_COOKIE.length + 4) return undefined;
    const b = Buffer.from(nonce.slice(NONCE_COOKIE.length, NONCE_COOKIE.length + 4), 'base64');
    return b.length === 3 ? (b[0]! << 16) | (b[1]! << 8) | b[2]! : undefined;
  }

  #mac(expiry: string, clientIp: string): string {
    return createHmac('sha256', this.#key).update(`${expiry}|${clientIp}`).digest('base64url').slice(0, 22);
  }
}
