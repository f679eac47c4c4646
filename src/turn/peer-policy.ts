import { ipToBytes } from '../stun/address.ts';

interface Range {
  bytes: Buffer;
  bits: number;
}

function parseRange(s: string): Range {
  const [ip, bits] = s.split('/') as [string, string | undefined];
  const bytes = ipToBytes(ip);
  if (!bytes) throw new TypeError(`not an address range: ${s}`);
  return { bytes, bits: bits === undefined ? bytes.length * 8 : Number(bits) };
}

function inRange(addr: Buffer, r: Range): boolean {
  if (addr.length !== r.bytes.length) return false;
  const full = r.bits >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== r.bytes[i]) return false;
  const rest = r.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (addr[full]! & mask) === (r.bytes[full]! & mask);
}

export type PeerVerdict = 'allowed' | 'loopback' | 'own-address' | 'denied-range' | 'not-an-address';

/**
 * Which peers a client may relay to (a classic TURN abuse is relaying into the server's own network): loopback,
 * the node's own addresses and the denied ranges are refused unless an allowed range covers the peer.
 */
export class PeerPolicy {
  readonly #denied: Range[];
  readonly #allowed: Range[];
  readonly #own = new Set<string>();
  readonly #loopback = [parseRange('127.0.0.0/8'), parseRange('::1/128')];

  constructor(options: { denied: readonly string[]; allowed: readonly string[]; ownAddresses?: readonly string[] }) {
    this.#denied = options.denied.map(parseRange);
    this.#allowed = options.allowed.map(parseRange);
    for (const a of options.ownAddresses ?? []) this.addOwnAddress(a);
  }

  /** Adds an address of this node (relay or listening address, interface address). */
  addOwnAddress(ip: string): void {
    const b = ipToBytes(ip);
    if (b) this.#own.add(b.toString('hex'));
  }

  check(ip: string): PeerVerdict {
    let b = ipToBytes(ip);
    if (!b) return 'not-an-address';
    // An IPv4-mapped IPv6 peer is judged as the IPv4 address it maps to.
    if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
      b = b.subarray(12);
    }
    for (const r of this.#allowed) if (inRange(b, r)) return 'allowed';
    if (this.#loopback.some((r) => inRange(b, r))) return 'loopback';
    if (this.#own.has(b.toString('hex'))) return 'own-address';
    for (const r of this.#denied) if (inRange(b, r)) return 'denied-range';
    return 'allowed';
  }
}
