import type { Header, SipMessage } from './types.ts';

interface Entry {
  /** The header value the result was computed from: a changed value invalidates the entry. */
  v: string;
  k: string;
  r: unknown;
}

const byHeader = new WeakMap<Header, Entry>();

/**
 * Parses a header value once and caches the result on the header object, keyed by kind; the cache is checked
 * against the current value, so a header whose `value` was reassigned is parsed again.
 */
export function memo<T>(h: Header, kind: string, parse: (value: string) => T): T {
  const e = byHeader.get(h);
  if (e !== undefined && e.v === h.value && e.k === kind) return e.r as T;
  const r = parse(h.value);
  byHeader.set(h, { v: h.value, k: kind, r });
  return r;
}

/** What the parser saw of a message: the body it sliced, so the serializer can tell whether the body changed. */
const origins = new WeakMap<SipMessage, Buffer>();

export function rememberBody(msg: SipMessage, body: Buffer): void {
  origins.set(msg, body);
}

/** True when `msg` came from the parser (or a builder that set Content-Length) and its body was not replaced. */
export function bodyUnchanged(msg: SipMessage): boolean {
  return origins.get(msg) === msg.body;
}
