import { randomFillSync } from 'node:crypto';
import { findHeader, findHeaders } from './access.ts';
import { rememberBody } from './cache.ts';
import { setHeader } from './mutate.ts';
import { scanNameAddr } from './name-addr.ts';
import { getParam } from './params.ts';
import type { Header, SipRequest, SipResponse, SipUri } from './types.ts';
import { formatUri } from './uri.ts';

/** RFC 3261 §8.1.1.7: the magic cookie that starts every branch of an RFC 3261 client. */
export const BRANCH_COOKIE = 'z9hG4bK';

/**
 * Random bytes for branches and tags, drawn 4 KiB at a time from the CSPRNG: one `randomFillSync` per 455 branches
 * or 512 tags instead of one per message (measured ≈ 13 µs per OPTIONS answer under load with one call each).
 */
const POOL = Buffer.alloc(4096);
let poolUsed = POOL.length;

function take(n: number): number {
  if (poolUsed + n > POOL.length) {
    randomFillSync(POOL);
    poolUsed = 0;
  }
  const at = poolUsed;
  poolUsed += n;
  return at;
}

/** A new Via branch: the magic cookie and 72 random bits (base64url: token characters only). */
export function newBranch(): string {
  const at = take(9);
  return BRANCH_COOKIE + POOL.toString('base64url', at, at + 9);
}

/** A new From/To tag (RFC 3261 §19.3: at least 32 random bits; here 64). */
export function newTag(): string {
  const at = take(8);
  return POOL.toString('hex', at, at + 8);
}

/** Reason phrases of RFC 3261 §21 and common extensions. */
export const REASON_PHRASES: Readonly<Record<number, string>> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  305: 'Use Proxy',
  380: 'Alternative Service',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  493: 'Undecipherable',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

function toBody(body: Buffer | string | undefined): Buffer {
  if (body === undefined) return Buffer.alloc(0);
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function toHeaders(headers: ReadonlyArray<Header | readonly [string, string]> | undefined): Header[] {
  if (headers === undefined) return [];
  return headers.map((h) => (Array.isArray(h) ? { name: h[0], value: h[1] } : { ...(h as Header) }));
}

/** What `createRequest` builds a request from. */
export interface RequestInit {
  method: string;
  uri: string | SipUri;
  /** Header lines in order (`[name, value]` pairs or Header objects). Content-Length is set from the body. */
  headers?: ReadonlyArray<Header | readonly [string, string]>;
  body?: Buffer | string;
}

/** Builds a request; Content-Length is set from the body. */
export function createRequest(init: RequestInit): SipRequest {
  const req: SipRequest = {
    kind: 'request',
    method: init.method,
    uri: typeof init.uri === 'string' ? init.uri : formatUri(init.uri),
    version: 'SIP/2.0',
    headers: toHeaders(init.headers),
    body: toBody(init.body),
  };
  setHeader(req, 'Content-Length', String(req.body.length));
  rememberBody(req, req.body);
  return req;
}

/** Options of `createResponse`. */
export interface ResponseOptions {
  /** Tag added to To when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag?: string;
  headers?: ReadonlyArray<Header | readonly [string, string]>;
  body?: Buffer | string;
}

const sanitizeReason = (r: string) => r.replace(/[\r\n\0]/g, ' ');

/**
 * Builds a response to `req` per RFC 3261 §8.2.6.2: every Via in order, From, Call-ID and CSeq copied, To copied
 * with `toTag` added when it has no tag; §8.2.6.1: a 100 copies Timestamp. Content-Length is set from the body.
 */
export function createResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  opts: ResponseOptions = {},
): SipResponse {
  const headers: Header[] = [];
  for (const h of findHeaders(req, 'via')) headers.push({ name: h.name, value: h.value });
  const from = findHeader(req, 'from');
  if (from) headers.push({ name: from.name, value: from.value });
  const to = findHeader(req, 'to');
  if (to) {
    let value = to.value;
    if (opts.toTag !== undefined) {
      const scanned = scanNameAddr(value);
      const hasTag = scanned.ok && getParam(scanned.value.params, 'tag') !== undefined;
      if (!hasTag) value += ';tag=' + opts.toTag;
    }
    headers.push({ name: to.name, value });
  }
  const callId = findHeader(req, 'call-id');
  if (callId) headers.push({ name: callId.name, value: callId.value });
  const cseq = findHeader(req, 'cseq');
  if (cseq) headers.push({ name: cseq.name, value: cseq.value });
  if (status === 100) {
    const ts = findHeader(req, 'timestamp');
    if (ts) headers.push({ name: ts.name, value: ts.value });
  }
  for (const h of toHeaders(opts.headers)) headers.push(h);
  const res: SipResponse = {
    kind: 'response',
    status,
    reason: sanitizeReason(reason ?? REASON_PHRASES[status] ?? 'Unknown'),
    version: 'SIP/2.0',
    headers,
    body: toBody(opts.body),
  };
  setHeader(res, 'Content-Length', String(res.body.length));
  rememberBody(res, res.body);
  return res;
}
