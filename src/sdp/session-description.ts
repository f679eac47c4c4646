import { isIP } from 'node:net';
import { fail, ok, type Result } from '../common/result.ts';

/**
 * SDP (RFC 8866, formerly RFC 4566) as a list of lines: every line is kept as it came (type letter and value), so
 * attributes and lines Crossway does not understand round-trip untouched. Only `m=` lines are split into fields,
 * because the media relay rewrites their ports; helpers read `c=` and `a=` on demand.
 */

/** One `<type>=<value>` line. */
export interface SdpLine {
  type: string;
  value: string;
}

/** A media description: its `m=` line in fields, and every line after it up to the next `m=`. */
export interface SdpMedia {
  media: string;
  port: number;
  /** `m=audio 49170/2 …`: number of ports (absent when not written). */
  portCount?: number;
  proto: string;
  formats: string[];
  lines: SdpLine[];
}

/** A session description: the session-level lines (from `v=` up to the first `m=`) and the media descriptions. */
export interface SessionDescription {
  session: SdpLine[];
  media: SdpMedia[];
}

/** Limits on what a peer may send; explicit so a large body costs a bounded amount. */
export interface SdpLimits {
  maxBytes: number;
  maxLines: number;
  maxMedia: number;
}

export const DEFAULT_SDP_LIMITS: Readonly<SdpLimits> = Object.freeze({
  maxBytes: 65_535,
  maxLines: 2000,
  maxMedia: 32,
});

/** `c=` in fields (RFC 8866 §5.7). */
export interface SdpConnection {
  netType: string;
  addrType: string;
  address: string;
  /** `/ttl` and `/count` suffixes, kept as written (e.g. `/127`). */
  suffix: string;
}

const LINE_TYPE = /^[a-z]$/;

/**
 * Parses an SDP body. Tolerant of LF-only line ends and a missing final line end (both seen in the wild); strict on
 * what the relay relies on: `v=0` first, well-formed `m=` lines. Never throws.
 */
export function parseSdp(text: string, limits: SdpLimits = DEFAULT_SDP_LIMITS): Result<SessionDescription> {
  if (text.length > limits.maxBytes) return fail(`SDP larger than ${limits.maxBytes} bytes`);
  const raw = text.split(/\r?\n/);
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  if (raw.length > limits.maxLines) return fail(`SDP has more than ${limits.maxLines} lines`);
  if (raw[0] !== 'v=0') return fail('SDP does not start with v=0');
  const session: SdpLine[] = [];
  const media: SdpMedia[] = [];
  let current: SdpLine[] = session;
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i]!;
    const type = line.slice(0, 1);
    if (line.charCodeAt(1) !== 61 /* = */ || !LINE_TYPE.test(type)) {
      return fail(`SDP line ${i + 1} is not <type>=<value>`);
    }
    const value = line.slice(2);
    if (type === 'm') {
      if (media.length >= limits.maxMedia) return fail(`SDP has more than ${limits.maxMedia} media descriptions`);
      const m = parseMediaLine(value);
      if (!m.ok) return fail(`SDP line ${i + 1}: ${m.reason}`);
      media.push(m.value);
      current = m.value.lines;
    } else {
      current.push({ type, value });
    }
  }
  return ok({ session, media });
}

function parseMediaLine(value: string): Result<SdpMedia> {
  const parts = value.split(' ').filter((p) => p.length > 0);
  if (parts.length < 3) return fail('m= needs <media> <port> <proto> [<fmt> …]');
  const [media, portField, proto] = parts as [string, string, string];
  const pm = /^(\d{1,5})(?:\/(\d{1,5}))?$/.exec(portField);
  if (!pm) return fail(`m= port "${portField}" is not a number`);
  const port = Number(pm[1]);
  if (port > 65535) return fail(`m= port ${port} is out of range`);
  const out: SdpMedia = { media, port, proto, formats: parts.slice(3), lines: [] };
  if (pm[2] !== undefined) out.portCount = Number(pm[2]);
  return ok(out);
}

