import { formatRange } from '../../ports/port-range.ts';
import { COLUMNS, flowRow, listenerLine, TABLES } from '../../ports/render-table.ts';
import type { PortPlan } from '../../ports/types.ts';
import type { AuditRecord } from '../admin-store.ts';
import { esc, table } from './html.ts';

function iso(ms: unknown): string {
  return typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString() : '';
}

/** Any list of flat records as a table, columns from the keys of the records. */
export function recordsTable(id: string, rows: unknown, empty: string): string {
  if (!Array.isArray(rows)) {
    return `<p class="empty" id="${esc(id)}">${esc(rows === undefined ? 'not provided by this node' : empty)}</p>`;
  }
  const keys = [...new Set(rows.flatMap((r) => (r && typeof r === 'object' ? Object.keys(r) : [])))];
  return table(
    id,
    keys,
    rows.map((r) =>
      keys.map((k) => {
        const v = (r as Record<string, unknown>)[k];
        return typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
      }),
    ),
    empty,
  );
}

export function loginPage(error: string | undefined, preToken: string, setup: boolean): string {
  return `<div class="box"><form method="post" action="/ui/login">
<input type="hidden" name="csrf" value="${esc(preToken)}">
<label for="user">User name</label><input id="user" name="user" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<p><button type="submit" id="login">Log in</button></p>
${error ? `<p class="err" id="login-error">${esc(error)}</p>` : ''}</form></div>
${setup ? '<p class="muted">No administrator yet: <a href="/ui/setup">create the first one with the setup token</a>.</p>' : ''}`;
}

export function setupPage(error: string | undefined, preToken: string): string {
  return `<div class="box"><p>The setup token was printed in the node's log at first start (or run
<code>crossway admin add</code> on the node).</p><form method="post" action="/ui/setup">
<input type="hidden" name="csrf" value="${esc(preToken)}">
<label for="token">Setup token</label><input id="token" name="token" required>
<label for="user">Administrator name</label><input id="user" name="user" required>
<label for="password">Password (at least 12 characters)</label><input id="password" name="password" type="password" minlength="12" required>
<p><button type="submit">Create administrator</button></p>
${error ? `<p class="err">${esc(error)}</p>` : ''}</form></div>`;
}

export interface StatusView {
  system: Record<string, unknown>;
  zones: { name: string; peer: string; state: string; since: number; lastError?: string }[];
  alarms: { id: string; severity: string; message: string; raisedAt: number }[];
  sip?: { counters?: { received: Record<string, number>; sent: Record<string, number> } } & Record<string, unknown>;
  registrations?: unknown;
  calls?: unknown;
  turn?: unknown;
  media?: unknown;
}

