/**
 * Normalises the seed's rows (`test/vectors/seed/port-reference.rows.json`) into atoms comparable with the plan's
 * flows: one atom per protocol and per traversal zone, endpoints mapped to peer kinds, port texts parsed into
 * ranges. Unknown wording throws, so a new kind of row cannot slip through unchecked.
 */
import { readFileSync } from 'node:fs';
import type { DeploymentSize } from '../../src/config/schema.ts';
import {
  equal,
  type Flow,
  formatRange,
  type PeerKind,
  type PlanTable,
  type PortRange,
  type Protocol,
  span,
  UNPRIVILEGED,
} from '../../src/ports/index.ts';

export interface SeedRow {
  table: string;
  purpose: string;
  src: string;
  srcPorts: string;
  protocol: string;
  dst: string;
  dstPorts: string;
}

export interface SeedEnd {
  peers: PeerKind[];
  side?: 'public' | 'private';
}

export interface SeedAtom {
  /** 0-based index in the rows file, for messages. */
  row: number;
  table: PlanTable;
  purpose: string;
  from: SeedEnd;
  fromPorts: PortRange;
  protocol: Protocol;
  to: SeedEnd;
  toPorts: PortRange;
  /** Set when the seed's text cannot be read as it stands for this configuration (a named decision must apply). */
  contradiction?: string;
}

export interface SeedContext {
  size: DeploymentSize;
  mux: 'default-36000' | 'legacy-2776';
  zones: number;
}

