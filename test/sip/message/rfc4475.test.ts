import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import {
  getCallId,
  getContacts,
  getCSeq,
  getFrom,
  getFromTag,
  getHeader,
  getHeaders,
  getMaxForwards,
  getRequestUri,
  getTo,
  getTopVia,
  getToTag,
  getVias,
  type ParseFailure,
  parseAuthorization,
  parseMessage,
  type SipMessage,
  type SipRequest,
  type SipResponse,
  serializeMessage,
  UNSUPPORTED_SCHEME,
} from '../../../src/sip/message/index.ts';

// RFC 4475 "SIP Torture Test Messages": every message of the archive, named after the RFC's own ids, against the
// verdicts of test/vectors/sip/rfc4475/index.tsv.
const dir = new URL('../../vectors/sip/rfc4475/', import.meta.url);
const load = (f: string) => readFileSync(new URL(f, dir));
const rows = readFileSync(new URL('index.tsv', dir), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((l) => l.split('\t'));

function valid(id: string): SipMessage {
  const r = parseMessage(load(`${id}.dat`));
  if (!r.ok) assert.fail(`${id}: ${r.reason.code} ${r.reason.reason}`);
  // Round trip: the serialized message parses to the same start line, headers and body.
  const again = parseMessage(serializeMessage(r.value));
  if (!again.ok) assert.fail(`${id} reparse: ${again.reason.reason}`);
  const strip = (m: SipMessage) => ({ ...m, headers: m.headers.filter((h) => !/^(content-length|l)$/i.test(h.name)) });
  assert.deepEqual(strip(again.value), strip(r.value));
  assert.equal(getHeader(again.value, 'content-length'), String(r.value.body.length));
  return r.value;
}

function req(id: string): SipRequest {
  const m = valid(id);
  assert.equal(m.kind, 'request');
  return m as SipRequest;
}

function invalid(id: string, status: number, reason: RegExp, code?: ParseFailure['code']): ParseFailure {
  const r = parseMessage(load(`${id}.dat`));
  if (r.ok) assert.fail(`${id} was accepted`);
  assert.equal(r.reason.status, status, `${id}: ${r.reason.reason}`);
  assert.match(r.reason.reason, reason);
  assert.match(r.reason.reason, /^[\x20-\x7e]+$/, 'reason phrase is printable ASCII');
  if (code) assert.equal(r.reason.code, code);
  return r.reason;
}

const ok = <T>(r: { ok: true; value: T } | { ok: false; reason: unknown } | undefined): T => {
  if (r === undefined) assert.fail('missing');
  if (!r.ok) assert.fail(`failed: ${String(r.reason)}`);
  return r.value;
};

test('index.tsv lists the 50 archived messages and every one is present', () => {
  const files = rows.map((r) => r[0]);
  assert.equal(files.length, 50);
  for (const f of files) assert.ok(load(f!).length > 0);
});

test('wsinv: short tortuous INVITE (folding, LWS, compact and mixed-case names)', () => {
  const m = req('wsinv');
  assert.equal(m.method, 'INVITE');
  const ruri = ok(getRequestUri(m));
  assert.equal(ruri.user, 'vivekg');
  assert.equal(ruri.host, 'chair-dnrc.example.com');
  assert.deepEqual(ruri.params, [['unknownparam', null]]);
  assert.equal(getToTag(m), '1918181833n');
  assert.equal(getFromTag(m), '98asjd8');
  assert.equal(ok(getFrom(m)).displayName, 'J Rosenberg \\"');
  assert.equal(ok(getMaxForwards(m)), 68);
  assert.deepEqual(ok(getCSeq(m)), { seq: 9, method: 'INVITE' });
  assert.equal(getCallId(m), 'wsinv.ndaksdj@192.0.2.1');
  const vias = ok(getVias(m));
  assert.deepEqual(
    vias.map((v) => [v.transport, v.host, v.params]),
    [
      ['UDP', '192.0.2.2', [['branch', '390skdjuw']]],
      ['TCP', 'spindle.example.com', [['branch', 'z9hG4bK9ikj8']]],
      ['UDP', '192.168.255.111', [['branch', 'z9hG4bK30239']]],
    ],
  );
  assert.equal(getHeader(m, 'Subject'), '');
  assert.equal(getHeader(m, 'newfangledheader'), 'newfangled value continued newfangled value');
  assert.equal(getHeader(m, 'UnknownHeaderWithUnusualValue'), ';;,,;;,;');
  const contacts = ok(getContacts(m));
  assert.ok(Array.isArray(contacts));
  assert.equal(contacts[0]!.displayName, 'Quoted string ""');
  assert.deepEqual(contacts[0]!.params, [
    ['newparam', 'newvalue'],
    ['secondparam', null],
    ['q', '0.33'],
  ]);
  assert.equal(m.body.length, 150);
});

test('intmeth: wide range of valid characters', () => {
  const m = req('intmeth');
  assert.equal(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
  const ruri = ok(getRequestUri(m));
  assert.equal(ruri.user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  assert.equal(ruri.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  assert.equal(ruri.host, 'example.com');
  assert.equal(ok(getTo(m)).displayName, 'BEL:\x07 NUL:\x00 DEL:\x7f');
  assert.equal(ok(getFrom(m)).displayName, "token1~` token2'+_ token3*%!.-");
  assert.equal(getFromTag(m), "_token~1'+`*%!-.");
  assert.deepEqual(ok(getFrom(m)).params[0], [
    "fromParam''~+*_!.-%",
    '"\u0440\u0430\u0431\u043e\u0442\u0430\u044e\u0449\u0438\u0439"',
  ]);
  assert.equal(getCallId(m), 'intmeth.word%ZK-!.*_+\'@word`~)(><:\\/"][?}{');
  assert.deepEqual(ok(getCSeq(m)), { seq: 139122385, method: m.method });
  assert.equal(ok(getTopVia(m)).params[0]![1], "z9hG4bK-.!%66*_+`'~");
  assert.equal(getHeader(m, "extensionHeader-!.%*+_`'~"), '\ufeff\u5927\u505c\u96fb');
  assert.equal(m.body.length, 0);
});

test('esc01: valid use of the % escaping mechanism', () => {
  const m = req('esc01');
  assert.equal(ok(getRequestUri(m)).user, 'sips:user@example.com');
  assert.equal(ok(getTo(m)).uri.user, 'user');
  assert.equal(ok(getFrom(m)).uri.user, 'I have spaces');
  const c = ok(getContacts(m));
  assert.ok(Array.isArray(c));
  assert.equal(c[0]!.uri.user, 'caller');
  // %25%34%31 unescapes once to "%41", never to "A".
  assert.deepEqual(c[0]!.uri.params, [
    ['lr', null],
    ['name', 'value%41'],
  ]);
  assert.equal(m.body.length, 150);
});

test('escnull: escaped nulls in URIs do not truncate the user part', () => {
  const m = req('escnull');
  assert.equal(ok(getTo(m)).uri.user, 'null-\x00-null');
  const c = ok(getContacts(m));
  assert.ok(Array.isArray(c));
  assert.deepEqual(
    c.map((x) => x.uri.user),
    ['\x00', '\x00\x00'],
  );
});

test('esc02: % that is not an escape (unknown method, extension header C%6Fntact)', () => {
  const m = req('esc02');
  assert.equal(m.method, 'RE%47IST%45R');
  assert.equal(ok(getCSeq(m)).method, 'RE%47IST%45R');
  assert.equal(ok(getTo(m)).displayName, '%Z%45');
  const c = ok(getContacts(m));
  assert.ok(Array.isArray(c));
  assert.deepEqual(
    c.map((x) => x.uri.host),
    ['host1.example.com', 'host3.example.com'],
  );
  assert.equal(getHeader(m, 'C%6Fntact'), '<sip:alias2@host2.example.com>');
});

test('lwsdisp: no LWS between display name and <', () => {
  const m = req('lwsdisp');
  const from = ok(getFrom(m));
  assert.equal(from.displayName, 'caller');
  assert.equal(from.uri.user, 'caller');
});

test('longreq: long values in header fields', () => {
  const m = req('longreq');
  assert.equal(ok(getVias(m)).length, 34);
  const to = ok(getTo(m));
  assert.equal(to.uri.port, 6000);
  assert.ok(to.displayName!.startsWith('I have a user name of extremeextreme'));
  assert.ok(getFromTag(m)!.length > 150);
  assert.ok(getCallId(m)!.startsWith('longreq.onereallyreallyreally'));
  assert.equal(ok(getContacts(m)).length, 1);
  assert.equal(m.body.length, 150);
});

test('dblreq: extra trailing octets in a UDP datagram are discarded', () => {
  const m = req('dblreq');
  assert.equal(m.method, 'REGISTER');
  assert.equal(m.body.length, 0);
  assert.equal(getCallId(m), 'dblreq.0ha0isndaksdj99sdfafnl3lk233412');
  assert.ok(!serializeMessage(m).toString().includes('INVITE'));
});

test('semiuri: semicolon-separated parameters in the URI user part', () => {
  const m = req('semiuri');
  const ruri = ok(getRequestUri(m));
  assert.equal(ruri.user, 'user;par=u@example.net');
  assert.equal(ruri.host, 'example.com');
  assert.deepEqual(ruri.params, []);
  assert.deepEqual(getHeaders(m, 'Accept'), [
    'application/sdp',
    'application/pkcs7-mime',
    'multipart/mixed',
    'multipart/signed',
    'message/sip',
    'message/sipfrag',
  ]);
});

test('transports: varied and unknown transport types', () => {
  const m = req('transports');
  assert.deepEqual(
    ok(getVias(m)).map((v) => `${v.transport} ${v.host}`),
    ['UDP t1.example.com', 'SCTP t2.example.com', 'TLS t3.example.com', 'UNKNOWN t4.example.com', 'TCP t5.example.com'],
  );
});

test('mpart01: multipart MIME body with NUL and bare CR octets is kept byte for byte', () => {
  const raw = load('mpart01.dat');
  const m = req('mpart01');
  assert.equal(m.method, 'MESSAGE');
  const cl = Number(getHeader(m, 'Content-Length'));
  assert.equal(m.body.length, cl);
  assert.ok(m.body.includes(0));
  assert.deepEqual(m.body, raw.subarray(raw.length - cl));
  assert.deepEqual(ok(getTopVia(m)).params.at(-1), ['rport', null]);
});

test('unreason: unusual reason phrase with UTF-8', () => {
  const m = valid('unreason') as SipResponse;
  assert.equal(m.kind, 'response');
  assert.equal(m.status, 200);
  assert.equal(
    m.reason,
    '= 2**3 * 5**2 \u043d\u043e \u0441\u0442\u043e \u0434\u0435\u0432\u044f\u043d\u043e\u0441\u0442\u043e \u0434\u0435\u0432\u044f\u0442\u044c - \u043f\u0440\u043e\u0441\u0442\u043e\u0435',
  );
  assert.equal(m.body.length, 154);
});

test('noreason: empty reason phrase', () => {
  const m = valid('noreason') as SipResponse;
  assert.equal(m.status, 100);
  assert.equal(m.reason, '');
});

test('badinv01: extraneous header field separators → 400 Malformed Via', () => {
  const f = invalid('badinv01', 400, /Via/, 'bad-via');
  assert.ok(f.partial, 'answerable statelessly');
});

test('clerr: Content-Length larger than the message → 400', () => {
  invalid('clerr', 400, /Content-Length/, 'body-mismatch');
});

test('ncl: negative Content-Length → rejected', () => {
  invalid('ncl', 400, /Content-Length/, 'bad-content-length');
});

test('scalar02: overlarge scalar fields in a request → 400 CSeq', () => {
  const f = invalid('scalar02', 400, /CSeq/, 'bad-cseq');
  assert.ok(f.partial);
});

test('scalarlg: overlarge scalar fields in a response → rejected (dropped)', () => {
  const f = invalid('scalarlg', 400, /CSeq/, 'bad-cseq');
  assert.equal(f.partial, undefined, 'responses are never answered');
});

test('quotbal: unterminated quoted string in display name → 400 Malformed To', () => {
  invalid('quotbal', 400, /To/, 'bad-header');
});

test('ltgtruri: <> enclosing Request-URI → 400', () => {
  invalid('ltgtruri', 400, /Request-URI/, 'bad-uri');
});

test('lwsruri: embedded LWS in Request-URI → 400', () => {
  invalid('lwsruri', 400, /Request-URI/, 'bad-uri');
});

test('lwsstart: multiple SP between request-line elements is liberally accepted', () => {
  const m = req('lwsstart');
  assert.equal(m.method, 'INVITE');
  assert.equal(m.uri, 'sip:user@example.com');
  assert.equal(m.version, 'SIP/2.0');
});

test('trws: SP at end of request line is liberally accepted', () => {
  const m = req('trws');
  assert.equal(m.version, 'SIP/2.0');
  assert.equal(m.uri, 'sip:remote-target@example.com');
});

test('escruri: escaped headers in Request-URI → 400', () => {
  invalid('escruri', 400, /Request-URI/, 'bad-uri');
});

test('baddate: invalid time zone in Date is ignored (not parsed)', () => {
  const m = req('baddate');
  assert.match(getHeader(m, 'Date')!, /EST$/);
});

test('regbadct: name-addr URI with headers not enclosed in <> → 400 Malformed Contact', () => {
  invalid('regbadct', 400, /Contact/, 'bad-header');
});

test('badaspec: spaces within addr-spec → 400 Malformed To', () => {
  invalid('badaspec', 400, /To/, 'bad-header');
});

test('baddn: non-token characters in display name → 400 Malformed From', () => {
  invalid('baddn', 400, /From/, 'bad-header');
});

test('badvers: unknown protocol version → 505', () => {
  const f = invalid('badvers', 505, /Version Not Supported/, 'bad-version');
  assert.ok(f.partial, 'a 505 can be sent statelessly');
});

test('mismatch01: CSeq method mismatch → 400', () => {
  invalid('mismatch01', 400, /CSeq Method/, 'method-mismatch');
});

test('mismatch02: unknown method with CSeq method mismatch → 400', () => {
  invalid('mismatch02', 400, /CSeq Method/, 'method-mismatch');
});

test('bigcode: overlarge response code → rejected, never answered', () => {
  const f = invalid('bigcode', 400, /Status Code/, 'bad-start-line');
  assert.equal(f.partial, undefined);
});

test('badbranch: bare magic cookie as branch parses', () => {
  const m = req('badbranch');
  assert.deepEqual(ok(getTopVia(m)).params, [['branch', 'z9hG4bK']]);
});

test('insuf: missing required header fields → 400 naming one', () => {
  const f = invalid('insuf', 400, /Missing (To|From|Call-ID)/, 'missing-header');
  assert.equal(f.partial, undefined, 'not answerable without From/To/Call-ID');
});

test('unkscm: unknown Request-URI scheme parses; the URI is reported unsupported (for 416)', () => {
  const m = req('unkscm');
  assert.equal(m.uri, 'nobodyKnowsThisScheme:totallyopaquecontent');
  const r = getRequestUri(m);
  assert.deepEqual(r, { ok: false, reason: UNSUPPORTED_SCHEME });
});

test('novelsc: known but atypical scheme parses', () => {
  const m = req('novelsc');
  assert.match(m.uri, /^soap\.beep:\/\//);
  assert.equal(getRequestUri(m).ok, false);
});

test('unksm2: unknown URI schemes in To/From/Contact parse; typed access reports the scheme', () => {
  const m = req('unksm2');
  assert.deepEqual(getTo(m), { ok: false, reason: UNSUPPORTED_SCHEME });
  assert.deepEqual(getFrom(m), { ok: false, reason: UNSUPPORTED_SCHEME });
  assert.equal(getFromTag(m), '3234233');
  assert.deepEqual(getContacts(m), { ok: false, reason: UNSUPPORTED_SCHEME });
});

test('bext01: Require and Proxy-Require option tags are listed', () => {
  const m = req('bext01');
  assert.ok(getHeaders(m, 'Require').length >= 1);
  assert.ok(getHeaders(m, 'Proxy-Require').length >= 1);
});

test('invut: unknown Content-Type parses', () => {
  const m = req('invut');
  assert.equal(getHeader(m, 'c'), 'application/unknownformat');
  assert.equal(m.body.length, Number(getHeader(m, 'content-length')));
});

test('regaut01: unknown Authorization scheme parses', () => {
  const m = req('regaut01');
  const a = ok(parseAuthorization(getHeader(m, 'Authorization')!));
  assert.equal(a.scheme, 'NoOneKnowsThisScheme');
  assert.deepEqual(a.params, [['opaque-data', 'here']]);
});

test('multi01: multiple values in single-value headers → 400', () => {
  invalid('multi01', 400, /Multiple/);
});

test('mcl01: multiple conflicting Content-Length values → rejected', () => {
  invalid('mcl01', 400, /Content-Length/, 'bad-content-length');
});

test('bcast: broadcast Via sent-by parses', () => {
  const m = valid('bcast');
  assert.equal(ok(getVias(m))[1]!.host, '255.255.255.255');
});

test('zeromf: Max-Forwards of zero', () => {
  assert.equal(ok(getMaxForwards(req('zeromf'))), 0);
});

test('cparam01: Contact without <> — unknownparam is a header param', () => {
  const c = ok(getContacts(req('cparam01')));
  assert.ok(Array.isArray(c));
  assert.deepEqual(c[0]!.params, [['unknownparam', null]]);
  assert.deepEqual(c[0]!.uri.params, []);
  assert.equal(c[0]!.uri.user, '+19725552222');
});

test('cparam02: Contact in <> — unknownparam is a URI param', () => {
  const c = ok(getContacts(req('cparam02')));
  assert.ok(Array.isArray(c));
  assert.deepEqual(c[0]!.params, []);
  assert.deepEqual(c[0]!.uri.params, [['unknownparam', null]]);
});

test('regescrt: compact Contact with escaped ?Route header in <>', () => {
  const c = ok(getContacts(req('regescrt')));
  assert.ok(Array.isArray(c));
  assert.deepEqual(c[0]!.uri.headers, [['Route', '<sip:sip.example.com>']]);
});

test('sdp01: Accept offering nothing usable still parses', () => {
  const m = req('sdp01');
  assert.deepEqual(getHeaders(m, 'Accept'), ['text/nobodyKnowsThis']);
  assert.equal(m.body.length, 150);
});

test('inv2543: RFC 2543 syntax (no branch, no Max-Forwards, no Content-Length) is accepted', () => {
  const m = req('inv2543');
  assert.equal(getHeader(m, 'max-forwards'), undefined);
  assert.equal(getHeader(m, 'content-length'), undefined);
  assert.equal(ok(getTopVia(m)).params.length, 0);
  assert.ok(m.body.length > 0, 'body is the rest of the datagram');
  assert.ok(serializeMessage(m).toString().includes(`Content-Length: ${m.body.length}\r\n`));
});

test('test.dat (archive extra, not in RFC 4475): request line without version → 400', () => {
  const r = parseMessage(load('test.dat'));
  assert.equal(r.ok, false);
  if (!r.ok) assert.equal(r.reason.status, 400);
});

test('every message the index calls invalid is rejected, except those it allows a liberal element to accept', () => {
  const liberal = new Set(['lwsstart.dat', 'trws.dat', 'baddate.dat']);
  for (const [file, , , verdict] of rows) {
    const r = parseMessage(load(file!));
    if (verdict === 'valid') assert.ok(r.ok, `${file} should parse`);
    else if (verdict === 'invalid' && !liberal.has(file!)) assert.equal(r.ok, false, `${file} should be rejected`);
  }
});

test('partial messages allow a stateless 400 with the original Via/From/To/Call-ID/CSeq', () => {
  const f = invalid('mismatch01', 400, /CSeq/);
  const p = f.partial!;
  assert.equal(p.kind, 'request');
  assert.ok(getCallId(p));
  assert.ok(getTopVia(p)?.ok);
});
