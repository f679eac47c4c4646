/**
 * Media relay benchmark: Crossway's relay against rtpengine 10.5 userspace, same load generator (`rtpload`, C) in
 * the same run. Each step sets N G.711 calls up (two 50 pps streams each, 172-byte packets) and pumps them for S
 * seconds after 1 s of warm-up; reported: relayed packets/s, loss, one-way latency through the relay (p50/p99),
 * the relay's CPU and packets/s per core. `--pair` runs the calls through an edge and a core relay (multiplexed
 * traversal media between them) in one process instead of one relay; `--pair-processes` runs the edge and the core
 * each in a child process of its own (`bench/lib/media-relay-node.ts`), as two nodes are deployed, and reports the
 * CPU of both processes summed.
 *
 * usage: node --import tsx bench/media-relay.ts [--calls 100,500,1000] [--seconds 5] [--pair | --pair-processes]
 *          [--no-rtpengine]
 * Needs Debian `rtpengine-daemon` for the reference (not installed by the tests) and a C compiler for rtpload.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { parseSdp } from '../src/sdp/index.ts';
import { type BenchRelay, childProcess, inProcess, startBenchRelay } from './lib/media-relay.ts';

const TOOLS = '/work/shared/tools';
const { values } = parseArgs({
  options: {
    calls: { type: 'string', default: '100,500,1000' },
    seconds: { type: 'string', default: '5' },
    pair: { type: 'boolean', default: false },
    'pair-processes': { type: 'boolean', default: false },
    'no-rtpengine': { type: 'boolean', default: false },
  },
});
const steps = values.calls.split(',').map(Number);
const seconds = Number(values.seconds);
const label = values['pair-processes']
  ? 'Crossway edge+core, two processes'
  : values.pair
    ? 'Crossway edge+core, one process'
    : 'Crossway';

interface Row {
  system: string;
  calls: number;
  sent: number;
  ppsReceived: number;
  lossPct: number;
  p50: number;
  p99: number;
  cpuPct: number;
  ppsPerCore: number;
}

const rtpload = execFileSync(`${TOOLS}/rtpload/build.sh`, { encoding: 'utf8' }).trim();

function runRtpload(lines: string[]): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn(rtpload, ['-d', String(seconds), '-w', '1'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`rtpload exited ${code}`));
      else
        resolve(
          Object.fromEntries(
            out
              .trim()
              .split(/\s+/)
              .map((kv) => kv.split('=') as [string, string]),
          ),
        );
    });
    child.stdin.end(`${lines.join('\n')}\n`);
  });
}

async function freePorts(ip: string, n: number): Promise<number[]> {
  const held: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, ip, () => r()));
    held.push(s);
  }
  const ports = held.map((s) => s.address().port);
  for (const s of held) s.close();
  return ports;
}

const sdp = (ip: string, port: number) =>
  `v=0\r\no=- 1 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
const port = (text: string) => {
  const p = parseSdp(text);
  if (!p.ok) throw new Error(p.reason);
  return p.value.media[0]!.port;
};

/**
 * The relays a step's calls go through, in call order (caller side first): one core; or an edge then a core with
 * traversal media between them, both in this process (`--pair`) or each in a child process (`--pair-processes`).
 * `cpuSeconds` sums the CPU of the processes the relays run in (this process counted once).
 */
async function startRelays(): Promise<{ relays: BenchRelay[]; cpuSeconds: () => Promise<number> }> {
  if (values['pair-processes']) {
    const relays = [await childProcess('edge', true), await childProcess('core', false)];
    return { relays, cpuSeconds: async () => (await relays[0]!.cpuSeconds()) + (await relays[1]!.cpuSeconds()) };
  }
  const relays = values.pair
    ? [inProcess(await startBenchRelay('edge', true)), inProcess(await startBenchRelay('core', false))]
    : [inProcess(await startBenchRelay('core', false))];
  return { relays, cpuSeconds: () => relays[0]!.cpuSeconds() };
}

async function crossway(calls: number): Promise<Row> {
  const { relays, cpuSeconds } = await startRelays();
  const last = relays.length - 1;
  const a = await freePorts('127.0.0.20', calls);
  const b = await freePorts('127.0.0.21', calls);
  const lines: string[] = [];
  try {
    for (let n = 0; n < calls; n++) {
      const callId = `c${n}`;
      let off = sdp('127.0.0.20', a[n]!);
      for (let i = 0; i <= last; i++) {
        const from = i === 0 ? 'endpoint' : 'traversal';
        const to = i === last ? 'endpoint' : 'traversal';
        off = await relays[i]!.offer({ callId, fromTag: 'a', sdp: off, from, to });
      }
      let ans = sdp('127.0.0.21', b[n]!);
      for (let i = last; i >= 0; i--) ans = await relays[i]!.answer({ callId, fromTag: 'a', toTag: 'b', sdp: ans });
      lines.push(`127.0.0.20 ${a[n]} 127.0.0.1 ${port(ans)}`, `127.0.0.21 ${b[n]} 127.0.0.1 ${port(off)}`);
    }
    await new Promise((r) => setTimeout(r, 200)); // keepalives latch the edge before media starts
    const c0 = await cpuSeconds();
    const t0 = performance.now();
    const r = await runRtpload(lines);
    const took = (performance.now() - t0) / 1000;
    const cpuPct = (((await cpuSeconds()) - c0) / took) * 100;
    return row(label, calls, r, cpuPct);
  } finally {
    for (const x of relays) await x.close();
  }
}

function row(system: string, calls: number, r: Record<string, string>, cpuPct: number): Row {
  const pps = Number(r.pps_received);
  return {
    system,
    calls,
    sent: Number(r.sent),
    ppsReceived: pps,
    lossPct: Number(r.loss_pct),
    p50: Number(r.p50_us),
    p99: Number(r.p99_us),
    cpuPct: Math.round(cpuPct * 10) / 10,
    ppsPerCore: cpuPct > 0 ? Math.round(pps / (cpuPct / 100)) : 0,
  };
}

function rtpengine(calls: number): Row | undefined {
  let out: string;
  try {
    out = execFileSync(
      'python3',
      [`${TOOLS}/rtpengine-relay.py`, String(calls), '--seconds', String(seconds), '--pump', 'c'],
      {
        encoding: 'utf8',
        timeout: (seconds + 60) * 1000,
      },
    );
  } catch (err) {
    console.error(`rtpengine step ${calls} failed: ${(err as Error).message}`);
    return undefined;
  }
  const fields: Record<string, string> = {};
  for (const m of out.matchAll(/'?(\w+)'?: '?([\d.]+)'?/g)) fields[m[1]!] = m[2]!;
  return row('rtpengine 10.5', calls, fields, Number(fields.rtpengine_cpu_pct));
}

const rows: Row[] = [];
console.log(
  '| system | calls (streams) | offered → relayed packets/s | loss | p50 / p99 | relay CPU | packets/s per core | load average |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const calls of steps) {
  const got = [
    await crossway(calls),
    ...(values['no-rtpengine'] || values.pair || values['pair-processes'] ? [] : [rtpengine(calls)]),
  ];
  for (const r of got) {
    if (!r) continue;
    rows.push(r);
    console.log(
      `| ${r.system} | ${r.calls} (${r.calls * 2}) | ${r.calls * 100} → ${Math.round(r.ppsReceived)} | ${r.lossPct} % | ${r.p50} µs / ${r.p99} µs | ${r.cpuPct} % | ${r.ppsPerCore} | ${loadavg()[0]!.toFixed(1)} |`,
    );
  }
}
