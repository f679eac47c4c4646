/**
 * Calls/s through a record-routing stateful proxy (INVITE-180-200-ACK, pause, BYE-200), Crossway vs Kamailio 5.6
 * (bench/kamailio/proxy.cfg: record_route + t_relay), with the same sipp scenarios (test/sipp/call-uac.xml against
 * test/sipp/uas-answer.xml) in the same run. The rate rises in steps; a step is clean with < 1 % failed calls.
 * Then memory: `--hold N` calls are set up and held (60 s pause before the BYE) and the server's RSS is read once
 * they are all established.
 *
 *   node --import tsx bench/calls.ts [--seconds 5] [--rates 200,400,...] [--hold 10000]
 *
 * sipp's unexpected-message abort is off for both servers (a 180 overtaken by its 200 on a multi-worker proxy is a
 * reorder, not a failed call: see /work/shared/notes/bench-anchors.md).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeUdpPort, type SippRun, sipp } from '../test/sip/proxy/sipp-peers.ts';
import { benchArg, startKamailio, startServer, stopServer, treeCpuSeconds, treeRssKiB } from './lib.ts';

const arg = benchArg;
const seconds = Number(arg('seconds', '5'));
const rates = arg('rates', '200,400,700,1000,1400,1800,2400').split(',').map(Number);
const hold = Number(arg('hold', '10000'));
/** `crossway` or `kamailio` to run one side only (both by default). */
const only = arg('only', '');
const root = new URL('..', import.meta.url).pathname;
const uacScenario = join(root, 'test/sipp/call-uac.xml');
const uasScenario = join(root, 'test/sipp/uas-answer.xml');
const noAbort = ['-default_behaviors', 'all,-abortunexp'];

interface Step {
  rate: number;
  ok: number;
  /** Failed calls, counting those not finished when the caller ended (a lost message that sipp never retried). */
  failed: number;
  /** Of `failed`, the calls not finished. */
  unfinished: number;
  /** Server CPU over the caller's run (diluted on failing steps, whose calls wait for timeouts). */
  cpu: number;
}

/** A uac step against `target` with a fresh uas on `uasPort`. */
async function step(target: string, uasPort: number, calls: number, rate: number, uacScenarioPath = uacScenario) {
  const stop = new AbortController();
  const uasRun = sipp({
    signal: stop.signal,
    scenario: uasScenario,
    port: uasPort,
    calls,
    timeoutSeconds: Math.ceil(calls / rate) + 90,
    extra: noAbort,
  });
  await new Promise((r) => setTimeout(r, 500));
  const uac = sipp({
    scenario: uacScenarioPath,
    port: await freeUdpPort(),
    target,
    service: 'bench',
    calls,
    rate,
    limit: Math.max(1000, calls),
    timeoutSeconds: Math.ceil(calls / rate) + 90,
    extra: noAbort,
  });
  // The uas waits for `calls` calls: once the caller is done, give it 2 s for the last BYEs, then stop it.
  const uas = uac.then(async () => {
    await new Promise((r) => setTimeout(r, 2000));
    stop.abort();
    return uasRun;
  });
  return { uac, uas };
}

async function ramp(name: string, pid: number, target: string, uasPort: number): Promise<Step[]> {
  const steps: Step[] = [];
  for (const rate of rates) {
    const calls = rate * seconds;
    const cpu0 = treeCpuSeconds(pid);
    const t0 = performance.now();
    const { uac, uas } = await step(target, uasPort, calls, rate);
    const r: SippRun = await uac;
    const wall = (performance.now() - t0) / 1000;
    const cpu1 = treeCpuSeconds(pid);
    await uas;
    const failed = Number.isNaN(r.failed) ? calls : r.failed;
    // A call sipp had not finished when it ended counts as failed: one lost call on a loaded machine is 1 call in
    // `calls`, not the end of the ramp.
    const unfinished = Math.max(0, calls - r.successful - failed);
    const s: Step = {
      rate,
      ok: r.successful,
      failed: failed + unfinished,
      unfinished,
      cpu: Math.round(((cpu1 - cpu0) / wall) * 100),
    };
    steps.push(s);
    console.error(
      `${name} ${rate} calls/s: ok ${s.ok} failed ${s.failed} (unfinished ${s.unfinished}) cpu ${s.cpu}% wall ${wall.toFixed(1)} s`,
    );
    if (s.failed > calls / 100) break;
  }
  return steps;
}

