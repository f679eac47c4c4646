import { isIP } from 'node:net';
import type { CrosswayConfig } from '../config/schema.ts';
import { formatRange, nftRange, type PortRange } from './port-range.ts';
import { protocolsLabel } from './render-table.ts';
import { type Flow, type FlowEnd, PEER_ZONE, type PortPlan } from './types.ts';

/** The named address sets every generated ruleset declares (`<name>4` for IPv4, `<name>6` for IPv6). */
export const ADDRESS_SETS = Object.freeze([
  'edge_public',
  'edge_private',
  'core',
  'inside_endpoints',
  'management_systems',
  'directories',
  'outside_neighbours',
  'inside_neighbours',
] as const);
export type AddressSetName = (typeof ADDRESS_SETS)[number];
/** Addresses or prefixes (`10.1.0.0/16`) for each set; a set left empty matches nothing (default deny holds). */
export type AddressBook = Partial<Record<AddressSetName, readonly string[]>>;

/** Where a ruleset goes: on a node itself, or on the firewall outside↔DMZ or DMZ↔inside. */
export const NFT_TARGETS = Object.freeze(['edge-host', 'core-host', 'outside-firewall', 'inside-firewall'] as const);
export type NftTarget = (typeof NFT_TARGETS)[number];

const TABLE_NAME: Record<NftTarget, string> = {
  'edge-host': 'crossway_edge_host',
  'core-host': 'crossway_core_host',
  'outside-firewall': 'crossway_outside_fw',
  'inside-firewall': 'crossway_inside_fw',
};

