import { fail, ok, type Result } from '../../common/result.ts';
import { isWs, TOKEN, trimLws } from './chars.ts';
import { endOfQuoted, formatParams, parseParamsAt, quote, skipWs, unquote } from './params.ts';
import type { NameAddr, Params } from './types.ts';
import { formatUri, isAbsoluteUri, parseUri, parseUriShaped } from './uri.ts';

/** The syntax of a name-addr / addr-spec with params, for any URI scheme (the URI itself is not parsed). */
export interface ScannedNameAddr {
  displayName?: string;
  uriText: string;
  params: Params;
}

/**
 * Scans `[display-name] <URI> *(;param)` or `addr-spec *(;param)` (RFC 3261 §20.10, §25.1). The display name is a
 * quoted string (unescaped here) or LWS-separated tokens; RFC 4475 §3.1.1.6 allows no LWS before `<`. Inside `<>`
 * no whitespace is allowed (RFC 4475 §3.1.2.14). Without `<>`, an URI holding `?` is an error (RFC 3261 §20: such
 * URIs must be enclosed) and `;` starts header parameters (RFC 4475 §3.3.12).
 */
export function scanNameAddr(s: string): Result<ScannedNameAddr, string> {
  let i = skipWs(s, 0);
  if (i >= s.length) return fail('empty value');
  let displayName: string | undefined;
  if (s.charCodeAt(i) === 0x22) {
    const e = endOfQuoted(s, i);
    if (e < 0) return fail('unterminated quoted display name');
    displayName = unquote(s.slice(i, e));
    i = skipWs(s, e);
    if (s.charCodeAt(i) !== 0x3c) return fail('expected < after display name');
  } else {
    const lt = s.indexOf('<', i);
    if (lt >= 0) {
      const dn = trimLws(s.slice(i, lt));
      for (let k = 0; k < dn.length; k++) {
        const c = dn.charCodeAt(k);
        // Tokens and LWS; UTF-8 is tolerated (RFC 3261 allows it only quoted, but phones send it bare).
        if (!isWs(c) && c < 128 && TOKEN[c] !== 1) return fail('invalid character in display name');
      }
      if (dn.length > 0) displayName = dn;
      i = lt;
    }
  }
  let uriText: string;
  if (s.charCodeAt(i) === 0x3c) {
    const gt = s.indexOf('>', i);
    if (gt < 0) return fail('unterminated <');
    uriText = s.slice(i + 1, gt);
    if (!isAbsoluteUri(uriText)) return fail('invalid URI');
    i = gt + 1;
  } else {
    let e = i;
    while (e < s.length) {
      const c = s.charCodeAt(e);
      if (c === 0x3b || c === 0x2c || isWs(c)) break;
      e++;
    }
    uriText = s.slice(i, e);
    if (!isAbsoluteUri(uriText)) return fail('invalid URI');
    if (uriText.indexOf('?') >= 0) return fail('URI with headers not enclosed in <>');
    i = e;
  }
  const p = parseParamsAt(s, i, false);
  if (!p.ok) return p;
  const out: ScannedNameAddr = { uriText, params: p.value.params };
  if (displayName !== undefined) out.displayName = displayName;
  return ok(out);
}

/** Parses a name-addr or addr-spec with header parameters; the URI must be sip:, sips: or tel:. */
export function parseNameAddr(s: string): Result<NameAddr, string> {
  const r = scanNameAddr(s);
  if (!r.ok) return r;
  // scanNameAddr checked the URI's shape (isAbsoluteUri): no need to scan it for forbidden characters again.
  const uri = r.value.uriText.length > 8192 ? parseUri(r.value.uriText) : parseUriShaped(r.value.uriText);
  if (!uri.ok) return uri;
  const na: NameAddr = { uri: uri.value, params: r.value.params };
  if (r.value.displayName !== undefined) na.displayName = r.value.displayName;
  return ok(na);
}

/** Formats a name-addr, always with `<>` (so URI parameters are never read as header parameters). */
export function formatNameAddr(na: NameAddr): string {
  const dn = na.displayName !== undefined && na.displayName !== '' ? quote(na.displayName) + ' ' : '';
  return dn + '<' + formatUri(na.uri) + '>' + formatParams(na.params);
}