export function zonesTable(zones: StatusView['zones']): string {
  if (zones.length === 0) return '<p class="empty" id="zones">no traversal client zone on this node</p>';
  const rows = zones
    .map(
      (z) => `<tr data-zone="${esc(z.name)}"><td>${esc(z.name)}</td><td>${esc(z.peer)}</td>
<td class="state-${esc(z.state)}">${esc(z.state)}</td><td>${esc(iso(z.since))}</td><td>${esc(z.lastError ?? '')}</td></tr>`,
    )
    .join('\n');
  return `<table id="zones"><thead><tr><th>Zone</th><th>Peer</th><th>State</th><th>Since</th><th>Last error</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

export function alarmsTable(alarms: StatusView['alarms']): string {
  return table(
    'alarms',
    ['Alarm', 'Severity', 'Message', 'Raised'],
    alarms.map((a) => [a.id, a.severity, a.message, iso(a.raisedAt)]),
    'no alarm',
  );
}

function mediaRow(media: unknown): string[][] {
  if (!media || typeof media !== 'object') return [];
  const m = media as { portPairsInUse?: number; portPairsTotal?: number };
  return [['media port pairs in use', `${m.portPairsInUse ?? 0} / ${m.portPairsTotal ?? 0}`]];
}

export function statusPage(v: StatusView): string {
  const sys = table(
    'system',
    ['Field', 'Value'],
    Object.entries(v.system).map(([k, x]) => [k, typeof x === 'object' ? JSON.stringify(x) : x]),
  );
  const c = v.sip?.counters;
  const sip = c
    ? table(
        'sip-counters',
        ['Transport', 'Received', 'Sent'],
        Object.keys(c.received).map((t) => [t, c.received[t], c.sent[t]]),
      )
    : '<p class="empty">no SIP service</p>';
  const count = (x: unknown) => (Array.isArray(x) ? String(x.length) : 'not provided');
  return `<h2>System</h2>${sys}
<h2>Summary</h2>${table(
    'summary',
    ['What', 'Count'],
    [
      ['registrations', count(v.registrations)],
      ['calls', count(v.calls)],
      ['traversal zones active', `${v.zones.filter((z) => z.state === 'active').length} / ${v.zones.length}`],
      ['alarms', String(v.alarms.length)],
      ...mediaRow(v.media),
      ...(v.turn && typeof v.turn === 'object'
        ? [['TURN allocations', String((v.turn as { count: number }).count)]]
        : []),
    ],
  )}
<h2>Traversal zones</h2>${zonesTable(v.zones)}
<h2>Alarms</h2>${alarmsTable(v.alarms)}
<h2>SIP transports</h2>${sip}`;
}

/** The seed's four tables for this node's plan, as HTML, plus listeners and pools. */
export function portsPage(plan: PortPlan): string {
  const parts: string[] = [
    `<p>role ${esc(plan.role)}, size ${esc(plan.size)}, port offset ${esc(plan.portOffset)}</p>`,
  ];
  for (const t of TABLES) {
    const rows = plan.flows.filter((f) => f.table === t.id).map(flowRow);
    parts.push(`<h2>${esc(t.title)}</h2>`);
    parts.push(
      table(
        `ports-${t.id.replace(/\W/g, '').toLowerCase()}`,
        ['Purpose', 'Src. IP', 'Src. Ports', 'Protocol', 'Dest. IP', 'Dest. Ports', 'Setting'],
        rows.map((r) => [...r.cells, r.note ? `${r.setting} — ${r.note}` : r.setting]),
        '(none in this configuration)',
      ),
    );
  }
  const { flows: laterFlows, listeners: laterListeners } = plan.notOpened;
  if (laterFlows.length > 0 || laterListeners.length > 0) {
    parts.push('<h2>Not opened yet</h2>');
    parts.push(
      '<p>The seed lists these for this configuration; no node opens them yet and no firewall ruleset allows them.</p>',
    );
    if (laterFlows.length > 0) {
      parts.push(
        table(
          'ports-not-opened',
          ['Table', ...COLUMNS, 'Setting'],
          laterFlows.map((f) => {
            const r = flowRow(f);
            return [f.table, ...r.cells, `${r.setting} — ${r.note ?? f.notOpened}`];
          }),
        ),
      );
    }
    if (laterListeners.length > 0) {
      parts.push(
        table(
          'listeners-not-opened',
          ['Node', 'Id', 'Protocol', 'Side', 'Ports', 'Purpose', 'Setting'],
          laterListeners.map(listenerLine),
        ),
      );
    }
  }
  parts.push('<h2>Listening sockets</h2>');
  parts.push(
    table(
      'listeners',
      ['Node', 'Id', 'Protocol', 'Side', 'Ports', 'Purpose', 'Setting'],
      plan.listeners.map(listenerLine),
    ),
  );
  parts.push('<h2>Port pools</h2>');
  parts.push(
    table(
      'pools',
      ['Node', 'Id', 'Ports', 'Purpose', 'Setting'],
      plan.pools.map((p) => [p.node, p.id, formatRange(p.ports), p.purpose, p.setting]),
    ),
  );
  return parts.join('\n');
}

export function auditPage(records: readonly AuditRecord[]): string {
  return table(
    'audit',
    ['When', 'Who', 'From', 'Action', 'Detail'],
    records.map((r) => [iso(r.at), r.who, r.source, r.action, r.detail]),
    'nothing recorded',
  );
}

export interface ConfigFormView {
  csrf: string;
  canWrite: boolean;
  logLevel: string;
  domains: readonly string[];
  sessionIdleMinutes: number;
  json: string;
  issues?: readonly { path: string; message: string }[];
  result?: { changed: readonly string[]; live: readonly string[]; restartRequired: readonly string[] };
}

export function configPage(v: ConfigFormView): string {
  const dis = v.canWrite ? '' : ' disabled';
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']
    .map((l) => `<option${l === v.logLevel ? ' selected' : ''}>${l}</option>`)
    .join('');
  const issues = v.issues?.length
    ? `<div class="box" id="config-issues"><strong>Refused:</strong><ul class="issues">${v.issues
        .map((i) => `<li><code>${esc(i.path || '(root)')}</code>: ${esc(i.message)}</li>`)
        .join('')}</ul></div>`
    : '';
  const result = v.result
    ? `<div class="box ok" id="config-result">Saved. Changed: ${esc(v.result.changed.join(', ') || 'nothing')}.
Applied now: ${esc(v.result.live.join(', ') || 'none')}. After restart: ${esc(v.result.restartRequired.join(', ') || 'none')}.</div>`
    : '';
  return `${issues}${result}
<h2>Settings</h2><div class="box"><form method="post" action="/ui/config" id="settings-form">
<input type="hidden" name="csrf" value="${esc(v.csrf)}"><input type="hidden" name="form" value="settings">
<label for="logLevel">Log level (<code>log.level</code>, applies now)</label><select id="logLevel" name="logLevel"${dis}>${levels}</select>
<label for="domains">SIP domains (<code>sip.domains</code>, one per line, after restart)</label>
<textarea id="domains" name="domains" rows="3"${dis}>${esc(v.domains.join('\n'))}</textarea>
<label for="sessionIdleMinutes">Administrator session idle timeout, minutes (<code>management.sessionIdleMinutes</code>)</label>
<input id="sessionIdleMinutes" name="sessionIdleMinutes" type="number" min="1" max="1440" value="${esc(v.sessionIdleMinutes)}"${dis}>
<p><button type="submit" id="save-settings"${dis}>Save</button></p></form></div>
<h2>Whole configuration (JSON, same schema as the file; secrets shown as ********)</h2>
<div class="box"><form method="post" action="/ui/config" id="json-form">
<input type="hidden" name="csrf" value="${esc(v.csrf)}"><input type="hidden" name="form" value="json">
<textarea id="config-json" name="json" rows="24"${dis}>${esc(v.json)}</textarea>
<p><button type="submit" id="save-json"${dis}>Validate and save</button></p></form></div>`;
}

/** One search rule as the form edits it (fields of `routing.searchRules[]`). */
export interface SearchRuleView {
  name: string;
  priority: number;
  source: string;
  pattern: { type: string; value?: string };
  onMatch: string;
  onSuccess: string;
  targetZone: string;
  enabled: boolean;
}

const PATTERN_TYPES = ['exact', 'prefix', 'suffix', 'regex', 'anyAlias', 'anyIp'];

function options(values: readonly string[], selected: string): string {
  return values.map((v) => `<option${v === selected ? ' selected' : ''}>${esc(v)}</option>`).join('');
}

export function searchRulesPage(v: {
  csrf: string;
  canWrite: boolean;
  rules: readonly SearchRuleView[];
  edit?: number | 'new';
  issues?: readonly { path: string; message: string }[];
  result?: { changed: readonly string[]; live: readonly string[]; restartRequired: readonly string[] };
}): string {
  const rows = v.rules
    .map(
      (
        r,
        i,
      ) => `<tr data-rule="${esc(r.name)}"><td>${esc(r.priority)}</td><td>${esc(r.name)}</td><td>${esc(r.source)}</td>
<td>${esc(r.pattern.type)}</td><td>${esc(r.pattern.value ?? '')}</td><td>${esc(r.onMatch)}</td><td>${esc(r.onSuccess)}</td>
<td>${esc(r.targetZone)}</td><td>${r.enabled ? 'yes' : 'no'}</td><td>${v.canWrite ? `<a href="/ui/search-rules?edit=${i}" id="edit-${i}">Edit</a>` : ''}</td></tr>`,
    )
    .join('\n');
  const table = `<table id="search-rules"><thead><tr><th>Priority</th><th>Name</th><th>Source</th><th>Pattern</th><th>Value</th>
<th>On match</th><th>On success</th><th>Target zone</th><th>Enabled</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
  const issues = v.issues?.length
    ? `<div class="box" id="config-issues"><strong>Refused:</strong><ul class="issues">${v.issues
        .map((i) => `<li><code>${esc(i.path || '(root)')}</code>: ${esc(i.message)}</li>`)
        .join('')}</ul></div>`
    : '';
  const result = v.result
    ? `<div class="box ok" id="config-result">Saved. Changed: ${esc(v.result.changed.join(', ') || 'nothing')}.
Applied now: ${esc(v.result.live.join(', ') || 'none')}. After restart: ${esc(v.result.restartRequired.join(', ') || 'none')}.</div>`
    : '';
  let form = v.canWrite ? '<p><a href="/ui/search-rules?edit=new" id="add-rule">Add a search rule</a></p>' : '';
  if (v.canWrite && v.edit !== undefined) {
    const r: SearchRuleView =
      v.edit === 'new' || !v.rules[v.edit]
        ? {
            name: '',
            priority: 100,
            source: 'any',
            pattern: { type: 'prefix', value: '' },
            onMatch: 'leave',
            onSuccess: 'continue',
            targetZone: 'LocalZone',
            enabled: true,
          }
        : v.rules[v.edit]!;
    form = `<h2>${v.edit === 'new' ? 'New search rule' : `Edit search rule ${esc(r.name)}`}</h2>
<div class="box"><form method="post" action="/ui/search-rules" id="rule-form">
<input type="hidden" name="csrf" value="${esc(v.csrf)}"><input type="hidden" name="index" value="${esc(v.edit)}">
<label for="rule-name">Name</label><input id="rule-name" name="name" value="${esc(r.name)}" required maxlength="64">
<label for="rule-priority">Priority (1 first – 65534)</label><input id="rule-priority" name="priority" type="number" value="${esc(r.priority)}">
<label for="rule-source">Source</label><select id="rule-source" name="source">${options(['any', 'localZone', 'zone'], r.source)}</select>
<label for="rule-pattern-type">Pattern type</label><select id="rule-pattern-type" name="patternType">${options(PATTERN_TYPES, r.pattern.type)}</select>
<label for="rule-pattern-value">Pattern value</label><input id="rule-pattern-value" name="patternValue" value="${esc(r.pattern.value ?? '')}">
<label for="rule-on-match">On match</label><select id="rule-on-match" name="onMatch">${options(['leave', 'strip', 'replace'], r.onMatch)}</select>
<label for="rule-on-success">On success</label><select id="rule-on-success" name="onSuccess">${options(['continue', 'stop'], r.onSuccess)}</select>
<label for="rule-target">Target zone</label><input id="rule-target" name="targetZone" value="${esc(r.targetZone)}" required>
<label><input type="checkbox" name="enabled" value="on"${r.enabled ? ' checked' : ''}> Enabled</label>
<p><button type="submit" name="action" value="save" id="save-rule">Save</button>
${v.edit === 'new' ? '' : '<button type="submit" name="action" value="delete" id="delete-rule">Delete</button>'}</p></form></div>`;
  }
  return `${issues}${result}${table}${form}`;
}

