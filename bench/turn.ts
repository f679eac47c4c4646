/**
 * TURN benchmark: the same load against Crossway's TURN server and coturn's `turnserver` (Debian coturn 4.6),
 * both on loopback, in one run, with the ratio. Not a test: run it by hand and copy the table into
 * docs/benchmarks.md.
 *
 *   node --import tsx bench/turn.ts            # TURN_BENCH_ALLOCATIONS=6000 TURN_BENCH_MESSAGES=1000
 *
 * 1. Relay: `turnutils_uclient -m 10 -n N -l 1000 -z 0` echo through the server to `turnutils_peer`: relayed
 *    packets/s (both directions, over the wall time of the run), loss, server CPU.
 * 2. Allocations: our own load generator (bench/turn-alloc-load.ts) makes ALLOCATIONS allocations
 *    each with the full 401 challenge, 256 in flight: allocations/s; then the server's resident memory holding them all.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { cpuSeconds, startServer, stopServer, treeRssKiB } from './lib.ts';
import { AllocationLoad } from './turn-alloc-load.ts';

const run = promisify(execFile);
const ALLOCATIONS = Number(process.env.TURN_BENCH_ALLOCATIONS ?? 6000);
const MESSAGES = Number(process.env.TURN_BENCH_MESSAGES ?? 1000);
const CLIENTS = 10;
/** Allocations in flight: the generator is latency-bound, 256 keeps both servers busy. */
const WINDOW = 256;

interface Figures {
  name: string;
  relayPacketsPerSecond: number;
  relayLossPercent: number;
  relayCpuPercent: number;
  allocationsPerSecond: number;
  allocationFailures: number;
  allocCpuPercent: number;
  rssIdleMiB: number;
  rssAtAllocationsMiB: number;
}

async function measure(name: string, child: ChildProcess, port: number, peerPort: number): Promise<Figures> {
  const pid = child.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const rssIdle = treeRssKiB(pid);
  // 1. relay through uclient
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const { stdout, stderr } = await run(
    'turnutils_uclient',
    [
      '-m',
      String(CLIENTS),
      '-n',
      String(MESSAGES),
      '-l',
      '1000',
      '-z',
      '0',
      '-e',
      '127.0.0.1',
      '-r',
      String(peerPort),
    ].concat(['-u', 'alice', '-w', 'wonderland', '-p', String(port), '127.0.0.1']),
    { timeout: 180_000, maxBuffer: 64 * 1024 * 1024 },
  );
  const wall = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(pid);
  const out = (stdout + stderr).replace(/.*msz=.*\n/g, '');
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/.exec(out);
  const lost = /Total lost packets (\d+) \(([\d.]+)%\)/.exec(out);
  if (!totals || !lost) throw new Error(`${name}: unexpected uclient output\n${out.slice(-2000)}`);
  const sent = Number(totals[1]);
  const received = Number(totals[2]);
  // 2. allocations with our generator
  const load = new AllocationLoad('127.0.0.1', port);
  const cpu2 = cpuSeconds(pid);
  const alloc = await load.allocate(ALLOCATIONS, WINDOW);
  const cpu3 = cpuSeconds(pid);
  await new Promise((r) => setTimeout(r, 500));
  const rssFull = treeRssKiB(pid);
  const released = await load.release();
  console.error(
    `${name}: uclient sent ${sent} received ${received} in ${wall.toFixed(1)} s; ` +
      `${alloc.allocated} allocations (${alloc.failed} failed) in ${alloc.seconds.toFixed(2)} s; ` +
      `released ${released.released} in ${released.seconds.toFixed(2)} s`,
  );
  return {
    name,
    relayPacketsPerSecond: (sent + received) / wall,
    relayLossPercent: Number(lost[2]),
    relayCpuPercent: ((cpu1 - cpu0) / wall) * 100,
    allocationsPerSecond: alloc.perSecond,
    allocationFailures: alloc.failed,
    allocCpuPercent: ((cpu3 - cpu2) / alloc.seconds) * 100,
    rssIdleMiB: rssIdle / 1024,
    rssAtAllocationsMiB: rssFull / 1024,
  };
}

async function withPeer<T>(peerPort: number, fn: () => Promise<T>): Promise<T> {
  const peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  try {
    return await fn();
  } finally {
    await stopServer(peer);
  }
}

const results: Figures[] = [];
{
  const port = 43578;
  const srv = await startServer(
    process.execPath,
    ['--import', 'tsx', 'bench/turn-server.ts', String(port), '52000', '59999'],
    /READY/,
  );
  try {
    results.push(await withPeer(43580, () => measure('Crossway', srv.child, port, 43580)));
  } finally {
    await stopServer(srv.child);
  }
}
{
  const port = 43678;
  const srv = await startServer(
    'turnserver',
    [
      '-n',
      '--listening-ip=127.0.0.1',
      `--listening-port=${port}`,
      '--relay-ip=127.0.0.1',
      '--min-port=44000',
      '--max-port=51999',
      '--lt-cred-mech',
      '--user=alice:wonderland',
      '--realm=crossway.test',
      '--allow-loopback-peers',
      '--allowed-peer-ip=127.0.0.1',
      '--no-tls',
      '--no-dtls',
      '--no-cli',
      '--fingerprint',
      '--log-file=stdout',
      '--simple-log',
      '--pidfile=/tmp/crossway-bench-turnserver.pid',
    ],
    /Total General servers/,
  );
  try {
    results.push(await withPeer(43680, () => measure('coturn 4.6', srv.child, port, 43680)));
  } finally {
    await stopServer(srv.child);
  }
}

const [c, r] = results as [Figures, Figures];
const row = (label: string, get: (f: Figures) => number, digits = 0) =>
  `| ${label} | ${get(c).toFixed(digits)} | ${get(r).toFixed(digits)} | ${(get(c) / get(r)).toFixed(2)} |`;
console.log(
  `| TURN, ${CLIENTS} uclient clients × ${MESSAGES} msgs of 1000 B; ${ALLOCATIONS} allocations | Crossway | coturn 4.6 | ratio |`,
);
console.log('|---|---|---|---|');
console.log(row('relayed packets/s (both directions, uclient wall time)', (f) => f.relayPacketsPerSecond));
console.log(row('relay loss %', (f) => f.relayLossPercent, 2));
console.log(row('server CPU during relay (% of one core)', (f) => f.relayCpuPercent));
console.log(row(`allocations/s (full 401 exchange, ${WINDOW} in flight)`, (f) => f.allocationsPerSecond));
console.log(row('allocation failures', (f) => f.allocationFailures));
console.log(row('server CPU during allocations (% of one core)', (f) => f.allocCpuPercent));
console.log(row('resident memory idle (MiB)', (f) => f.rssIdleMiB, 1));
console.log(row(`resident memory at ${ALLOCATIONS} allocations (MiB)`, (f) => f.rssAtAllocationsMiB, 1));
