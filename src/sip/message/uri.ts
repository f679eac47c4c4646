import { isIPv6 } from 'node:net';
import { fail, ok, type Result } from '../../common/result.ts';
import { escapeChars, HNVCHAR, HOSTCHAR, PARAMCHAR, PASSWORD, SCHEME, USER, unescapeChecked } from './chars.ts';
import type { Params, SipUri } from './types.ts';

const TELCHAR = new Uint8Array(128);
for (const ch of '0123456789abcdefABCDEF*#+-.()pwPW') TELCHAR[ch.charCodeAt(0)] = 1;

/** Characters never allowed anywhere in a URI as written in a message (LWS, controls, quotes, angle brackets). */
function hasForbidden(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x22 || c === 0x3c || c === 0x3e) return true;
  }
  return false;
}

/** A URI scheme name (for messages that carry URIs of schemes we do not parse), lower-cased, or undefined. */
export function uriScheme(s: string): string | undefined {
  const colon = s.indexOf(':');
  if (colon <= 0) return undefined;
  const c0 = s.charCodeAt(0) | 0x20;
  if (c0 < 0x61 || c0 > 0x7a) return undefined;
  for (let i = 1; i < colon; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || SCHEME[c] !== 1) return undefined;
  }
  return s.slice(0, colon).toLowerCase();
}

/**
 * RFC 3986 absoluteURI shape, as RFC 3261 §25.1 allows for a Request-URI or name-addr of any scheme: a scheme,
 * `:`, and a non-empty rest without whitespace, controls, quotes or angle brackets.
 */
export function isAbsoluteUri(s: string): boolean {
  const scheme = uriScheme(s);
  return scheme !== undefined && s.length > scheme.length + 1 && !hasForbidden(s);
}

/** IPv4address (RFC 3261 §25.1, without leading zeros as RFC 3986 dec-octet): four decimal octets ≤ 255. */
function isDottedQuad(s: string): boolean {
  let octets = 0;
  let v = 0;
  let digits = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e;
    if (c === 0x2e) {
      if (digits === 0 || v > 255 || ++octets > 4) return false;
      v = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && v === 0) return false;
      v = v * 10 + c - 0x30;
      if (++digits > 3) return false;
    } else {
      return false;
    }
  }
  return octets === 4;
}

/** Outputs of `scanHostPort` (module scratch: no allocation per call). */
export const hostPort = { host: '', port: undefined as number | undefined, error: '' };

/**
 * Scans `host[:port]` at `i` in one pass (RFC 3261 §25.1 host: hostname / IPv4address / IPv6reference; labels of
 * 1..63 characters not starting or ending with "-", a final "." allowed). Returns the index after it and leaves the
 * host (lower-cased, IPv6 without brackets) and port in `hostPort`, or returns -1 with `hostPort.error` set.
 */
export function scanHostPort(s: string, i: number): number {
  const n = s.length;
  hostPort.port = undefined;
  if (s.charCodeAt(i) === 0x5b) {
    const close = s.indexOf(']', i);
    if (close < 0) return hostError('unterminated IPv6 reference');
    const v6 = s.slice(i + 1, close);
    if (!isIPv6(v6)) return hostError('invalid IPv6 reference');
    hostPort.host = v6.toLowerCase();
    i = close + 1;
  } else {
    const start = i;
    let digitsAndDots = true;
    let upper = false;
    let labelStart = i;
    for (;;) {
      const c = i < n ? s.charCodeAt(i) : -1;
      const isHost = c >= 0 && c < 128 && HOSTCHAR[c] === 1;
      if (c === 0x2e || !isHost) {
        const len = i - labelStart;
        if (len === 0) {
          // Empty label: only a final "." after at least one label is allowed.
          if (c === 0x2e || labelStart === start) return hostError('invalid host');
        } else if (len > 63 || s.charCodeAt(labelStart) === 0x2d || s.charCodeAt(i - 1) === 0x2d) {
          return hostError('invalid host');
        }
        if (!isHost) break;
        labelStart = i + 1;
      } else if (c < 0x30 || c > 0x39) {
        digitsAndDots = false;
        if (c >= 0x41 && c <= 0x5a) upper = true;
      }
      i++;
    }
    if (i - start > 255) return hostError('invalid host');
    const host = s.slice(start, i);
    if (digitsAndDots && !isDottedQuad(host)) return hostError('invalid host');
    hostPort.host = upper ? host.toLowerCase() : host;
  }
  if (i < n && s.charCodeAt(i) === 0x3a) {
    const ps = ++i;
    let v = 0;
    while (i < n && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39 && i - ps < 6) {
      v = v * 10 + s.charCodeAt(i) - 0x30;
      i++;
    }
    if (i === ps || i - ps > 5 || v > 65535) return hostError('invalid port');
    hostPort.port = v;
  }
  return i;
}

