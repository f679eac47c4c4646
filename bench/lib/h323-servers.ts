import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IpPort } from '../../src/h323/api.ts';
import { gnugkBinDir, startGnugk as spawnGnugk, tcpOpen } from '../../test/helpers/gnugk.ts';

/**
 * The two H.323 gatekeepers the benchmarks compare, each started in its own process so its CPU can be read from
 * /proc: a Crossway lab node (./h323-node.ts) and GnuGk (`../shared/peers/gnugk`, built and cached by its
 * build.sh) in routed mode with H.245 routed and its media proxy, the configuration of its README and of
 * `../shared/notes/bench-anchors.md`.
 */
export interface H323Server {
  name: string;
  child: ChildProcess;
  ras: IpPort;
  callSignalling: IpPort;
  /** Where the server's own log is (GnuGk), for a failed run. */
  log?: string;
}

/**
 * GnuGk as a routed-mode gatekeeper (`GKRouted=1`, `H245Routed=1`) relaying media (`[Proxy] Enable=1`), on `home`
 * (RAS 1719/UDP, call signalling 1720/TCP), no tracing. `extra` is appended to the ini.
 */
export async function startGnugk(o: {
  home: string;
  timeToLive?: number;
  extra?: string;
  /** `[Proxy] RTPPortRange` (default 20000-29999). */
  rtpPorts?: string;
  /** Trace level (`-t` repeated; costs throughput: for finding out why, not for measuring). */
  trace?: number;
}): Promise<H323Server> {
  const bin = gnugkBinDir();
  if ('reason' in bin) throw new Error(bin.reason);
  const dir = mkdtempSync(join(tmpdir(), 'bench-gnugk-'));
  const child = spawnGnugk(
    bin.dir,
    dir,
    `[Gatekeeper::Main]\nName=AnchorGK\nHome=${o.home}\nTimeToLive=${o.timeToLive ?? 600}\nUseMulticastListener=0\n` +
      '[RoutedMode]\nGKRouted=1\nH245Routed=1\nCallSignalPort=1720\nAcceptUnregisteredCalls=0\n' +
      // RTPPortRange: its default (1024-65535) runs into GnuGk's own RAS port 1719 after ≈ 170 proxied calls,
      // and GnuGk then stops answering RAS for seconds (seen in bench/h323-calls.ts, docs/benchmarks.md)
      `[Proxy]\nEnable=1\nRTPPortRange=${o.rtpPorts ?? '20000-29999'}\n[Gatekeeper::Auth]\ndefault=allow\n${o.extra ?? ''}`,
    o.trace ?? 0,
  );
  for (let i = 0; i < 100 && child.exitCode === null && !(await tcpOpen(o.home, 1720)); i++)
    await new Promise((r) => setTimeout(r, 100));
  const log = join(dir, 'gk.log');
  if (child.exitCode !== null || !(await tcpOpen(o.home, 1720))) {
    child.kill('SIGKILL');
    const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '';
    throw new Error(`gnugk did not start (exit ${child.exitCode}); ${log}:\n${tail}`);
  }
  return {
    name: 'GnuGk',
    child,
    ras: { ip: o.home, port: 1719 },
    callSignalling: { ip: o.home, port: 1720 },
    log,
  };
}

/** A Crossway lab node (./h323-node.ts) with its gatekeeper named `AnchorGK` like GnuGk's; no flood limits. */
export async function startCrosswayH323(
  o: { maxRegistrations?: number; timeToLive?: number; logLevel?: string } = {},
): Promise<H323Server> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-crossway-'));
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      new URL('./h323-node.ts', import.meta.url).pathname,
      JSON.stringify({ dataDir, maxRegistrations: o.maxRegistrations, timeToLive: o.timeToLive, logLevel: o.logLevel }),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const m = await new Promise<RegExpExecArray>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const r = /READY (\S+) (\d+) (\S+) (\d+)/.exec(out);
      if (r) resolve(r);
    });
    child.once('exit', (c) => reject(new Error(`crossway exited (${c})`)));
  });
  return {
    name: 'Crossway',
    child,
    ras: { ip: m[1]!, port: Number(m[2]) },
    callSignalling: { ip: m[3]!, port: Number(m[4]) },
  };
}
