import { fail, ok, type Result } from '../../common/result.ts';
import { getRequestUri, parseContactList, parseCSeq, parseViaList, UNSUPPORTED_SCHEME } from './access.ts';
import { memo, rememberBody } from './cache.ts';
import { allIn, isDigits, TOKEN, trimLws, WORD } from './chars.ts';
import { canonicalName } from './headers.ts';
import { parseNameAddr } from './name-addr.ts';
import type {
  Header,
  MessageLimits,
  ParseFailure,
  ParseOptions,
  SipMessage,
  SipRequest,
  SipResponse,
} from './types.ts';
import { isAbsoluteUri, uriScheme } from './uri.ts';

/** The defaults of `sip.limits` in the configuration schema. */
export const DEFAULT_LIMITS: Readonly<MessageLimits> = Object.freeze({
  maxMessageBytes: 65_535,
  maxHeaders: 128,
  maxHeaderBytes: 8192,
});

const CRLFCRLF = Buffer.from('\r\n\r\n');
const LFLF = Buffer.from('\n\n');

function failure(
  code: ParseFailure['code'],
  reason: string,
  status = 400,
  partial?: SipMessage,
): { ok: false; reason: ParseFailure } {
  const f: ParseFailure = { code, reason, status };
  if (partial !== undefined) f.partial = partial;
  return fail(f);
}

const VERSION_RE = /^SIP\/[0-9]{1,3}\.[0-9]{1,3}$/i;

/** Where the header block ends: index of the terminating empty line and where the body starts. */
function findHeaderEnd(buf: Buffer, start: number, datagram: boolean): { end: number; body: number } | undefined {
  const crlf = buf.indexOf(CRLFCRLF, start);
  const lfRegion = crlf < 0 ? buf : buf.subarray(0, crlf + 1);
  const lf = lfRegion.indexOf(LFLF, start);
  if (lf >= 0) return { end: lf, body: lf + 2 };
  if (crlf >= 0) return { end: crlf, body: crlf + 4 };
  // A datagram whose header block ends at the end of the datagram without an empty line (RFC 4475 baddn.dat as
  // archived): the headers are complete, there is no body.
  if (datagram && buf.length > start && buf[buf.length - 1] === 0x0a) return { end: buf.length, body: buf.length };
  return undefined;
}

interface Seen {
  via: Header[];
  from: Header[];
  to: Header[];
  callId: Header[];
  cseq: Header[];
  maxForwards: Header[];
  contact: Header[];
  contentLength: Header[];
}

/**
 * Parses one SIP message: one datagram, or one stream frame cut by `StreamFramer` (RFC 3261 §7, §18.3, §20, §25).
 * Never throws: a fault is `{ ok: false, reason: ParseFailure }` with the status to answer (400, 505 for a bad
 * version, 413 for an oversize message) and, when the start line and Via/From/To/Call-ID/CSeq were read, the
 * partly parsed message so a transport can answer statelessly.
 *
 * Header values are unfolded (RFC 3261 §7.3.1: folded LWS is one SP) and trimmed; names are kept as received.
 * The headers routing needs (Via, From, To, Call-ID, CSeq, Max-Forwards, Contact, Content-Length) are validated
 * and their parsed forms cached for the typed accessors. The body is a view on `buf`.
 */
