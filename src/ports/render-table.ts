import { equal, formatRange, type PortRange, UNPRIVILEGED } from './port-range.ts';
import type { Flow, FlowEnd, Listener, NotOpened, PlanTable, PortPlan, PortPool, Protocol } from './types.ts';

/** The seed's four tables, in its order, with its titles. */
export const TABLES: readonly { id: PlanTable; title: string }[] = Object.freeze([
  { id: 'SIP', title: 'SIP calls' },
  { id: 'H.323', title: 'H.323 calls' },
  { id: 'management', title: 'Management system (SNMP, HTTP/HTTPS, feedback events)' },
  { id: 'LDAP', title: 'LDAP' },
]);

/** The seed's columns, plus the setting that produced each row. */
export const COLUMNS = Object.freeze(['Purpose', 'Src. IP', 'Src. Ports', 'Protocol', 'Dest. IP', 'Dest. Ports']);

const PEER_LABEL: Record<FlowEnd['peer'], string> = {
  edge: 'edge',
  core: 'core',
  internet: 'endpoint in the internet (or its firewall)',
  'inside-endpoint': 'inside endpoint',
  'management-system': 'management system',
  directory: 'directory server',
  'outside-neighbour': 'neighbour zone (outside)',
  'inside-neighbour': 'neighbour zone (inside)',
};

export function peerLabel(e: FlowEnd): string {
  const base = PEER_LABEL[e.peer];
  if (e.address) return `${base} (${e.address})`;
  return e.side ? `${base} (${e.side})` : base;
}

export function portsLabel(r: PortRange): string {
  return equal(r, UNPRIVILEGED) ? '>=1024' : formatRange(r);
}

export function protocolsLabel(ps: readonly Protocol[]): string {
  const up = ps.map((p) => p.toUpperCase());
  if (up.length === 2 && up.includes('UDP')) return up.join(' & ');
  return up.join(' or ');
}

/** One row of a rendered table: the seed's six columns plus why. */
export interface TableRow {
  cells: [string, string, string, string, string, string];
  setting: string;
  note?: string;
}

export function flowRow(f: Flow | NotOpened<Flow>): TableRow {
  const notOpened = 'notOpened' in f ? f.notOpened : undefined;
  const note = [f.note, notOpened].filter(Boolean).join('; ');
  return {
    cells: [
      f.purpose,
      peerLabel(f.from),
      portsLabel(f.from.ports),
      protocolsLabel(f.protocols),
      peerLabel(f.to),
      portsLabel(f.to.ports),
    ],
    setting: f.setting,
    ...(note ? { note } : {}),
  };
}

/** A listener's row: node, id, protocol, side, ports, purpose, setting (with why it is not opened, if so). */
export function listenerLine(l: Listener | NotOpened<Listener>): string[] {
  const proto = l.security ? `${l.transport.toUpperCase()}/${l.security.toUpperCase()}` : l.transport.toUpperCase();
  const setting = 'notOpened' in l ? `${l.setting} — ${l.notOpened}` : l.setting;
  return [l.node, l.id, proto, l.side, formatRange(l.ports), l.purpose, setting];
}

/** A pool's row: node, id, ports, purpose (with the addresses it is also bound on), setting. */
export function poolLine(p: PortPool): string[] {
  const also = p.alsoOn?.length ? ` (also on ${p.alsoOn.map((a) => `${a.address}: ${a.setting}`).join(', ')})` : '';
  return [p.node, p.id, formatRange(p.ports), `${p.purpose}${also}`, p.setting];
}

function heading(plan: PortPlan): string {
  const remap = plan.remapped.length
    ? `; unprivileged lab: ${plan.remapped.map((r) => `${r.from}→${r.to}`).join(', ')}`
    : '';
  return `role ${plan.role}, size ${plan.size}, port offset ${plan.portOffset}${remap}`;
}

