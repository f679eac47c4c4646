import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A headless baresip user agent (Debian `baresip-core`) driven over its ctrl_tcp socket (netstring-framed JSON), as
 * described in /work/shared/notes/baresip-headless.md: one config dir per instance, G.711 from a sox tone, no sound
 * card. Events (`CALL_ESTABLISHED`, `CALL_CLOSED`, …) are kept so a test can wait for them even if they came first.
 */
export interface BaresipEvent {
  event?: boolean;
  class?: string;
  type?: string;
  accountaor?: string;
  direction?: string;
  peeruri?: string;
  param?: string;
  [k: string]: unknown;
}

export interface BaresipOptions {
  /** Account line, e.g. `<sip:alice@127.0.0.2:5060;transport=udp>;auth_pass=pw;regint=60;answermode=auto`. */
  account: string;
  /** Local address to listen on (127.0.0.1 by default). */
  address?: string;
  /** Tone frequency of the audio it sends (Hz). */
  toneHz?: number;
  /**
   * Network namespace to run in (`ip netns exec NS baresip …`). The namespace is the instance's own, so the ports
   * are fixed (SIP `sipPort`, default 5060; control 4444 on the namespace's 127.0.0.1) instead of searched for, and
   * the test reaches ctrl_tcp through a small bridge process run in the namespace (its stdin/stdout are the socket).
   */
  netns?: string;
  /** SIP port (UDP/TCP; TLS is the next one); searched for on loopback, 5060 by default in a namespace. */
  sipPort?: number;
  /** First port of the 100-port RTP range; random from 20000 by default. */
  rtpPort?: number;
  /** ctrl_tcp port; searched for on loopback, 4444 by default in a namespace (give a second instance there another). */
  ctrlPort?: number;
}

/** Runs in the namespace: connects to ctrl_tcp (retrying for 10 s), says so on stderr, then pipes stdin/stdout. */
const CTRL_BRIDGE_JS = `
const net = require('node:net');
const [host, port] = process.argv.slice(1);
const end = Date.now() + 10000;
const go = () => {
  const s = net.connect(Number(port), host, () => {
    process.stderr.write('connected\\n');
    process.stdin.pipe(s);
    s.pipe(process.stdout);
  });
  s.once('error', (e) => {
    if (s.readyState === 'opening' || !s.remoteAddress) {
      if (Date.now() > end) { process.stderr.write('ctrl_tcp unreachable: ' + e.message + '\\n'); process.exit(2); }
      setTimeout(go, 100);
    } else process.exit(0);
  });
  s.once('close', () => { if (s.remoteAddress) process.exit(0); });
};
process.stdin.on('end', () => process.exit(0));
go();`;

/** A port free for TCP on the address (and, for SIP, the next one too). */
export async function freeTcpPort(address = '127.0.0.1'): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function canBind(address: string, port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, address, () => s.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return await new Promise<boolean>((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(false));
    u.bind(port, address, () => u.close(() => resolve(true)));
  });
}

/** An even port P with P and P+1 free (UDP and TCP): baresip's SIP port and its TLS port. */
async function freeSipPorts(address: string): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 34_000 + 2 * Math.floor(Math.random() * 2000);
    if ((await canBind(address, p)) && (await canBind(address, p + 1))) return p;
  }
  throw new Error('no free port pair for baresip');
}

function netstring(obj: unknown): string {
  const json = JSON.stringify(obj);
  return `${Buffer.byteLength(json)}:${json},`;
}

export class Baresip {
  readonly dir: string;
  readonly sipPort: number;
  readonly events: BaresipEvent[] = [];
  readonly #proc: ChildProcess;
  readonly #ctrlPort: number;
  #sock: Socket | undefined;
  #bridge: ChildProcess | undefined;
  #buf = Buffer.alloc(0);
  #token = 0;
  readonly #pending = new Map<string, (r: { ok: boolean; data: string }) => void>();
  readonly #waiters = new Set<() => void>();
  #log = '';

  #write: (data: string) => void = () => {};
  readonly #rtp: number;

