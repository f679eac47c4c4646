import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  getCallId,
  getContacts,
  getContentLength,
  getContentType,
  getCSeq,
  getExpires,
  getFrom,
  getHeader,
  getHeaders,
  getMaxForwards,
  getRecordRoutes,
  getRoutes,
  getTopVia,
  getVias,
  type ParseFailure,
  parseMessage,
  type SipMessage,
} from '../../../src/sip/message/index.ts';

const HEAD = [
  'INVITE sip:bob@biloxi.com SIP/2.0',
  'Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.com>',
  'From: Alice <sip:alice@atlanta.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@pc33.atlanta.com>',
];

function msg(extra: string[] = [], body = '', head = HEAD): Buffer {
  return Buffer.from([...head, ...extra, '', body].join('\r\n'));
}

function good(buf: Buffer, opts?: Parameters<typeof parseMessage>[2]): SipMessage {
  const r = parseMessage(buf, undefined, opts);
  if (!r.ok) assert.fail(r.reason.reason);
  return r.value;
}

function bad(buf: Buffer, limits?: Parameters<typeof parseMessage>[1], opts?: Parameters<typeof parseMessage>[2]) {
  const r = parseMessage(buf, limits, opts);
  if (r.ok) assert.fail('accepted');
  return r.reason as ParseFailure;
}

const ok = <T>(r: { ok: true; value: T } | { ok: false; reason: unknown } | undefined): T => {
  if (r === undefined) assert.fail('missing');
  if (!r.ok) assert.fail(`failed: ${String(r.reason)}`);
  return r.value;
};

test('RFC 3261 §24.2 INVITE: start line, headers in order, typed fields', () => {
  const m = good(msg(['Content-Type: application/sdp', 'Content-Length: 4'], 'v=0\n'));
  assert.equal(m.kind, 'request');
  assert.equal(m.headers.length, 9);
  assert.equal(m.headers[0]!.name, 'Via');
  assert.equal(getCallId(m), 'a84b4c76e66710@pc33.atlanta.com');
  assert.deepEqual(ok(getCSeq(m)), { seq: 314159, method: 'INVITE' });
  assert.equal(ok(getMaxForwards(m)), 70);
  assert.equal(ok(getFrom(m)).displayName, 'Alice');
  assert.deepEqual(ok(getContentType(m)), { type: 'application', subtype: 'sdp', params: [] });
  assert.equal(ok(getContentLength(m)), 4);
  assert.equal(m.body.toString(), 'v=0\n');
});

test('compact forms and folding (RFC 3261 §7.3.1, §7.3.3)', () => {
  const head = [
    'OPTIONS sip:bob@biloxi.com SIP/2.0',
    'v: SIP/2.0/UDP a.example.com;',
    '\tbranch=z9hG4bK1',
    't: <sip:bob@biloxi.com>',
    'f: <sip:alice@atlanta.com>',
    ' ;tag=9',
    'i: abc',
    'CSEQ: 1',
    '  OPTIONS',
    'l: 0',
  ];
  const m = good(msg([], '', head));
  assert.equal(getHeader(m, 'Via'), 'SIP/2.0/UDP a.example.com; branch=z9hG4bK1');
  assert.equal(ok(getTopVia(m)).params[0]![1], 'z9hG4bK1');
  assert.equal(getHeader(m, 'from'), '<sip:alice@atlanta.com> ;tag=9');
  assert.equal(ok(getFrom(m)).params[0]![1], '9');
  assert.deepEqual(ok(getCSeq(m)), { seq: 1, method: 'OPTIONS' });
  assert.equal(m.headers[0]!.name, 'v', 'names kept as received');
});

test('multi-valued headers: several lines and comma lists, quotes and <> respected', () => {
  const m = good(
    msg([
      'Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>',
      'Route: <sip:p3.example.com;lr>',
      'Record-Route: <sip:rr.example.com;lr>',
      'Via: SIP/2.0/TCP b.example.com;branch=z9hG4bK2, SIP/2.0/UDP c.example.com:5070;branch=z9hG4bK3',
      'Contact: "A, B" <sip:a@b.com>;q=0.5, <sip:c@d.com>',
      'Supported: replaces, 100rel',
      'Subject: a, b',
    ]),
  );
  assert.deepEqual(
    ok(getRoutes(m)).map((r) => r.uri.host),
    ['p1.example.com', 'p2.example.com', 'p3.example.com'],
  );
  assert.equal(ok(getRecordRoutes(m)).length, 1);
  assert.deepEqual(
    ok(getVias(m)).map((v) => v.host),
    ['pc33.atlanta.com', 'b.example.com', 'c.example.com'],
  );
  const c = ok(getContacts(m));
  assert.ok(Array.isArray(c));
  assert.equal(c.length, 3);
  assert.equal(c[1]!.displayName, 'A, B');
  assert.deepEqual(getHeaders(m, 'k'), ['replaces', '100rel']);
  assert.deepEqual(getHeaders(m, 'subject'), ['a, b'], 'Subject is not a list header');
});

