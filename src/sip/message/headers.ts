import { trimLws } from './chars.ts';

/**
 * Header names and multi-valued header splitting. RFC 3261 §7.3.1: names are case-insensitive; §7.3.3 compact
 * forms are equivalent to their long names; §7.3.1 a list header may be written as several lines or one
 * comma-separated line.
 */

/** RFC 3261 §7.3.3 and the IANA registry of compact forms, mapped to lower-case long names. */
const COMPACT: Record<string, string> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** Headers whose values are comma-separated lists (RFC 3261 §7.3.1 and extensions). */
const LIST_HEADERS = new Set([
  'accept',
  'accept-encoding',
  'accept-language',
  'alert-info',
  'allow',
  'allow-events',
  'call-info',
  'contact',
  'content-encoding',
  'content-language',
  'error-info',
  'history-info',
  'in-reply-to',
  'p-asserted-identity',
  'p-preferred-identity',
  'path',
  'proxy-require',
  'reason',
  'record-route',
  'require',
  'route',
  'security-client',
  'security-server',
  'security-verify',
  'service-route',
  'supported',
  'unsupported',
  'via',
  'warning',
]);

const memo = new Map<string, string>();

/** Lower-case long name of a header name as received (`v` → `via`, `CALL-ID` → `call-id`). */
export function canonicalName(name: string): string {
  // The usual spellings without hashing the (freshly sliced) name.
  switch (name) {
    case 'Via':
      return 'via';
    case 'From':
      return 'from';
    case 'To':
      return 'to';
    case 'Call-ID':
      return 'call-id';
    case 'CSeq':
      return 'cseq';
    case 'Contact':
      return 'contact';
    case 'Content-Length':
      return 'content-length';
    case 'Max-Forwards':
      return 'max-forwards';
    case 'Content-Type':
      return 'content-type';
    case 'Route':
      return 'route';
    case 'Record-Route':
      return 'record-route';
  }
  const hit = memo.get(name);
  if (hit !== undefined) return hit;
  const lower = name.toLowerCase();
  const canon = lower.length === 1 ? (COMPACT[lower] ?? lower) : lower;
  if (memo.size < 4096) memo.set(name, canon);
  return canon;
}

/** True when the header (any spelling) is a comma-separated list header. */
export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(canonicalName(name));
}

/**
 * Splits a list header value at top-level commas: commas inside a quoted string (with `\` escapes) or inside
 * `<...>` do not split. Elements are trimmed; empty elements are kept (as '') so callers can reject them.
 */
export function splitList(value: string): string[] {
  if (value.indexOf(',') < 0) return [trimLws(value)];
  const out: string[] = [];
  let start = 0;
  let inQuote = false;
  let inAngle = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (inQuote) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inQuote = false;
    } else if (c === 0x22) {
      inQuote = true;
    } else if (c === 0x3c) {
      inAngle = true;
    } else if (c === 0x3e) {
      inAngle = false;
    } else if (c === 0x2c && !inAngle) {
      out.push(trimLws(value.slice(start, i)));
      start = i + 1;
    }
  }
  out.push(trimLws(value.slice(start)));
  return out;
}
