import type { Header, SipMessage } from './types.ts';

/**
 * Per-message cache of parsed header values, with one WeakMap entry per message (cheaper than one per header):
 * parallel arrays of header objects, the value each result was computed from, its kind and the result. An entry
 * is used only while the header object is still the same and its `value` unchanged, so mutations invalidate it.
 */
export interface MessageCache {
  /** The body the parser (or a builder) saw, to tell whether the body was replaced since. */
  body: Buffer | undefined;
  hs: Header[];
  vs: string[];
  ks: string[];
  rs: unknown[];
  ruriV: string | undefined;
  ruriR: unknown;
}

const caches = new WeakMap<SipMessage, MessageCache>();
const MAX_ENTRIES = 64;

function newCache(body: Buffer | undefined): MessageCache {
  return { body, hs: [], vs: [], ks: [], rs: [], ruriV: undefined, ruriR: undefined };
}

/** The cache of a message (created on first use). */
export function cacheOf(msg: SipMessage): MessageCache {
  let c = caches.get(msg);
  if (c === undefined) {
    c = newCache(undefined);
    caches.set(msg, c);
  }
  return c;
}

/** Parses a header value once per message, header object and kind; recomputed when the value changed. */
export function memo<T>(msg: SipMessage, h: Header, kind: string, parse: (value: string) => T): T {
  const c = cacheOf(msg);
  const hs = c.hs;
  for (let j = 0; j < hs.length; j++) {
    if (hs[j] === h && c.ks[j] === kind) {
      if (c.vs[j] === h.value) return c.rs[j] as T;
      const r = parse(h.value);
      c.vs[j] = h.value;
      c.rs[j] = r;
      return r;
    }
  }
  const r = parse(h.value);
  if (hs.length >= MAX_ENTRIES) {
    c.hs = [];
    c.vs = [];
    c.ks = [];
    c.rs = [];
  }
  c.hs.push(h);
  c.vs.push(h.value);
  c.ks.push(kind);
  c.rs.push(r);
  return r;
}

/** Records the body a parser or builder produced the message with. */
export function rememberBody(msg: SipMessage, body: Buffer): void {
  cacheOf(msg).body = body;
}

/** True when `msg` came from the parser (or a builder) and its body was not replaced. */
export function bodyUnchanged(msg: SipMessage): boolean {
  const c = caches.get(msg);
  return c !== undefined && c.body === msg.body;
}