test('Contact * and Expires', () => {
  const head = HEAD.map((l) => l.replace('INVITE', 'REGISTER')).filter((l) => !l.startsWith('Contact'));
  const m = good(msg(['Contact: *', 'Expires: 0'], '', head));
  assert.equal(ok(getContacts(m)), '*');
  assert.equal(ok(getExpires(m)), 0);
  const n = good(msg(['Expires: 4294967296'], '', head));
  assert.equal(getExpires(n)?.ok, false);
});

test('accessors never throw and report bad values; results are cached until the value changes', () => {
  const m = good(msg(['Route: garbage', 'Content-Type: nonsense', 'Expires: soon']));
  assert.equal(getRoutes(m)?.ok, false);
  assert.equal(getContentType(m)?.ok, false);
  assert.equal(getExpires(m)?.ok, false);
  assert.equal(getRecordRoutes(m), undefined);
  const first = getTopVia(m);
  assert.equal(ok(getTopVia(m)), ok(first), 'same cached object');
  m.headers[0]!.value = 'SIP/2.0/TCP changed.example.com;branch=z9hG4bKz';
  assert.equal(ok(getTopVia(m)).host, 'changed.example.com');
});

test('Content-Length: datagram rest when absent, stream requires it, extra octets dropped, short body refused', () => {
  assert.equal(good(msg([], 'hello')).body.toString(), 'hello');
  const s = bad(msg([], 'hello'), undefined, { transport: 'stream' });
  assert.equal(s.code, 'bad-content-length');
  assert.match(s.reason, /Missing Content-Length/);
  assert.ok(s.partial);
  assert.equal(good(msg(['Content-Length: 3'], 'hello')).body.toString(), 'hel');
  assert.equal(bad(msg(['Content-Length: 9'], 'hello')).code, 'body-mismatch');
  assert.equal(bad(msg(['Content-Length: -1'], '')).code, 'bad-content-length');
  assert.equal(bad(msg(['Content-Length: 1', 'l: 2'], 'ab')).code, 'bad-content-length');
  assert.equal(good(msg(['Content-Length: 2', 'l: 2'], 'ab')).body.toString(), 'ab');
});

test('limits: message bytes → 413, header count and header length → 400, each with a clear reason', () => {
  const big = msg(['Content-Length: 2000'], 'x'.repeat(2000));
  const f = bad(big, { maxMessageBytes: 1024 });
  assert.equal(f.status, 413);
  assert.equal(f.code, 'too-large');
  assert.ok(f.partial, 'headers read: a 413 can be answered');
  const many = msg(Array.from({ length: 20 }, (_, i) => `X-H${i}: ${i}`));
  const g = bad(many, { maxHeaders: 16 });
  assert.equal(g.code, 'too-many-headers');
  assert.match(g.reason, /Too Many Headers/);
  const long = msg([`X-Long: ${'a'.repeat(300)}`]);
  assert.equal(
    bad(Buffer.from(`OPTIONS sip:${'a'.repeat(300)}@b SIP/2.0\r\n\r\n`), { maxHeaderBytes: 256 }).code,
    'header-too-long',
  );
  const h = bad(long, { maxHeaderBytes: 256 });
  assert.equal(h.code, 'header-too-long');
  const folded = msg(['X-Long: a', ...Array.from({ length: 10 }, () => ` ${'b'.repeat(40)}`)]);
  assert.equal(bad(folded, { maxHeaderBytes: 256 }).code, 'header-too-long', 'limit applies after unfolding');
  assert.ok(parseMessage(long).ok, 'default limits accept it');
});

test('mandatory headers and their faults name the header', () => {
  const without = (name: string) =>
    msg(
      [],
      '',
      HEAD.filter((l) => !l.startsWith(name)),
    );
  for (const [name, reason] of [
    ['Via', /Missing Via/],
    ['To', /Missing To/],
    ['From', /Missing From/],
    ['Call-ID', /Missing Call-ID/],
    ['CSeq', /Missing CSeq/],
  ] as const) {
    const f = bad(without(name));
    assert.equal(f.status, 400);
    assert.equal(f.code, 'missing-header');
    assert.match(f.reason, reason);
  }
  assert.ok(parseMessage(without('Max-Forwards')).ok, 'missing Max-Forwards tolerated');
  const replace = (name: string, line: string) => msg([], '', [...HEAD.filter((l) => !l.startsWith(name)), line]);
  assert.match(bad(replace('Via', 'Via: SIP/2.0/UDP')).reason, /Malformed Via/);
  assert.match(bad(replace('CSeq', 'CSeq: 1 BYE')).reason, /CSeq Method/);
  assert.match(bad(replace('CSeq', 'CSeq: x INVITE')).reason, /Malformed CSeq/);
  assert.match(bad(replace('CSeq', 'CSeq: 4294967296 INVITE')).reason, /Malformed CSeq/);
  assert.ok(parseMessage(replace('CSeq', 'CSeq: 4294967295 INVITE')).ok);
  assert.match(bad(replace('Max-Forwards', 'Max-Forwards: 256')).reason, /Max-Forwards/);
  assert.match(bad(replace('Call-ID', 'Call-ID: a b')).reason, /Call-ID/);
  assert.match(bad(replace('Contact', 'Contact: <sip:a@b')).reason, /Contact/);
});