/** Sets up `n` calls held for 60 s and reads the server's RSS once they are all established. */
async function memory(
  name: string,
  pid: number,
  target: string,
  uasPort: number,
): Promise<{ before: number; held: number }> {
  const held = join(mkdtempSync(join(tmpdir(), 'crossway-bench-hold-')), 'call-uac-hold.xml');
  writeFileSync(
    held,
    readFileSync(uacScenario, 'utf8').replace('<pause milliseconds="100"/>', '<pause milliseconds="60000"/>'),
  );
  const before = treeRssKiB(pid);
  const rate = 500;
  const { uac, uas } = await step(target, uasPort, hold, rate, held);
  await new Promise((r) => setTimeout(r, (hold / rate) * 1000 + 5000));
  const during = treeRssKiB(pid);
  console.error(`${name}: RSS ${before} KiB idle, ${during} KiB with ${hold} calls held`);
  await uac;
  await uas;
  return { before, held: during };
}

const dir = mkdtempSync(join(tmpdir(), 'crossway-bench-calls-'));
const offset = 5200;
const results: Record<string, { steps: Step[]; mem: { before: number; held: number } }> = {};

if (only !== 'kamailio') {
  const uasPort = await freeUdpPort();
  writeFileSync(
    join(dir, 'crossway.yaml'),
    [
      'role: lab',
      `dataDir: ${dir}/data`,
      `portOffset: ${offset}`,
      'log: { level: info }',
      'routing:',
      `  zones: [{ name: Uas, type: neighbor, address: 127.0.0.1, port: ${uasPort} }]`,
      '  searchRules: [{ name: all, pattern: { type: anyAlias }, targetZone: Uas }]',
      '',
    ].join('\n'),
  );
  const { child } = await startServer(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'start', '--config', join(dir, 'crossway.yaml')],
    /"msg":"ready"|ready/,
  );
  const target = `127.0.0.2:${5060 + offset}`;
  const steps = await ramp('crossway', child.pid!, target, uasPort);
  const mem = await memory('crossway', child.pid!, target, uasPort);
  results['Crossway'] = { steps, mem };
  await stopServer(child);
}
if (only !== 'crossway') {
  const uasPort = await freeUdpPort();
  const port = 16060 + (process.pid % 1000);
  const { child } = await startKamailio({
    config: join(root, 'bench/kamailio/proxy.cfg'),
    runDir: dir,
    sharedMiB: 1024,
    privateMiB: 64,
    defines: { LISTEN: `udp:127.0.0.1:${port}`, UAS: `"sip:127.0.0.1:${uasPort}"` },
  });
  const target = `127.0.0.1:${port}`;
  const steps = await ramp('kamailio', child.pid!, target, uasPort);
  const mem = await memory('kamailio', child.pid!, target, uasPort);
  results['Kamailio 5.6'] = { steps, mem };
  await stopServer(child);
}

const clean = (s: Step[], maxShare: number) =>
  [...s].reverse().find((x) => x.ok > 0 && x.failed <= x.rate * seconds * maxShare);
console.log(
  `\nINVITE-180-200-ACK-BYE through a record-routing proxy over UDP, ${seconds} s per step, sipp uac and uas on the same 2-core machine (node ${process.version})\n`,
);
console.log(
  '| proxy | highest step with 0 failed calls (calls/s) | proxy CPU there (100 = one core) | highest step with < 1 % failed | failed there | RSS idle → with held calls |',
);
console.log('|---|---|---|---|---|---|');
for (const [name, r] of Object.entries(results)) {
  const zero = clean(r.steps, 0);
  const one = clean(r.steps, 0.01);
  console.log(
    `| ${name} | ${zero?.rate ?? 'none'} | ${zero?.cpu ?? '-'} | ${one?.rate ?? 'none'} | ${one ? `${one.failed} of ${one.rate * seconds}` : '-'} | ${Math.round(r.mem.before / 1024)} → ${Math.round(r.mem.held / 1024)} MiB (${hold} calls) |`,
  );
}
const c = results['Crossway'] && clean(results['Crossway'].steps, 0.01);
const k = results['Kamailio 5.6'] && clean(results['Kamailio 5.6'].steps, 0.01);
if (c && k) console.log(`\nratio Crossway/Kamailio (highest step with < 1 % failed): ${(c.rate / k.rate).toFixed(2)}`);