export function accountsPage(v: {
  csrf: string;
  accounts: readonly { name: string; level: string; updatedAt: number }[];
  self: string;
  message?: { ok: boolean; text: string };
}): string {
  const rows = v.accounts
    .map(
      (
        a,
      ) => `<tr data-account="${esc(a.name)}"><td>${esc(a.name)}</td><td>${esc(a.level)}</td><td>${esc(iso(a.updatedAt))}</td>
<td><form method="post" action="/ui/accounts"><input type="hidden" name="csrf" value="${esc(v.csrf)}">
<input type="hidden" name="action" value="delete"><input type="hidden" name="name" value="${esc(a.name)}">
<button type="submit" id="delete-${esc(a.name)}">Delete</button></form></td></tr>`,
    )
    .join('\n');
  const msg = v.message
    ? `<div class="box ${v.message.ok ? 'ok' : 'err'}" id="accounts-message">${esc(v.message.text)}</div>`
    : '';
  return `${msg}<table id="accounts"><thead><tr><th>Name</th><th>Level</th><th>Changed</th><th></th></tr></thead>
<tbody>${rows}</tbody></table>
<h2>Add or replace a local administrator</h2><div class="box"><form method="post" action="/ui/accounts" id="account-form">
<input type="hidden" name="csrf" value="${esc(v.csrf)}"><input type="hidden" name="action" value="set">
<label for="acct-name">Name</label><input id="acct-name" name="name" required maxlength="64">
<label for="acct-level">Access level</label><select id="acct-level" name="level">${options(['read-only', 'auditor', 'read-write'], 'read-only')}</select>
<label for="acct-password">Password (at least 12 characters)</label><input id="acct-password" name="password" type="password" minlength="12" required>
<p><button type="submit" id="save-account">Save</button></p></form></div>
<p class="muted">Signed in as ${esc(v.self)}. Directory (LDAP) administrators are managed in the directory.</p>`;
}
