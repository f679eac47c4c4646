import { fail, ok, type Result } from '../../common/result.ts';
import { parseContactList, parseCSeq, parseViaList, UNSUPPORTED_SCHEME } from './access.ts';
import { cacheOf, type MessageCache, memoIn } from './cache.ts';
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
  SipUri,
} from './types.ts';
import { isAbsoluteUri, parseUri, uriScheme } from './uri.ts';

/** The defaults of `sip.limits` in the configuration schema. */
export const DEFAULT_LIMITS: Readonly<MessageLimits> = Object.freeze({
  maxMessageBytes: 65_535,
  maxHeaders: 128,
  maxHeaderBytes: 8192,
});

const EMPTY = Buffer.alloc(0);
/** Lengths of via, from, to, call-id, cseq, contact, max-forwards, content-length and of compact forms. */
const RELEVANT_LENGTH = new Uint8Array(16);
for (const n of [1, 2, 3, 4, 7, 12, 14]) RELEVANT_LENGTH[n] = 1;
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
  const lim =
    limits === undefined
      ? DEFAULT_LIMITS
      : limits.maxMessageBytes !== undefined && limits.maxHeaders !== undefined && limits.maxHeaderBytes !== undefined
        ? (limits as MessageLimits)
        : { ...DEFAULT_LIMITS, ...limits };
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
  if (startLine.length > lim.maxHeaderBytes) return failure('header-too-long', 'Bad Request - Start Line Too Long');
  let msg: SipMessage;
  let startFault: ParseFailure | undefined;
  let ruri: { v: string; r: Result<SipUri, string> } | undefined;
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
        const r = parseUri(uri);
        ruri = { v: uri, r };
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

  // Header lines. Canonical names go to a parallel array so validation does not look them up again.
  const canon: string[] = [];
  const n = text.length;
  let pos = nl < 0 ? n : nl + 1;
  let folded: string[] | undefined;
  while (pos < n) {
    nl = text.indexOf('\n', pos);
    let e = nl < 0 ? n : nl;
    const next = nl < 0 ? n : nl + 1;
    if (e > pos && text.charCodeAt(e - 1) === 0x0d) e--;
    const c0 = text.charCodeAt(pos);
    if (c0 === 0x20 || c0 === 0x09) {
      // RFC 3261 §7.3.1: a line starting with LWS continues the previous header value.
      const cur = headers[headers.length - 1];
      if (cur === undefined)
        return failure('bad-header', 'Bad Request - Continuation Line Without Header', 400, answerable(msg, canon));
      if (folded === undefined) folded = [cur.value];
      folded.push(trimLws(text.slice(pos, e)));
      if (e - pos > lim.maxHeaderBytes)
        return failure('header-too-long', 'Bad Request - Header Too Long', 400, answerable(msg, canon));
    } else {
      if (folded !== undefined) {
        if (!unfold(headers[headers.length - 1]!, folded, lim.maxHeaderBytes)) {
          return failure('header-too-long', 'Bad Request - Header Too Long', 400, answerable(msg, canon));
        }
        folded = undefined;
      }
      const colon = text.indexOf(':', pos);
      if (colon < 0 || colon >= e)
        return failure('bad-header', 'Bad Request - Malformed Header Line', 400, answerable(msg, canon));
      let ne = colon;
      while (ne > pos && (text.charCodeAt(ne - 1) === 0x20 || text.charCodeAt(ne - 1) === 0x09)) ne--;
      const name = text.slice(pos, ne);
      if (!allIn(TOKEN, name))
        return failure('bad-header', 'Bad Request - Malformed Header Name', 400, answerable(msg, canon));
      if (headers.length >= lim.maxHeaders)
        return failure('too-many-headers', 'Bad Request - Too Many Headers', 400, answerable(msg, canon));
      if (e - pos > lim.maxHeaderBytes)
        return failure('header-too-long', 'Bad Request - Header Too Long', 400, answerable(msg, canon));
      let vs = colon + 1;
      while (vs < e && (text.charCodeAt(vs) === 0x20 || text.charCodeAt(vs) === 0x09)) vs++;
      let ve = e;
      while (ve > vs && (text.charCodeAt(ve - 1) === 0x20 || text.charCodeAt(ve - 1) === 0x09)) ve--;
      headers.push({ name, value: text.slice(vs, ve) });
      // Only names whose length can be one the validation looks at are canonicalized.
      canon.push(RELEVANT_LENGTH[name.length] === 1 ? canonicalName(name) : '');
    }
    pos = next;
  }
  if (folded !== undefined && !unfold(headers[headers.length - 1]!, folded, lim.maxHeaderBytes)) {
    return failure('header-too-long', 'Bad Request - Header Too Long', 400, answerable(msg, canon));
  }
  // A CR not followed by LF inside the header block would let a value smuggle a line break.
  for (let k = text.indexOf('\r'); k >= 0; k = text.indexOf('\r', k + 1)) {
    if (text.charCodeAt(k + 1) !== 0x0a)
      return failure('bad-header', 'Bad Request - Bare CR in Header', 400, answerable(msg, canon));
  }

  const cache = cacheOf(msg);
  cache.body = undefined;
  if (ruri !== undefined) {
    cache.ruriV = ruri.v;
    cache.ruriR = ruri.r;
  }
  const fault = validate(msg, cache, canon, startFault);
  if (fault === undefined && !tooLarge) {
    // Content-Length and body (RFC 3261 §18.3, §20.14).
    let contentLength = -1;
    let clFault: string | undefined;
    for (let k = 0; k < headers.length; k++) {
      if (canon[k] !== 'content-length') continue;
      const v = headers[k]!.value;
      if (!isDigits(v, 10)) {
        clFault = 'Bad Request - Malformed Content-Length';
        break;
      }
      if (contentLength >= 0 && Number(v) !== contentLength) {
        clFault = 'Bad Request - Multiple Content-Length Values';
        break;
      }
      contentLength = Number(v);
    }
    if (clFault === undefined) {
      if (contentLength < 0) {
        if (datagram) {
          msg.body = buf.subarray(he.body);
          cache.body = msg.body;
          return ok(msg);
        }
        clFault = 'Bad Request - Missing Content-Length';
      } else if (he.body + contentLength <= buf.length) {
        // RFC 3261 §18.3: octets beyond Content-Length in a datagram are discarded.
        msg.body = buf.subarray(he.body, he.body + contentLength);
        cache.body = msg.body;
        return ok(msg);
      }
    }
    const code = clFault === undefined ? 'body-mismatch' : 'bad-content-length';
    return failure(code, clFault ?? 'Bad Request - Content-Length Larger Than Message', 400, answerable(msg, canon));
  }
  if (tooLarge) return failure('too-large', 'Message Too Large', 413, answerable(msg, canon));
  return failure(fault!.code, fault!.reason, fault!.status, answerable(msg, canon));
}

