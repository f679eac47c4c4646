import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { routingConfigSchema } from '../../../src/routing/config.ts';
import { Router, type Zone } from '../../../src/routing/router.ts';
import { createResponse, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { StatefulProxy } from '../../../src/sip/proxy/proxy.ts';
import type { ProxyMedia, ProxyTransactions, ProxyTraversal, SipTarget } from '../../../src/sip/proxy/types.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransportInfo,
} from '../../../src/sip/transaction/types.ts';

/*
 * A search that goes on from a traversal zone to another kind of zone (an edge: the core answers 404, the DNS zone is
 * next) anchors the caller's offer again for the new callee leg (docs/routing.md, docs/media.md).
 */

const tick = async () => {
  for (let i = 0; i < 6; i++) await new Promise((r) => setImmediate(r));
};
const SDP = 'v=0\r\no=a 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const UDP_IN: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};
const FLOW: Destination = { transport: 'TLS', address: '10.0.0.2', port: 25001, connectionId: 'core-flow' };
const OUTSIDE: Destination = { transport: 'UDP', address: '203.0.113.9', port: 5060 };

function invite(body: string): SipRequest {
  const text =
    'INVITE sip:bob@example.net SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKx1;rport\r\n' +
    'Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=ft1\r\nTo: <sip:bob@example.net>\r\nCall-ID: call-9\r\n' +
    'CSeq: 1 INVITE\r\nContact: <sip:alice@198.51.100.7>\r\n' +
    (body ? 'Content-Type: application/sdp\r\n' : '') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const r = parseMessage(Buffer.from(text));
  assert.ok(r.ok);
  return r.value as SipRequest;
}

function setup() {
  const clock = new FakeClock();
  const sent: { req: SipRequest; dest: Destination; tx: ClientTransactionHandle }[] = [];
  let n = 0;
  const layer: ProxyTransactions = {
    sendRequest(request, destination) {
      const tx = { key: `c${++n}`, kind: 'ict', request, destination } as unknown as ClientTransactionHandle;
      sent.push({ req: request, dest: destination, tx });
      return tx;
    },
    cancel: () => ({ status: 'pending' as const }),
    sendStateless: () => {},
  };
  const offers: Parameters<ProxyMedia['offer']>[0][] = [];
  const deleted: string[] = [];
  const media: ProxyMedia = {
    async offer(req) {
      offers.push(req);
      return { ok: true as const, value: { sdp: req.sdp.replace(/198\.51\.100\.7/g, `RELAY-${req.to}`) } };
    },
    async answer(req) {
      return { ok: true as const, value: { sdp: req.sdp } };
    },
    delete: (callId) => {
      deleted.push(callId);
      return true;
    },
    has: () => true,
  };
  const config = routingConfigSchema.parse({
    zones: [
      { name: 'tz1', type: 'traversal' },
      { name: 'Internet', type: 'dns' },
    ],
    searchRules: [
      { name: 'core', priority: 10, pattern: { type: 'anyAlias' }, targetZone: 'tz1' },
      { name: 'internet', priority: 20, pattern: { type: 'anyAlias' }, targetZone: 'Internet' },
    ],
  });
  const traversal: ProxyTraversal = {
    sourceZone: () => undefined,
    isTraversalZone: (z) => z === 'tz1',
    viaFlow: (d) => d,
    isFlow: (d) => d.connectionId === FLOW.connectionId,
    registerTarget: () => undefined,
  };
  const router = new Router<SipTarget>({
    config,
    domains: ['example.com'],
    wallNow: () => clock.wallNow(),
    searcher: {
      search: (z: Zone) => [
        { uri: 'sip:bob@example.net', routes: [], destinations: [z.name === 'tz1' ? { ...FLOW } : { ...OUTSIDE }] },
      ],
    },
  });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => [
      { transport: 'UDP', address: '192.0.2.1', port: 5060 },
      { transport: 'TLS', address: '192.0.2.1', port: 5061 },
    ],
    domains: ['example.com'],
    clock,
    dns: { naptr: async () => [], srv: async () => [], a: async () => [], aaaa: async () => [] },
    traversal,
    media: () => media,
  });
  return { sent, offers, deleted, proxy };
}

function server(req: SipRequest) {
  const responses: SipResponse[] = [];
  const tx = {
    key: `s-${Math.random()}`,
    kind: 'ist',
    request: req,
    transportInfo: UDP_IN,
    respond: (r: SipResponse) => {
      responses.push(r);
      return true;
    },
  } as unknown as ServerTransactionHandle;
  return { tx, responses };
}

test('the traversal zone answers 404, the search goes on to the DNS zone: the offer is anchored again for an endpoint leg', async () => {
  const { sent, offers, deleted, proxy } = setup();
  const inv = invite(SDP);
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  assert.deepEqual(
    offers.map((o) => [o.from, o.to]),
    [['endpoint', 'traversal']],
  );
  assert.match(sent[0]!.req.body.toString(), /RELAY-traversal/);
  proxy.onResponse(createResponse(sent[0]!.req, 404, undefined, { toTag: 'x' }), sent[0]!.tx);
  await tick();
  assert.deepEqual(deleted, ['call-9'], 'the traversal-facing ports are given back');
  assert.deepEqual(
    offers.map((o) => [o.from, o.to]),
    [
      ['endpoint', 'traversal'],
      ['endpoint', 'endpoint'],
    ],
  );
  assert.equal(offers[1]!.sdp, SDP, "re-anchored from the caller's own offer");
  assert.equal(sent[1]!.dest.address, OUTSIDE.address);
  assert.match(sent[1]!.req.body.toString(), /RELAY-endpoint/);
  assert.equal(s.responses.length, 0);
});

test('late offer: the search going on only changes the callee leg kind used for the offer in its answer', async () => {
  const { sent, offers, deleted, proxy } = setup();
  const inv = invite('');
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  proxy.onResponse(createResponse(sent[0]!.req, 404, undefined, { toTag: 'x' }), sent[0]!.tx);
  await tick();
  assert.equal(sent.length, 2);
  assert.deepEqual(deleted, []);
  const ok = createResponse(sent[1]!.req, 200, undefined, {
    toTag: 'y',
    headers: [['Content-Type', 'application/sdp']],
    body: Buffer.from(SDP.replace(/198\.51\.100\.7/g, '203.0.113.9')),
  } as Parameters<typeof createResponse>[3]);
  proxy.onResponse(ok, sent[1]!.tx);
  await tick();
  assert.deepEqual(
    offers.map((o) => [o.from, o.to]),
    [['endpoint', 'endpoint']],
    "the callee's offer: from the endpoint (DNS zone) leg",
  );
  assert.equal(s.responses[0]?.status, 200);
});