function hostError(reason: string): number {
  hostPort.error = reason;
  return -1;
}

/** Parses `;name[=value]...` URI parameters (unescaped) from `s` at `i` up to `?` or the end. */
function parseUriParams(s: string, i: number, params: Params): Result<number, string> {
  while (i < s.length && s.charCodeAt(i) === 0x3b) {
    let end = i + 1;
    while (end < s.length && s.charCodeAt(end) !== 0x3b && s.charCodeAt(end) !== 0x3f) end++;
    const seg = s.slice(i + 1, end);
    const eq = seg.indexOf('=');
    const name = unescapeChecked(eq < 0 ? seg : seg.slice(0, eq), PARAMCHAR);
    if (name === undefined || name.length === 0) return fail('invalid URI parameter');
    if (eq < 0) {
      params.push([name, null]);
    } else {
      const value = unescapeChecked(seg.slice(eq + 1), PARAMCHAR);
      if (value === undefined) return fail(`invalid value of URI parameter ${name}`);
      params.push([name, value]);
    }
    i = end;
  }
  return ok(i);
}

/** Parses `?h=v&h=v` URI headers (unescaped). */
function parseUriHeaders(s: string, i: number, headers: Params): Result<number, string> {
  if (i >= s.length) return ok(i);
  if (s.charCodeAt(i) !== 0x3f) return fail(`unexpected character '${s[i]}' in URI`);
  for (const seg of s.slice(i + 1).split('&')) {
    const eq = seg.indexOf('=');
    if (eq <= 0) return fail('invalid URI header');
    const name = unescapeChecked(seg.slice(0, eq), HNVCHAR);
    const value = eq + 1 === seg.length ? '' : unescapeChecked(seg.slice(eq + 1), HNVCHAR);
    if (name === undefined || value === undefined) return fail('invalid URI header');
    headers.push([name, value]);
  }
  return ok(s.length);
}

function parseSip(scheme: 'sip' | 'sips', s: string, i: number): Result<SipUri, string> {
  const uri: SipUri = { scheme, host: '', params: [], headers: [] };
  const at = s.indexOf('@', i);
  if (at >= 0) {
    const userinfo = s.slice(i, at);
    const colon = userinfo.indexOf(':');
    const user = unescapeChecked(colon < 0 ? userinfo : userinfo.slice(0, colon), USER);
    if (user === undefined) return fail('invalid user part');
    uri.user = user;
    if (colon >= 0) {
      const pw = colon + 1 === userinfo.length ? '' : unescapeChecked(userinfo.slice(colon + 1), PASSWORD);
      if (pw === undefined) return fail('invalid password');
      uri.password = pw;
    }
    i = at + 1;
  }
  if (i >= s.length) return fail('missing host');
  const end = scanHostPort(s, i);
  if (end < 0) return fail(hostPort.error);
  uri.host = hostPort.host;
  if (hostPort.port !== undefined) uri.port = hostPort.port;
  const p = parseUriParams(s, end, uri.params);
  if (!p.ok) return p;
  const h = parseUriHeaders(s, p.value, uri.headers);
  if (!h.ok) return h;
  return ok(uri);
}

