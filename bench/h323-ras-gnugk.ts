/**
 * H.225.0 RAS registrations side by side, in one run, over UDP on this machine: Crossway's gatekeeper (a whole lab
 * node started in a child process, as deployed: every registration written through to its store) and GnuGk
 * (`../shared/peers/gnugk`, the routed-mode + media-proxy configuration of its README and of the anchors in
 * `../shared/notes/bench-anchors.md`, TimeToLive=600, no tracing). Both are loaded by `../shared/tools/rasload.py`,
 * run from where it is (a shared tool: the anchors, both servers and every rerun use the same bytes; it is not
 * copied into this repository): full RRQs, each a new endpoint with its own H.323-ID, E.164, call-signalling and
 * RAS address on 127.x, closed loop with 32 outstanding, answers matched by sequence number.
 *
 * Per server: new registrations/s in steps as the table grows (each step sized to last at most `--step-s` at the
 * previous step's rate, the series stopped at `--X-max` registered or after `--X-budget-s`), the server's CPU
 * during each step (100 = one core, from /proc), its resident memory before and after; then re-registrations/s of
 * endpoints already registered (32 outstanding, then 1 outstanding). Prints a Markdown table per server and the
 * ratio at comparable table sizes.
 *
 *   node --import tsx bench/h323-ras-gnugk.ts [--crossway-max 100000] [--gnugk-max 20000]
 *        [--crossway-budget-s 300] [--gnugk-budget-s 600] [--step-s 60]
 * GnuGk is built by scripts/setup.d/gnugk.sh (cached); the run needs python3 and the loopback addresses 127.0.32.1
 * (GnuGk) and 127.0.0.1 (the node, with a port offset). Answers arrive on 0.0.0.0:13030 (rasload's socket).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArg, stopServer, treeCpuSeconds, treeRssKiB } from './lib.ts';

const RASLOAD = new URL('../../shared/tools/rasload.py', import.meta.url).pathname;
const GNUGK_BUILD = new URL('../../shared/peers/gnugk/build.sh', import.meta.url).pathname;
const GNUGK_IP = '127.0.32.1';

if (process.argv[2] === '--serve-crossway') {
  // Child mode: one lab node with the gatekeeper enabled; prints the core gatekeeper's RAS address, then waits.
  const { validateConfig } = await import('../src/config/load.ts');
  const { startNode } = await import('../src/roles/start.ts');
  const { silentLogger } = await import('../src/common/log.ts');
  const maxRegistrations = Number(process.argv[4] ?? 200_000);
  const config = validateConfig({
    dataDir: process.argv[3]!,
    portOffset: 3000 + (process.pid % 500),
    h323: {
      enabled: true,
      gatekeeper: {
        // rasload's RRQ (captured from ooh323c against GnuGk) names the gatekeeper AnchorGK; an RRQ naming another
        // gatekeeper is refused, so this one takes that name, as GnuGk does in this run.
        identifier: 'AnchorGK',
        timeToLive: 600,
        maxRegistrations,
        // rasload sends every RRQ from one socket: a per-source flood limit would measure the limiter, not the
        // gatekeeper (a real deployment sees one source per endpoint). GnuGk has no such limit either.
        floodLimits: { rasPerSecondPerSource: 0 },
      },
    },
  });
  const node = await startNode(config, { log: silentLogger });
  const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
  console.log(`READY ${ras.address} ${ras.port}`);
  process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
  await new Promise(() => {});
}

interface Step {
  from: number;
  to: number;
  rcf: number;
  rrj: number;
  lost: number;
  seconds: number;
  perSecond: number;
  cpu: number;
  loadCpu: number;
  rssMiB: number;
}

interface Load {
  rcf: number;
  rrj: number;
  other: number;
  lost: number;
  seconds: number;
  perSecond: number;
  /** rasload's own CPU over the run (100 = one core). */
  loadCpu: number;
}

/**
 * One rasload run. Its socket is 0.0.0.0:13030, which ooh323c endpoints (their default RAS port) of tests running
 * at the same time may hold on their own addresses: then it waits and tries again (at most 2 minutes).
 */
