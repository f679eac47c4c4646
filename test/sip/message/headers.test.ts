import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canonicalName,
  formatNameAddr,
  formatVia,
  getParam,
  isListHeader,
  parseAuthorization,
  parseChallenge,
  parseNameAddr,
  parseParams,
  parseVia,
  splitList,
} from '../../../src/sip/message/index.ts';

const ok = <T>(r: { ok: true; value: T } | { ok: false; reason: unknown }): T => {
  if (!r.ok) assert.fail(`failed: ${String(r.reason)}`);
  return r.value;
};

test('compact forms map to long names (RFC 3261 §7.3.3), case-insensitively', () => {
  const cases: Array<[string, string]> = [
    ['i', 'call-id'],
    ['M', 'contact'],
    ['e', 'content-encoding'],
    ['l', 'content-length'],
    ['c', 'content-type'],
    ['f', 'from'],
    ['s', 'subject'],
    ['k', 'supported'],
    ['t', 'to'],
    ['V', 'via'],
    ['o', 'event'],
    ['r', 'refer-to'],
    ['b', 'referred-by'],
    ['u', 'allow-events'],
    ['x', 'session-expires'],
    ['CALL-ID', 'call-id'],
    ['z', 'z'],
  ];
  for (const [name, canon] of cases) assert.equal(canonicalName(name), canon, name);
  assert.ok(isListHeader('v'));
  assert.ok(isListHeader('Record-Route'));
  assert.ok(!isListHeader('WWW-Authenticate'));
  assert.ok(!isListHeader('Date'));
});

test('splitList: commas inside quotes (with escapes) and <> do not split', () => {
  assert.deepEqual(splitList('<sip:a@b>, "Doe, John" <sip:c@d;x=1,2>;q=1 ,sip:e@f'), [
    '<sip:a@b>',
    '"Doe, John" <sip:c@d;x=1,2>;q=1',
    'sip:e@f',
  ]);
  assert.deepEqual(splitList('"a \\", b" <sip:x@y>, <sip:z@w>'), ['"a \\", b" <sip:x@y>', '<sip:z@w>']);
  assert.deepEqual(splitList('a,,b'), ['a', '', 'b']);
  assert.deepEqual(splitList(' single '), ['single']);
});

test('parseParams: flags, values, quoted values, LWS around ; and =, errors', () => {
  assert.deepEqual(ok(parseParams(';tag=1 ; lr ;  q = 0.5;x="a;b"')), [
    ['tag', '1'],
    ['lr', null],
    ['q', '0.5'],
    ['x', '"a;b"'],
  ]);
  assert.deepEqual(ok(parseParams('a=b')), [['a', 'b']]);
  assert.equal(parseParams(';;').ok, false);
  assert.equal(parseParams(';a=').ok, false);
  assert.equal(parseParams(';a="x').ok, false);
  assert.equal(getParam([['TAG', 'x']], 'tag'), 'x');
  assert.equal(getParam([['lr', null]], 'lr'), null);
  assert.equal(getParam([], 'lr'), undefined);
});

test('name-addr: display names, addr-spec params vs URI params, formatting', () => {
  const a = ok(parseNameAddr('"Alice \\"A\\" Liddell" <sip:alice@example.com;transport=tcp>;tag=88sja8x'));
  assert.equal(a.displayName, 'Alice "A" Liddell');
  assert.deepEqual(a.uri.params, [['transport', 'tcp']]);
  assert.deepEqual(a.params, [['tag', '88sja8x']]);
  assert.equal(formatNameAddr(a), '"Alice \\"A\\" Liddell" <sip:alice@example.com;transport=tcp>;tag=88sja8x');
  assert.deepEqual(ok(parseNameAddr(formatNameAddr(a))), a);
  const b = ok(parseNameAddr('sip:bob@example.com;transport=tcp;tag=1'));
  assert.equal(b.displayName, undefined);
  assert.deepEqual(b.uri.params, []);
  assert.deepEqual(b.params, [
    ['transport', 'tcp'],
    ['tag', '1'],
  ]);
  assert.equal(ok(parseNameAddr('Bob  Smith <sip:bob@example.com>')).displayName, 'Bob  Smith');
  assert.equal(ok(parseNameAddr('<tel:+15551234>')).uri.scheme, 'tel');
  assert.equal(ok(parseNameAddr('J\u00fcrgen M\u00fcller <sip:j@example.com>')).displayName, 'J\u00fcrgen M\u00fcller');
  for (const bad of [
    '"unterminated <sip:a@b>',
    'Bell, Alexander <sip:a@b>',
    '< sip:a@b >',
    'sip:a@b?Route=x',
    '<sip:a@b',
    '<sip:a@b>;;',
    '',
  ]) {
    assert.equal(parseNameAddr(bad).ok, false, bad);
  }
  assert.deepEqual(parseNameAddr('<http://example.com>'), { ok: false, reason: 'unsupported URI scheme' });
});

test('Via: LWS in sent-protocol, IPv6 sent-by, rport with and without value (RFC 3581), received', () => {
  const v = ok(parseVia('SIP / 2.0 / udp [2001:db8::1]:5062 ; branch=z9hG4bK776 ;rport;received=192.0.2.1'));
  assert.deepEqual(v, {
    transport: 'UDP',
    host: '2001:db8::1',
    port: 5062,
    params: [
      ['branch', 'z9hG4bK776'],
      ['rport', null],
      ['received', '192.0.2.1'],
    ],
  });
  assert.equal(formatVia(v), 'SIP/2.0/UDP [2001:db8::1]:5062;branch=z9hG4bK776;rport;received=192.0.2.1');
  const w = ok(parseVia('SIP/2.0/TLS proxy.example.com;branch=z9hG4bKx;rport=5061'));
  assert.equal(getParam(w.params, 'rport'), '5061');
  assert.equal(w.port, undefined);
  for (const bad of [
    'SIP/2.0/UDP',
    'SIP/3.0/UDP host',
    'SIP/2.0 host',
    'SIP/2.0/UDP host:x',
    'SIP/2.0/UDP host;;',
    'SIP/2.0/UDPhost',
  ]) {
    assert.equal(parseVia(bad).ok, false, bad);
  }
});

test('Authorization and challenges: digest params unquoted, token68, unknown schemes', () => {
  const a = ok(
    parseAuthorization(
      'Digest username="bob", realm="biloxi.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ' +
        'uri="sip:bob@biloxi.com", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", ' +
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", algorithm=MD5',
    ),
  );
  assert.equal(a.scheme, 'Digest');
  assert.equal(getParam(a.params, 'username'), 'bob');
  assert.equal(getParam(a.params, 'uri'), 'sip:bob@biloxi.com');
  assert.equal(getParam(a.params, 'nc'), '00000001');
  assert.equal(a.params.length, 10);
  const c = ok(parseChallenge('Digest realm="a, b", qop="auth,auth-int", nonce="x\\"y", stale=FALSE'));
  assert.deepEqual(c.params, [
    ['realm', 'a, b'],
    ['qop', 'auth,auth-int'],
    ['nonce', 'x"y'],
    ['stale', 'FALSE'],
  ]);
  assert.deepEqual(ok(parseAuthorization('Basic dXNlcjpwYXNz')), {
    scheme: 'Basic',
    params: [],
    token68: 'dXNlcjpwYXNz',
  });
  assert.equal(parseAuthorization('').ok, false);
  assert.equal(parseAuthorization('Digest realm="x').ok, false);
  assert.equal(parseAuthorization('Digest realm=x realm=y').ok, false);
});
