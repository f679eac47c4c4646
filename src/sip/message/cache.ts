import type { Header, SipMessage } from './types.ts';

/**
 * Per-message cache of parsed header values: parallel arrays of header objects, the value each result was computed
 * from, its kind and the result. An entry is used only while the header object is still the same and its `value`
 * unchanged, so mutations invalidate it.
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

/**
 * The cache lives on the message under a non-enumerable symbol property: structural comparisons, spreads and
 * JSON ignore it, a copy starts with no cache, and no WeakMap (costly to insert into and to collect) is needed.
 * Frozen or sealed messages fall back to a WeakMap.
 */
const CACHE: unique symbol = Symbol('sip.message.cache');
const fallback = new WeakMap<SipMessage, MessageCache>();
const MAX_ENTRIES = 64;

function newCache(body: Buffer | undefined): MessageCache {
  return { body, hs: [], vs: [], ks: [], rs: [], ruriV: undefined, ruriR: undefined };
}

type WithCache = SipMessage & { [CACHE]?: MessageCache };

/** The cache of a message (created on first use). */
export function cacheOf(msg: SipMessage): MessageCache {
  const own = (msg as WithCache)[CACHE];
  if (own !== undefined) return own;
  const c = newCache(undefined);
  if (Object.isExtensible(msg)) {
    Object.defineProperty(msg, CACHE, { value: c, writable: false, enumerable: false, configurable: false });
    return c;
  }
  const f = fallback.get(msg);
  if (f !== undefined) return f;
  fallback.set(msg, c);
  return c;
}

/**
 * Drops the parsed header values a message keeps (they are recomputed on the next access). For messages that must be
 * kept for a while but are rarely read again, such as a completed transaction's request and response.
 */
export function releaseParsed(msg: SipMessage): void {
  const c = (msg as WithCache)[CACHE] ?? fallback.get(msg);
  if (c === undefined) return;
  c.hs = [];
  c.vs = [];
  c.ks = [];
  c.rs = [];
  c.ruriV = undefined;
  c.ruriR = undefined;
}

/** Parses a header value once per message, header object and kind; recomputed when the value changed. */
export function memo<T>(msg: SipMessage, h: Header, kind: string, parse: (value: string) => T): T {
  return memoIn(cacheOf(msg), h, kind, parse);
}

/** `memo` with the message cache already looked up. */
export function memoIn<T>(c: MessageCache, h: Header, kind: string, parse: (value: string) => T): T {
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
  const c = (msg as WithCache)[CACHE] ?? fallback.get(msg);
  return c !== undefined && c.body === msg.body;
}
