import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import { DialogRelease } from '../../src/media/dialog-release.ts';
import { getHeader, getHeaders, parseMessage } from '../../src/sip/message/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/message/types.ts';
import type { Destination, TransportInfo } from '../../src/sip/transaction/types.ts';

/*
 * Media timeout: the node follows the dialogs it proxies from what it receives and, asked to, sends a BYE to each side
 * (docs/media.md). The node is 192.0.2.1; the caller's side is reached through a proxy p1, the callee's through p2.
 */

const msg = (text: string): SipMessage => {
  const r = parseMessage(Buffer.from(text.replace(/\n/g, '\r\n')));
  assert.ok(r.ok, text);
  return r.value;
};

const FROM_CALLER: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.10', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};
const FROM_CALLEE: TransportInfo = {
  transport: 'TLS',
  reliable: true,
  source: { address: '10.0.0.2', port: 25001 },
  local: { address: '192.0.2.1', port: 7001 },
  connectionId: 'tls-1',
};

const invite = (cseq = 5) =>
  msg(`INVITE sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKp1
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKa
Max-Forwards: 69
From: "Alice" <sip:alice@example.com>;tag=atag
To: <sip:bob@example.com>
Call-ID: call-1
CSeq: ${cseq} INVITE
Contact: <sip:alice@203.0.113.5:5060;transport=udp>
Content-Length: 0

`);

const ok = (rr: string) =>
  msg(`SIP/2.0 200 OK
Via: SIP/2.0/TLS 192.0.2.1:7001;branch=z9hG4bKme
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKp1
Via: SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bKa
${rr}From: "Alice" <sip:alice@example.com>;tag=atag
To: <sip:bob@example.com>;tag=btag
Call-ID: call-1
CSeq: 5 INVITE
Contact: <sip:bob@10.9.9.9:5070>
Content-Length: 0

`);

const RR =
  'Record-Route: <sip:p2.inside;lr>\n' +
  'Record-Route: <sip:192.0.2.1:7001;transport=tls;lr>, <sip:192.0.2.1;lr>\n' +
  'Record-Route: <sip:p1.outside;lr>\n';

function setup(answer = 200) {
  const sent: { req: SipRequest; dest: Destination }[] = [];
  const clock = new FakeClock();
  const d = new DialogRelease({
    clock,
    send: async (req, dest) => {
      sent.push({ req, dest });
      return {
        kind: 'response',
        status: answer,
        reason: '',
        headers: [],
        body: Buffer.alloc(0),
      } as unknown as SipResponse;
    },
    ownUri: (uri) => /^sip:192\.0\.2\.1(:5060|:7001)?(;|$)/.test(uri),
    maxDialogs: 3,
    pendingMs: 1000,
  });
  return { d, sent, clock };
}

test('media timeout release: a BYE to each side as the other side would send it, on the hop that side came from', async () => {
  const { d, sent } = setup();
  d.observe(invite(), FROM_CALLER);
  d.observe(ok(RR), FROM_CALLEE);
  assert.equal(d.size, 1);
  assert.equal(d.pendingCount, 0, 'the answered INVITE is not kept');
  // The callee sent a re-INVITE (CSeq 7) and the caller an INFO (CSeq 6) through the node.
  d.observe(
    msg(`INVITE sip:alice@203.0.113.5 SIP/2.0
Via: SIP/2.0/TLS 10.0.0.2:5061;branch=z9hG4bKr
From: <sip:bob@example.com>;tag=btag
To: "Alice" <sip:alice@example.com>;tag=atag
Call-ID: call-1
CSeq: 7 INVITE
Content-Length: 0

`),
    FROM_CALLEE,
  );
  d.observe(
    msg(`INFO sip:bob@10.9.9.9:5070 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKi
From: "Alice" <sip:alice@example.com>;tag=atag
To: <sip:bob@example.com>;tag=btag
Call-ID: call-1
CSeq: 6 INFO
Content-Length: 0

`),
    FROM_CALLER,
  );
  assert.deepEqual(d.callKeys('call-1'), ['call-1;atag']);
  const r = await d.release('call-1');
  assert.deepEqual(r, { calls: ['call-1;atag'], sent: 2, answered: 2 });
  assert.equal(d.size, 0);

  const toCallee = sent.find((s) => s.req.uri.startsWith('sip:bob'))!;
  assert.equal(toCallee.req.uri, 'sip:bob@10.9.9.9:5070');
  assert.deepEqual(getHeaders(toCallee.req, 'route'), ['<sip:p2.inside;lr>']);
  assert.deepEqual(toCallee.dest, { transport: 'TLS', address: '10.0.0.2', port: 25001, connectionId: 'tls-1' });
  assert.equal(getHeader(toCallee.req, 'from'), '"Alice" <sip:alice@example.com>;tag=atag');
  assert.equal(getHeader(toCallee.req, 'to'), '<sip:bob@example.com>;tag=btag');
  assert.equal(getHeader(toCallee.req, 'cseq'), '106 BYE');
  assert.match(getHeader(toCallee.req, 'via') ?? '', /^SIP\/2\.0\/TLS 192\.0\.2\.1:7001;branch=z9hG4bK/);

  const toCaller = sent.find((s) => s.req.uri.startsWith('sip:alice'))!;
  assert.equal(toCaller.req.uri, 'sip:alice@203.0.113.5:5060;transport=udp');
  assert.deepEqual(getHeaders(toCaller.req, 'route'), ['<sip:p1.outside;lr>']);
  assert.deepEqual(toCaller.dest, { transport: 'UDP', address: '198.51.100.10', port: 5060 });
  assert.equal(getHeader(toCaller.req, 'from'), '<sip:bob@example.com>;tag=btag');
  assert.equal(getHeader(toCaller.req, 'to'), '"Alice" <sip:alice@example.com>;tag=atag');
  assert.equal(getHeader(toCaller.req, 'cseq'), '107 BYE');
  assert.equal(getHeader(toCaller.req, 'call-id'), 'call-1');

  // Released once: nothing left to send.
  assert.deepEqual(await d.release('call-1'), { calls: [], sent: 0, answered: 0 });
});