export function loadSeedRows(): SeedRow[] {
  const url = new URL('../vectors/seed/port-reference.rows.json', import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')) as SeedRow[];
}

const TABLES: Record<string, PlanTable> = { SIP: 'SIP', 'H.323': 'H.323', TMS: 'management', LDAP: 'LDAP' };

/** Purposes compared case-insensitively, with the seed's product names mapped to Crossway's node names. */
export function normalisePurpose(s: string): string {
  return s
    .toLowerCase()
    .replace(/expressway-e/g, 'edge')
    .replace(/expressway-c/g, 'core')
    .replace(/cisco tms/g, 'management system')
    .replace(/\bthe\s+/g, '')
    .replace(/\s+/g, ' ')
    .trim();
}

export function normaliseEnd(text: string): SeedEnd {
  const t = text.toLowerCase().replace(/[†‡]/g, '').trim();
  if (t.startsWith('expressway-c')) return { peers: ['core'] };
  if (t.startsWith('expressway-e')) {
    if (t.includes('public')) return { peers: ['edge'], side: 'public' };
    if (t.includes('private')) return { peers: ['edge'], side: 'private' };
    return { peers: ['edge'] };
  }
  if (t.startsWith('cisco tms')) return { peers: ['management-system'] };
  if (t === 'directory server') return { peers: ['directory'] };
  if (t === 'sip endpoint (or its firewall)') return { peers: ['internet'] };
  // "SIP endpoint" next to the core: an endpoint the core reaches, inside (or, routed, outside).
  if (t === 'sip endpoint') return { peers: ['inside-endpoint', 'internet'] };
  if (
    t === 'any ip address' ||
    t === 'any (endpoint in the internet)' ||
    t === 'registered endpoint in the internet' ||
    t.startsWith('external address of firewall protecting off-premises')
  ) {
    return { peers: ['internet'] };
  }
  throw new Error(`unknown endpoint in the seed: "${text}"`);
}

export function normaliseProtocols(text: string): Protocol[] {
  switch (text.trim()) {
    case 'TCP or TLS':
      return ['tcp', 'tls'];
    case 'UDP & TCP':
      return ['udp', 'tcp'];
    case 'UDP':
      return ['udp'];
    case 'TCP':
      return ['tcp'];
    case 'TLS':
      return ['tls'];
    case 'MTLS':
      return ['mtls'];
    default:
      throw new Error(`unknown protocol in the seed: "${text}"`);
  }
}

function isLegacyMux(r: PortRange): boolean {
  return r.from === r.to && (r.from === 2776 || r.from === 2777);
}

function parseExpr(text: string): PortRange {
  const t = text.trim();
  const range = /^(\d+)\s*-\s*(\d+)\s*(?:\((even|odd) ports\))?/.exec(t);
  if (range) {
    const from = Number(range[1]);
    const to = Number(range[2]);
    const parity = range[3];
    if (parity && from % 2 !== (parity === 'even' ? 0 : 1)) throw new Error(`parity does not match: "${text}"`);
    return span(from, to, parity ? 2 : 1);
  }
  const one = /^(\d+)\b/.exec(t);
  if (one) return span(Number(one[1]), Number(one[1]));
  throw new Error(`cannot read port expression "${text}"`);
}

/**
 * A port text of the seed, for one configuration: `>=1024` anywhere means any unprivileged port (the seed says
 * "could be another port >=1024" of ports chosen by endpoints); `(Small/Medium) … (Large)` picks the size;
 * `2776 or 36000` picks by the mux setting; `7001 (for first traversal zone; 7002 for second etc.)` expands to
 * one port per zone.
 */
export function normalisePorts(text: string, ctx: SeedContext): { ports: PortRange[]; contradiction?: string } {
  if (text.includes('>=1024')) return { ports: [UNPRIVILEGED] };
  const zone = /^(\d+) \(for first traversal zone[;,] (\d+) for second etc\.\)$/.exec(text.trim());
  if (zone) {
    const base = Number(zone[1]);
    if (Number(zone[2]) !== base + 1) throw new Error(`zone ports not consecutive: "${text}"`);
    return { ports: Array.from({ length: ctx.zones }, (_, i) => span(base + i, base + i)) };
  }
  const sized = /^(.*?)\(Small\/Medium\)\s*(?:or\s+)?(.*?)\(Large\)\s*$/.exec(text.trim());
  if (sized) {
    if (ctx.size === 'large') return { ports: [parseExpr(sized[2]!)] };
    const alternatives = sized[1]!.split(/\s+or\s+/).map(parseExpr);
    // Only the traversal-media demux rows offer a choice (2776/2777 or 36000/36001); other rows are one answer.
    if (alternatives.length === 1 && !isLegacyMux(alternatives[0]!)) return { ports: alternatives };
    const legacy = alternatives.find(isLegacyMux);
    const modern = alternatives.find((r) => !isLegacyMux(r));
    if (ctx.mux === 'legacy-2776' && legacy) return { ports: [legacy] };
    if (ctx.mux === 'default-36000' && modern) return { ports: [modern] };
    return {
      ports: alternatives,
      contradiction: `small/medium mux: the row offers only ${alternatives.map(formatRange)}`,
    };
  }
  return { ports: [parseExpr(text)] };
}

/**
 * A plain "Expressway-E" (no side named) takes its side from the other end: facing the internet it is the public
 * side, facing the core the private side (docs/ports.md). A sideless edge next to any other peer throws.
 */
export function inferEdgeSide(e: SeedEnd, other: SeedEnd, text: string): SeedEnd {
  if (!e.peers.includes('edge') || e.side !== undefined) return e;
  const o = other.peers;
  if (o.length === 1 && o[0] === 'internet') return { ...e, side: 'public' };
  if (o.length === 1 && o[0] === 'core') return { ...e, side: 'private' };
  throw new Error(`cannot tell the edge side of "${text}" next to ${o.join('|')}`);
}

/** Every atom of one seed row for a configuration. */
export function normaliseRow(row: SeedRow, index: number, ctx: SeedContext): SeedAtom[] {
  const table = TABLES[row.table];
  if (!table) throw new Error(`unknown table "${row.table}"`);
  const src = normaliseEnd(row.src);
  const dst = normaliseEnd(row.dst);
  const from = inferEdgeSide(src, dst, row.src);
  const to = inferEdgeSide(dst, src, row.dst);
  const srcP = normalisePorts(row.srcPorts, ctx);
  const dstP = normalisePorts(row.dstPorts, ctx);
  if (srcP.ports.length !== 1) throw new Error(`row ${index}: several source port sets`);
  const contradiction = srcP.contradiction ?? dstP.contradiction;
  const out: SeedAtom[] = [];
  for (const protocol of normaliseProtocols(row.protocol)) {
    for (const toPorts of dstP.ports) {
      out.push({
        row: index,
        table,
        purpose: normalisePurpose(row.purpose),
        from,
        fromPorts: srcP.ports[0]!,
        protocol,
        to,
        toPorts,
        ...(contradiction ? { contradiction } : {}),
      });
    }
  }
  return out;
}

function endMatches(e: SeedEnd, peer: PeerKind, side: 'public' | 'private' | undefined): boolean {
  // an edge end always has a side (named by the seed or inferred): a flow on the other side does not match
  return e.peers.includes(peer) && e.side === side;
}

/** Whether a generated flow is the atom: same table, purpose, ends (and edge side), protocol, both port sets. */
export function flowMatches(f: Flow, a: SeedAtom): boolean {
  return (
    f.table === a.table &&
    normalisePurpose(f.purpose) === a.purpose &&
    endMatches(a.from, f.from.peer, f.from.side) &&
    endMatches(a.to, f.to.peer, f.to.side) &&
    f.protocols.includes(a.protocol) &&
    equal(f.from.ports, a.fromPorts) &&
    equal(f.to.ports, a.toPorts)
  );
}

export function describeAtom(a: SeedAtom): string {
  const end = (e: SeedEnd) => `${e.peers.join('|')}${e.side ? `(${e.side})` : ''}`;
  return `row ${a.row} [${a.table}] "${a.purpose}" ${end(a.from)}:${formatRange(a.fromPorts)} -${a.protocol}-> ${end(a.to)}:${formatRange(a.toPorts)}`;
}