/** Writes an SDP body with CRLF line ends (RFC 8866 §5). */
export function serializeSdp(sd: SessionDescription): string {
  const out: string[] = [];
  for (const l of sd.session) out.push(`${l.type}=${l.value}`);
  for (const m of sd.media) {
    const port = m.portCount !== undefined ? `${m.port}/${m.portCount}` : String(m.port);
    out.push(`m=${[m.media, port, m.proto, ...m.formats].join(' ')}`);
    for (const l of m.lines) out.push(`${l.type}=${l.value}`);
  }
  return `${out.join('\r\n')}\r\n`;
}

/** A deep copy (the rewriter never changes its input). */
export function cloneSdp(sd: SessionDescription): SessionDescription {
  return {
    session: sd.session.map((l) => ({ ...l })),
    media: sd.media.map((m) => ({ ...m, formats: [...m.formats], lines: m.lines.map((l) => ({ ...l })) })),
  };
}

/** Parses a `c=` value; undefined when malformed. */
export function parseConnection(value: string): SdpConnection | undefined {
  const parts = value.split(' ').filter((p) => p.length > 0);
  if (parts.length !== 3) return undefined;
  const [netType, addrType, addrField] = parts as [string, string, string];
  const slash = addrField.indexOf('/');
  const address = slash < 0 ? addrField : addrField.slice(0, slash);
  return { netType, addrType, address, suffix: slash < 0 ? '' : addrField.slice(slash) };
}

/** The first `c=` among `lines`. */
export function connectionOf(lines: readonly SdpLine[]): SdpConnection | undefined {
  const c = lines.find((l) => l.type === 'c');
  return c ? parseConnection(c.value) : undefined;
}

/** The connection that applies to a media description: its own `c=`, else the session's (RFC 8866 §5.7). */
export function effectiveConnection(sd: SessionDescription, m: SdpMedia): SdpConnection | undefined {
  return connectionOf(m.lines) ?? connectionOf(sd.session);
}

/** `c=IN IP4 <address>` / `c=IN IP6 <address>` for one of our addresses. */
export function connectionValue(address: string): string {
  return `IN ${isIP(address) === 6 ? 'IP6' : 'IP4'} ${address}`;
}

/**
 * Whether an address means "no media to me": RFC 3264 §8.4 allows the (RFC 2543) hold form `c=IN IP4 0.0.0.0`;
 * `::` is its IPv6 twin.
 */
export function isUnspecified(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/** Name and value of an `a=` line (`a=rtcp:5001` → `rtcp`, `5001`; `a=rtcp-mux` → `rtcp-mux`, undefined). */
export function splitAttribute(value: string): { name: string; value: string | undefined } {
  const colon = value.indexOf(':');
  return colon < 0 ? { name: value, value: undefined } : { name: value.slice(0, colon), value: value.slice(colon + 1) };
}

/** The value of the first `a=<name>` (empty string for a flag), or undefined when absent. */
export function attribute(lines: readonly SdpLine[], name: string): string | undefined {
  for (const l of lines) {
    if (l.type !== 'a') continue;
    const a = splitAttribute(l.value);
    if (a.name === name) return a.value ?? '';
  }
  return undefined;
}

export function hasAttribute(lines: readonly SdpLine[], name: string): boolean {
  return attribute(lines, name) !== undefined;
}

export type SdpDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
const DIRECTIONS: readonly SdpDirection[] = ['sendrecv', 'sendonly', 'recvonly', 'inactive'];

/** The direction of a media description: its own attribute, else the session's, else `sendrecv` (RFC 3264 §5.1). */
export function directionOf(sd: SessionDescription, m: SdpMedia): SdpDirection {
  for (const lines of [m.lines, sd.session]) {
    for (const l of lines)
      if (l.type === 'a' && (DIRECTIONS as readonly string[]).includes(l.value)) {
        return l.value as SdpDirection;
      }
  }
  return 'sendrecv';
}

/** `a=rtcp:<port> [IN IP4 <addr>]` (RFC 3605) in fields; undefined when absent or malformed. */
export function rtcpAttribute(lines: readonly SdpLine[]): { port: number; address?: string } | undefined {
  const v = attribute(lines, 'rtcp');
  if (v === undefined) return undefined;
  const parts = v.split(' ').filter((p) => p.length > 0);
  const port = Number(parts[0]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return parts.length >= 4 ? { port, address: parts[3]! } : { port };
}
