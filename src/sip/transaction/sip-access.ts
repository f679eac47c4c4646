import {
  findHeader,
  findHeaders,
  formatVia,
  getCallId,
  getCSeq,
  getFromTag,
  getHeader,
  getParam,
  getTopVia,
  getToTag,
  parseVia,
  setParam,
  splitList,
} from '../message/index.ts';
import type { CSeq, Header, Params, SipMessage, Via } from '../message/types.ts';

export { newBranch } from '../message/index.ts';

/**
 * The few message accessors the transaction layer needs, on top of the message layer's API, kept in one place so
 * the machines read no header text themselves.
 */

/** All header lines with this name (compact forms included), in order. */
export function headerLines(msg: SipMessage, name: string): Header[] {
  return findHeaders(msg, name);
}

/** The first value of a header, or undefined. */
export function firstHeader(msg: SipMessage, name: string): string | undefined {
  return getHeader(msg, name);
}

/** The top Via value as written (first element of the first Via line), for RFC 2543 comparison and for ACK. */
export function topViaText(msg: SipMessage): string | undefined {
  const h = findHeader(msg, 'via');
  return h === undefined ? undefined : splitList(h.value)[0];
}

/** The top Via, parsed; undefined when absent or malformed. */
export function topVia(msg: SipMessage): Via | undefined {
  const r = getTopVia(msg);
  return r?.ok ? r.value : undefined;
}

/** A parameter's value (case-insensitive name); null when present without value, undefined when absent. */
export function param(params: Params, name: string): string | null | undefined {
  return getParam(params, name);
}

/** The CSeq header, parsed; undefined when absent or malformed. */
export function cseq(msg: SipMessage): CSeq | undefined {
  const r = getCSeq(msg);
  return r?.ok ? r.value : undefined;
}

/** The Call-ID value. */
export function callIdOf(msg: SipMessage): string | undefined {
  return getCallId(msg);
}

/** The From tag. */
export function fromTagOf(msg: SipMessage): string | undefined {
  return getFromTag(msg);
}

/** The To tag. */
export function toTagOf(msg: SipMessage): string | undefined {
  return getToTag(msg);
}

/**
 * Sets (or replaces) the branch of the top Via, in place; the other Via values of the line are kept as written.
 * Returns false when there is no valid top Via. (The message layer's `setTopViaParams` covers received/rport only.)
 */
export function setTopViaBranch(msg: SipMessage, branch: string): boolean {
  const line = findHeader(msg, 'via');
  if (!line) return false;
  const values = splitList(line.value);
  const parsed = parseVia(values[0] ?? '');
  if (!parsed.ok) return false;
  setParam(parsed.value.params, 'branch', branch);
  values[0] = formatVia(parsed.value);
  line.value = values.join(', ');
  return true;
}
