/**
 * Network-namespace lab: an outside host, a two-firewall DMZ with the edge in it, and an inside host for the core.
 *
 * ```
 *  outside 10.77.1.2 ─ 10.77.1.1 [fw-out] 10.77.2.1 ─ 10.77.2.2 edge (public)
 *                                 10.77.5.1                edge (private) 10.77.3.2 ─ 10.77.3.1 [fw-in]
 *                                    └──────────── transit ──────────── 10.77.5.2 ┘   10.77.4.1 ─ 10.77.4.2 inside (core)
 *  behindNat 10.77.6.2 ─ 10.77.6.1 outside (only after `addNatHost()`: the outside host masquerades it)
 * ```
 * A two-interface edge: its public leg hangs off the outside firewall, its private leg off the inside firewall; the
 * firewalls are also joined by a transit link, so that a packet from the outside to the inside (or to the edge's
 * private side) has a route and is stopped by a firewall, not by a missing route. No bridge is used (a host with
 * `br_netfilter` loaded would filter bridged frames in the inet hooks too). Routed traffic crosses fw-out
 * (outside↔DMZ) and fw-in (DMZ↔inside), filtered by the rulesets the test loads. Every namespace name is unique to
 * the process and the lab, so parallel runs do not clash; `close()` kills what the lab spawned and deletes the
 * namespaces, also on process exit, and labs left by dead processes are removed when a new one is created.
 *
 * Needs root (or CAP_SYS_ADMIN + CAP_NET_ADMIN), `ip` and `nft`: use `netLabAvailability()` to skip loudly, and
 * `netLabRequired()` so that under CI a lab that cannot run fails instead.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { it } from 'node:test';

export type LabHost = 'outside' | 'fwOut' | 'edge' | 'fwIn' | 'inside' | 'behindNat';

/** Addresses of the lab. */
export const LAB_ADDRESSES = Object.freeze({
  outside: '10.77.1.2',
  fwOutOutside: '10.77.1.1',
  fwOutDmz: '10.77.2.1',
  edgePublic: '10.77.2.2',
  edgePrivate: '10.77.3.2',
  fwInDmz: '10.77.3.1',
  fwOutTransit: '10.77.5.1',
  fwInTransit: '10.77.5.2',
  fwInInside: '10.77.4.1',
  inside: '10.77.4.2',
  /** `addNatHost()`: a home network behind the outside host, which masquerades it as 10.77.1.2. */
  natLan: '10.77.6.1',
  behindNat: '10.77.6.2',
  dmzPublicNet: '10.77.2.0/24',
  dmzPrivateNet: '10.77.3.0/24',
  insideNet: '10.77.4.0/24',
});

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export type ProbeResult = 'answered' | 'timeout' | 'refused' | 'error';

export interface ProbeOptions {
  /** `tls` connects with TLS (server certificate not verified) and then sends like `tcp`. */
  proto: 'tcp' | 'udp' | 'tls';
  host: string;
  port: number;
  localAddress?: string;
  localPort?: number;
  timeoutMs?: number;
  /** What to send once connected (TCP/TLS) or in each datagram (UDP); default `ping`. */
  send?: string;
  /** `answered` when the reply contains this; default `pong` (the lab's echo listener). */
  expect?: string;
}

export interface LabListener {
  readonly host: LabHost;
  /** Source address:port of every connection or datagram received. */
  readonly seen: readonly string[];
  close(): Promise<void>;
}

const PREFIX = 'cwlab';
const live = new Set<NetLab>();
let exitHookInstalled = false;

function run(cmd: string, args: readonly string[], input?: string, timeoutMs = 20_000): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err
        ? typeof (err as { code?: unknown }).code === 'number'
          ? (err as { code: number }).code
          : 1
        : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function must(cmd: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Whether this machine can build the lab; `reason` says why not (for `t.skip(reason)`). */
export function netLabAvailability(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: 'network namespaces need Linux' };
  for (const [bin, args] of [
    ['ip', ['-V']],
    ['nft', ['--version']],
  ] as const) {
    try {
      execFileSync(bin, args, { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `${bin} is not installed (scripts/deps/apt-packages.txt: iproute2, nftables)` };
    }
  }
  const probe = `${PREFIX}${process.pid}probe${randomBytes(2).toString('hex')}`;
  try {
    execFileSync('ip', ['netns', 'add', probe], { stdio: 'pipe' });
    execFileSync('ip', ['netns', 'exec', probe, 'nft', 'list', 'ruleset'], { stdio: 'pipe' });
  } catch (err) {
    return { ok: false, reason: `cannot create a network namespace and run nft in it (need root): ${String(err)}` };
  } finally {
    try {
      execFileSync('ip', ['netns', 'del', probe], { stdio: 'ignore' });
    } catch {
      // was never created
    }
  }
  return { ok: true };
}

/** Whether the process runs under CI (`CI` set, and not `0` or `false`): there the lab is required. */
export function underCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI?.trim().toLowerCase();
  return v !== undefined && v !== '' && v !== '0' && v !== 'false';
}

