import { fail, ok, type Result } from '../../common/result.ts';
import { tokenEnd, trimLws } from './chars.ts';
import { endOfQuoted, skipWs, unquote } from './params.ts';
import type { AuthHeader } from './types.ts';

const readToken = tokenEnd;

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Parses credentials or a challenge (RFC 3261 §25.1 credentials / challenge, RFC 7235 §2.1): an auth scheme, then
 * comma-separated `name=value` auth-params (quoted values are unquoted), or a token68 blob. Parameter names are kept
 * as written; look them up case-insensitively with `getParam`.
 */
function parseAuth(value: string): Result<AuthHeader, string> {
  let i = skipWs(value, 0);
  const se = readToken(value, i);
  if (se === i) return fail('missing auth scheme');
  const scheme = value.slice(i, se);
  i = skipWs(value, se);
  const out: AuthHeader = { scheme, params: [] };
  if (i >= value.length) return ok(out);
  if (i === se) return fail('missing space after auth scheme');
  const probe = skipWs(value, readToken(value, i));
  if (value.charCodeAt(probe) !== 0x3d || TOKEN68.test(trimLws(value.slice(i)))) {
    const rest = trimLws(value.slice(i));
    if (!TOKEN68.test(rest)) return fail('malformed auth parameters');
    out.token68 = rest;
    return ok(out);
  }
  for (;;) {
    i = skipWs(value, i);
    const ne = readToken(value, i);
    if (ne === i) return fail('malformed auth parameter');
    const name = value.slice(i, ne);
    i = skipWs(value, ne);
    if (value.charCodeAt(i) !== 0x3d) return fail(`missing = after auth parameter ${name}`);
    i = skipWs(value, i + 1);
    if (value.charCodeAt(i) === 0x22) {
      const e = endOfQuoted(value, i);
      if (e < 0) return fail(`unterminated quoted value of ${name}`);
      out.params.push([name, unquote(value.slice(i, e))]);
      i = e;
    } else {
      const ve = readToken(value, i);
      if (ve === i) return fail(`empty value of ${name}`);
      out.params.push([name, value.slice(i, ve)]);
      i = ve;
    }
    i = skipWs(value, i);
    if (i >= value.length) return ok(out);
    if (value.charCodeAt(i) !== 0x2c) return fail('malformed auth parameters');
    i++;
  }
}

/** Parses an Authorization / Proxy-Authorization value: scheme + auth-params (or token68). */
export function parseAuthorization(value: string): Result<AuthHeader, string> {
  return parseAuth(value);
}

/** Parses a WWW-Authenticate / Proxy-Authenticate value: scheme + auth-params (or token68). */
export function parseChallenge(value: string): Result<AuthHeader, string> {
  return parseAuth(value);
}
