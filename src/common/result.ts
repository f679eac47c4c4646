/** What a decoder at a trust boundary returns: it never throws on bad input from the network. */
export type Result<T, R = string> = { ok: true; value: T } | { ok: false; reason: R };

export function ok<T>(value: T): { ok: true; value: T } {
  return { ok: true, value };
}

export function fail<R>(reason: R): { ok: false; reason: R } {
  return { ok: false, reason };
}
