import { isIPv4, isIPv6 } from 'node:net';

/** An IP transport address. IPv6 addresses are in canonical RFC 5952 text form. */
export interface TransportAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
}

/** Parses an IPv4 or IPv6 text address into 4 or 16 bytes; undefined when it is neither. */
export function ipToBytes(ip: string): Buffer | undefined {
  if (isIPv4(ip)) {
    const out = Buffer.allocUnsafe(4);
    let i = 0;
    for (const part of ip.split('.')) out[i++] = Number(part);
    return out;
  }
  if (!isIPv6(ip)) return undefined;
  let text = ip;
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  const out = Buffer.alloc(16);
  let tail: number[] = [];
  const head: number[] = [];
  const [left, right] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const groups = (s: string): number[] => {
    if (s === '') return [];
    const res: number[] = [];
    for (const g of s.split(':')) {
      if (g.includes('.')) {
        const v4 = ipToBytes(g)!;
        res.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else res.push(Number.parseInt(g, 16));
    }
    return res;
  };
  head.push(...groups(left));
  if (right !== undefined) tail = groups(right);
  const all = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(all[i]!, i * 2);
  return out;
}

/** Formats 4 or 16 address bytes as text (IPv6 in RFC 5952 canonical form). */
export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i));
  // RFC 5952 §4.2: the longest run (≥ 2) of zero groups, the first one on a tie, becomes "::".
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Canonical text of an address as the rest of the TURN server keys it (IPv4-mapped IPv6 becomes IPv4). */
export function canonicalIp(ip: string): string {
  if (ip.startsWith('::ffff:') && isIPv4(ip.slice(7))) return ip.slice(7);
  if (isIPv4(ip)) return ip;
  const b = ipToBytes(ip);
  return b ? bytesToIp(b) : ip;
}
