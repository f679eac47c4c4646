/** HTML text escaping for server-rendered pages: every value that reaches a page goes through `esc`. */
export function esc(v: unknown): string {
  return String(v ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** A table with a header row; cells are escaped. */
export function table(
  id: string,
  head: readonly string[],
  rows: readonly (readonly unknown[])[],
  empty = 'none',
): string {
  if (rows.length === 0) return `<p class="empty" id="${esc(id)}">${esc(empty)}</p>`;
  const th = head.map((h) => `<th>${esc(h)}</th>`).join('');
  const trs = rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('\n');
  return `<table id="${esc(id)}"><thead><tr>${th}</tr></thead><tbody>\n${trs}\n</tbody></table>`;
}

/** The one stylesheet, served at /ui/style.css (the CSP allows no inline style). */
export const CSS = `body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
header{background:#1d2d44;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a{color:#cfe1ff;text-decoration:none}header a.on{color:#fff;font-weight:600}
header form{margin-left:auto}main{padding:1em 1.5em;max-width:1200px}
table{border-collapse:collapse;background:#fff;margin:.4em 0 1.2em;width:100%}
th,td{border:1px solid #d4d8df;padding:.3em .5em;text-align:left;vertical-align:top}th{background:#e8ebf0}
.state-active,.ok{color:#176b2c;font-weight:600}.state-failed,.err{color:#a11;font-weight:600}
.box{background:#fff;border:1px solid #d4d8df;padding:1em;margin:.5em 0 1em}
label{display:block;margin:.5em 0 .2em;font-weight:600}input,select,textarea{font:inherit;padding:.25em}
textarea{width:100%;font-family:ui-monospace,monospace}button{font:inherit;padding:.3em 1em}
.issues li{color:#a11}.muted{color:#667}`;

export interface LayoutOptions {
  title: string;
  node: string;
  user?: { name: string; level: string; csrf: string };
  active?: string;
  /** Seconds between automatic reloads (status pages). */
  refresh?: number;
}

const NAV: readonly [string, string][] = [
  ['status', 'Status'],
  ['registrations', 'Registrations'],
  ['calls', 'Calls'],
  ['zones', 'Zones'],
  ['searches', 'Search history'],
  ['search-rules', 'Search rules'],
  ['alarms', 'Alarms'],
  ['ports', 'Port reference'],
  ['config', 'Configuration'],
  ['audit', 'Audit log'],
  ['accounts', 'Accounts'],
];

/** The page frame: navigation, the logged-in user and the logout form (with its CSRF token). */
export function layout(o: LayoutOptions, body: string): string {
  const nav = o.user
    ? NAV.map(([id, label]) => `<a href="/ui/${id}"${o.active === id ? ' class="on"' : ''}>${esc(label)}</a>`).join('')
    : '';
  const who = o.user
    ? `<form method="post" action="/ui/logout"><span>${esc(o.user.name)} (${esc(o.user.level)})</span>
<input type="hidden" name="csrf" value="${esc(o.user.csrf)}"><button type="submit" id="logout">Log out</button></form>`
    : '';
  const refresh = o.refresh ? `<meta http-equiv="refresh" content="${o.refresh}">` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
${refresh}<title>${esc(o.title)} · Crossway ${esc(o.node)}</title><link rel="stylesheet" href="/ui/style.css"></head>
<body><header><strong>Crossway ${esc(o.node)}</strong>${nav}${who}</header><main><h1>${esc(o.title)}</h1>
${body}</main></body></html>`;
}
