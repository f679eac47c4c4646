import { readFileSync } from 'node:fs';
import { fail, ok, type Result } from '../common/result.ts';
import { formatRange } from './port-range.ts';
import type { Listener, PortPlan } from './types.ts';

/** What the process may bind: whether it holds the privilege, and the lowest port anyone may bind. */
export interface PrivilegeInfo {
  privileged: boolean;
  unprivilegedPortStart: number;
}

/**
 * Detects whether this process may bind ports below the unprivileged start: uid 0, or `CAP_NET_BIND_SERVICE` in
 * its effective capabilities (`/proc/self/status`), read from the kernel's `ip_unprivileged_port_start`.
 */
export function detectPrivileges(): PrivilegeInfo {
  let start = 1024;
  try {
    const v = Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    if (Number.isInteger(v) && v >= 0 && v <= 65536) start = v;
  } catch {
    // not Linux, or no /proc: keep the classic 1024
  }
  if (process.getuid?.() === 0) return { privileged: true, unprivilegedPortStart: start };
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
    // CAP_NET_BIND_SERVICE is capability number 10.
    if (m?.[1] && (BigInt(`0x${m[1]}`) & (1n << 10n)) !== 0n) return { privileged: true, unprivilegedPortStart: start };
  } catch {
    // no /proc: assume unprivileged
  }
  return { privileged: false, unprivilegedPortStart: start };
}

/** A listener port the process may not bind. */
export interface PrivilegeProblem {
  listener: Listener;
  port: number;
  message: string;
}

/**
 * Lists the listeners of `plan` the process may not bind. A role calls it at start and refuses to start when the
 * list is not empty (a `lab` plan computed with `privileged: false` has already remapped those ports).
 */
export function checkPrivileges(plan: PortPlan, info: PrivilegeInfo): Result<void, PrivilegeProblem[]> {
  if (info.privileged) return ok(undefined);
  const problems: PrivilegeProblem[] = [];
  for (const l of plan.listeners) {
    if (l.ports.from < info.unprivilegedPortStart) {
      problems.push({
        listener: l,
        port: l.ports.from,
        message:
          `${l.node} listener ${l.id} (${l.purpose}) needs port ${formatRange(l.ports)}, below ` +
          `${info.unprivilegedPortStart}: run as root or grant CAP_NET_BIND_SERVICE ` +
          `(setcap cap_net_bind_service=+ep $(command -v node)), or set a portOffset`,
      });
    }
  }
  return problems.length === 0 ? ok(undefined) : fail(problems);
}
