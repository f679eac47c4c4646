import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeader, getToTag, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { basicAnswer } from '../../../src/sip/tu/basic-uas.ts';

function request(method: string, extra = '', uri = 'sip:node.example.com', toTag = ''): SipRequest {
  const text =
    `${method} ${uri} SIP/2.0\r\n` +
    'Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n' +
    'Max-Forwards: 70\r\n' +
    'From: <sip:alice@example.com>;tag=1928301774\r\n' +
    `To: <sip:node.example.com>${toTag}\r\n` +
    'Call-ID: a84b4c76e66710@pc33.example.com\r\n' +
    `CSeq: 314159 ${method}\r\n` +
    extra +
    'Content-Length: 0\r\n\r\n';
  const parsed = parseMessage(Buffer.from(text));
  assert.ok(parsed.ok, `test request parses: ${parsed.ok ? '' : parsed.reason.reason}`);
  assert.equal(parsed.value.kind, 'request');
  return parsed.value as SipRequest;
}

test('RFC 3261 §11.2: OPTIONS is answered 200 with Allow, Accept and Supported and a To tag', () => {
  const res = basicAnswer(request('OPTIONS'));
  assert.ok(res);
  assert.equal(res.status, 200);
  assert.match(getHeader(res, 'allow') ?? '', /\bOPTIONS\b/);
  assert.equal(getHeader(res, 'accept'), 'application/sdp');
  assert.notEqual(getHeader(res, 'supported'), undefined);
  assert.ok(getToTag(res), 'a UAS response carries a To tag');
  assert.equal(getHeader(res, 'call-id'), 'a84b4c76e66710@pc33.example.com');
  assert.equal(getHeader(res, 'cseq'), '314159 OPTIONS');
});

test('RFC 3261 §8.2.1: an unknown method gets 501', () => {
  assert.equal(basicAnswer(request('FROBNICATE'))?.status, 501);
});

test('RFC 3261 §8.2.1: a known method the node does not serve gets 405 with Allow', () => {
  const res = basicAnswer(request('INVITE'));
  assert.equal(res?.status, 405);
  assert.match(getHeader(res!, 'allow') ?? '', /OPTIONS/);
});

test('RFC 3261 §8.2.2.3: Require with an unsupported option tag gets 420 listing it in Unsupported', () => {
  const res = basicAnswer(request('OPTIONS', 'Require: foo, 100rel\r\n'));
  assert.equal(res?.status, 420);
  assert.equal(getHeader(res!, 'unsupported'), 'foo, 100rel');
});

test('RFC 3261 §8.2.2.1: an unsupported Request-URI scheme gets 416', () => {
  assert.equal(basicAnswer(request('OPTIONS', '', 'mailto:alice@example.com'))?.status, 416);
});

test('RFC 3261 §12.2.2: a request in an unknown dialog gets 481', () => {
  assert.equal(basicAnswer(request('OPTIONS', '', 'sip:node.example.com', ';tag=abc'))?.status, 481);
});

test('RFC 3261 §9.2: a CANCEL matching no transaction gets 481, a matching one 200', () => {
  assert.equal(basicAnswer(request('CANCEL'))?.status, 481);
  assert.equal(basicAnswer(request('CANCEL'), true)?.status, 200);
});

test('an ACK is never answered', () => {
  assert.equal(basicAnswer(request('ACK')), undefined);
});

test('request handlers take their methods first and extend Allow and Supported', async () => {
  const { BasicUas } = await import('../../../src/sip/tu/basic-uas.ts');
  const uas = new BasicUas();
  const sent: number[] = [];
  const taken: string[] = [];
  const tx = (req: SipRequest) =>
    ({
      key: 'k',
      kind: 'nist',
      state: 'Trying',
      request: req,
      transportInfo: {
        transport: 'UDP',
        reliable: false,
        source: { address: '192.0.2.1', port: 5060 },
        local: { address: '192.0.2.2', port: 5060 },
      },
      respond: (r: { status: number }) => {
        sent.push(r.status);
        return true;
      },
    }) as unknown as Parameters<typeof uas.onRequest>[1];
  const info = tx(request('OPTIONS')).transportInfo;
  uas.use({
    name: 'registrar',
    methods: ['REGISTER'],
    optionTags: ['path'],
    handle: (req) => {
      taken.push(req.method);
      return true;
    },
  });
  uas.onRequest(request('REGISTER'), tx(request('REGISTER')), info);
  assert.deepEqual(taken, ['REGISTER']);
  assert.deepEqual(sent, [], 'the handler answers, not the basic UAS');
  uas.onRequest(request('OPTIONS'), tx(request('OPTIONS')), info);
  assert.deepEqual(sent, [200]);
  assert.match(uas.capabilities.allow.join(','), /REGISTER/);
  assert.deepEqual(uas.capabilities.supported, ['path']);
  // Require: path is now accepted.
  uas.onRequest(request('OPTIONS', 'Require: path\r\n'), tx(request('OPTIONS', 'Require: path\r\n')), info);
  assert.deepEqual(sent, [200, 200]);
});
