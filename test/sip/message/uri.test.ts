import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatUri, parseUri, type SipUri, uriEquals } from '../../../src/sip/message/index.ts';

const p = (s: string): SipUri => {
  const r = parseUri(s);
  if (!r.ok) assert.fail(`${s}: ${r.reason}`);
  return r.value;
};

test('sip URI components: user, password, host, port, params, headers', () => {
  assert.deepEqual(p('sip:alice:secret@Atlanta.COM:5061;transport=tcp;lr?subject=project%20x&priority=urgent'), {
    scheme: 'sip',
    user: 'alice',
    password: 'secret',
    host: 'atlanta.com',
    port: 5061,
    params: [
      ['transport', 'tcp'],
      ['lr', null],
    ],
    headers: [
      ['subject', 'project x'],
      ['priority', 'urgent'],
    ],
  });
  assert.deepEqual(p('SIPS:bob@192.0.2.4'), {
    scheme: 'sips',
    user: 'bob',
    host: '192.0.2.4',
    params: [],
    headers: [],
  });
  assert.deepEqual(p('sip:example.com'), { scheme: 'sip', host: 'example.com', params: [], headers: [] });
});

test('IPv6 references: brackets required, host stored without them, port after the bracket', () => {
  assert.equal(p('sip:[2001:DB8::1]').host, '2001:db8::1');
  assert.equal(p('sip:u@[::1]:5070').port, 5070);
  assert.equal(formatUri(p('sip:u@[::1]:5070')), 'sip:u@[::1]:5070');
  assert.equal(parseUri('sip:2001:db8::1').ok, false);
  assert.equal(parseUri('sip:[2001:db8:::1]').ok, false);
  assert.equal(parseUri('sip:[::1').ok, false);
});

test('escapes: %HH unescaped in user, params and headers; invalid escapes rejected; formatting re-escapes', () => {
  const u = p('sip:%61lice%20b@example.com;na%6De=v%41lue%25');
  assert.equal(u.user, 'alice b');
  assert.deepEqual(u.params, [['name', 'vAlue%']]);
  assert.equal(formatUri(u), 'sip:alice%20b@example.com;name=vAlue%25');
  assert.equal(parseUri('sip:a%2@example.com').ok, false);
  assert.equal(parseUri('sip:a%zz@example.com').ok, false);
  assert.equal(p('sip:%E2%82%AC@example.com').user, '\u20ac');
  assert.equal(p('sip:%FF@example.com').user, '\u00ff', 'invalid UTF-8 kept byte for byte as Latin-1');
});

test('rejections: whitespace, missing host, bad port, bad host, unknown scheme', () => {
  for (const bad of [
    'sip:user@example.com; lr',
    'sip: user@example.com',
    'sip:user@',
    'sip:',
    'sip:host:99999',
    'sip:host:',
    'sip:-host.com',
    'sip:300.1.1.1',
    'sip:192.0.2.01',
    'sip:1.2.3',
    'sip:1.2.3.4.5',
    'sip:<x>',
    'sip:a@b;=x',
    'sip:a@b;',
    'sip:a@b?h',
    'example.com',
    '',
  ]) {
    assert.equal(parseUri(bad).ok, false, bad);
  }
  assert.deepEqual(parseUri('http://example.com'), { ok: false, reason: 'unsupported URI scheme' });
  assert.equal(p('sip:my_host.local').host, 'my_host.local', '"_" is not in the grammar but is accepted');
});

test('tel URIs (RFC 3966)', () => {
  const t = p('tel:+1-201-555-0123;phone-context=example.com');
  assert.equal(t.scheme, 'tel');
  assert.equal(t.user, '+1-201-555-0123');
  assert.deepEqual(t.params, [['phone-context', 'example.com']]);
  assert.equal(formatUri(t), 'tel:+1-201-555-0123;phone-context=example.com');
  assert.ok(uriEquals(t, p('tel:+1.201.555.0123;PHONE-CONTEXT=Example.com')));
  assert.ok(!uriEquals(t, p('tel:+1-201-555-0124;phone-context=example.com')));
  assert.equal(parseUri('tel:;x=1').ok, false);
});

test('RFC 3261 §19.1.4 equivalent URIs', () => {
  const pairs = [
    ['sip:%61lice@atlanta.com;transport=TCP', 'sip:alice@AtLanTa.CoM;Transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;newparam=5'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com;security=on'],
    ['sip:carol@chicago.com;newparam=5', 'sip:carol@chicago.com;security=on'],
    [
      'sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com',
      'sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com',
    ],
    [
      'sip:alice@atlanta.com?subject=project%20x&priority=urgent',
      'sip:alice@atlanta.com?priority=urgent&subject=project%20x',
    ],
  ];
  for (const [a, b] of pairs) {
    assert.ok(uriEquals(p(a!), p(b!)), `${a} == ${b}`);
    assert.ok(uriEquals(p(b!), p(a!)), `${b} == ${a}`);
  }
});

test('RFC 3261 §19.1.4 non-equivalent URIs', () => {
  const pairs = [
    ['SIP:ALICE@AtLanTa.CoM;Transport=udp', 'sip:alice@AtLanTa.CoM;Transport=UDP'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:5060'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com;transport=udp'],
    ['sip:bob@biloxi.com', 'sip:bob@biloxi.com:6000;transport=tcp'],
    ['sip:carol@chicago.com', 'sip:carol@chicago.com?Subject=next%20meeting'],
    ['sip:bob@phone21.boxesbybob.com', 'sip:bob@192.0.2.4'],
    ['sip:alice@atlanta.com', 'sips:alice@atlanta.com'],
    ['sip:alice@atlanta.com;user=phone', 'sip:alice@atlanta.com'],
    ['sip:alice@atlanta.com;maddr=239.255.255.1', 'sip:alice@atlanta.com'],
    ['sip:alice@atlanta.com;ttl=15', 'sip:alice@atlanta.com'],
    ['sip:alice@atlanta.com;method=INVITE', 'sip:alice@atlanta.com'],
    ['sip:alice:pw1@atlanta.com', 'sip:alice:pw2@atlanta.com'],
    ['sip:a@b.com;foo=1', 'sip:a@b.com;foo=2'],
  ];
  for (const [a, b] of pairs) {
    assert.ok(!uriEquals(p(a!), p(b!)), `${a} != ${b}`);
    assert.ok(!uriEquals(p(b!), p(a!)), `${b} != ${a}`);
  }
});

test('formatUri ∘ parseUri is stable on RFC examples', () => {
  for (const s of [
    'sip:alice@atlanta.com',
    'sip:alice:secretword@atlanta.com;transport=tcp',
    'sips:alice@atlanta.com?subject=project%20x&priority=urgent',
    'sip:+1-212-555-1212:1234@gateway.com;user=phone',
    'sips:1212@gateway.com',
    'sip:alice@192.0.2.4',
    'sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com',
    'sip:alice;day=tuesday@atlanta.com',
    'sip:[2001:db8::10]:5070;lr',
  ]) {
    const u = p(s);
    assert.equal(formatUri(u), s);
    assert.deepEqual(p(formatUri(u)), u);
  }
});
