/**
 * REGISTER with digest authentication, Crossway vs Kamailio 5.6, same sipp scenario (test/sipp/register-auth.xml:
 * REGISTER → 401 → REGISTER with MD5 credentials → 200), same users, same run. Each server is ramped in steps of
 * `--seconds`; a step is clean when fewer than 1 % of its registrations fail and all were attempted. Server CPU comes
 * from /proc (whole process tree). Then, on each server, `--users` distinct users are registered (default 100,000),
 * the resident memory is read, and all of them are refreshed at the highest clean rate.
 *   node --import tsx bench/register.ts [--seconds 4] [--rates 500,1000,...] [--users 100000] [--only crossway|kamailio]
 * Needs sipp (Debian sip-tester) and kamailio (Debian kamailio).
 *
 * Credentials: one users file (`username password`, a random password per user) is written here; Crossway's bench
 * server loads it into its local credential store (HA1 per realm), Kamailio gets the same users' HA1 in a db_text
 * table that its htable module loads at start, and sipp's injection files come from it too. Both servers therefore
 * look the user's credentials up per REGISTER; a fixed password for everyone would let either skip that.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSipp } from '../test/helpers/sipp.ts';
import { benchArg, startKamailio, startServer, stopServer, treeCpuSeconds, treePssKiB, treeRssKiB } from './lib.ts';

const arg = benchArg;
const seconds = Number(arg('seconds', '4'));
const rates = arg('rates', '500,1000,2000,3000,4000,5000,6000,8000,10000,12000').split(',').map(Number);
const users = Math.min(Number(arg('users', '100000')), 200_000);
const only = arg('only', '');
/** Crossway's UDP receive buffer (bytes; 0: a node's default, 4 MiB, the same as Kamailio's maxbuffer here). */
const rcvbuf = Number(arg('rcvbuf', '0'));
const root = new URL('..', import.meta.url).pathname;
const scenario = join(root, 'test/sipp/register-auth.xml');
const dir = mkdtempSync(join(tmpdir(), 'crossway-bench-register-'));
const ADDRESS = '127.0.0.1';

/** The bench's users, each with its own random password: the one list both servers and sipp are given. */
const accounts = Array.from({ length: Math.max(users, 20_000) }, (_, i) => ({
  name: `u${String(i).padStart(6, '0')}`,
  password: randomBytes(6).toString('hex'),
}));
const accountsFile = join(dir, 'users.txt');
writeFileSync(accountsFile, `${accounts.map((a) => `${a.name} ${a.password}`).join('\n')}\n`);