test('media timeout release: a dialog already ended by a BYE, or not Record-Routed by the node, is not followed', async () => {
  const { d, sent } = setup();
  d.observe(invite(), FROM_CALLER);
  d.observe(ok(RR), FROM_CALLEE);
  d.observe(
    msg(`BYE sip:bob@10.9.9.9:5070 SIP/2.0
Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bKb
From: "Alice" <sip:alice@example.com>;tag=atag
To: <sip:bob@example.com>;tag=btag
Call-ID: call-1
CSeq: 8 BYE
Content-Length: 0

`),
    FROM_CALLER,
  );
  assert.equal(d.size, 0);
  // Same call again without our Record-Route: in-dialog requests would not cross the node, so nothing to end.
  d.observe(invite(9), FROM_CALLER);
  d.observe(ok('Record-Route: <sip:p2.inside;lr>\n'), FROM_CALLEE);
  assert.equal(d.size, 0);
  assert.deepEqual(await d.release('call-1'), { calls: [], sent: 0, answered: 0 });
  assert.equal(sent.length, 0);
});

test('media timeout release: a BYE that is refused or fails is counted, not thrown', async () => {
  const { d } = setup(481);
  d.observe(invite(), FROM_CALLER);
  d.observe(ok(RR), FROM_CALLEE);
  assert.deepEqual(await d.release('call-1'), { calls: ['call-1;atag'], sent: 2, answered: 0 });
  const failing = new DialogRelease({
    clock: new FakeClock(),
    send: async () => {
      throw new Error('transport failure');
    },
    ownUri: (uri) => uri.includes('192.0.2.1'),
  });
  failing.observe(invite(), FROM_CALLER);
  failing.observe(ok(RR), FROM_CALLEE);
  assert.deepEqual(await failing.release('call-1'), { calls: ['call-1;atag'], sent: 2, answered: 0 });
});

test('media timeout release: what it follows is bounded (oldest dialogs first, INVITEs with no 2xx expire)', () => {
  const { d, clock } = setup();
  // Messages it cannot read are ignored, never thrown.
  const junk = [
    { kind: 'request', method: 'INVITE', uri: 'sip:x', headers: [], body: Buffer.alloc(0) },
    { kind: 'response', status: 200, reason: 'OK', headers: [{ name: 'CSeq', value: 'x y z' }], body: Buffer.alloc(0) },
    { kind: 'request', method: 'BYE', uri: 'sip:x', headers: null, body: null },
  ] as unknown as SipMessage[];
  for (const j of junk) d.observe(j, FROM_CALLER);
  for (let i = 0; i < 5; i++) {
    const inv = invite();
    for (const h of inv.headers) if (h.name.toLowerCase() === 'call-id') h.value = `c${i}`;
    const res = ok(RR);
    for (const h of res.headers) if (h.name.toLowerCase() === 'call-id') h.value = `c${i}`;
    d.observe(inv, FROM_CALLER);
    d.observe(res, FROM_CALLEE);
  }
  assert.equal(d.size, 3, 'maxDialogs');
  assert.deepEqual(d.callKeys('c0'), []);
  assert.deepEqual(d.callKeys('c4'), ['c4;atag']);
  assert.ok(d.pendingCount <= 3);
  clock.advance(2000);
  const late = invite();
  for (const h of late.headers) if (h.name.toLowerCase() === 'call-id') h.value = 'late';
  d.observe(late, FROM_CALLER);
  assert.equal(d.pendingCount, 1, 'older INVITEs with no 2xx expired');
});