function unfold(h: Header, parts: string[], max: number): boolean {
  h.value = trimLws(parts.join(' '));
  return h.name.length + h.value.length <= max;
}

/**
 * The message, when it can be answered statelessly: a request with Via, From, To, Call-ID and CSeq among the header
 * lines read so far. (A transport sends the response to the source address when the top Via is unusable.)
 */
function answerable(msg: SipMessage, canon: string[]): SipMessage | undefined {
  if (msg.kind !== 'request') return undefined;
  let need = 0;
  for (const c of canon) {
    if (c === 'via') need |= 1;
    else if (c === 'from') need |= 2;
    else if (c === 'to') need |= 4;
    else if (c === 'call-id') need |= 8;
    else if (c === 'cseq') need |= 16;
  }
  return need === 31 ? msg : undefined;
}

function fault(code: ParseFailure['code'], reason: string, status = 400): ParseFailure {
  return { code, reason, status };
}

/**
 * RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via are mandatory in a request; Max-Forwards is
 * tolerated when missing (RFC 2543 stacks, RFC 4475 §3.4.1). Responses need the same minus Max-Forwards. Parsed
 * forms are cached for the typed accessors.
 */
function validate(
  msg: SipMessage,
  cache: MessageCache,
  canon: string[],
  startFault: ParseFailure | undefined,
): ParseFailure | undefined {
  if (startFault !== undefined) return startFault;
  const headers = msg.headers;
  let from = -1;
  let to = -1;
  let callId = -1;
  let cseq = -1;
  let maxForwards = -1;
  let vias = 0;
  for (let k = 0; k < headers.length; k++) {
    const h = headers[k]!;
    switch (canon[k]) {
      case 'via':
        vias++;
        if (!memoIn(cache, h, 'via', parseViaList).ok) return fault('bad-via', 'Bad Request - Malformed Via');
        break;
      case 'from':
        if (from >= 0) return fault('bad-header', 'Bad Request - Multiple From Headers');
        from = k;
        break;
      case 'to':
        if (to >= 0) return fault('bad-header', 'Bad Request - Multiple To Headers');
        to = k;
        break;
      case 'call-id':
        if (callId >= 0) return fault('bad-header', 'Bad Request - Multiple Call-ID Headers');
        callId = k;
        break;
      case 'cseq':
        if (cseq >= 0) return fault('bad-cseq', 'Bad Request - Multiple CSeq Headers');
        cseq = k;
        break;
      case 'max-forwards':
        if (maxForwards >= 0) return fault('bad-header', 'Bad Request - Multiple Max-Forwards Headers');
        maxForwards = k;
        break;
      case 'contact': {
        const r = memoIn(cache, h, 'contact', parseContactList);
        if (!r.ok && r.reason !== UNSUPPORTED_SCHEME) return fault('bad-header', 'Bad Request - Malformed Contact');
        break;
      }
    }
  }
  if (vias === 0) return fault('missing-header', 'Bad Request - Missing Via');
  if (from < 0) return fault('missing-header', 'Bad Request - Missing From');
  if (to < 0) return fault('missing-header', 'Bad Request - Missing To');
  if (callId < 0) return fault('missing-header', 'Bad Request - Missing Call-ID');
  if (cseq < 0) return fault('missing-header', 'Bad Request - Missing CSeq');
  const f = memoIn(cache, headers[from]!, 'name-addr', parseNameAddr);
  if (!f.ok && f.reason !== UNSUPPORTED_SCHEME) return fault('bad-header', 'Bad Request - Malformed From');
  const t = memoIn(cache, headers[to]!, 'name-addr', parseNameAddr);
  if (!t.ok && t.reason !== UNSUPPORTED_SCHEME) return fault('bad-header', 'Bad Request - Malformed To');
  if (!isCallId(headers[callId]!.value)) return fault('bad-header', 'Bad Request - Malformed Call-ID');
  const cs = memoIn(cache, headers[cseq]!, 'cseq', parseCSeq);
  if (!cs.ok) return fault('bad-cseq', 'Bad Request - Malformed CSeq');
  if (msg.kind === 'request' && cs.value.method !== msg.method) {
    // RFC 3261 §8.1.1.5 / RFC 4475 §3.1.2.17: the CSeq method must match the request method.
    return fault('method-mismatch', 'Bad Request - CSeq Method Does Not Match');
  }
  if (maxForwards >= 0) {
    const mf = headers[maxForwards]!.value;
    if (!isDigits(mf, 10) || Number(mf) > 255) return fault('bad-value', 'Bad Request - Malformed Max-Forwards');
  }
  return undefined;
}

/** RFC 3261 §25.1: callid = word [ "@" word ]. */
function isCallId(v: string): boolean {
  const at = v.indexOf('@');
  if (at < 0) return allIn(WORD, v);
  return allIn(WORD, v.slice(0, at)) && allIn(WORD, v.slice(at + 1));
}
