/**
 * OPTIONS transactions/s over UDP, Crossway vs Kamailio 5.6 (stateless sl_send_reply), same sipp scenario, same run.
 * The rate rises in steps; a step passes when every transaction succeeded and at least 90 % of the offered rate was
 * achieved (retransmissions are reported). Reports the last passing step of each server, its CPU, and the ratio.
 *
 *   node --import tsx bench/sip-options.ts [--seconds 5] [--rates 2000,4000,...]
 *
 * Needs sipp (Debian sip-tester) and kamailio (Debian kamailio); installs them with apt-get when missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSipp } from '../test/helpers/sipp.ts';
import { benchArg, startKamailio, startServer, stopServer, treeCpuSeconds } from './lib.ts';

const arg = benchArg;
const seconds = Number(arg('seconds', '5'));
const rates = arg('rates', '2000,4000,6000,8000,10000,12000,14000,17000,20000').split(',').map(Number);
const root = new URL('..', import.meta.url).pathname;
const scenario = join(root, 'test/sipp/options.xml');

for (const [bin, pkg] of [
  ['sipp', 'sip-tester'],
  ['kamailio', 'kamailio'],
] as const) {
  if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', pkg], { stdio: 'inherit' });
  }
}

interface Step {
  rate: number;
  ok: number;
  failed: number;
  retrans: number;
  cpu: number;
  achieved: number;
}

async function ramp(name: string, pid: number, target: string): Promise<Step[]> {
  const steps: Step[] = [];
  for (const rate of rates) {
    const calls = rate * seconds;
    const cpu0 = treeCpuSeconds(pid);
    const t0 = performance.now();
    const r = await runSipp({
      scenario,
      target,
      calls,
      rate,
      limit: Math.max(200, rate),
      timeoutSeconds: seconds * 4 + 10,
    });
    const wall = (performance.now() - t0) / 1000;
    const cpu = (treeCpuSeconds(pid) - cpu0) / wall;
    const step = {
      rate,
      ok: r.successful,
      failed: r.failed,
      retrans: r.retransmissions,
      cpu: Math.round(cpu * 100),
      achieved: Math.round(r.successful / wall),
    };
    steps.push(step);
    console.error(
      `${name} rate ${rate}/s: ok ${step.ok} failed ${step.failed} retrans ${step.retrans} cpu ${step.cpu}% achieved ${step.achieved}/s`,
    );
    if (step.failed > 0 || step.ok !== calls) break;
  }
  return steps;
}

const dir = mkdtempSync(join(tmpdir(), 'crossway-bench-'));
const offset = 5000;
writeFileSync(join(dir, 'crossway.yaml'), `role: lab\ndataDir: ${dir}/data\nportOffset: ${offset}\n`);
const results: Record<string, Step[]> = {};

{
  const { child } = await startServer(
    process.execPath,
    ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'start', '--config', join(dir, 'crossway.yaml')],
    /"msg":"ready"/,
  );
  const wrapper = child.pid!;
  results['Crossway'] = await ramp('crossway', wrapper, `127.0.0.2:${5060 + offset}`);
  await stopServer(child);
}
{
  const port = 15060 + (process.pid % 1000);
  const { child } = await startKamailio({
    config: join(root, 'bench/kamailio/options.cfg'),
    runDir: dir,
    sharedMiB: 256,
    privateMiB: 16,
    defines: { LISTEN: `udp:127.0.0.1:${port}` },
  });
  results['Kamailio 5.6'] = await ramp('kamailio', child.pid!, `127.0.0.1:${port}`);
  await stopServer(child);
}

// Clean: every call succeeded and at least 90 % of the rate was achieved (a step that only finishes thanks to
// retransmissions, far slower than offered, is not a rate the server sustains).
const clean = (x: Step) => x.failed === 0 && x.ok === x.rate * seconds && x.achieved >= 0.9 * x.rate;
const best = (s: Step[]) => [...s].reverse().find(clean);
console.log(`\nOPTIONS over UDP, ${seconds} s per step, sipp on the same 2-core machine (node ${process.version})\n`);
console.log(
  '| server | highest clean step (tx/s) | achieved tx/s | retransmissions at that step | server CPU at that step (100 = one core) | first failing step |',
);
console.log('|---|---|---|---|---|---|');
for (const [name, steps] of Object.entries(results)) {
  const b = best(steps);
  const failing = steps.find((x) => !clean(x) && steps.indexOf(x) > steps.indexOf(b!));
  console.log(
    `| ${name} | ${b?.rate ?? 'none'} | ${b?.achieved ?? '-'} | ${b?.retrans ?? '-'} | ${b?.cpu ?? '-'} | ${failing ? `${failing.rate} (${failing.failed} failed, ${failing.retrans} retrans, ${failing.achieved}/s achieved)` : 'none up to the last step'} |`,
  );
}
const c = best(results['Crossway']!);
const k = best(results['Kamailio 5.6']!);
if (c && k) console.log(`\nratio Crossway/Kamailio (highest clean step): ${(c.rate / k.rate).toFixed(2)}`);
