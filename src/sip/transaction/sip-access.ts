import { randomBytes } from 'node:crypto';
import type { CSeq, Header, SipMessage, Via } from '../message/types.ts';

/**
 * The few message accessors the transaction layer needs, kept in one place so the machines read no header text
 * themselves.
 */

const COMPACT: Record<string, string> = { v: 'via', f: 'from', t: 'to', i: 'call-id', l: 'content-length' };

function canonical(name: string): string {
  const n = name.toLowerCase();
  return COMPACT[n] ?? n;
}

/** All header lines with this name (compact forms included), in order. */
export function headerLines(msg: SipMessage, name: string): Header[] {
  const want = canonical(name);
  return msg.headers.filter((h) => canonical(h.name) === want);
}

/** The first value of a header, or undefined. */
export function firstHeader(msg: SipMessage, name: string): string | undefined {
  const want = canonical(name);
  for (const h of msg.headers) if (canonical(h.name) === want) return h.value;
  return undefined;
}

/** Splits a header value at commas outside quotes and angle brackets. */
function splitCommas(value: string): string[] {
  const out: string[] = [];
  let depthAngle = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '<') depthAngle++;
    else if (c === '>') depthAngle = Math.max(0, depthAngle - 1);
    else if (c === ',' && depthAngle === 0) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out;
}

/** The top Via value as written (first comma-separated value of the first Via line). */
export function topViaText(msg: SipMessage): string | undefined {
  const first = firstHeader(msg, 'via');
  if (first === undefined) return undefined;
  return splitCommas(first)[0];
}

/** Parses one Via value (`SIP/2.0/UDP host:port;params`); undefined when malformed. */
export function parseViaValue(text: string): Via | undefined {
  const m = /^SIP\s*\/\s*2\.0\s*\/\s*([A-Za-z0-9.!%*_+`'~-]+)\s+([^;]+?)\s*(;.*)?$/i.exec(text.trim());
  if (!m) return undefined;
  const transport = m[1]!.toUpperCase();
  const hostPort = m[2]!.trim();
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const end = hostPort.indexOf(']');
    if (end < 0) return undefined;
    host = hostPort.slice(1, end);
    const rest = hostPort.slice(end + 1).trim();
    if (rest.startsWith(':')) portText = rest.slice(1).trim();
    else if (rest !== '') return undefined;
  } else {
    const colon = hostPort.lastIndexOf(':');
    host = colon >= 0 ? hostPort.slice(0, colon).trim() : hostPort;
    portText = colon >= 0 ? hostPort.slice(colon + 1).trim() : undefined;
  }
  if (host === '') return undefined;
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText)) return undefined;
    port = Number(portText);
    if (port > 65535) return undefined;
  }
  const params: Via['params'] = [];
  for (const p of (m[3] ?? '').split(';').slice(1)) {
    const eq = p.indexOf('=');
    const name = (eq < 0 ? p : p.slice(0, eq)).trim();
    if (name === '') continue;
    params.push([name, eq < 0 ? null : p.slice(eq + 1).trim()]);
  }
  return port === undefined
    ? { transport, host: host.toLowerCase(), params }
    : { transport, host: host.toLowerCase(), port, params };
}

/** The top Via, parsed. */
export function topVia(msg: SipMessage): Via | undefined {
  const text = topViaText(msg);
  return text === undefined ? undefined : parseViaValue(text);
}

/** A parameter's value (case-insensitive name); null when present without value, undefined when absent. */
export function param(params: readonly (readonly [string, string | null])[], name: string): string | null | undefined {
  const want = name.toLowerCase();
  for (const [n, v] of params) if (n.toLowerCase() === want) return v;
  return undefined;
}

/** The CSeq header, parsed; undefined when absent or malformed. */
export function cseq(msg: SipMessage): CSeq | undefined {
  const v = firstHeader(msg, 'cseq');
  if (v === undefined) return undefined;
  const m = /^(\d{1,10})\s+(\S+)$/.exec(v.trim());
  if (!m) return undefined;
  const seq = Number(m[1]);
  if (seq > 0xffffffff) return undefined;
  return { seq, method: m[2]! };
}

/** The `tag` parameter of a From or To header value. */
export function tagOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // Parameters of the header start after the closing `>` of a name-addr, or after the first `;` of an addr-spec
  // (whose own URI parameters RFC 3261 §20 says belong to the header).
  const close = value.lastIndexOf('>');
  const params = close >= 0 ? value.slice(close + 1) : value;
  for (const p of params.split(';').slice(1)) {
    const eq = p.indexOf('=');
    if (eq >= 0 && p.slice(0, eq).trim().toLowerCase() === 'tag') return p.slice(eq + 1).trim();
  }
  return undefined;
}

/** A fresh RFC 3261 branch: the magic cookie plus 96 random bits. */
export function newBranch(): string {
  return 'z9hG4bK' + randomBytes(12).toString('base64url');
}

/** The Call-ID value. */
export function callIdOf(msg: SipMessage): string | undefined {
  return firstHeader(msg, 'call-id');
}

/** The From tag. */
export function fromTagOf(msg: SipMessage): string | undefined {
  return tagOf(firstHeader(msg, 'from'));
}

/** The To tag. */
export function toTagOf(msg: SipMessage): string | undefined {
  return tagOf(firstHeader(msg, 'to'));
}

function formatViaValue(via: Via): string {
  const host = via.host.includes(':') ? `[${via.host}]` : via.host;
  const params = via.params.map(([n, v]) => (v === null ? `;${n}` : `;${n}=${v}`)).join('');
  return `SIP/2.0/${via.transport} ${host}${via.port !== undefined ? `:${via.port}` : ''}${params}`;
}

/** Sets (or replaces) the branch of the top Via, in place. Returns false when there is no valid top Via. */
export function setTopViaBranch(msg: SipMessage, branch: string): boolean {
  const want = 'via';
  const line = msg.headers.find((h) => canonical(h.name) === want);
  if (!line) return false;
  const values = splitCommas(line.value);
  const via = parseViaValue(values[0] ?? '');
  if (!via) return false;
  const params = via.params.filter(([n]) => n.toLowerCase() !== 'branch');
  params.push(['branch', branch]);
  values[0] = formatViaValue({ ...via, params });
  line.value = values.join(', ');
  return true;
}