  private constructor(proc: ChildProcess, dir: string, sipPort: number, ctrlPort: number, rtp: number) {
    this.#proc = proc;
    this.#rtp = rtp;
    this.dir = dir;
    this.sipPort = sipPort;
    this.#ctrlPort = ctrlPort;
    const keep = (d: Buffer) => {
      if (this.#log.length < 200_000) this.#log += d.toString();
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
  }

  /** Starts baresip with its own config dir, SIP port, RTP range and control port; resolves once ctrl_tcp answers. */
  static async start(opts: BaresipOptions): Promise<Baresip> {
    const address = opts.address ?? '127.0.0.1';
    const dir = mkdtempSync(join(tmpdir(), 'crossway-baresip-'));
    mkdirSync(join(dir, 'rec'));
    // Two consecutive free ports: baresip listens UDP+TCP on the port and TLS on the next.
    const sipPort = opts.sipPort ?? (opts.netns ? 5060 : await freeSipPorts(address));
    const ctrlAddress = opts.netns ? '127.0.0.1' : address;
    const ctrlPort = opts.ctrlPort ?? (opts.netns ? 4444 : await freeTcpPort(address));
    const rtp = opts.rtpPort ?? 20_000 + Math.floor(Math.random() * 400) * 100;
    const tone = join(dir, 'tone.wav');
    execFileSync('sox', [
      '-n',
      '-r',
      '8000',
      '-c',
      '1',
      '-b',
      '16',
      '-e',
      'signed-integer',
      tone,
      'synth',
      '120',
      'sine',
      String(opts.toneHz ?? 440),
      'vol',
      '0.5',
    ]);
    writeFileSync(
      join(dir, 'config'),
      [
        'poll_method epoll',
        `sip_listen ${address}:${sipPort}`,
        `net_interface ${address}`,
        `audio_source aufile,${tone}`,
        'audio_buffer 20-160',
        `rtp_ports ${rtp}-${rtp + 99}`,
        'rtp_stats yes',
        'statmode_default off',
        'module_path /usr/lib/baresip/modules',
        'module g711.so',
        'module aufile.so',
        'module_tmp account.so',
        'module_app menu.so',
        'module_app ctrl_tcp.so',
        `ctrl_tcp_listen ${ctrlAddress}:${ctrlPort}`,
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'accounts'), `${opts.account}\n`);
    const proc = opts.netns
      ? spawn('ip', ['netns', 'exec', opts.netns, 'baresip', '-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn('baresip', ['-f', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    const b = new Baresip(proc, dir, sipPort, ctrlPort, rtp);
    try {
      if (opts.netns) await b.#connectInNamespace(opts.netns);
      else await b.#connect(address);
    } catch (err) {
      await b.close();
      throw err;
    }
    return b;
  }

  /** The RTP port range it uses (`rtp_ports`): [first, last]. */
  get rtpPorts(): [number, number] {
    return [this.#rtp, this.#rtp + 99];
  }

  async #connectInNamespace(netns: string): Promise<void> {
    const bridge = spawn(
      'ip',
      ['netns', 'exec', netns, process.execPath, '-e', CTRL_BRIDGE_JS, '127.0.0.1', String(this.#ctrlPort)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.#bridge = bridge;
    let err = '';
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`baresip ctrl_tcp bridge: no connection in 15 s: ${err}\n${this.#log.slice(-2000)}`)),
        15_000,
      );
      bridge.stderr?.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('connected')) {
          clearTimeout(t);
          resolve();
        }
      });
      bridge.once('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`baresip ctrl_tcp bridge exited (${code}): ${err}\n${this.#log.slice(-2000)}`));
      });
    });
    bridge.stdout?.on('data', (d: Buffer) => this.#onData(d));
    bridge.stdin?.on('error', () => {});
    this.#write = (data) => bridge.stdin?.write(data);
  }

  /** baresip's own log (stdout and stderr), for failure messages. */
  get log(): string {
    return this.#log;
  }

  async #connect(address: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        this.#sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(this.#ctrlPort, address, () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (err) {
        if (Date.now() > deadline || this.#proc.exitCode !== null) {
          throw new Error(`baresip ctrl_tcp unreachable: ${(err as Error).message}\n${this.#log.slice(-2000)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const sock = this.#sock;
    sock.on('data', (d: Buffer) => this.#onData(d));
    sock.on('error', () => {});
    this.#write = (data) => sock.write(data);
  }

  #onData(d: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, d]);
    for (;;) {
      const colon = this.#buf.indexOf(':');
      if (colon < 0) return;
      const len = Number(this.#buf.subarray(0, colon).toString());
      if (!Number.isInteger(len) || this.#buf.length < colon + 1 + len + 1) return;
      const json = this.#buf.subarray(colon + 1, colon + 1 + len).toString();
      this.#buf = this.#buf.subarray(colon + 1 + len + 1);
      let msg: BaresipEvent & { response?: boolean; ok?: boolean; data?: string; token?: string };
      try {
        msg = JSON.parse(json);
      } catch {
        continue;
      }
      if (msg.response && msg.token !== undefined) {
        this.#pending.get(msg.token)?.({ ok: msg.ok === true, data: msg.data ?? '' });
        this.#pending.delete(msg.token);
      } else if (msg.event) {
        this.events.push(msg);
        for (const w of this.#waiters) w();
      }
    }
  }

  /** Runs a command (`dial`, `hangup`, `reginfo`, `listcalls`…) and returns its output (ANSI colours removed). */
  cmd(command: string, params?: string, timeoutMs = 5000): Promise<{ ok: boolean; data: string }> {
    const token = String(++this.#token);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.#pending.delete(token);
        reject(new Error(`baresip: no answer to ${command}`));
      }, timeoutMs);
      this.#pending.set(token, (r) => {
        clearTimeout(t);
        resolve({ ok: r.ok, data: r.data.replace(/\x1b\[[0-9;]*m/g, '') });
      });
      this.#write(netstring({ command, ...(params !== undefined ? { params } : {}), token }));
    });
  }

  /** Waits for an event (already received or to come) matching `pred`. */
  waitEvent(pred: (e: BaresipEvent) => boolean, timeoutMs = 10_000): Promise<BaresipEvent> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const e = this.events.find(pred);
        if (!e) return;
        clearTimeout(t);
        this.#waiters.delete(check);
        resolve(e);
      };
      const t = setTimeout(() => {
        this.#waiters.delete(check);
        reject(
          new Error(
            `baresip: no matching event in ${timeoutMs} ms; got ${this.events.map((e) => e.type).join(', ')}\n${this.#log.slice(-3000)}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Polls `reginfo` until the account reads OK (REGISTER_OK may fire before the control socket connects). */
  async waitRegistered(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = await this.cmd('reginfo');
      if (/\bOK\b/.test(r.data)) return;
      if (Date.now() > deadline) throw new Error(`baresip: not registered: ${r.data}\n${this.#log.slice(-3000)}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** SIGTERM (clean: BYE, un-REGISTER), then SIGKILL after 3 s. */
  async close(): Promise<void> {
    this.#sock?.destroy();
    if (this.#bridge && this.#bridge.exitCode === null) this.#bridge.kill('SIGTERM');
    if (this.#proc.exitCode !== null || this.#proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const k = setTimeout(() => this.#proc.kill('SIGKILL'), 3000);
      this.#proc.once('exit', () => {
        clearTimeout(k);
        resolve();
      });
      this.#proc.kill('SIGTERM');
    });
  }
}
