import type { Result } from '../../common/result.ts';
import { fail, ok } from '../../common/result.ts';
import { parseViaList } from './access.ts';
import { canonicalName, splitList } from './headers.ts';
import { setParam } from './params.ts';
import type { SipMessage, Via } from './types.ts';
import { formatVia } from './via.ts';

/** Appends a header line after all others. */
export function addHeader(msg: SipMessage, name: string, value: string): void {
  msg.headers.push({ name, value });
}

/** Inserts a header line before the first line of the same name (at the top when there is none). */
export function prependHeader(msg: SipMessage, name: string, value: string): void {
  const canon = canonicalName(name);
  let at = msg.headers.findIndex((h) => canonicalName(h.name) === canon);
  if (at < 0) at = 0;
  msg.headers.splice(at, 0, { name, value });
}

/**
 * Removes header lines of this name: the `index`-th line (0-based, counting only lines of that name) or, without
 * `index`, all of them. Returns how many lines were removed.
 */
export function removeHeader(msg: SipMessage, name: string, index?: number): number {
  const canon = canonicalName(name);
  let seen = 0;
  let removed = 0;
  for (let i = 0; i < msg.headers.length; i++) {
    if (canonicalName(msg.headers[i]!.name) !== canon) continue;
    if (index === undefined || seen === index) {
      msg.headers.splice(i, 1);
      i--;
      removed++;
    }
    seen++;
  }
  return removed;
}

/** Replaces every line of this name by one line (where the first was, or appended). */
export function setHeader(msg: SipMessage, name: string, value: string): void {
  const canon = canonicalName(name);
  const at = msg.headers.findIndex((h) => canonicalName(h.name) === canon);
  if (at < 0) {
    msg.headers.push({ name, value });
    return;
  }
  removeHeader(msg, name);
  msg.headers.splice(at, 0, { name, value });
}

/** Adds a Via on top (RFC 3261 §16.6 step 8). */
export function prependVia(msg: SipMessage, via: Via | string): void {
  prependHeader(msg, 'Via', typeof via === 'string' ? via : formatVia(via));
}

/**
 * Removes the top Via value (RFC 3261 §18.1.2: a client transport / a proxy strips its own Via from a response)
 * and returns it; other values on the same line are kept. Undefined when there is no Via.
 */
export function removeTopVia(msg: SipMessage): Result<Via, string> | undefined {
  const at = msg.headers.findIndex((h) => canonicalName(h.name) === 'via');
  if (at < 0) return undefined;
  const h = msg.headers[at]!;
  const parts = splitList(h.value);
  const top = parseViaList(parts[0]!);
  if (parts.length === 1) msg.headers.splice(at, 1);
  else msg.headers[at] = { name: h.name, value: parts.slice(1).join(', ') };
  return top.ok ? ok(top.value[0]!) : top;
}

/**
 * Sets `received` and/or `rport` on the top Via (RFC 3261 §18.2.1, RFC 3581 §4: `rport` gets the source port
 * when the request carried an empty `rport`). `rport: null` writes a flag without value. Returns false when the top
 * Via is missing or malformed.
 */
export function setTopViaParams(msg: SipMessage, set: { received?: string; rport?: number | null }): boolean {
  const at = msg.headers.findIndex((h) => canonicalName(h.name) === 'via');
  if (at < 0) return false;
  const h = msg.headers[at]!;
  const parts = splitList(h.value);
  const top = parseViaList(parts[0]!);
  if (!top.ok) return false;
  const via = top.value[0]!;
  const params = via.params.slice();
  if (set.received !== undefined) setParam(params, 'received', set.received);
  if (set.rport !== undefined) setParam(params, 'rport', set.rport === null ? null : String(set.rport));
  parts[0] = formatVia({ ...via, params });
  msg.headers[at] = { name: h.name, value: parts.join(', ') };
  return true;
}

/** Fails when a value would break the message framing (CR, LF or NUL in a header set by code). */
export function checkHeaderValue(value: string): Result<string, string> {
  return /[\r\n\0]/.test(value) ? fail('header value contains CR, LF or NUL') : ok(value);
}
