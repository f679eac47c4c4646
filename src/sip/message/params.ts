import { fail, ok, type Result } from '../../common/result.ts';
import { GENVALUE, isWs, tokenEnd } from './chars.ts';
import type { Params } from './types.ts';

/** Index of the first non-LWS character at or after `i`. */
export function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Index just past the quoted string opening at `i` (which must be `"`), or -1 when it is not terminated.
 * RFC 3261 §25.1: quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F).
 */
export function endOfQuoted(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x5c) {
      j++;
      if (j >= s.length) return -1;
    } else if (c === 0x22) {
      return j + 1;
    }
  }
  return -1;
}

/** Removes the quotes and quoted-pair escapes of a quoted string (given with its quotes). */
export function unquote(q: string): string {
  if (q.length < 2 || q.charCodeAt(0) !== 0x22) return q;
  const inner = q.slice(1, -1);
  return inner.indexOf('\\') < 0 ? inner : inner.replace(/\\([\s\S])/g, '$1');
}

/** Quotes a string for a quoted-string production, escaping `"` and `\`. */
export function quote(s: string): string {
  return '"' + s.replace(/["\\]/g, '\\$&') + '"';
}

/**
 * Parses `*( SEMI generic-param )` starting at `i` (RFC 3261 §25.1, LWS allowed around `;` and `=`), stopping at
 * the end of `s` or at a top-level `,` (when `stopAtComma`). Quoted values keep their quotes. An empty parameter
 * (`;;`) or an empty value (`a=`) is an error.
 */
export function parseParamsAt(
  s: string,
  i: number,
  stopAtComma: boolean,
): Result<{ params: Params; end: number }, string> {
  const params: Params = [];
  for (;;) {
    i = skipWs(s, i);
    if (i >= s.length) break;
    const c = s.charCodeAt(i);
    if (c === 0x2c && stopAtComma) break;
    if (c !== 0x3b) return fail(`unexpected character '${s[i]}' before parameter`);
    i = skipWs(s, i + 1);
    const ns = i;
    i = tokenEnd(s, i);
    if (i === ns) return fail('empty parameter');
    const name = s.slice(ns, i);
    i = skipWs(s, i);
    if (i < s.length && s.charCodeAt(i) === 0x3d) {
      i = skipWs(s, i + 1);
      if (i < s.length && s.charCodeAt(i) === 0x22) {
        const e = endOfQuoted(s, i);
        if (e < 0) return fail(`unterminated quoted value of parameter ${name}`);
        params.push([name, s.slice(i, e)]);
        i = e;
      } else {
        const vs = i;
        while (i < s.length && s.charCodeAt(i) < 128 && GENVALUE[s.charCodeAt(i)] === 1) i++;
        if (i === vs) return fail(`empty value of parameter ${name}`);
        params.push([name, s.slice(vs, i)]);
      }
    } else {
      params.push([name, null]);
    }
  }
  return ok({ params, end: i });
}

/** Parses a parameter list such as `;tag=1;lr` (the leading `;` is optional). */
export function parseParams(s: string): Result<Params, string> {
  const i = skipWs(s, 0);
  const src = i < s.length && s.charCodeAt(i) !== 0x3b ? ';' + s.slice(i) : s;
  const r = parseParamsAt(src, 0, false);
  return r.ok ? ok(r.value.params) : r;
}

/** Formats parameters as `;name=value;flag`. */
export function formatParams(params: Params): string {
  let out = '';
  for (const [n, v] of params) out += v === null ? ';' + n : ';' + n + '=' + v;
  return out;
}

/** Value of the first parameter named `name` (case-insensitive): a string, null for a flag, undefined if absent. */
export function getParam(params: Params, name: string): string | null | undefined {
  const lower = name.toLowerCase();
  for (const [n, v] of params) if (n.length === lower.length && n.toLowerCase() === lower) return v;
  return undefined;
}

/** Sets (replaces the first, removes later duplicates) or appends a parameter; returns the params array. */
export function setParam(params: Params, name: string, value: string | null): Params {
  const lower = name.toLowerCase();
  let found = false;
  for (let i = 0; i < params.length; i++) {
    if (params[i]![0].toLowerCase() !== lower) continue;
    if (found) {
      params.splice(i, 1);
      i--;
    } else {
      params[i] = [params[i]![0], value];
      found = true;
    }
  }
  if (!found) params.push([name, value]);
  return params;
}
