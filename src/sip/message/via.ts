import { fail, ok, type Result } from '../../common/result.ts';
import { tokenEnd } from './chars.ts';
import { formatParams, parseParamsAt, skipWs } from './params.ts';
import type { Via } from './types.ts';
import { hostPort, scanHostPort } from './uri.ts';

const readToken = tokenEnd;

/**
 * Parses one via-parm (RFC 3261 §20.42, §25.1): `SIP / 2.0 / transport LWS sent-by *(;via-params)`, LWS allowed
 * around the slashes (SLASH = SWS "/" SWS). Only SIP/2.0 is accepted. The host of an IPv6 reference is returned
 * without brackets; parameter values are kept as written (RFC 5118 §4.5: received may carry brackets).
 */
export function parseVia(s: string): Result<Via, string> {
  let i = skipWs(s, 0);
  const parts: string[] = [];
  for (let k = 0; k < 3; k++) {
    if (k > 0) {
      i = skipWs(s, i);
      if (s.charCodeAt(i) !== 0x2f) return fail('malformed sent-protocol');
      i = skipWs(s, i + 1);
    }
    const e = readToken(s, i);
    if (e === i) return fail('malformed sent-protocol');
    parts.push(s.slice(i, e));
    i = e;
  }
  if (parts[0]!.toUpperCase() !== 'SIP' || parts[1] !== '2.0') return fail('unsupported protocol version');
  const ws = i;
  i = skipWs(s, i);
  if (i === ws || i >= s.length) return fail('missing sent-by');
  const end = scanHostPort(s, i);
  if (end < 0) return fail('malformed sent-by: ' + hostPort.error);
  const host = hostPort.host;
  const port = hostPort.port;
  const p = parseParamsAt(s, end, false);
  if (!p.ok) return p;
  const via: Via = { transport: parts[2]!.toUpperCase(), host, params: p.value.params };
  if (port !== undefined) via.port = port;
  return ok(via);
}

/** Formats a via-parm as `SIP/2.0/UDP host:port;params` (IPv6 hosts in brackets). */
export function formatVia(via: Via): string {
  const host = via.host.indexOf(':') >= 0 && via.host.charCodeAt(0) !== 0x5b ? '[' + via.host + ']' : via.host;
  return (
    'SIP/2.0/' + via.transport + ' ' + host + (via.port !== undefined ? ':' + via.port : '') + formatParams(via.params)
  );
}