async function rasload(ip: string, port: number, count: number, first: number, window: number): Promise<Load> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await rasloadOnce(ip, port, count, first, window);
    } catch (e) {
      if (!/Address already in use/.test(String((e as Error).message)) || attempt >= 120) throw e;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function rasloadOnce(ip: string, port: number, count: number, first: number, window: number): Promise<Load> {
  return new Promise((resolve, reject) => {
    // bash's `times` after the run gives rasload's own CPU (its children line: user and system time)
    execFile(
      'bash',
      [
        '-c',
        'python3 "$@" || exit $?; times',
        '_',
        RASLOAD,
        ip,
        String(port),
        String(count),
        '--first',
        String(first),
        '--window',
        String(window),
        // a lost answer is one not back within 30 s (GnuGk's queue at 32 outstanding can exceed the default 3 s)
        '--timeout',
        '30',
      ],
      { timeout: 30 * 60_000 },
      (err, stdout) => {
        if (err) return reject(err);
        const f = Object.fromEntries([...stdout.matchAll(/(\w+)=([\d.]+)/g)].map((m) => [m[1]!, Number(m[2])]));
        const t = [...(stdout.trim().split('\n').at(-1) ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map(
          (m) => Number(m[1]) * 60 + Number(m[2]),
        );
        const loadCpuS = (t[0] ?? 0) + (t[1] ?? 0);
        resolve({
          rcf: f.rcf ?? 0,
          rrj: f.rrj ?? 0,
          other: f.other ?? 0,
          lost: f.lost ?? 0,
          seconds: f.seconds ?? 0,
          perSecond: f.seconds ? (f.rcf ?? 0) / f.seconds : 0,
          loadCpu: f.seconds ? Math.round((loadCpuS / f.seconds) * 100) : 0,
        });
      },
    );
  });
}

async function measured(pid: number, run: () => Promise<Load>): Promise<Load & { cpu: number }> {
  const c0 = treeCpuSeconds(pid);
  const t0 = performance.now();
  const r = await run();
  const wall = (performance.now() - t0) / 1000;
  return { ...r, cpu: Math.round(((treeCpuSeconds(pid) - c0) / wall) * 100) };
}

const BOUNDARIES = [1000, 2000, 4000, 6000, 8000, 10_000, 20_000, 40_000, 60_000, 80_000, 100_000, 150_000, 200_000];

async function series(
  name: string,
  target: { ip: string; port: number; pid: number },
  max: number,
  budgetS: number,
  stepS: number,
) {
  const rss0 = treeRssKiB(target.pid) / 1024;
  const steps: Step[] = [];
  const started = performance.now();
  let have = 0;
  let rate = Number.POSITIVE_INFINITY;
  while (have < max && (performance.now() - started) / 1000 < budgetS) {
    const boundary = BOUNDARIES.find((b) => b > have) ?? max;
    let count = Math.min(boundary, max) - have;
    // keep a step within stepS at the last rate seen (GnuGk slows down as its table grows)
    if (Number.isFinite(rate)) count = Math.max(100, Math.min(count, Math.round(rate * stepS)));
    const r = await measured(target.pid, () => rasload(target.ip, target.port, count, have, 32));
    // every RRQ sent names a new endpoint: the next step starts after all of them, answered or not
    const step: Step = {
      from: have,
      to: have + count,
      rcf: r.rcf,
      rrj: r.rrj,
      lost: r.lost,
      seconds: r.seconds,
      perSecond: r.perSecond,
      cpu: r.cpu,
      loadCpu: r.loadCpu,
      rssMiB: treeRssKiB(target.pid) / 1024,
    };
    steps.push(step);
    console.error(`${name}: ${JSON.stringify(step)}`);
    have += count;
    rate = r.perSecond;
    if (r.rcf === 0) break;
  }
  // re-registrations of the first endpoints, sized like the steps: a probe of 200 gives the rate, then at most
  // stepS of it (GnuGk re-registers slowly too once its table is large)
  const probe = await rasload(target.ip, target.port, Math.min(have, 200), 0, 32);
  const reregCount = Math.max(100, Math.min(have, 5000, Math.round(probe.perSecond * stepS)));
  const rereg32 = await measured(target.pid, () => rasload(target.ip, target.port, reregCount, 0, 32));
  const rereg1Count = Math.max(100, Math.min(have, 2000, Math.round(rereg32.perSecond * stepS * 0.5)));
  const rereg1 = await measured(target.pid, () => rasload(target.ip, target.port, rereg1Count, 0, 1));
  console.error(`${name}: re-registration ${JSON.stringify({ rereg32, rereg1 })}`);
  return { steps, rss0, rssN: treeRssKiB(target.pid) / 1024, registered: have, rereg32, rereg1 };
}

function table(name: string, s: Awaited<ReturnType<typeof series>>): string {
  const rows = s.steps.map(
    (x) =>
      `| ${x.from.toLocaleString('en')} → ${x.to.toLocaleString('en')} | ${Math.round(x.perSecond).toLocaleString('en')} | ${x.cpu} | ${x.loadCpu} | ${x.rrj} / ${x.lost} | ${x.rssMiB.toFixed(0)} |`,
  );
  return [
    `### ${name}`,
    '| registered (before → after the step) | new registrations/s | server CPU (100 = one core) | rasload CPU | RRJ / lost | RSS after (MiB) |',
    '|---|---|---|---|---|---|',
    ...rows,
    `Re-registration of ${s.rereg32.rcf.toLocaleString('en')} known endpoints, 32 outstanding: ${Math.round(s.rereg32.perSecond).toLocaleString('en')}/s (CPU ${s.rereg32.cpu}, rasload ${s.rereg32.loadCpu}, RRJ ${s.rereg32.rrj}, lost ${s.rereg32.lost}); ` +
      `1 outstanding: ${Math.round(s.rereg1.perSecond).toLocaleString('en')}/s (CPU ${s.rereg1.cpu}, rasload ${s.rereg1.loadCpu}).`,
    `Memory: ${s.rss0.toFixed(0)} MiB with 0 registered, ${s.rssN.toFixed(0)} MiB with ${s.registered.toLocaleString('en')} registered ` +
      `(${s.registered > 0 ? (((s.rssN - s.rss0) * 1024 * 1024) / s.registered).toFixed(0) : '—'} bytes per registration).`,
  ].join('\n');
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function startGnugk(): Promise<{ child: ChildProcess; ip: string; port: number }> {
  const bin = execFileSync('bash', [GNUGK_BUILD], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  const dir = mkdtempSync(join(tmpdir(), 'bench-gnugk-'));
  writeFileSync(
    join(dir, 'gk.ini'),
    `[Gatekeeper::Main]\nName=AnchorGK\nHome=${GNUGK_IP}\nTimeToLive=600\nUseMulticastListener=0\n` +
      '[RoutedMode]\nGKRouted=1\nH245Routed=1\nCallSignalPort=1720\nAcceptUnregisteredCalls=0\n' +
      '[Proxy]\nEnable=1\n[Gatekeeper::Auth]\ndefault=allow\n',
  );
  const child = spawn(join(bin, 'gnugk'), ['-c', 'gk.ini', '-o', 'gk.log'], { cwd: dir, stdio: 'ignore' });
  for (let i = 0; i < 100 && !(await tcpOpen(GNUGK_IP, 1720)); i++) await new Promise((r) => setTimeout(r, 100));
  if (child.exitCode !== null) throw new Error(`gnugk exited (${child.exitCode}); see ${dir}/gk.log`);
  return { child, ip: GNUGK_IP, port: 1719 };
}

async function startCrossway(max: number): Promise<{ child: ChildProcess; ip: string; port: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-crossway-'));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', new URL(import.meta.url).pathname, '--serve-crossway', dir, String(max + 10)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ready = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /READY (\S+) (\d+)/.exec(out);
      if (m) resolve(`${m[1]} ${m[2]}`);
    });
    child.once('exit', (c) => reject(new Error(`crossway exited (${c})`)));
  });
  const [ip, port] = ready.split(' ');
  return { child, ip: ip!, port: Number(port) };
}

if (!existsSync(RASLOAD)) throw new Error(`${RASLOAD} not found (the shared load tool beside the repository)`);
const stepS = Number(benchArg('step-s', '60'));
const out: string[] = [];
const result: Record<string, Awaited<ReturnType<typeof series>>> = {};
for (const name of ['Crossway', 'GnuGk'] as const) {
  const max = Number(
    benchArg(name === 'Crossway' ? 'crossway-max' : 'gnugk-max', name === 'Crossway' ? '100000' : '20000'),
  );
  const budget = Number(
    benchArg(name === 'Crossway' ? 'crossway-budget-s' : 'gnugk-budget-s', name === 'Crossway' ? '300' : '600'),
  );
  if (max <= 0) continue;
  const server = name === 'Crossway' ? await startCrossway(max) : await startGnugk();
  try {
    await new Promise((r) => setTimeout(r, 1000));
    result[name] = await series(name, { ip: server.ip, port: server.port, pid: server.child.pid! }, max, budget, stepS);
    out.push(table(`${name} (${server.ip}:${server.port})`, result[name]));
  } finally {
    await stopServer(server.child);
  }
}
const c = result.Crossway;
const g = result.GnuGk;
if (c && g) {
  // The ratio at GnuGk's last step: Crossway's rate over the step covering the same table size.
  const last = g.steps.at(-1)!;
  const same = c.steps.find((s) => s.to >= last.to) ?? c.steps.at(-1)!;
  out.push(
    `Ratio at ${last.from.toLocaleString('en')}–${last.to.toLocaleString('en')} registered: Crossway ${Math.round(same.perSecond).toLocaleString('en')}/s ` +
      `(its step ${same.from.toLocaleString('en')} → ${same.to.toLocaleString('en')}) vs GnuGk ${Math.round(last.perSecond).toLocaleString('en')}/s = ` +
      `${(same.perSecond / last.perSecond).toFixed(0)}×; re-registration (32 outstanding) ${(c.rereg32.perSecond / g.rereg32.perSecond).toFixed(1)}×.`,
  );
}
console.log(out.join('\n\n'));
