/**
 * H.323 call setups/s with media anchored, Crossway vs GnuGk, same generator, same run. Both gatekeepers run in
 * the routed model with media relayed: a Crossway lab node (bench/lib/h323-node.ts: gatekeeper, call server, H.245
 * relayed per leg, fast-start media on its relay) and GnuGk (bench/lib/h323-servers.ts: `GKRouted=1`,
 * `H245Routed=1`, `[Proxy] Enable=1`). The load comes from simulated endpoints on Crossway's codec
 * (bench/lib/h323-endpoints.ts): `--endpoints` of them register (RRQ), half place calls to the other half:
 * ARQ/ACF, Setup with fast start and tunnelling, the callee's ARQ, CallProceeding/Alerting/Connect with the fast-start
 * answer, ReleaseComplete from the caller, DRQ/DCF on both sides. A call counts only when all of that happened
 * within `--deadline-ms` and both endpoints were given relay addresses instead of each other's.
 *
 * First a probe of `--probe` calls one at a time must all succeed (the generator works against this server), then
 * the offered rate rises through `--rates` (calls started per second, open loop, at most `--outstanding` at once),
 * each step `--seconds` long and at most `--max-calls` calls; the ramp stops after a step with ≥ 1 % failures,
 * after two steps in a row completing under 80 % of the offered rate, or when the budget `--budget-s` per server
 * is spent. Per step: completed setups/s, failures, setup latency p50/p99
 * (ARQ sent → Connect received at the caller), server CPU (100 = one core) and CPU ms per call, the generator's
 * own CPU. Prints a Markdown table per server and the ratio of the best clean steps.
 *
 *   node --import tsx bench/h323-calls.ts [--endpoints 200] [--rates 20,50,100,...] [--seconds 8]
 *        [--max-calls 4000] [--outstanding 400] [--budget-s 150] [--only crossway|gnugk]
 * GnuGk is built by ../shared/peers/gnugk/build.sh (cached); it listens on 127.0.33.1, endpoints use 127.0.44.x.
 */
import { counters, H323Endpoint } from './lib/h323-endpoints.ts';
import { type H323Server, startCrosswayH323, startGnugk } from './lib/h323-servers.ts';
import { benchArg, stopServer, treeCpuSeconds } from './lib.ts';

const endpointsN = Number(benchArg('endpoints', '200'));
const rates = benchArg('rates', '20,50,100,150,200,300,400,600,800,1000,1300,1600').split(',').map(Number);
const seconds = Number(benchArg('seconds', '8'));
const maxCalls = Number(benchArg('max-calls', '4000'));
const outstandingMax = Number(benchArg('outstanding', '400'));
const budgetS = Number(benchArg('budget-s', '150'));
const deadlineMs = Number(benchArg('deadline-ms', '10000'));
const probeN = Number(benchArg('probe', '5'));
const only = benchArg('only', '');
const GNUGK_HOME = '127.0.33.1';

interface Step {
  offered: number;
  started: number;
  ok: number;
  failed: number;
  reasons: Record<string, number>;
  wall: number;
  perSecond: number;
  p50: number;
  p99: number;
  cpu: number;
  cpuMsPerCall: number;
  genCpu: number;
  load1: number;
}

