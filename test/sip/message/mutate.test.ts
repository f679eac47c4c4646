import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  addHeader,
  createRequest,
  createResponse,
  formatVia,
  getCallId,
  getCSeq,
  getHeader,
  getHeaders,
  getParam,
  getTopVia,
  getToTag,
  getVias,
  newBranch,
  newTag,
  parseMessage,
  prependHeader,
  prependVia,
  removeHeader,
  removeTopVia,
  type SipRequest,
  serializeMessage,
  setHeader,
  setTopViaParams,
} from '../../../src/sip/message/index.ts';

const RAW = [
  'INVITE sip:bob@biloxi.com SIP/2.0',
  'Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport',
  'v: SIP/2.0/TCP p1.example.com;branch=z9hG4bKp1, SIP/2.0/TCP p2.example.com;branch=z9hG4bKp2',
  'Max-Forwards: 70',
  'To: Bob <sip:bob@biloxi.com>',
  'From: Alice <sip:alice@atlanta.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.com',
  'CSeq: 314159 INVITE',
  'Timestamp: 54',
  'X-Custom: kept',
  'content-length: 4',
  '',
  'v=0\n',
].join('\r\n');

function parse(s: string | Buffer = RAW): SipRequest {
  const r = parseMessage(typeof s === 'string' ? Buffer.from(s) : s);
  if (!r.ok) assert.fail(r.reason.reason);
  return r.value as SipRequest;
}

const ok = <T>(r: { ok: true; value: T } | { ok: false; reason: unknown } | undefined): T => {
  if (r === undefined) assert.fail('missing');
  if (!r.ok) assert.fail(`failed: ${String(r.reason)}`);
  return r.value;
};

test('serialize round-trips a parsed message byte for byte when nothing was folded or changed', () => {
  assert.equal(serializeMessage(parse()).toString(), RAW);
});

test('serialize keeps names as received, unfolds values, recomputes Content-Length only when the body changed', () => {
  const m = parse(RAW.replace('X-Custom: kept', 'X-Custom: kept\r\n  and folded'));
  assert.match(serializeMessage(m).toString(), /\r\nX-Custom: kept and folded\r\n/);
  m.body = Buffer.from('v=0\r\ns=-\r\n');
  const out = serializeMessage(m).toString();
  assert.match(out, /\r\ncontent-length: 10\r\n/);
  assert.equal(out.match(/content-length/gi)?.length, 1);
  assert.ok(out.endsWith('\r\n\r\nv=0\r\ns=-\r\n'));
  const noCl = parse(RAW.replace('content-length: 4\r\n', ''));
  assert.match(serializeMessage(noCl).toString(), /\r\nContent-Length: 4\r\n\r\nv=0\n$/);
});

test('addHeader / prependHeader / removeHeader / setHeader are reflected in serialization', () => {
  const m = parse();
  addHeader(m, 'Record-Route', '<sip:p3.example.com;lr>');
  prependHeader(m, 'Record-Route', '<sip:p4.example.com;lr>');
  assert.deepEqual(getHeaders(m, 'record-route'), ['<sip:p4.example.com;lr>', '<sip:p3.example.com;lr>']);
  prependHeader(m, 'Route', '<sip:first.example.com;lr>');
  assert.equal(m.headers[0]!.name, 'Route', 'no Route yet: goes to the top');
  assert.equal(removeHeader(m, 'record-route', 1), 1);
  assert.deepEqual(getHeaders(m, 'Record-Route'), ['<sip:p4.example.com;lr>']);
  setHeader(m, 'Max-Forwards', '69');
  assert.equal(getHeader(m, 'max-forwards'), '69');
  setHeader(m, 'Via', 'SIP/2.0/UDP only.example.com;branch=z9hG4bKonly');
  assert.equal(getHeaders(m, 'via').length, 1);
  assert.equal(removeHeader(m, 'x-custom'), 1);
  assert.equal(removeHeader(m, 'x-custom'), 0);
  const text = serializeMessage(m).toString();
  assert.ok(text.startsWith('INVITE sip:bob@biloxi.com SIP/2.0\r\nRoute: <sip:first.example.com;lr>\r\n'));
  assert.match(text, /Max-Forwards: 69\r\n/);
  assert.ok(!text.includes('X-Custom'));
  const again = parse(serializeMessage(m));
  assert.equal(ok(getTopVia(again)).host, 'only.example.com');
});

test('prependVia / removeTopVia handle comma-joined Via lines (RFC 3261 §16.6, §16.7)', () => {
  const m = parse();
  const branch = newBranch();
  prependVia(m, { transport: 'TLS', host: 'edge.example.com', port: 5061, params: [['branch', branch]] });
  assert.equal(m.headers[0]!.value, `SIP/2.0/TLS edge.example.com:5061;branch=${branch}`);
  assert.deepEqual(
    ok(getVias(m)).map((v) => v.host),
    ['edge.example.com', 'pc33.atlanta.com', 'p1.example.com', 'p2.example.com'],
  );
  assert.equal(ok(removeTopVia(m)).host, 'edge.example.com');
  assert.equal(ok(removeTopVia(m)).host, 'pc33.atlanta.com');
  assert.equal(ok(removeTopVia(m)).host, 'p1.example.com');
  assert.equal(getHeader(m, 'via'), 'SIP/2.0/TCP p2.example.com;branch=z9hG4bKp2');
  assert.equal(ok(removeTopVia(m)).host, 'p2.example.com');
  assert.equal(removeTopVia(m), undefined);
});

