import { canonicalIp } from '../stun/address.ts';
import { contains, ports } from './port-range.ts';
import type { Listener, NodeKind, PortPlan } from './types.ts';

/** A socket a process has open for listening (TCP LISTEN, UDP bound). */
export interface OpenSocket {
  readonly transport: 'udp' | 'tcp';
  /**
   * Local address as bound: `127.0.0.1`, `::1`, `0.0.0.0`, `::`. A wildcard matches a listener of either side on a
   * one-address node; on a node with two addresses only a listener of both sides (a wildcard opens both).
   */
  readonly address: string;
  readonly port: number;
}

/** A node's addresses: the edge's public and private sides (equal on a one-interface node). */
export interface NodeSides {
  readonly public: string;
  readonly private: string;
}

/** How a process's sockets compare with its plan. */
export interface InventoryReport {
  /** Open sockets no listener or pool of the plan accounts for: the node opens something the plan does not say. */
  readonly unexpected: readonly OpenSocket[];
  /** Listener ports (per node and address) the plan says and no socket serves. */
  readonly missing: readonly { readonly listener: Listener; readonly port: number; readonly address: string }[];
  /** Sockets matched to a listener. */
  readonly matched: number;
  /** Sockets inside a pool (media, TURN relays, H.245): allocated on demand, allowed. */
  readonly pooled: number;
}

const WILDCARDS = new Set(['0.0.0.0', '::', '*']);

function addressesOf(l: Listener, sides: NodeSides): string[] {
  // a multicast listener is bound to its group (and joins it on the side's address)
  if (l.group) return [l.group];
  if (l.side === 'public') return [sides.public];
  if (l.side === 'private') return [sides.private];
  return [...new Set([sides.public, sides.private])];
}

function sameAddress(bound: string, want: string, wildcardOk = true): boolean {
  return (wildcardOk && WILDCARDS.has(bound)) || bound === want || bound === `::ffff:${want}`;
}

/** The same IP however it is written (`2001:db8::5` and `2001:DB8:0::5`, `::ffff:192.0.2.1` and `192.0.2.1`). */
function sameIp(a: string, b: string): boolean {
  return canonicalIp(a) === canonicalIp(b);
}

/**
 * Compares the sockets a process really opened with its plan. `addresses` gives each node's addresses (both for a
 * `lab` process). A socket matches a listener when transport, port and address (or a wildcard) agree; a socket in
 * a pool of the same node (media, TURN relay, H.323 dynamic) is allowed. Pure: the caller lists the sockets (the
 * node's own inventory, or `parseSs` of `ss -lntupH`).
 */
export function compareInventory(
  plan: PortPlan,
  sockets: readonly OpenSocket[],
  addresses: Partial<Record<NodeKind, NodeSides>>,
): InventoryReport {
  const used = new Set<OpenSocket>();
  const missing: { listener: Listener; port: number; address: string }[] = [];
  let matched = 0;
  for (const node of plan.nodes) {
    const sides = addresses[node.node];
    if (!sides) continue;
    for (const l of node.listeners) {
      // a wildcard bind of a one-side listener on a two-address node also opens the other side
      const wildcardOk = l.side === 'both' || sides.public === sides.private || l.group !== undefined;
      for (const port of ports(l.ports)) {
        for (const address of addressesOf(l, sides)) {
          const hits = sockets.filter(
            (s) => s.transport === l.transport && s.port === port && sameAddress(s.address, address, wildcardOk),
          );
          if (hits.length === 0) missing.push({ listener: l, port, address });
          for (const h of hits) {
            if (!used.has(h)) matched++;
            used.add(h);
          }
        }
      }
    }
  }
  let pooled = 0;
  const unexpected: OpenSocket[] = [];
  for (const s of sockets) {
    if (used.has(s)) continue;
    const inPool = plan.nodes.some((n) => {
      const sides = addresses[n.node];
      if (!sides) return false;
      const onSide = sameAddress(s.address, sides.public) || sameAddress(s.address, sides.private);
      return n.pools.some((p) => {
        if (!contains(p.ports, s.port)) return false;
        // a pool bound on another address of the node too (TURN relays on turn.additionalRelayAddress)
        if (!onSide && !p.alsoOn?.some((a) => sameIp(s.address, a.address))) return false;
        if (p.id === 'media') return s.transport === 'udp' && n.mediaPool().allows(s.port);
        if (p.id === 'h323-dynamic') return s.transport === 'tcp';
        return p.id === 'turn-relay';
      });
    });
    if (inPool) pooled++;
    else unexpected.push(s);
  }
  return Object.freeze({ unexpected: Object.freeze(unexpected), missing: Object.freeze(missing), matched, pooled });
}

/**
 * Reads `ss -lntupH` (listening TCP, bound UDP, numeric, with processes, no header) and keeps the sockets of `pid`.
 * Lines that do not parse are skipped.
 */
export function parseSs(output: string, pid: number): OpenSocket[] {
  const out: OpenSocket[] = [];
  for (const line of output.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6) continue;
    const netid = f[0];
    if (netid !== 'tcp' && netid !== 'udp') continue;
    if (!new RegExp(`pid=${pid}\\b`).test(line)) continue;
    const local = f[4] ?? '';
    const m = /^\[?(.*?)\]?(?:%[^:]+)?:(\d+)$/.exec(local);
    const port = Number(m?.[2]);
    if (!m || !(port >= 0 && port <= 65535)) continue;
    out.push({ transport: netid, address: m[1] ?? '', port });
  }
  return out;
}