const quantile = (sorted: number[], q: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : Number.NaN;

const genCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function endpoints(server: H323Server): Promise<H323Endpoint[]> {
  const eps: H323Endpoint[] = [];
  for (let i = 0; i < endpointsN; i++) {
    // 127.0.44.1 … 127.0.45.x: each endpoint its own address, as real endpoints are
    const ip = `127.0.${44 + Math.floor(i / 250)}.${(i % 250) + 1}`;
    eps.push(await H323Endpoint.open(ip, `bench-ep-${i + 1}`, server.ras, 40_000 + 2 * i));
  }
  // registrations 20 at a time (the bench measures calls, not RAS)
  for (let i = 0; i < eps.length; i += 20) await Promise.all(eps.slice(i, i + 20).map((e) => e.register()));
  return eps;
}

/** `count` calls started at `rate`/s (open loop, at most `outstandingMax` at once), caller k → callee k. */
async function step(eps: H323Endpoint[], rate: number, count: number, pid: number): Promise<Step> {
  const half = eps.length / 2;
  const latencies: number[] = [];
  const reasons: Record<string, number> = {};
  let ok = 0;
  let started = 0;
  let outstanding = 0;
  const calls: Promise<void>[] = [];
  const cpu0 = treeCpuSeconds(pid);
  const gen0 = genCpuSeconds();
  const t0 = performance.now();
  for (let k = 0; k < count; k++) {
    const due = t0 + (k * 1000) / rate;
    for (;;) {
      const wait = due - performance.now();
      if (wait <= 0 && outstanding < outstandingMax) break;
      await new Promise((r) => setTimeout(r, Math.max(1, wait)));
    }
    const caller = eps[k % half]!;
    const callee = eps[half + (k % half)]!;
    started++;
    outstanding++;
    calls.push(
      caller
        .call(callee, deadlineMs)
        .then((ms) => {
          ok++;
          latencies.push(ms);
        })
        .catch((e: Error) => {
          const why = e.message.replace(/\d+/g, 'N');
          reasons[why] = (reasons[why] ?? 0) + 1;
        })
        .finally(() => outstanding--),
    );
  }
  await Promise.all(calls);
  const wall = (performance.now() - t0) / 1000;
  const cpu = treeCpuSeconds(pid) - cpu0;
  latencies.sort((a, b) => a - b);
  return {
    offered: rate,
    started,
    ok,
    failed: started - ok,
    reasons,
    wall,
    perSecond: ok / wall,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    cpu: Math.round((cpu / wall) * 100),
    cpuMsPerCall: ok ? (cpu / ok) * 1000 : Number.NaN,
    genCpu: Math.round(((genCpuSeconds() - gen0) / wall) * 100),
    load1: Number((await import('node:os')).loadavg()[0]!.toFixed(1)),
  };
}

async function measure(server: H323Server) {
  const pid = server.child.pid!;
  const eps = await endpoints(server);
  try {
    // the generator must work against this server before anything is measured
    const probe = await step(eps, 5, probeN, pid);
    if (probe.ok !== probeN)
      throw new Error(`${server.name}: probe calls failed: ${JSON.stringify(probe.reasons)}; see ${server.log ?? ''}`);
    const media = counters.lastMedia;
    console.error(
      `${server.name}: probe ${probeN}/${probeN} calls completed (p50 ${probe.p50.toFixed(1)} ms); ` +
        `RTP toward the callee at ${media.caller?.ip}:${media.caller?.port}, toward the caller at ${media.callee?.ip}:${media.callee?.port}`,
    );
    // …and a call it cannot complete must count as failed: one to an endpoint that never registered
    const stranger = await H323Endpoint.open('127.0.43.250', 'bench-unregistered', server.ras, 39_000);
    const refused = await eps[0]!.call(stranger, deadlineMs).then(
      () => 'completed',
      (e: Error) => e.message,
    );
    stranger.close();
    if (refused === 'completed') throw new Error(`${server.name}: a call to an unregistered alias completed`);
    console.error(`${server.name}: a call to an unregistered alias fails: ${refused}`);
    const steps: Step[] = [];
    const started = performance.now();
    for (const rate of rates) {
      if ((performance.now() - started) / 1000 > budgetS) break;
      const s = await step(eps, rate, Math.min(maxCalls, Math.round(rate * seconds)), pid);
      steps.push(s);
      console.error(`${server.name}: ${JSON.stringify(s)}`);
      if (s.failed / s.started >= 0.01) break;
      // saturated: two steps in a row completing less than 80 % of the offered rate
      const prev = steps.at(-2);
      if (prev && prev.perSecond < 0.8 * prev.offered && s.perSecond < 0.8 * s.offered) break;
      // let the last calls' sockets close before the next step
      await new Promise((r) => setTimeout(r, 1000));
    }
    return steps;
  } finally {
    for (const e of eps) e.close();
  }
}

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');

function table(name: string, steps: Step[]): string {
  return [
    `### ${name}`,
    '| offered calls/s | calls | completed setups/s | failed | latency p50 / p99 (ms) | server CPU (100 = one core) | server CPU per call (ms) | generator CPU | load (1 min) |',
    '|---|---|---|---|---|---|---|---|---|',
    ...steps.map(
      (s) =>
        `| ${s.offered} | ${s.started} | ${fmt(s.perSecond)} | ${s.failed}${
          s.failed
            ? ` (${Object.entries(s.reasons)
                .map(([k, v]) => `${k}: ${v}`)
                .join('; ')})`
            : ''
        } | ${fmt(s.p50, 1)} / ${fmt(s.p99, 1)} | ${s.cpu} | ${fmt(s.cpuMsPerCall, 2)} | ${s.genCpu} | ${s.load1} |`,
    ),
  ].join('\n');
}

const best = (steps: Step[]) =>
  steps.filter((s) => s.failed / s.started < 0.01).sort((a, b) => b.perSecond - a.perSecond)[0];

const out: string[] = [];
const result: Record<string, Step[]> = {};
for (const name of ['Crossway', 'GnuGk'] as const) {
  if (only && only !== name.toLowerCase()) continue;
  const server =
    name === 'Crossway'
      ? await startCrosswayH323({ logLevel: benchArg('crossway-log', '') || undefined })
      : await startGnugk({ home: GNUGK_HOME, trace: Number(benchArg('gnugk-trace', '0')) });
  try {
    await new Promise((r) => setTimeout(r, 1000));
    result[name] = await measure(server);
    out.push(
      table(
        `${name} (RAS ${server.ras.ip}:${server.ras.port}, call signalling ${server.callSignalling.ip}:${server.callSignalling.port})`,
        result[name],
      ),
    );
  } finally {
    await stopServer(server.child);
  }
}
const c = result.Crossway && best(result.Crossway);
const g = result.GnuGk && best(result.GnuGk);
if (c && g) {
  out.push(
    `Best clean step (< 1 % failed): Crossway ${fmt(c.perSecond)} setups/s (offered ${c.offered}, ${fmt(c.cpuMsPerCall, 2)} ms CPU per call), ` +
      `GnuGk ${fmt(g.perSecond)} setups/s (offered ${g.offered}, ${fmt(g.cpuMsPerCall, 2)} ms CPU per call): ` +
      `${(c.perSecond / g.perSecond).toFixed(1)}× the setups/s, ${(g.cpuMsPerCall / c.cpuMsPerCall).toFixed(1)}× less CPU per call.`,
  );
}
out.push(
  `Generator: ${counters.rasRetransmissions} RAS retransmissions, ${counters.strayRas} stray RAS messages, ${counters.straySetups} stray Setups.`,
);
console.log(out.join('\n\n'));
