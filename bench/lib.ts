import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** CPU seconds (user + system) a process and its reaped children used so far, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[11..14] = utime, stime, cutime, cstime (clock ticks; 100 per second on Linux)
  const ticks = Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  return ticks / 100;
}

/** CPU seconds of a process and all its descendants (kamailio forks workers). */
export function treeCpuSeconds(pid: number): number {
  let total = 0;
  const seen = new Set<number>();
  const walk = (p: number) => {
    if (seen.has(p)) return;
    seen.add(p);
    try {
      total += cpuSeconds(p);
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const c of children.split(/\s+/).filter(Boolean)) walk(Number(c));
    } catch {
      // the process went away
    }
  };
  walk(pid);
  return total;
}

/** Resident memory (KiB) of a process tree. */
export function treeRssKiB(pid: number): number {
  let total = 0;
  const walk = (p: number) => {
    try {
      const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      total += Number(m?.[1] ?? 0);
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const c of children.split(/\s+/).filter(Boolean)) walk(Number(c));
    } catch {
      // gone
    }
  };
  walk(pid);
  return total;
}

/**
 * Proportional set size of a process tree (KiB): each shared page is divided among the processes that map it, so
 * memory shared by a server's processes (Kamailio's shared memory) is counted once, not once per process as in
 * treeRssKiB. From /proc/PID/smaps_rollup.
 */
export function treePssKiB(pid: number): number {
  let total = 0;
  const walk = (p: number) => {
    try {
      const m = /^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      total += Number(m?.[1] ?? 0);
      const children = readFileSync(`/proc/${p}/task/${p}/children`, 'utf8').trim();
      for (const c of children.split(/\s+/).filter(Boolean)) walk(Number(c));
    } catch {
      // gone
    }
  };
  walk(pid);
  return total;
}

/** Spawns a server and resolves once `ready` matches its output (or rejects after `timeoutMs`). */
export function startServer(
  cmd: string,
  args: string[],
  ready: RegExp,
  timeoutMs = 20_000,
): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} did not become ready:\n${out.slice(-2000)}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      if (out.length < 1_000_000) out += d.toString();
      if (ready.test(out)) {
        clearTimeout(t);
        resolve({ child, output: () => out });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`${cmd} exited (${code}) before ready:\n${out.slice(-2000)}`));
    });
  });
}

export function stopServer(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `--name value` from the command line, or `def`. */
export function benchArg(name: string, def: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
}

/**
 * Starts Kamailio 5.6 the way every comparison here runs it: foreground, the fast allocator (`-x fm -X fm`: Debian's
 * default debug allocator would be an unfair handicap), two UDP workers, `-A NAME=value` defines for the
 * configuration (`LISTEN` at least), then waits a second for the workers.
 */
export async function startKamailio(o: {
  config: string;
  runDir: string;
  sharedMiB: number;
  privateMiB: number;
  defines: Record<string, string>;
}): Promise<{ child: ChildProcess; output: () => string }> {
  const defines = Object.entries(o.defines).flatMap(([k, v]) => ['-A', `${k}=${v}`]);
  const args = ['-f', o.config, '-DD', '-E', '-x', 'fm', '-X', 'fm', '-m', String(o.sharedMiB)];
  args.push('-M', String(o.privateMiB), '-n', '2', '-Y', o.runDir, ...defines);
  const started = await startServer('kamailio', args, /INFO|listening on|Listening on/);
  await new Promise((r) => setTimeout(r, 1000));
  return started;
}