/** sipp's injection file for the first `count` users: the authentication keyword in a field (bench-anchors.md). */
function usersFile(count: number): string {
  const lines = ['SEQUENTIAL'];
  for (const a of accounts.slice(0, count))
    lines.push(`${a.name};[authentication username=${a.name} password=${a.password}]`);
  const file = join(dir, `users-${count}.csv`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/**
 * Kamailio's credential table: a db_text database (directory) with the table `credentials` in htable's layout, one
 * row per user, its value the HA1 for the realm (MD5(user:realm:password), as Crossway stores it). Returns the db_url.
 */
function kamailioCredentials(realm: string): string {
  const db = join(dir, 'kamailio-db');
  mkdirSync(db, { recursive: true });
  const rows = accounts.map((a, i) => {
    const ha1 = createHash('md5').update(`${a.name}:${realm}:${a.password}`).digest('hex');
    return `${i + 1}:${a.name}:0:0:${ha1}:0`;
  });
  const header = 'id(int,auto) key_name(string) key_type(int) value_type(int) key_value(string) expires(int)';
  writeFileSync(join(db, 'credentials'), `${header}\n${rows.join('\n')}\n`);
  writeFileSync(join(db, 'version'), 'id(int,auto) table_name(string) table_version(int)\n1:credentials:2\n');
  return `text://${db}`;
}

interface Step {
  rate: number;
  calls: number;
  ok: number;
  failed: number;
  retrans: number;
  achieved: number;
  cpu: number;
}

async function load(pid: number, target: string, rate: number, calls: number, inf: string): Promise<Step> {
  const cpu0 = treeCpuSeconds(pid);
  const t0 = performance.now();
  const r = await runSipp({
    scenario,
    target,
    calls,
    rate,
    limit: Math.max(500, rate),
    timeoutSeconds: Math.ceil(calls / rate) * 3 + 15,
    extraArgs: ['-inf', inf],
  });
  const wall = (performance.now() - t0) / 1000;
  const ok = Number.isNaN(r.successful) ? 0 : r.successful;
  const failed = calls - ok;
  return {
    rate,
    calls,
    ok,
    failed,
    retrans: Number.isNaN(r.retransmissions) ? 0 : r.retransmissions,
    achieved: Math.round(ok / wall),
    cpu: Math.round(((treeCpuSeconds(pid) - cpu0) / wall) * 100),
  };
}

/** Fewer than 1 % failed, and the load was really offered: at least 90 % of the target rate was achieved. */
const clean = (s: Step) => s.failed < s.calls * 0.01 && s.achieved >= s.rate * 0.9;

interface Result {
  steps: Step[];
  best?: Step;
  rssBaseKiB: number;
  rssKiB?: number;
  /** Proportional set size with all registered: shared memory counted once (Kamailio's processes share theirs). */
  pssKiB?: number;
  /** Crossway: live heap after a full collection once the fill's transactions ended (Timer J, 32 s on UDP). */
  settled?: { heapMiB: number; rssMiB: number; transactions: number };
  fill?: Step;
  refresh?: Step;
}

async function measure(name: string, child: ChildProcess, target: string, output?: () => string): Promise<Result> {
  const pid = child.pid!;
  const small = usersFile(Math.min(users, 20_000));
  const steps: Step[] = [];
  const rssBaseKiB = treeRssKiB(pid);
  // Warm-up, not counted: the JIT (and Kamailio's caches) see the path once before the ramp.
  await load(pid, target, 500, 2000, small);
  for (const rate of rates) {
    const s = await load(pid, target, rate, rate * seconds, small);
    steps.push(s);
    console.error(
      `${name} ${rate}/s: ok ${s.ok}/${s.calls} retrans ${s.retrans} achieved ${s.achieved}/s cpu ${s.cpu}%`,
    );
    // A shared machine has blips: stop after two unclean steps in a row, report the highest clean one.
    const n = steps.length;
    if (n >= 2 && !clean(steps[n - 1]!) && !clean(steps[n - 2]!)) break;
  }
  const best = [...steps].reverse().find(clean);
  const out: Result = { steps, rssBaseKiB, ...(best ? { best } : {}) };
  if (!best || users <= 0) return out;
  const big = usersFile(users);
  // Fill below the maximum so that no registration is lost, then refresh everything at the maximum.
  const fillRate = Math.max(500, Math.floor(best.rate * 0.7));
  out.fill = await load(pid, target, fillRate, users, big);
  await new Promise((r) => setTimeout(r, 1500));
  out.rssKiB = treeRssKiB(pid);
  out.pssKiB = treePssKiB(pid);
  console.error(
    `${name} filled ${out.fill.ok}/${users} at ${fillRate}/s; RSS ${Math.round(out.rssKiB / 1024)} MiB, PSS ${Math.round(out.pssKiB / 1024)} MiB`,
  );
  if (output) {
    await new Promise((r) => setTimeout(r, 34_000));
    child.kill('SIGUSR2');
    await new Promise((r) => setTimeout(r, 3000));
    const line = output()
      .split('\n')
      .reverse()
      .find((l) => l.startsWith('{"aors"'));
    if (line) {
      const j = JSON.parse(line) as { heap: number; rss: number; transactions: { server: number } };
      out.settled = { heapMiB: j.heap, rssMiB: j.rss, transactions: j.transactions.server };
      console.error(`${name} settled: ${line}`);
    }
  }
  out.refresh = await load(pid, target, best.rate, users, big);
  console.error(
    `${name} refresh of ${users} at ${best.rate}/s: ok ${out.refresh.ok} achieved ${out.refresh.achieved}/s`,
  );
  return out;
}

const results: Record<string, Result> = {};
if (only !== 'kamailio') {
  const { child, output } = await startServer(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(root, 'bench/register-server.ts'), accountsFile, ADDRESS, String(rcvbuf)],
    /^\d+\n/m,
    120_000,
  );
  const port = Number(output().trim().split('\n')[0]);
  results['Crossway'] = await measure('crossway', child, `${ADDRESS}:${port}`, output);
  await stopServer(child);
}
if (only !== 'crossway') {
  const port = 16060 + (process.pid % 1000);
  const { child } = await startKamailio({
    config: join(root, 'bench/kamailio/registrar.cfg'),
    runDir: dir,
    sharedMiB: 1024,
    privateMiB: 16,
    defines: { LISTEN: `udp:${ADDRESS}:${port}`, CREDENTIALS_DB: `"${kamailioCredentials(ADDRESS)}"` },
  });
  results['Kamailio 5.6'] = await measure('kamailio', child, `${ADDRESS}:${port}`);
  await stopServer(child);
}

const mib = (k?: number) => (k === undefined ? '-' : `${Math.round(k / 1024)}`);
console.log(
  `\nREGISTER + MD5 digest over UDP (REGISTER → 401 → REGISTER → 200), ${seconds} s per step, sipp on the same machine (node ${process.version})\n`,
);
console.log(
  '| server | highest clean step (reg/s) | achieved reg/s | failed | server CPU (100 = one core) | CPU ms per registration at that step | unclean steps |',
);
console.log('|---|---|---|---|---|---|---|');
for (const [name, r] of Object.entries(results)) {
  const b = r.best;
  const unclean = r.steps.filter((s) => !clean(s));
  const perReg = b && b.achieved > 0 ? ((b.cpu / 100 / b.achieved) * 1000).toFixed(3) : '-';
  console.log(
    `| ${name} | ${b?.rate ?? 'none'} | ${b?.achieved ?? '-'} | ${b ? `${b.failed}/${b.calls}` : '-'} | ${b?.cpu ?? '-'} | ${perReg} | ${unclean.map((s) => `${s.rate} (${s.failed}/${s.calls} failed, ${s.retrans} retrans, ${s.achieved}/s)`).join('; ') || 'none'} |`,
  );
}
const c = results['Crossway']?.best;
const k = results['Kamailio 5.6']?.best;
if (c && k) console.log(`\nratio Crossway/Kamailio (highest clean step): ${(c.rate / k.rate).toFixed(2)}`);
console.log(`\n${users} live registrations:\n`);
console.log(
  '| server | RSS before (MiB) | RSS with all registered (MiB) | PSS with all registered (MiB) | live heap after GC, transactions ended (MiB) | fill: ok / rate | refresh of all: ok, achieved reg/s, CPU |',
);
console.log('|---|---|---|---|---|---|---|');
for (const [name, r] of Object.entries(results)) {
  console.log(
    `| ${name} | ${mib(r.rssBaseKiB)} | ${mib(r.rssKiB)} | ${mib(r.pssKiB)} | ${r.settled ? `${r.settled.heapMiB} (RSS ${r.settled.rssMiB})` : '-'} | ${r.fill ? `${r.fill.ok} / ${r.fill.rate}/s` : '-'} | ${r.refresh ? `${r.refresh.ok}, ${r.refresh.achieved}/s, ${r.refresh.cpu}%` : '-'} |`,
  );
}