/**
 * For a test file that needs the lab: returns the `skip` option of its lab suites (the reason, printed loudly on
 * stderr, when the lab cannot run), and adds a test of its own that passes when the lab can run, is skipped when it
 * cannot outside CI, and fails under CI (`underCi()`), so a CI machine without namespaces or nft goes red.
 */
export function netLabRequired(
  file: string,
  availability: ReturnType<typeof netLabAvailability> = netLabAvailability(),
): false | string {
  const reason = availability.ok ? undefined : availability.reason;
  const skip = reason === undefined ? false : `SKIPPED LOUDLY: ${reason}`;
  if (skip) process.stderr.write(`\n*** ${file}: ${skip}${underCi() ? ' (CI is set: this fails)' : ''} ***\n\n`);
  it('the network-namespace lab can run here (required under CI)', { skip: skip && !underCi() ? skip : false }, () => {
    assert.equal(reason, undefined, `CI is set and ${file} cannot run its network-namespace lab: ${reason}`);
  });
  return skip;
}

/** Deletes labs left behind by processes that no longer exist. */
function removeStale(): void {
  let names: string[] = [];
  try {
    names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.split(' ')[0] ?? '')
      .filter((n) => n.startsWith(PREFIX));
  } catch {
    return;
  }
  for (const n of names) {
    const pid = Number(/^cwlab(\d+)/.exec(n)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        // someone else removed it meanwhile
      }
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const lab of live) lab.closeSync();
  });
}

// A tiny echo server/client run with `node -e` inside a namespace (no files needed).
const LISTENER_JS = `
const [proto, host, ...ports] = process.argv.slice(1);
const net = require('node:net'), dgram = require('node:dgram');
let ready = 0;
const up = () => { if (++ready === ports.length) process.stdout.write('ready\\n'); };
for (const p of ports.map(Number)) {
  if (proto === 'tcp') {
    net.createServer((s) => { process.stdout.write('seen ' + s.remoteAddress + ':' + s.remotePort + '\\n'); s.end('pong\\n'); s.on('error', () => {}); })
      .listen({ host, port: p }, up);
  } else {
    const u = dgram.createSocket('udp4');
    u.on('message', (m, r) => { process.stdout.write('seen ' + r.address + ':' + r.port + '\\n'); u.send('pong', r.port, r.address); });
    u.bind({ address: host, port: p }, up);
  }
}`;

const PROBE_JS = `
const [proto, host, port, localAddress, localPort, timeoutMs, send64, expect64] = process.argv.slice(1);
const net = require('node:net'), dgram = require('node:dgram'), tls = require('node:tls');
const send = Buffer.from(send64, 'base64'), expect = Buffer.from(expect64, 'base64').toString();
const done = (r) => { process.stdout.write(r + '\\n'); process.exit(0); };
setTimeout(() => done('timeout'), Number(timeoutMs));
let got = '';
const onData = (d) => { got += String(d); if (got.includes(expect)) done('answered'); };
if (proto === 'tcp' || proto === 'tls') {
  const o = { host, port: Number(port), rejectUnauthorized: false };
  if (localAddress) o.localAddress = localAddress;
  if (Number(localPort)) o.localPort = Number(localPort);
  const s = proto === 'tls' ? tls.connect(o, () => s.write(send)) : net.connect(o, () => s.write(send));
  s.on('data', onData);
  s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : 'error ' + e.code));
} else {
  const u = dgram.createSocket('udp4');
  u.on('message', onData);
  u.on('error', (e) => done('error ' + e.code));
  u.bind({ address: localAddress || undefined, port: Number(localPort) || 0 }, () => {
    const tx = () => u.send(send, Number(port), host);
    tx(); setInterval(tx, 200).unref();
  });
}`;

/** A running lab. Create with `createNetLab()`, always `await lab.close()` (e.g. in `t.after`). */
export class NetLab {
  readonly id: string;
  readonly ns: Readonly<Record<LabHost, string>>;
  readonly #children = new Set<ChildProcess>();
  #closed = false;

  constructor(id: string) {
    this.id = id;
    this.ns = Object.freeze({
      outside: `${id}-out`,
      fwOut: `${id}-fwo`,
      edge: `${id}-edge`,
      fwIn: `${id}-fwi`,
      inside: `${id}-in`,
      behindNat: `${id}-nat`,
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Runs a command in a host's namespace. */
  exec(
    host: LabHost,
    cmd: string,
    args: readonly string[] = [],
    input?: string,
    timeoutMs?: number,
  ): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns[host], cmd, ...args], input, timeoutMs);
  }

