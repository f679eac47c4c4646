import { fail, ok, type Result } from '../../common/result.ts';
import { cacheOf, memo } from './cache.ts';
import { isDigits, isWs, TOKEN, trimLws } from './chars.ts';
import { canonicalName, isListHeader, splitList } from './headers.ts';
import { parseNameAddr, scanNameAddr } from './name-addr.ts';
import { getParam, parseParamsAt } from './params.ts';
import type { CSeq, Header, MediaType, NameAddr, SipMessage, SipRequest, SipUri, Via } from './types.ts';
import { parseUri } from './uri.ts';
import { parseVia } from './via.ts';

/** Reason returned by URI parsers for a well-formed URI of a scheme other than sip:, sips:, tel:. */
export const UNSUPPORTED_SCHEME = 'unsupported URI scheme';

/** The first header line with this name (any case, compact or long form). */
export function findHeader(msg: SipMessage, name: string): Header | undefined {
  const canon = canonicalName(name);
  for (const h of msg.headers) if (canonicalName(h.name) === canon) return h;
  return undefined;
}

/** Every header line with this name, in order. */
export function findHeaders(msg: SipMessage, name: string): Header[] {
  const canon = canonicalName(name);
  const out: Header[] = [];
  for (const h of msg.headers) if (canonicalName(h.name) === canon) out.push(h);
  return out;
}

/** The value of the first header line with this name (case-insensitive, compact-aware). */
export function getHeader(msg: SipMessage, name: string): string | undefined {
  return findHeader(msg, name)?.value;
}

/** All values of a header: every line, and for a list header (Via, Contact, Route…) every comma-separated element. */
export function getHeaders(msg: SipMessage, name: string): string[] {
  const list = isListHeader(name);
  const out: string[] = [];
  for (const h of findHeaders(msg, name)) {
    if (list) for (const v of memo(msg, h, 'split', splitList)) out.push(v);
    else out.push(h.value);
  }
  return out;
}

/** Parses a comma-separated list of via-parms. */
export function parseViaList(value: string): Result<Via[], string> {
  const out: Via[] = [];
  for (const el of splitList(value)) {
    const v = parseVia(el);
    if (!v.ok) return v;
    out.push(v.value);
  }
  return ok(out);
}

/** Parses a comma-separated list of name-addrs; a well-formed element of another scheme yields UNSUPPORTED_SCHEME. */
export function parseNameAddrList(value: string): Result<NameAddr[], string> {
  const out: NameAddr[] = [];
  let unsupported = false;
  for (const el of splitList(value)) {
    const na = parseNameAddr(el);
    if (na.ok) out.push(na.value);
    else if (na.reason === UNSUPPORTED_SCHEME) unsupported = true;
    else return na;
  }
  return unsupported ? fail(UNSUPPORTED_SCHEME) : ok(out);
}

/** Parses a Contact value: `*` or a list of name-addrs. */
export function parseContactList(value: string): Result<NameAddr[] | '*', string> {
  if (trimLws(value) === '*') return ok('*');
  return parseNameAddrList(value);
}

function collect<T>(
  msg: SipMessage,
  hs: Header[],
  kind: string,
  parse: (v: string) => Result<T[], string>,
): Result<T[], string> {
  if (hs.length === 1) return memo(msg, hs[0]!, kind, parse);
  const out: T[] = [];
  for (const h of hs) {
    const r = memo(msg, h, kind, parse);
    if (!r.ok) return r;
    for (const x of r.value) out.push(x);
  }
  return ok(out);
}

/** Every Via value, top first (RFC 3261 §20.42), or undefined when there is none. */
export function getVias(msg: SipMessage): Result<Via[], string> | undefined {
  const hs = findHeaders(msg, 'via');
  return hs.length === 0 ? undefined : collect(msg, hs, 'via', parseViaList);
}

/** The top Via value. */
export function getTopVia(msg: SipMessage): Result<Via, string> | undefined {
  const h = findHeader(msg, 'via');
  if (h === undefined) return undefined;
  const r = memo(msg, h, 'via', parseViaList);
  return r.ok ? ok(r.value[0]!) : r;
}

function nameAddrOf(msg: SipMessage, name: string): Result<NameAddr, string> | undefined {
  const h = findHeader(msg, name);
  return h === undefined ? undefined : memo(msg, h, 'name-addr', parseNameAddr);
}

/** The From header as a name-addr (fails for a URI scheme other than sip/sips/tel). */
export function getFrom(msg: SipMessage): Result<NameAddr, string> | undefined {
  return nameAddrOf(msg, 'from');
}

/** The To header as a name-addr (fails for a URI scheme other than sip/sips/tel). */
export function getTo(msg: SipMessage): Result<NameAddr, string> | undefined {
  return nameAddrOf(msg, 'to');
}

function tagOf(msg: SipMessage, name: string): string | undefined {
  const h = findHeader(msg, name);
  if (h === undefined) return undefined;
  const r = memo(msg, h, 'scan-name-addr', scanNameAddr);
  if (!r.ok) return undefined;
  const t = getParam(r.value.params, 'tag');
  return typeof t === 'string' ? t : undefined;
}

/** The From tag, whatever the URI scheme (dialog and transaction matching need it even for http: From URIs). */
export function getFromTag(msg: SipMessage): string | undefined {
  return tagOf(msg, 'from');
}

