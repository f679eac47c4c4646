/**
 * A port range as the plan speaks of it: `from`–`to` inclusive, every port (`step` 1) or every other port (`step`
 * 2: 36000–59998 even for RTP, 36001–59999 odd for RTCP). A single port is a range with `from === to`.
 */
export interface PortRange {
  readonly from: number;
  readonly to: number;
  readonly step: 1 | 2;
}

/** Ports ≥ 1024 on a host we do not control (an endpoint, a firewall's egress): the seed's ">=1024". */
export const UNPRIVILEGED: PortRange = Object.freeze({ from: 1024, to: 65535, step: 1 });

/** A single port. */
export function single(port: number): PortRange {
  return Object.freeze({ from: port, to: port, step: 1 });
}

/** Every port from `from` to `to`. */
export function span(from: number, to: number, step: 1 | 2 = 1): PortRange {
  // Keep `to` on the grid of `from` so that equal sets have equal representations.
  const last = step === 2 && (to - from) % 2 !== 0 ? to - 1 : to;
  return Object.freeze({ from, to: last, step: from === last ? 1 : step });
}

/** The same range moved by `offset`. */
export function shift(r: PortRange, offset: number): PortRange {
  return span(r.from + offset, r.to + offset, r.step);
}

export function contains(r: PortRange, port: number): boolean {
  return port >= r.from && port <= r.to && (r.step === 1 || (port - r.from) % 2 === 0);
}

export function count(r: PortRange): number {
  return r.to < r.from ? 0 : Math.floor((r.to - r.from) / r.step) + 1;
}

export function ports(r: PortRange): number[] {
  const out: number[] = [];
  for (let p = r.from; p <= r.to; p += r.step) out.push(p);
  return out;
}

export function isSingle(r: PortRange): boolean {
  return r.from === r.to;
}

export function equal(a: PortRange, b: PortRange): boolean {
  return a.from === b.from && a.to === b.to && a.step === b.step;
}

/** Whether two ranges share a port. */
export function overlaps(a: PortRange, b: PortRange): boolean {
  const lo = Math.max(a.from, b.from);
  const hi = Math.min(a.to, b.to);
  for (let p = lo; p <= hi; p++) if (contains(a, p) && contains(b, p)) return true;
  return false;
}

/** `36000-59998 (even ports)`, `5061`, `1024-65535`. */
export function formatRange(r: PortRange): string {
  if (isSingle(r)) return String(r.from);
  const base = `${r.from}-${r.to}`;
  if (r.step === 1) return base;
  return `${base} (${r.from % 2 === 0 ? 'even' : 'odd'} ports)`;
}

/** nftables port interval: `5061`, `36000-59999` (the renderer adds the parity test of every-other-port ranges). */
export function nftRange(r: PortRange): string {
  return isSingle(r) ? String(r.from) : `${r.from}-${r.to}`;
}