  /** Starts a long-running process in a host's namespace; the lab kills it on close. */
  spawn(
    host: LabHost,
    cmd: string,
    args: readonly string[] = [],
    options: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
  ): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns[host], cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: options.env ?? process.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
    });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /** Loads an nftables ruleset (as `nft -f` reads it) on a host: the firewalls, or a node's own host rules. */
  async loadRuleset(host: LabHost, ruleset: string): Promise<void> {
    const r = await this.exec(host, 'nft', ['-f', '-'], ruleset);
    if (r.code !== 0) throw new Error(`nft -f on ${host} failed: ${r.stderr.trim()}`);
  }

  /** Counters of a ruleset (`nft list ruleset`), for diagnosing a test. */
  async ruleset(host: LabHost): Promise<string> {
    return (await this.exec(host, 'nft', ['list', 'ruleset'])).stdout;
  }

  /** Echo server on a host: TCP answers `pong` and closes, UDP answers `pong` to each datagram. */
  async listen(host: LabHost, proto: 'tcp' | 'udp', address: string, ports: readonly number[]): Promise<LabListener> {
    const child = this.spawn(host, process.execPath, ['-e', LISTENER_JS, proto, address, ...ports.map(String)]);
    const seen: string[] = [];
    let buf = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        let i = buf.indexOf('\n');
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line === 'ready') resolve();
          else if (line.startsWith('seen ')) seen.push(line.slice(5));
          i = buf.indexOf('\n');
        }
      });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
      });
      child.once('exit', (code) => reject(new Error(`listener on ${host} exited (${code}): ${err.trim()}`)));
    });
    await ready;
    return {
      host,
      seen,
      close: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await once(child, 'exit');
        }
      },
    };
  }

  /** Connects (TCP) or sends (UDP) from a host and waits for the echo: `answered`, `timeout`, `refused`. */
  async probe(host: LabHost, o: ProbeOptions): Promise<ProbeResult> {
    const timeout = o.timeoutMs ?? 1500;
    const r = await this.exec(
      host,
      process.execPath,
      [
        '-e',
        PROBE_JS,
        o.proto,
        o.host,
        String(o.port),
        o.localAddress ?? '',
        String(o.localPort ?? 0),
        String(timeout),
        Buffer.from(o.send ?? 'ping').toString('base64'),
        Buffer.from(o.expect ?? 'pong').toString('base64'),
      ],
      undefined,
      timeout + 10_000,
    );
    const out = r.stdout.trim();
    if (out === 'answered' || out === 'timeout' || out === 'refused') return out;
    return 'error';
  }

  /**
   * Starts a Crossway node (`crossway start --config FILE`) in a host's namespace and waits until it logs `ready`.
   * Resolves with the `ready` log record (role, size, sockets); the lab stops the node on close, or call `stop()`.
   */
  async startCrossway(
    host: LabHost,
    configFile: string,
    timeoutMs = 30_000,
  ): Promise<{ ready: Record<string, unknown>; log: () => string; stop: () => Promise<void> }> {
    const main = new URL('../../src/cli/main.ts', import.meta.url).pathname;
    const root = new URL('../..', import.meta.url).pathname;
    const child = this.spawn(host, process.execPath, ['--import', 'tsx', main, 'start', '--config', configFile], {
      cwd: root,
    });
    let out = '';
    let buf = '';
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`node on ${host} not ready in ${timeoutMs} ms:\n${out}`)),
        timeoutMs,
      );
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        buf += d.toString();
        let i = buf.indexOf('\n');
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          i = buf.indexOf('\n');
          try {
            const rec = JSON.parse(line) as Record<string, unknown>;
            if (rec.msg === 'ready') {
              clearTimeout(timer);
              resolve(rec);
            }
          } catch {
            // not a log record
          }
        }
      });
      child.stderr?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`node on ${host} exited (${code}) before ready:\n${out}`));
      });
    });
    return {
      ready,
      log: () => out,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          await once(child, 'exit');
        }
      },
    };
  }

  /** Kills what the lab started and deletes its namespaces. */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const c of this.#children) c.kill('SIGKILL');
    await Promise.all([...this.#children].map((c) => (c.exitCode === null ? once(c, 'exit') : undefined)));
    this.closeSync();
  }

  /** Synchronous cleanup for the process-exit hook. */
  closeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    live.delete(this);
    for (const c of this.#children) c.kill('SIGKILL');
    for (const n of Object.values(this.ns)) {
      try {
        execFileSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
      } catch {
        // not created, or already gone
      }
    }
  }

  /**
   * Connects the `behindNat` host (10.77.6.2; its namespace exists from the start) on a home network behind the
   * outside host, which becomes its NAT router: nftables masquerade toward the internet (its 10.77.1.2), like a home
   * router (CPE) nothing from the internet starts a connection in (no port forwarding, and new packets to the router
   * itself are dropped, so a stray RTP packet cannot take the masqueraded port before the inside host uses it).
   */
  async addNatHost(): Promise<void> {
    const A = LAB_ADDRESSES;
    const nat = this.ns.behindNat;
    await must('ip', [
      '-n',
      nat,
      'link',
      'add',
      'eth0',
      'type',
      'veth',
      'peer',
      'name',
      'lan0',
      'netns',
      this.ns.outside,
    ]);
    await must('ip', ['-n', nat, 'addr', 'add', `${A.behindNat}/24`, 'dev', 'eth0']);
    await must('ip', ['-n', nat, 'link', 'set', 'eth0', 'up']);
    await must('ip', ['-n', this.ns.outside, 'addr', 'add', `${A.natLan}/24`, 'dev', 'lan0']);
    await must('ip', ['-n', this.ns.outside, 'link', 'set', 'lan0', 'up']);
    await must('ip', ['-n', nat, 'route', 'add', 'default', 'via', A.natLan]);
    await must('ip', ['netns', 'exec', this.ns.outside, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await this.loadRuleset(
      'outside',
      [
        'table ip lab_nat {',
        '  chain postrouting { type nat hook postrouting priority srcnat; oifname "eth0" masquerade; }',
        '}',
        'table inet lab_cpe {',
        '  chain input { type filter hook input priority filter; policy accept; iifname "eth0" ct state new drop; }',
        '  chain forward {',
        '    type filter hook forward priority filter; policy drop;',
        '    ct state established,related accept',
        '    iifname "lan0" oifname "eth0" accept',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
  }

  async setup(): Promise<void> {
    const A = LAB_ADDRESSES;
    const ns = this.ns;
    // Every namespace is created (`behindNat` too, left unconnected until `addNatHost()`), so `ns` lists what exists.
    for (const n of Object.values(ns)) {
      await must('ip', ['netns', 'add', n]);
      await must('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
    }
    const veth = async (a: LabHost, ifA: string, b: LabHost, ifB: string) => {
      await must('ip', ['-n', ns[a], 'link', 'add', ifA, 'type', 'veth', 'peer', 'name', ifB, 'netns', ns[b]]);
    };
    const ip = (h: LabHost, ...args: string[]) => must('ip', ['-n', ns[h], ...args]);
    await veth('outside', 'eth0', 'fwOut', 'out0');
    await veth('edge', 'pub0', 'fwOut', 'dmz0');
    await veth('edge', 'priv0', 'fwIn', 'dmz0');
    await veth('fwOut', 'transit0', 'fwIn', 'transit0');
    await veth('inside', 'eth0', 'fwIn', 'in0');
    const addrs: [LabHost, string, string][] = [
      ['outside', 'eth0', A.outside],
      ['fwOut', 'out0', A.fwOutOutside],
      ['fwOut', 'dmz0', A.fwOutDmz],
      ['fwOut', 'transit0', A.fwOutTransit],
      ['edge', 'pub0', A.edgePublic],
      ['edge', 'priv0', A.edgePrivate],
      ['fwIn', 'dmz0', A.fwInDmz],
      ['fwIn', 'transit0', A.fwInTransit],
      ['fwIn', 'in0', A.fwInInside],
      ['inside', 'eth0', A.inside],
    ];
    for (const [h, dev, addr] of addrs) {
      await ip(h, 'addr', 'add', `${addr}/24`, 'dev', dev);
      await ip(h, 'link', 'set', dev, 'up');
    }
    await ip('outside', 'route', 'add', 'default', 'via', A.fwOutOutside);
    await ip('fwOut', 'route', 'add', A.insideNet, 'via', A.fwInTransit);
    await ip('fwOut', 'route', 'add', A.dmzPrivateNet, 'via', A.fwInTransit);
    await ip('fwIn', 'route', 'add', 'default', 'via', A.fwOutTransit);
    await ip('edge', 'route', 'add', 'default', 'via', A.fwOutDmz);
    await ip('edge', 'route', 'add', A.insideNet, 'via', A.fwInDmz);
    await ip('inside', 'route', 'add', 'default', 'via', A.fwInInside);
    for (const h of ['fwOut', 'fwIn'] as const) {
      await must('ip', ['netns', 'exec', ns[h], 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }
  }
}

let counter = 0;

/** Builds a fresh lab with unique namespace names; on failure nothing is left behind. */
export async function createNetLab(): Promise<NetLab> {
  removeStale();
  installExitHook();
  const id = `${PREFIX}${process.pid}x${(counter++).toString(36)}${randomBytes(2).toString('hex')}`;
  const lab = new NetLab(id);
  live.add(lab);
  try {
    await lab.setup();
  } catch (err) {
    await lab.close();
    throw err;
  }
  return lab;
}