/** The To tag, whatever the URI scheme. */
export function getToTag(msg: SipMessage): string | undefined {
  return tagOf(msg, 'to');
}

/** The Call-ID value. */
export function getCallId(msg: SipMessage): string | undefined {
  return findHeader(msg, 'call-id')?.value;
}

/** Parses `1*DIGIT LWS Method`; RFC 3261 §8.1.1.5: the number must fit in 32 bits. */
export function parseCSeq(value: string): Result<CSeq, string> {
  let i = 0;
  while (i < value.length && !isWs(value.charCodeAt(i))) i++;
  const num = value.slice(0, i);
  if (!isDigits(num, 10)) return fail('invalid sequence number');
  const seq = Number(num);
  if (seq > 0xffffffff) return fail('sequence number out of range');
  while (i < value.length && isWs(value.charCodeAt(i))) i++;
  const method = value.slice(i);
  for (let k = 0; k < method.length; k++) {
    const c = method.charCodeAt(k);
    if (c >= 128 || TOKEN[c] !== 1) return fail('invalid method');
  }
  if (method.length === 0) return fail('missing method');
  return ok({ seq, method });
}

/** The CSeq header. */
export function getCSeq(msg: SipMessage): Result<CSeq, string> | undefined {
  const h = findHeader(msg, 'cseq');
  return h === undefined ? undefined : memo(msg, h, 'cseq', parseCSeq);
}

function parseBounded(max: number) {
  return (value: string): Result<number, string> => {
    if (!isDigits(value, 10)) return fail('not a number');
    const n = Number(value);
    return n > max ? fail('value out of range') : ok(n);
  };
}
const parseMaxForwards = parseBounded(255);
const parseDelta = parseBounded(0xffffffff);

/** Max-Forwards (0–255). */
export function getMaxForwards(msg: SipMessage): Result<number, string> | undefined {
  const h = findHeader(msg, 'max-forwards');
  return h === undefined ? undefined : memo(msg, h, 'max-forwards', parseMaxForwards);
}

/** Expires header as delta-seconds (RFC 3261 §20.19), 0 to 2^32-1. */
export function getExpires(msg: SipMessage): Result<number, string> | undefined {
  const h = findHeader(msg, 'expires');
  return h === undefined ? undefined : memo(msg, h, 'delta', parseDelta);
}

/** Content-Length header (as a number); absent → undefined. */
export function getContentLength(msg: SipMessage): Result<number, string> | undefined {
  const h = findHeader(msg, 'content-length');
  return h === undefined ? undefined : memo(msg, h, 'delta', parseDelta);
}

/** Every Contact value, or `'*'` (RFC 3261 §10.2.2 wildcard). */
export function getContacts(msg: SipMessage): Result<NameAddr[] | '*', string> | undefined {
  const hs = findHeaders(msg, 'contact');
  if (hs.length === 0) return undefined;
  if (hs.length === 1) return memo(msg, hs[0]!, 'contact', parseContactList);
  const out: NameAddr[] = [];
  for (const h of hs) {
    const r = memo(msg, h, 'contact', parseContactList);
    if (!r.ok) return r;
    if (r.value === '*') return fail('wildcard Contact mixed with other values');
    for (const x of r.value) out.push(x);
  }
  return ok(out);
}

/** Every Route value, in order. */
export function getRoutes(msg: SipMessage): Result<NameAddr[], string> | undefined {
  const hs = findHeaders(msg, 'route');
  return hs.length === 0 ? undefined : collect(msg, hs, 'name-addr-list', parseNameAddrList);
}

/** Every Record-Route value, in order. */
export function getRecordRoutes(msg: SipMessage): Result<NameAddr[], string> | undefined {
  const hs = findHeaders(msg, 'record-route');
  return hs.length === 0 ? undefined : collect(msg, hs, 'name-addr-list', parseNameAddrList);
}

/** Parses `type/subtype *(;param)`; type and subtype lower-cased. */
export function parseMediaType(value: string): Result<MediaType, string> {
  const slash = value.indexOf('/');
  if (slash < 0) return fail('missing /');
  const type = trimLws(value.slice(0, slash)).toLowerCase();
  let i = slash + 1;
  while (i < value.length && isWs(value.charCodeAt(i))) i++;
  const ss = i;
  while (i < value.length && value.charCodeAt(i) < 128 && TOKEN[value.charCodeAt(i)] === 1) i++;
  const subtype = value.slice(ss, i).toLowerCase();
  if (!TOKEN_RE.test(type) || subtype.length === 0) return fail('invalid media type');
  const p = parseParamsAt(value, i, false);
  return p.ok ? ok({ type, subtype, params: p.value.params }) : p;
}
const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;

/** Content-Type (RFC 3261 §20.15). */
export function getContentType(msg: SipMessage): Result<MediaType, string> | undefined {
  const h = findHeader(msg, 'content-type');
  return h === undefined ? undefined : memo(msg, h, 'media-type', parseMediaType);
}

/** The Request-URI parsed (cached while `msg.uri` is unchanged). */
export function getRequestUri(msg: SipRequest): Result<SipUri, string> {
  const c = cacheOf(msg);
  if (c.ruriV === msg.uri) return c.ruriR as Result<SipUri, string>;
  const r = parseUri(msg.uri);
  c.ruriV = msg.uri;
  c.ruriR = r;
  return r;
}
