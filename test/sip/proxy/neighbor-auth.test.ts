import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createResponse, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { dropCredentials, NeighborAuth } from '../../../src/sip/proxy/neighbor-auth.ts';

const req = (() => {
  const r = parseMessage(
    Buffer.from(
      'INVITE sip:bob@n.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKa\r\nMax-Forwards: 70\r\n' +
        'From: <sip:a@example.com>;tag=1\r\nTo: <sip:bob@n.example>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n',
    ),
  );
  assert.ok(r.ok);
  return r.value as SipRequest;
})();
const creds = { username: 'u', password: 'p' };
const challenge = (status: 401 | 407, ...values: string[]) =>
  createResponse(req, status, undefined, {
    toTag: 't',
    headers: values.map((v) => [status === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate', v] as [string, string]),
  });
const nc = (v: string) => /nc=([0-9a-f]{8})/.exec(v)?.[1];

test('no usable challenge (other scheme, unknown algorithm, no nonce): no answer', () => {
  const auth = new NeighborAuth();
  assert.equal(auth.answer(challenge(401, 'Basic realm="r"'), 'Z', creds, 'INVITE', req.uri), undefined);
  assert.equal(
    auth.answer(challenge(401, 'Digest realm="r", nonce="n", algorithm=AKAv1-MD5'), 'Z', creds, 'INVITE', req.uri),
    undefined,
  );
  assert.equal(auth.answer(challenge(407, 'Digest realm="r"'), 'Z', creds, 'INVITE', req.uri), undefined);
  assert.equal(auth.answer(challenge(407), 'Z', creds, 'INVITE', req.uri), undefined);
});

test('one answer per realm, in the header the status asks for; nc counts per nonce and per zone', () => {
  const auth = new NeighborAuth();
  const a = auth.answer(
    challenge(
      407,
      'Digest realm="r1", nonce="n1", qop="auth"',
      'Digest realm="r2", nonce="n2", qop="auth"',
      'Digest realm="r1", nonce="n9", qop="auth"',
    ),
    'Z',
    creds,
    'INVITE',
    req.uri,
  )!;
  assert.equal(a.header, 'Proxy-Authorization');
  assert.deepEqual(a.realms, ['r1', 'r2']);
  assert.equal(a.values.length, 2);
  assert.match(a.values[0]!, /nonce="n1"/);
  const again = auth.answer(
    challenge(401, 'Digest realm="r1", nonce="n1", qop="auth", stale=true'),
    'Z',
    creds,
    'INVITE',
    req.uri,
  )!;
  assert.equal(again.header, 'Authorization');
  assert.equal(again.stale, true);
  assert.equal(nc(again.values[0]!), '00000002');
  const otherZone = auth.answer(
    challenge(401, 'Digest realm="r1", nonce="n1", qop="auth"'),
    'Y',
    creds,
    'INVITE',
    req.uri,
  )!;
  assert.equal(nc(otherZone.values[0]!), '00000001');
});

test('nonce counts are bounded: the oldest nonce is forgotten first', () => {
  const auth = new NeighborAuth(2);
  const ask = (nonce: string) =>
    nc(
      auth.answer(challenge(401, `Digest realm="r", nonce="${nonce}", qop="auth"`), 'Z', creds, 'INVITE', req.uri)!
        .values[0]!,
    );
  assert.equal(ask('a'), '00000001');
  assert.equal(ask('b'), '00000001');
  assert.equal(ask('a'), '00000002');
  assert.equal(ask('c'), '00000001'); // b is the oldest now and goes
  assert.equal(ask('a'), '00000003');
  assert.equal(ask('b'), '00000001');
});

test('dropCredentials removes only the previous answers for the realms answered again', () => {
  const headers = [
    { name: 'Proxy-Authorization', value: 'Digest username="u", realm="r1", nonce="n"' },
    { name: 'Proxy-Authorization', value: 'Digest username="x", realm="other", nonce="n"' },
    { name: 'Authorization', value: 'Digest username="u", realm="r1", nonce="n"' },
  ];
  assert.deepEqual(
    dropCredentials(headers, 'Proxy-Authorization', ['r1']).map(
      (h) => `${h.name}:${/realm="([^"]*)"/.exec(h.value)![1]}`,
    ),
    ['Proxy-Authorization:other', 'Authorization:r1'],
  );
});