export function parseMessage(
  buf: Buffer,
  limits?: Partial<MessageLimits>,
  options?: ParseOptions,
): Result<SipMessage, ParseFailure> {
  const lim = limits === undefined ? DEFAULT_LIMITS : { ...DEFAULT_LIMITS, ...limits };
  const datagram = options?.transport !== 'stream';
  let start = 0;
  // RFC 3261 §7.5: CRLFs before the start line are ignored.
  while (start < buf.length && (buf[start] === 0x0d || buf[start] === 0x0a)) start++;
  if (start >= buf.length) return failure('bad-start-line', 'Bad Request - Empty Message');
  const tooLarge = buf.length - start > lim.maxMessageBytes;
  const he = findHeaderEnd(buf, start, datagram);
  if (he === undefined || he.end - start > lim.maxMessageBytes) {
    if (tooLarge) return failure('too-large', 'Message Too Large', 413);
    return failure('bad-header', 'Bad Request - Incomplete Header Block');
  }
  const text = buf.toString('utf8', start, he.end);

  // Start line.
  let nl = text.indexOf('\n');
  let lineEnd = nl < 0 ? text.length : nl;
  if (lineEnd > 0 && text.charCodeAt(lineEnd - 1) === 0x0d) lineEnd--;
  const startLine = text.slice(0, lineEnd);
  if (startLine.indexOf('\r') >= 0) return failure('bad-start-line', 'Bad Request - Malformed Start Line');
  let msg: SipMessage;
  let startFault: ParseFailure | undefined;
  const headers: Header[] = [];
  if (startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/') {
    const sp = startLine.indexOf(' ');
    const version = sp < 0 ? startLine : startLine.slice(0, sp);
    if (!VERSION_RE.test(version)) return failure('bad-start-line', 'Bad Request - Malformed Status Line');
    const code = startLine.slice(sp + 1, sp + 4);
    const after = startLine.charCodeAt(sp + 4);
    if (sp < 0 || !isDigits(code, 3) || code.length !== 3 || !(Number.isNaN(after) || after === 0x20)) {
      return failure('bad-start-line', 'Bad Request - Malformed Status Code');
    }
    const status = Number(code);
    if (status < 100 || status > 699) return failure('bad-start-line', 'Bad Request - Status Code Out of Range');
    if (version.toUpperCase() !== 'SIP/2.0') return failure('bad-version', 'Version Not Supported', 505);
    const res: SipResponse = {
      kind: 'response',
      status,
      reason: startLine.slice(sp + 5),
      version,
      headers,
      body: EMPTY,
    };
    msg = res;
  } else {
    // RFC 3261 §7.1: Method SP Request-URI SP SIP-Version. Runs of SP and trailing SP are tolerated
    // (RFC 4475 §3.1.2.9, §3.1.2.10 allow a liberal element to accept them); SP inside the URI is not.
    let e = startLine.length;
    while (e > 0 && startLine.charCodeAt(e - 1) === 0x20) e--;
    const sp1 = startLine.indexOf(' ');
    const sp2 = startLine.lastIndexOf(' ', e - 1);
    if (sp1 <= 0 || sp2 <= sp1) return failure('bad-start-line', 'Bad Request - Malformed Request Line');
    const method = startLine.slice(0, sp1);
    const version = startLine.slice(sp2 + 1, e);
    let us = sp1;
    while (startLine.charCodeAt(us) === 0x20) us++;
    let ue = sp2;
    while (ue > us && startLine.charCodeAt(ue - 1) === 0x20) ue--;
    const uri = startLine.slice(us, ue);
    if (!allIn(TOKEN, method)) return failure('bad-start-line', 'Bad Request - Malformed Method');
    if (!VERSION_RE.test(version)) return failure('bad-start-line', 'Bad Request - Malformed Request Line');
    const req: SipRequest = { kind: 'request', method, uri, version, headers, body: EMPTY };
    msg = req;
    if (version.toUpperCase() !== 'SIP/2.0') {
      startFault = { code: 'bad-version', reason: 'Version Not Supported', status: 505 };
    } else if (uri.length === 0 || uri.indexOf(' ') >= 0 || uri.indexOf('\t') >= 0) {
      startFault = { code: 'bad-uri', reason: 'Bad Request - Malformed Request-URI', status: 400 };
    } else {
      const scheme = uriScheme(uri);
      if (scheme === 'sip' || scheme === 'sips' || scheme === 'tel') {
        const r = getRequestUri(req);
        if (!r.ok) {
          startFault = { code: 'bad-uri', reason: 'Bad Request - Malformed Request-URI', status: 400 };
        } else if (r.value.headers.length > 0) {
          // RFC 3261 §19.1.1 / RFC 4475 §3.1.2.11: headers are not allowed in a Request-URI.
          startFault = { code: 'bad-uri', reason: 'Bad Request - Headers in Request-URI', status: 400 };
        }
      } else if (!isAbsoluteUri(uri)) {
        startFault = { code: 'bad-uri', reason: 'Bad Request - Malformed Request-URI', status: 400 };
      }
    }
  }

  // Header lines.
  const seen: Seen = {
    via: [],
    from: [],
    to: [],
    callId: [],
    cseq: [],
    maxForwards: [],
    contact: [],
    contentLength: [],
  };
  const n = text.length;
  let pos = nl < 0 ? n : nl + 1;
  let cur: Header | undefined;
  let curParts: string[] | undefined;
  const finish = (): ParseFailure | undefined => {
    if (cur === undefined) return undefined;
    if (curParts !== undefined) {
      cur.value = trimLws(curParts.join(' '));
      curParts = undefined;
    }
    if (cur.name.length + cur.value.length > lim.maxHeaderBytes) {
      return { code: 'header-too-long', reason: 'Bad Request - Header Too Long', status: 400 };
    }
    return undefined;
  };
  while (pos < n) {
    nl = text.indexOf('\n', pos);
    let e = nl < 0 ? n : nl;
    const next = nl < 0 ? n : nl + 1;
    if (e > pos && text.charCodeAt(e - 1) === 0x0d) e--;
    const c0 = text.charCodeAt(pos);
    if (c0 === 0x20 || c0 === 0x09) {
      // RFC 3261 §7.3.1: a line starting with LWS continues the previous header value.
      if (cur === undefined) return failure('bad-header', 'Bad Request - Continuation Line Without Header');
      if (curParts === undefined) curParts = [cur.value];
      curParts.push(trimLws(text.slice(pos, e)));
      if (e - pos > lim.maxHeaderBytes) return failure('header-too-long', 'Bad Request - Header Too Long');
    } else {
      const f = finish();
      if (f !== undefined) return fail(f);
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon >= e) return failure('bad-header', 'Bad Request - Malformed Header Line');
      let ne = colon;
      while (ne > pos && (text.charCodeAt(ne - 1) === 0x20 || text.charCodeAt(ne - 1) === 0x09)) ne--;
      const name = text.slice(pos, ne);
      if (!allIn(TOKEN, name)) return failure('bad-header', 'Bad Request - Malformed Header Name');
      if (headers.length >= lim.maxHeaders) return failure('too-many-headers', 'Bad Request - Too Many Headers');
      cur = { name, value: trimLws(text.slice(colon + 1, e)) };
      headers.push(cur);
      switch (canonicalName(name)) {
        case 'via':
          seen.via.push(cur);
          break;
        case 'from':
          seen.from.push(cur);
          break;
        case 'to':
          seen.to.push(cur);
          break;
        case 'call-id':
          seen.callId.push(cur);
          break;
        case 'cseq':
          seen.cseq.push(cur);
          break;
        case 'max-forwards':
          seen.maxForwards.push(cur);
          break;
        case 'contact':
          seen.contact.push(cur);
          break;
        case 'content-length':
          seen.contentLength.push(cur);
          break;
      }
    }
    pos = next;
  }
  const f = finish();
  if (f !== undefined) return fail(f);
  // A CR not followed by LF inside the header block would let a value smuggle a line break.
  for (let k = text.indexOf('\r'); k >= 0; k = text.indexOf('\r', k + 1)) {
    if (text.charCodeAt(k + 1) !== 0x0a) return failure('bad-header', 'Bad Request - Bare CR in Header');
  }

  // Enough to answer statelessly: a transport sends the response to the source address when the top Via is bad.
  const answerable =
    msg.kind === 'request' &&
    seen.via.length > 0 &&
    seen.from.length > 0 &&
    seen.to.length > 0 &&
    seen.callId.length > 0 &&
    seen.cseq.length > 0;
  const partial = answerable ? msg : undefined;
  const bad = (code: ParseFailure['code'], reason: string, status = 400) => failure(code, reason, status, partial);

  if (tooLarge) return bad('too-large', 'Message Too Large', 413);
  if (startFault !== undefined) return bad(startFault.code, startFault.reason, startFault.status);

  // RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are mandatory in a request; Max-Forwards is
  // tolerated when missing (RFC 2543 stacks, RFC 4475 §3.4.1). Responses need the same minus Max-Forwards.
  if (seen.via.length === 0) return bad('missing-header', 'Bad Request - Missing Via');
  for (const h of seen.via) {
    if (!memo(h, 'via', parseViaList).ok) return bad('bad-via', 'Bad Request - Malformed Via');
  }
  for (const [list, label] of [
    [seen.from, 'From'],
    [seen.to, 'To'],
  ] as const) {
    if (list.length === 0) return bad('missing-header', 'Bad Request - Missing ' + label);
    if (list.length > 1) return bad('bad-header', 'Bad Request - Multiple ' + label + ' Headers');
    const r = memo(list[0]!, 'name-addr', parseNameAddr);
    if (!r.ok && r.reason !== UNSUPPORTED_SCHEME) return bad('bad-header', 'Bad Request - Malformed ' + label);
  }
  if (seen.callId.length === 0) return bad('missing-header', 'Bad Request - Missing Call-ID');
  if (seen.callId.length > 1) return bad('bad-header', 'Bad Request - Multiple Call-ID Headers');
  if (!isCallId(seen.callId[0]!.value)) return bad('bad-header', 'Bad Request - Malformed Call-ID');
  if (seen.cseq.length === 0) return bad('missing-header', 'Bad Request - Missing CSeq');
  if (seen.cseq.length > 1) return bad('bad-cseq', 'Bad Request - Multiple CSeq Headers');
  const cseq = memo(seen.cseq[0]!, 'cseq', parseCSeq);
  if (!cseq.ok) return bad('bad-cseq', 'Bad Request - Malformed CSeq');
  if (msg.kind === 'request' && cseq.value.method !== msg.method) {
    // RFC 3261 §8.1.1.5 / RFC 4475 §3.1.2.17: the CSeq method must match the request method.
    return bad('method-mismatch', 'Bad Request - CSeq Method Does Not Match');
  }
  if (seen.maxForwards.length > 1) return bad('bad-header', 'Bad Request - Multiple Max-Forwards Headers');
  if (seen.maxForwards.length === 1) {
    const mf = seen.maxForwards[0]!.value;
    if (!isDigits(mf, 10) || Number(mf) > 255) return bad('bad-value', 'Bad Request - Malformed Max-Forwards');
  }
  for (const h of seen.contact) {
    const r = memo(h, 'contact', parseContactList);
    if (!r.ok && r.reason !== UNSUPPORTED_SCHEME) return bad('bad-header', 'Bad Request - Malformed Contact');
  }

  // Content-Length and body (RFC 3261 §18.3, §20.14).
  let contentLength = -1;
  for (const h of seen.contentLength) {
    if (!isDigits(h.value, 10)) return bad('bad-content-length', 'Bad Request - Malformed Content-Length');
    const v = Number(h.value);
    if (contentLength >= 0 && v !== contentLength) {
      return bad('bad-content-length', 'Bad Request - Multiple Content-Length Values');
    }
    contentLength = v;
  }
  if (contentLength < 0) {
    if (!datagram) return bad('bad-content-length', 'Bad Request - Missing Content-Length');
    msg.body = buf.subarray(he.body);
  } else {
    if (he.body + contentLength > buf.length) {
      return bad('body-mismatch', 'Bad Request - Content-Length Larger Than Message');
    }
    // RFC 3261 §18.3: octets beyond Content-Length in a datagram are discarded.
    msg.body = buf.subarray(he.body, he.body + contentLength);
  }
  rememberBody(msg, msg.body);
  return ok(msg);
}

const EMPTY = Buffer.alloc(0);

/** RFC 3261 §25.1: callid = word [ "@" word ]. */
function isCallId(v: string): boolean {
  const at = v.indexOf('@');
  if (at < 0) return allIn(WORD, v);
  return allIn(WORD, v.slice(0, at)) && allIn(WORD, v.slice(at + 1));
}