function escapeMd(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The seed's four tables for this plan as Markdown, each row with the setting that produced it. */
export function renderMarkdown(plan: PortPlan): string {
  const out: string[] = [`# Crossway port plan`, '', heading(plan), ''];
  for (const t of TABLES) {
    const rows = plan.flows.filter((f) => f.table === t.id).map(flowRow);
    out.push(`## ${t.title}`, '');
    if (rows.length === 0) {
      out.push('(none in this configuration)', '');
      continue;
    }
    out.push(`| ${[...COLUMNS, 'Setting'].join(' | ')} |`, `|${'---|'.repeat(COLUMNS.length + 1)}`);
    for (const r of rows) {
      const why = r.note ? `\`${r.setting}\` — ${r.note}` : `\`${r.setting}\``;
      out.push(`| ${[...r.cells, why].map(escapeMd).join(' | ')} |`);
    }
    out.push('');
  }
  if (plan.notOpened.flows.length > 0 || plan.notOpened.listeners.length > 0) {
    out.push(
      '## Not opened yet',
      '',
      'The seed lists these for this configuration; no node opens them yet and no firewall ruleset allows them.',
      '',
    );
    if (plan.notOpened.flows.length > 0) {
      out.push(`| ${['Table', ...COLUMNS, 'Setting'].join(' | ')} |`, `|${'---|'.repeat(COLUMNS.length + 2)}`);
      for (const f of plan.notOpened.flows) {
        const r = flowRow(f);
        out.push(`| ${[f.table, ...r.cells, `\`${r.setting}\` — ${r.note}`].map(escapeMd).join(' | ')} |`);
      }
      out.push('');
    }
    if (plan.notOpened.listeners.length > 0) {
      out.push('| Node | Id | Protocol | Side | Ports | Purpose | Setting |', '|---|---|---|---|---|---|---|');
      for (const l of plan.notOpened.listeners) out.push(`| ${listenerLine(l).map(escapeMd).join(' | ')} |`);
      out.push('');
    }
  }
  out.push(
    '## Listening sockets',
    '',
    '| Node | Id | Protocol | Side | Ports | Purpose | Setting |',
    '|---|---|---|---|---|---|---|',
  );
  for (const l of plan.listeners) out.push(`| ${listenerLine(l).map(escapeMd).join(' | ')} |`);
  out.push('', '## Port pools', '', '| Node | Id | Ports | Purpose | Setting |', '|---|---|---|---|---|');
  for (const p of plan.pools) out.push(`| ${poolLine(p).map(escapeMd).join(' | ')} |`);
  return `${out.join('\n')}\n`;
}

function aligned(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
}

/** The same tables as plain text; under each row, a line naming the setting that produced it. */
export function renderTable(plan: PortPlan): string {
  const out: string[] = ['Crossway port plan', heading(plan), ''];
  for (const t of TABLES) {
    const rows = plan.flows.filter((f) => f.table === t.id).map(flowRow);
    out.push(`== ${t.title}`);
    if (rows.length === 0) {
      out.push('(none in this configuration)', '');
      continue;
    }
    const lines = aligned([[...COLUMNS], ...rows.map((r) => r.cells)]);
    out.push(lines[0]!);
    rows.forEach((r, i) => {
      out.push(lines[i + 1]!);
      out.push(`    ↳ ${r.setting}${r.note ? ` — ${r.note}` : ''}`);
    });
    out.push('');
  }
  if (plan.notOpened.flows.length > 0 || plan.notOpened.listeners.length > 0) {
    out.push(
      '== Not opened yet (listed by the seed for this configuration; no node opens them, no ruleset allows them)',
    );
    if (plan.notOpened.flows.length > 0) {
      const rows = plan.notOpened.flows.map(flowRow);
      const lines = aligned([
        ['Table', ...COLUMNS],
        ...plan.notOpened.flows.map((f, i) => [f.table, ...rows[i]!.cells]),
      ]);
      out.push(lines[0]!);
      rows.forEach((r, i) => {
        out.push(lines[i + 1]!);
        out.push(`    ↳ ${r.setting} — ${r.note}`);
      });
    }
    if (plan.notOpened.listeners.length > 0) {
      out.push(
        ...aligned([
          ['Node', 'Id', 'Protocol', 'Side', 'Ports', 'Purpose', 'Setting'],
          ...plan.notOpened.listeners.map(listenerLine),
        ]),
      );
    }
    out.push('');
  }
  out.push('== Listening sockets');
  out.push(
    ...aligned([
      ['Node', 'Id', 'Protocol', 'Side', 'Ports', 'Purpose', 'Setting'],
      ...plan.listeners.map(listenerLine),
    ]),
  );
  out.push('', '== Port pools');
  out.push(...aligned([['Node', 'Id', 'Ports', 'Purpose', 'Setting'], ...plan.pools.map(poolLine)]));
  return `${out.join('\n')}\n`;
}