function parseTel(s: string, i: number): Result<SipUri, string> {
  let end = i;
  while (end < s.length && s.charCodeAt(end) !== 0x3b) end++;
  const number = unescapeChecked(s.slice(i, end), TELCHAR);
  if (number === undefined || !/[0-9a-fA-F*#]/.test(number)) return fail('invalid telephone number');
  const uri: SipUri = { scheme: 'tel', user: number, host: '', params: [], headers: [] };
  const p = parseUriParams(s, end, uri.params);
  if (!p.ok) return p;
  if (p.value !== s.length) return fail('unexpected characters in tel URI');
  return ok(uri);
}

/**
 * Parses a sip:, sips: (RFC 3261 §19.1, §25.1) or tel: (RFC 3966) URI. Scheme and host are lower-cased; user,
 * password, parameters and headers are unescaped. Whitespace anywhere is an error (RFC 4475 §3.1.2.8).
 */
export function parseUri(s: string): Result<SipUri, string> {
  if (s.length > 8192) return fail('URI too long');
  if (hasForbidden(s)) return fail('invalid character in URI');
  return parseUriShaped(s);
}

/** `parseUri` for a string already known to hold no LWS, control, quote or angle bracket (`isAbsoluteUri`). */
export function parseUriShaped(s: string): Result<SipUri, string> {
  const scheme = uriScheme(s);
  if (scheme === undefined) return fail('missing URI scheme');
  const rest = scheme.length + 1;
  if (scheme === 'sip' || scheme === 'sips') return parseSip(scheme, s, rest);
  if (scheme === 'tel') return parseTel(s, rest);
  return fail('unsupported URI scheme');
}

/** Formats a URI, escaping what its component grammar does not allow; IPv6 hosts get brackets. */
export function formatUri(uri: SipUri): string {
  if (uri.scheme === 'tel') {
    let out = 'tel:' + escapeChars(uri.user ?? '', TELCHAR);
    for (const [n, v] of uri.params)
      out += ';' + escapeChars(n, PARAMCHAR) + (v === null ? '' : '=' + escapeChars(v, PARAMCHAR));
    return out;
  }
  let out = uri.scheme + ':';
  if (uri.user !== undefined) {
    out += escapeChars(uri.user, USER);
    if (uri.password !== undefined) out += ':' + escapeChars(uri.password, PASSWORD);
    out += '@';
  }
  out += uri.host.indexOf(':') >= 0 ? '[' + uri.host + ']' : uri.host;
  if (uri.port !== undefined) out += ':' + uri.port;
  for (const [n, v] of uri.params)
    out += ';' + escapeChars(n, PARAMCHAR) + (v === null ? '' : '=' + escapeChars(v, PARAMCHAR));
  for (let i = 0; i < uri.headers.length; i++) {
    const [n, v] = uri.headers[i]!;
    out += (i === 0 ? '?' : '&') + escapeChars(n, HNVCHAR) + '=' + escapeChars(v ?? '', HNVCHAR);
  }
  return out;
}

/** Parameters that make two URIs differ when present in only one of them (RFC 3261 §19.1.4; transport per its examples). */
const MUST_MATCH = new Set(['user', 'ttl', 'method', 'maddr', 'transport']);

function paramMap(params: Params): Map<string, string | null> {
  const m = new Map<string, string | null>();
  for (const [n, v] of params) {
    const k = n.toLowerCase();
    if (!m.has(k)) m.set(k, v === null ? null : v.toLowerCase());
  }
  return m;
}

function telDigits(s: string | undefined): string {
  return (s ?? '').replace(/[-.()]/g, '').toLowerCase();
}

/**
 * URI equality per RFC 3261 §19.1.4: scheme and host case-insensitive, user and password case-sensitive (after
 * unescaping), port compared as written (absent ≠ 5060), user/ttl/method/maddr/transport params must appear in
 * both or neither, other params only compared when in both, headers must all match in any order. tel: URIs
 * (RFC 3966 §4) compare numbers without visual separators and all parameters.
 */
export function uriEquals(a: SipUri, b: SipUri): boolean {
  if (a.scheme !== b.scheme) return false;
  const pa = paramMap(a.params);
  const pb = paramMap(b.params);
  if (a.scheme === 'tel') {
    if (telDigits(a.user) !== telDigits(b.user) || pa.size !== pb.size) return false;
    for (const [k, v] of pa) if (!pb.has(k) || pb.get(k) !== v) return false;
    return true;
  }
  if (a.user !== b.user || a.password !== b.password) return false;
  if (a.host.toLowerCase() !== b.host.toLowerCase() || a.port !== b.port) return false;
  for (const [k, v] of pa) {
    if (pb.has(k)) {
      if (pb.get(k) !== v) return false;
    } else if (MUST_MATCH.has(k)) {
      return false;
    }
  }
  for (const k of pb.keys()) if (!pa.has(k) && MUST_MATCH.has(k)) return false;
  if (a.headers.length !== b.headers.length) return false;
  const used = new Array<boolean>(b.headers.length).fill(false);
  for (const [n, v] of a.headers) {
    const idx = b.headers.findIndex(([bn, bv], i) => !used[i] && bn.toLowerCase() === n.toLowerCase() && bv === v);
    if (idx < 0) return false;
    used[idx] = true;
  }
  return true;
}