test('setTopViaParams sets received and fills rport (RFC 3581 §4)', () => {
  const m = parse();
  assert.ok(setTopViaParams(m, { received: '198.51.100.7', rport: 40312 }));
  const v = ok(getTopVia(m));
  assert.equal(getParam(v.params, 'received'), '198.51.100.7');
  assert.equal(getParam(v.params, 'rport'), '40312');
  assert.equal(getParam(v.params, 'branch'), 'z9hG4bK776asdhds');
  assert.match(
    serializeMessage(m).toString(),
    /Via: SIP\/2.0\/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;rport=40312;received=198.51.100.7\r\n/,
  );
  const n = parse(RAW.replace(';rport', ''));
  assert.ok(setTopViaParams(n, { received: '2001:db8::1' }));
  assert.equal(
    formatVia(ok(getTopVia(n))),
    'SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;received=2001:db8::1',
  );
});

test('createResponse copies Via (all, in order), From, To (+tag), Call-ID, CSeq, Timestamp for 100 (RFC 3261 §8.2.6)', () => {
  const req = parse();
  const tag = newTag();
  const res = createResponse(req, 180, undefined, { toTag: tag, headers: [['Contact', '<sip:bob@192.0.2.4>']] });
  assert.equal(res.reason, 'Ringing');
  assert.deepEqual(getHeaders(res, 'via'), getHeaders(req, 'via'));
  assert.equal(getToTag(res), tag);
  assert.equal(getHeader(res, 'from'), getHeader(req, 'from'));
  assert.equal(getCallId(res), getCallId(req));
  assert.deepEqual(getCSeq(res), getCSeq(req));
  assert.equal(getHeader(res, 'timestamp'), undefined);
  assert.equal(getHeader(createResponse(req, 100), 'timestamp'), '54');
  assert.equal(getHeader(res, 'content-length'), '0');
  const text = serializeMessage(res).toString();
  assert.ok(text.startsWith('SIP/2.0 180 Ringing\r\n'));
  const back = parseMessage(serializeMessage(res));
  assert.ok(back.ok && back.value.kind === 'response' && back.value.status === 180);
  const tagged = createResponse(createReqWithToTag(), 200, 'Fine', { toTag: 'other' });
  assert.equal(getToTag(tagged), 'existing', 'an existing To tag is kept');
  assert.equal(createResponse(req, 400, 'Bad\r\nInjected').reason, 'Bad  Injected');
});

function createReqWithToTag(): SipRequest {
  return parse(RAW.replace('To: Bob <sip:bob@biloxi.com>', 'To: Bob <sip:bob@biloxi.com>;tag=existing'));
}

test('createRequest sets Content-Length and serializes to a parseable request', () => {
  const req = createRequest({
    method: 'OPTIONS',
    uri: { scheme: 'sip', host: 'edge.example.com', port: 7001, params: [['transport', 'tls']], headers: [] },
    headers: [
      ['Via', `SIP/2.0/TLS core.example.com;branch=${newBranch()}`],
      ['Max-Forwards', '70'],
      ['From', `<sip:core@example.com>;tag=${newTag()}`],
      ['To', '<sip:edge@example.com>'],
      ['Call-ID', 'k1@core'],
      ['CSeq', '1 OPTIONS'],
    ],
    body: 'hi',
  });
  assert.equal(req.uri, 'sip:edge.example.com:7001;transport=tls');
  assert.equal(getHeader(req, 'Content-Length'), '2');
  const r = parseMessage(serializeMessage(req), undefined, { transport: 'stream' });
  assert.ok(r.ok);
  if (r.ok) assert.equal(r.value.body.toString(), 'hi');
});

test('newBranch / newTag: magic cookie, token characters, unique', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const b = newBranch();
    assert.match(b, /^z9hG4bK[A-Za-z0-9_-]{12}$/);
    seen.add(b);
    assert.match(newTag(), /^[0-9a-f]{16}$/);
  }
  assert.equal(seen.size, 1000);
});

test('serialization never lets an upper layer inject header lines', () => {
  const m = parse();
  addHeader(m, 'X-Evil', 'a\r\nVia: SIP/2.0/UDP attacker;branch=z9hG4bKx');
  const text = serializeMessage(m).toString();
  assert.match(text, /\r\nX-Evil: a Via: SIP\/2\.0\/UDP attacker;branch=z9hG4bKx\r\n/);
  assert.equal(ok(getVias(parse(serializeMessage(m)))).length, 3, 'no Via was injected');
});

test('a stateless 400 can be built from the partial message of a rejected request', () => {
  const raw = RAW.replace('CSeq: 314159 INVITE', 'CSeq: 314159 BYE');
  const r = parseMessage(Buffer.from(raw));
  assert.ok(!r.ok && r.reason.partial?.kind === 'request');
  if (r.ok || r.reason.partial?.kind !== 'request') return;
  const res = createResponse(r.reason.partial, r.reason.status, r.reason.reason, { toTag: newTag() });
  const back = parseMessage(serializeMessage(res));
  assert.ok(back.ok);
  if (!back.ok || back.value.kind !== 'response') return;
  assert.equal(back.value.status, 400);
  assert.equal(back.value.reason, 'Bad Request - CSeq Method Does Not Match');
  assert.equal(getCallId(back.value), 'a84b4c76e66710@pc33.atlanta.com');
  assert.equal(ok(getVias(back.value)).length, 3);
});
