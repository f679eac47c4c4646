/**
 * `crossway status`: registrations, active calls, zones and recent searches of the node running on a data directory,
 * read through its control socket (`calls.status`, see src/roles/control.ts).
 */
import type { Command } from 'commander';
import type { CallInfo, CallRecord } from '../../calls/call-registry.ts';
import type { NodeStatus } from '../../calls/status.ts';
import { defaultConfig, loadConfigFile } from '../../config/load.ts';
import { callControl } from '../../roles/control.ts';
import type { SearchRecord } from '../../routing/search-history.ts';

interface StatusOptions {
  config?: string;
  dataDir?: string;
  json?: boolean;
  limit: string;
}

const time = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString().slice(11, 19));

function call(c: CallInfo | CallRecord): string {
  const legs = c.legs.map((l) => `${l.zone}:${l.status || '…'}`).join(',');
  const proto = c.protocol === 'h323' ? 'H.323 ' : '';
  const tail = c.cause ? `  ${c.cause}` : '';
  const line = `  ${time(c.startedAt)}  ${proto}${c.state.padEnd(10)} ${c.from} → ${c.to}  [${c.sourceZone} → ${c.targetZone ?? '?'}] legs ${legs}${tail}`;
  const relayed = c.media
    ? `\n      media relayed: from caller ${c.media.fromCaller.packets} packets ${c.media.fromCaller.bytes} B (last ${time(c.media.fromCaller.lastAt || undefined)}), from callee ${c.media.fromCallee.packets} packets ${c.media.fromCallee.bytes} B (last ${time(c.media.fromCallee.lastAt || undefined)})`
    : '';
  const m = c.mediaPath;
  if (!m) return `${line}${relayed}`;
  // the media path: what each side sends, and per RTP session the relay ports (RTP/RTCP) facing caller and callee
  const relay = m.relay
    .map(
      (r) =>
        `session ${r.session} ${r.address} caller ${r.caller.rtp}/${r.caller.rtcp} callee ${r.calleeAddress ? `${r.calleeAddress} ` : ''}${r.callee.rtp}/${r.callee.rtcp}`,
    )
    .join('; ');
  const codecs = `caller sends ${m.codecs.caller.join(',') || '-'}, callee sends ${m.codecs.callee.join(',') || '-'}`;
  return `${line}\n      media: ${codecs}${relay ? `; relay ${relay}` : ''}${relayed}`;
}

function search(s: SearchRecord): string {
  // A zone whose answer made the search go on shows it: `site-a:found(404)`.
  const rules = s.rules.map((r) => `${r.rule}:${r.result}${r.answer ? `(${r.answer})` : ''}`).join(' ');
  const where = s.targets.map((t) => `${t.zone}(${t.alias})`).join(',');
  const t = s.transform ? ` (transform ${s.transform} → ${s.searchedAlias})` : '';
  return `  #${s.id} ${time(s.at)} ${s.label} ${s.sourceZone}${s.authenticated ? '+auth' : ''} ${s.sourceAlias || '?'} → ${s.alias}${t}: ${s.result}${s.continued ? ` after ${s.continued} failed step(s)` : ''}${where ? ` → ${where}` : ''}  [${rules}]`;
}

/** Human-readable status of one node kind. */
export function formatStatus(n: NodeStatus): string {
  const out: string[] = [`== ${n.node}`];
  out.push(`registrations: ${n.registrations.aors} AOR(s), ${n.registrations.bindings} binding(s)`);
  for (const r of n.registrations.list) {
    for (const c of r.contacts) out.push(`  ${r.aor}  ${c.contact}  via ${c.via}  ${c.expiresIn}s left`);
  }
  if (n.registrations.h323 !== undefined) {
    out.push(`H.323 registrations: ${n.registrations.h323}`);
    for (const r of n.registrations.h323List ?? []) {
      out.push(
        `  ${r.aliases.join(' ')}  id ${r.endpointIdentifier}  signalling ${r.callSignalAddress}  ras ${r.rasAddress}  ttl ${r.timeToLive}s, ${r.expiresIn}s left${r.authUser ? `  user ${r.authUser}` : ''}`,
      );
    }
  }
  out.push(`active calls: ${n.calls.active.length}`);
  for (const c of n.calls.active) out.push(call(c));
  out.push(`recent calls: ${n.calls.recent.length}`);
  for (const c of n.calls.recent) out.push(call(c));
  out.push(`zones: ${n.zones.map((z) => `${z.name} (${z.type}${z.peer ? ` ${z.peer}` : ''})`).join(', ')}`);
  for (const z of n.traversalZones as { name?: string; state?: string; peer?: string }[]) {
    out.push(`  traversal ${z.name ?? ''} ${z.peer ?? ''} ${z.state ?? ''}`);
  }
  out.push(`recent searches: ${n.searches.length}`);
  for (const s of n.searches as SearchRecord[]) out.push(search(s));
  return out.join('\n');
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('registrations, active calls, zones and recent searches of the running node')
    .option('-c, --config <file>', 'the node configuration file (default: the lab defaults)')
    .option('--data-dir <dir>', 'overrides dataDir from the configuration')
    .option('--limit <n>', 'entries per list', '20')
    .option('--json', 'JSON output')
    .action(async (o: StatusOptions) => {
      const config = o.config ? loadConfigFile(o.config) : defaultConfig();
      const dataDir = o.dataDir ?? config.dataDir;
      const nodes = (await callControl(dataDir, 'calls.status', { limit: Number(o.limit) || 20 })) as NodeStatus[];
      if (o.json) process.stdout.write(`${JSON.stringify(nodes, null, 2)}\n`);
      else process.stdout.write(`${nodes.map(formatStatus).join('\n\n')}\n`);
    });
}