function hostOf(url: string): string | undefined {
  const m = /^[a-z]+:\/\/(?:\[([^\]]+)\]|([^/:?#]+))/i.exec(url);
  const h = m?.[1] ?? m?.[2];
  return h && isIP(h) ? h : undefined;
}

/**
 * The addresses a node's configuration knows: its own (`network.*`), LDAP servers and feedback subscribers given
 * as IP addresses. Names are not resolved: add their addresses with `--address` or `nft add element` after loading.
 */
export function addressesFromConfig(config: Readonly<CrosswayConfig>): AddressBook {
  const book: Record<string, string[]> = {};
  const add = (set: AddressSetName, a: string | undefined) => {
    if (!a) return;
    const list = book[set] ?? [];
    if (!list.includes(a)) list.push(a);
    book[set] = list;
  };
  const n = config.network;
  if (config.role === 'edge') {
    add('edge_public', n.publicAddress ?? n.address);
    add('edge_private', n.address);
  } else if (config.role === 'core') {
    add('core', n.address);
    for (const z of config.traversalZones) if (z.peerAddress && isIP(z.peerAddress)) add('edge_private', z.peerAddress);
  }
  for (const s of config.ldap.servers) add('directories', hostOf(s.url));
  // neighbour zones: an edge reaches them from its public side (outside), a core on the inside (a lab: both)
  for (const z of config.routing.zones) {
    if (z.type !== 'neighbor' || !z.address || !isIP(z.address)) continue;
    if (config.role !== 'core') add('outside_neighbours', z.address);
    if (config.role !== 'edge') add('inside_neighbours', z.address);
  }
  for (const s of config.feedback.subscribers) add('management_systems', hostOf(s.url));
  return book;
}

function setFor(e: FlowEnd): AddressSetName[] {
  switch (e.peer) {
    case 'edge':
      return e.side === 'public'
        ? ['edge_public']
        : e.side === 'private'
          ? ['edge_private']
          : ['edge_public', 'edge_private'];
    case 'core':
      return ['core'];
    case 'inside-endpoint':
      return ['inside_endpoints'];
    case 'management-system':
      return ['management_systems'];
    case 'directory':
      return ['directories'];
    case 'outside-neighbour':
      return ['outside_neighbours'];
    case 'inside-neighbour':
      return ['inside_neighbours'];
    case 'internet':
      return [];
  }
}

/** The flows a target's ruleset must allow, and in which chain. */
export function flowsFor(plan: PortPlan, target: NftTarget): { chain: 'input' | 'output' | 'forward'; flow: Flow }[] {
  const out: { chain: 'input' | 'output' | 'forward'; flow: Flow }[] = [];
  for (const f of plan.flows) {
    const a = PEER_ZONE[f.from.peer];
    const b = PEER_ZONE[f.to.peer];
    if (target === 'edge-host' || target === 'core-host') {
      const me = target === 'edge-host' ? 'edge' : 'core';
      if (f.to.peer === me) out.push({ chain: 'input', flow: f });
      if (f.from.peer === me) out.push({ chain: 'output', flow: f });
      continue;
    }
    const crosses =
      target === 'outside-firewall'
        ? (a === 'outside') !== (b === 'outside') // outside ↔ DMZ or inside
        : (a === 'inside') !== (b === 'inside'); // DMZ or outside ↔ inside
    if (crosses) out.push({ chain: 'forward', flow: f });
  }
  return out;
}

function comment(s: string): string {
  // nft comments are at most 128 bytes and quoted.
  const clean = s.replace(/["\\\n]/g, "'");
  const buf = Buffer.from(clean, 'utf8');
  return buf.length <= 120
    ? clean
    : `${buf
        .subarray(0, 117)
        .toString('utf8')
        .replace(/\uFFFD$/, '')}...`;
}

/** `udp dport 36000-59998 udp dport & 1 == 0`: every-other-port ranges (even RTP, odd RTCP) keep their parity. */
function portMatch(l4: 'tcp' | 'udp', dir: 'sport' | 'dport', r: PortRange): string {
  const base = `${l4} ${dir} ${nftRange(r)}`;
  return r.step === 2 && r.from !== r.to ? `${base} ${l4} ${dir} & 1 == ${r.from % 2}` : base;
}

function rulesFor(f: Flow): { body: string; why: string }[] {
  const l4s = [...new Set(f.protocols.map((p) => (p === 'udp' ? 'udp' : 'tcp')))] as ('udp' | 'tcp')[];
  const why = comment(
    `${f.table}: ${f.purpose}, ${f.from.peer}→${f.to.peer} ${protocolsLabel(f.protocols)} ${formatRange(f.to.ports)} [${f.setting}]`,
  );
  const out: { body: string; why: string }[] = [];
  // Both ends are matched by address set (on a host its own address too: listeners are bound to one side).
  // an end bound to one address of the node (turn.additionalRelayAddress) is matched by it, in its family only
  const src = f.from.address ? [] : setFor(f.from);
  // a multicast destination is matched by its group address, not by the node's own addresses
  const dst = f.to.group || f.to.address ? [] : setFor(f.to);
  const familyOf = (a: string | undefined) => (a === undefined ? undefined : isIP(a) === 6 ? 'ip6' : 'ip');
  const pinned = familyOf(f.from.address) ?? familyOf(f.to.address);
  const srcOpts = src.length ? src : [undefined];
  const dstOpts = dst.length ? dst : [undefined];
  for (const fam of ['ip', 'ip6'] as const) {
    const suffix = fam === 'ip' ? '4' : '6';
    if (pinned && fam !== pinned) continue;
    // A flow with no address set on either end cannot be tied to a family: emit it once, family-less.
    if (!pinned && !src.length && !dst.length && fam === 'ip6') continue;
    if (f.to.group && fam === 'ip6') continue; // an IPv4 multicast group
    for (const s of srcOpts) {
      for (const d of dstOpts) {
        for (const l4 of l4s) {
          const parts: string[] = [];
          if (s) parts.push(`${fam} saddr @${s}${suffix}`);
          else if (f.from.address) parts.push(`${fam} saddr ${f.from.address}`);
          if (d) parts.push(`${fam} daddr @${d}${suffix}`);
          else if (f.to.address) parts.push(`${fam} daddr ${f.to.address}`);
          else if (f.to.group && fam === 'ip') parts.push(`ip daddr ${f.to.group}`);
          parts.push(portMatch(l4, 'sport', f.from.ports));
          parts.push(portMatch(l4, 'dport', f.to.ports));
          parts.push('ct state new');
          out.push({ body: parts.join(' '), why });
        }
      }
    }
  }
  return out;
}

function setDecls(book: AddressBook): string[] {
  const out: string[] = [];
  for (const name of ADDRESS_SETS) {
    const all = book[name] ?? [];
    for (const [suffix, type, fam] of [
      ['4', 'ipv4_addr', 4],
      ['6', 'ipv6_addr', 6],
    ] as const) {
      const els = all.filter((a) => isIP(a.split('/')[0] ?? '') === fam);
      const elements = els.length ? ` elements = { ${els.join(', ')} };` : '';
      out.push(`  set ${name}${suffix} { type ${type}; flags interval;${elements} }`);
    }
  }
  return out;
}

/**
 * One nftables ruleset (an `inet` table), default deny, one commented rule per flow of the plan that the target
 * must allow. Loadable as is with `nft -f`; reloading replaces the table. Replies ride on connection tracking.
 */
export function renderNftables(plan: PortPlan, target: NftTarget, book: AddressBook = {}): string {
  const table = TABLE_NAME[target];
  const flows = flowsFor(plan, target);
  const chains = target.endsWith('-host') ? (['input', 'output'] as const) : (['forward'] as const);
  const lines: string[] = [
    `# Crossway ${target} ruleset: ${plan.role} plan, size ${plan.size}, port offset ${plan.portOffset}.`,
    '# Generated by `crossway ports --format nftables`: default deny, one rule per flow of the port plan.',
    '# Fill the address sets here or later with `nft add element inet ' + table + ' <set> { ADDRESS }`.',
    `table inet ${table}`,
    `delete table inet ${table}`,
    `table inet ${table} {`,
    ...setDecls(book),
  ];
  for (const chain of chains) {
    const hook = chain;
    lines.push('', `  chain ${chain} {`, `    type filter hook ${hook} priority filter; policy drop;`);
    lines.push('    ct state established,related accept comment "replies and related ICMP"');
    lines.push('    ct state invalid drop comment "invalid packets"');
    if (chain !== 'forward') {
      lines.push(`    ${chain === 'input' ? 'iif' : 'oif'} lo accept comment "loopback"`);
      lines.push(
        '    meta l4proto { icmp, ipv6-icmp } accept comment "ICMP and ICMPv6 (neighbour discovery, path MTU)"',
      );
    }
    const seen = new Set<string>();
    for (const { chain: c, flow } of flows) {
      if (c !== chain) continue;
      for (const r of rulesFor(flow)) {
        if (seen.has(r.body)) continue;
        seen.add(r.body);
        lines.push(`    ${r.body} accept comment "${r.why}"`);
      }
    }
    lines.push('  }');
  }
  lines.push('}');
  return `${lines.join('\n')}\n`;
}

/** All four rulesets, one after the other, each introduced by a comment saying where it goes. */
export function renderAllNftables(plan: PortPlan, book: AddressBook = {}): string {
  const targets = NFT_TARGETS.filter((t) => {
    if (t === 'edge-host') return plan.nodes.some((n) => n.node === 'edge');
    if (t === 'core-host') return plan.nodes.some((n) => n.node === 'core');
    return true;
  });
  return targets
    .map((t) => `# ==== ${t}: load on the ${t.replace('-', ' ')} only ====\n${renderNftables(plan, t, book)}`)
    .join('\n');
}