test('start line faults: version → 505, garbage → 400 without partial, status codes', () => {
  const v = bad(Buffer.from(msg().toString().replace('SIP/2.0\r\n', 'SIP/3.0\r\n')));
  assert.equal(v.status, 505);
  assert.ok(v.partial);
  assert.equal(bad(Buffer.from('garbage\r\n\r\n')).code, 'bad-start-line');
  assert.equal(bad(Buffer.from('IN VITE sip:a@b SIP/2.0\r\n\r\n')).code, 'bad-uri');
  assert.equal(bad(Buffer.from('INV@TE sip:a@b SIP/2.0\r\n\r\n')).code, 'bad-start-line');
  assert.equal(bad(Buffer.from('')).code, 'bad-start-line');
  assert.equal(bad(Buffer.from('\r\n\r\n')).code, 'bad-start-line');
  const resp = (line: string) =>
    parseMessage(Buffer.from(`${line}\r\n${HEAD.slice(1).join('\r\n')}\r\nContent-Length: 0\r\n\r\n`));
  assert.ok(resp('SIP/2.0 180 Ringing').ok);
  assert.ok(resp('SIP/2.0 699 x').ok);
  for (const l of ['SIP/2.0 99 Low', 'SIP/2.0 700 High', 'SIP/2.0 20x OK', 'SIP/2.0 2000 OK', 'SIP/2.0']) {
    assert.equal(resp(l).ok, false, l);
  }
  const r505 = resp('SIP/3.0 200 OK');
  assert.ok(!r505.ok && r505.reason.status === 505);
});

test('leading CRLFs are ignored; LF-only line endings are accepted', () => {
  const m = good(Buffer.concat([Buffer.from('\r\n\r\n'), msg(['Content-Length: 2'], 'ok')]));
  assert.equal(m.body.toString(), 'ok');
  const lf = good(Buffer.from([...HEAD, 'Content-Length: 2', '', 'ok'].join('\n')));
  assert.equal(lf.body.toString(), 'ok');
  assert.equal(lf.headers.length, 8);
});

test('header-level structure faults: no colon, bad name, continuation first, bare CR', () => {
  assert.match(bad(msg(['NoColonHere'])).reason, /Malformed Header Line/);
  assert.match(bad(msg(['Bad Name: x'])).reason, /Malformed Header Name/);
  assert.match(bad(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n folded: x\r\n\r\n')).reason, /Continuation/);
  assert.match(bad(msg(['X-A: a\rb'])).reason, /Bare CR/);
});

test('reason phrases are printable ASCII without CR/LF', () => {
  const bads = [
    msg(['NoColonHere']),
    msg(['Content-Length: 9'], 'x'),
    Buffer.from('\u00e9\r\n\r\n'),
    Buffer.from([0xff, 0xfe, 0x0d, 0x0a, 0x0d, 0x0a]),
  ];
  for (const b of bads) assert.match(bad(b).reason, /^[\x20-\x7e]+$/);
});

test('a malformed header line after the headers needed to answer still leaves a partial message', () => {
  const f = bad(msg(['Bad Line Without Colon']));
  assert.equal(f.code, 'bad-header');
  assert.ok(f.partial, 'Via/From/To/Call-ID/CSeq were read before the fault');
  assert.equal(getCallId(f.partial), 'a84b4c76e66710@pc33.atlanta.com');
  const early = bad(Buffer.from('INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nno colon\r\n\r\n'));
  assert.equal(early.partial, undefined, 'From/To/Call-ID/CSeq not read yet');
});

test('invalid UTF-8 in a header is decoded with U+FFFD, not rejected (known lossy: serialization writes UTF-8)', () => {
  const head = HEAD.map((l) => (l.startsWith('From:') ? 'From: "M\u00fcller" <sip:alice@atlanta.com>;tag=1' : l));
  const raw = Buffer.from([...head, 'Content-Length: 0', '', ''].join('\r\n'), 'latin1');
  assert.ok(raw.includes(0xfc), 'a lone Latin-1 byte, invalid as UTF-8');
  const m = good(raw);
  assert.equal(ok(getFrom(m)).displayName, 'M\ufffdller');
});
