import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeaders, getTopVia } from '../../../src/sip/message/index.ts';
import { sipZoneSearcher } from '../../../src/sip/proxy/proxy.ts';
import type { ProxyBinding, ProxyListener, SipTarget } from '../../../src/sip/proxy/types.ts';
import type { TransportInfo } from '../../../src/sip/transaction/types.ts';
import { makeProxy, noDns, request, serverTx, settle } from './proxy-fakes.ts';

/*
 * RFC 3261 §16.6 step 4 and RFC 5658: a proxy that receives a request on one interface and sends it out on another
 * records both, the outbound side on top, so each side of the dialog reaches it at the address it can reach. The
 * transport change (TCP → UDP) is in proxy.test.ts; this is the same transport on different addresses.
 */

/** A two-interface node: a public address and an inside one, UDP on both, and IPv6 on the public side. */
const LISTENERS: ProxyListener[] = [
  { transport: 'UDP', address: '192.0.2.1', port: 5060 },
  { transport: 'UDP', address: '10.0.0.1', port: 5060 },
  { transport: 'UDP', address: '2001:db8::1', port: 5060 },
];

const arrivedOn = (address: string, source: string): TransportInfo => ({
  transport: 'UDP',
  reliable: false,
  source: { address: source, port: 5060 },
  local: { address, port: 5060 },
});

function proxyTo(target: SipTarget) {
  return makeProxy({
    routing: {
      zones: [{ name: 'Z', type: 'neighbor', address: '203.0.113.1' }],
      searchRules: [{ name: 'all', pattern: { type: 'anyAlias' }, targetZone: 'Z' }],
    },
    searcher: { search: () => [target] },
    listeners: LISTENERS,
  });
}

describe('proxy: double Record-Route on an interface change (same transport)', () => {
  test('in on the inside address, out on the public one: two Record-Routes, outbound on top; Via names the way out', async () => {
    const { proxy, layer } = proxyTo({
      uri: 'sip:bob@192.0.2.50',
      routes: [],
      destinations: [{ transport: 'UDP', address: '192.0.2.50', port: 5060 }],
    });
    const info = arrivedOn('10.0.0.1', '10.0.0.77');
    const r = request();
    proxy.handle(r, serverTx(r, info).tx, info);
    await settle();
    assert.equal(layer.sent.length, 1);
    const out = layer.sent[0]!.req;
    assert.deepEqual(getHeaders(out, 'record-route'), ['<sip:192.0.2.1:5060;lr>', '<sip:10.0.0.1:5060;lr>']);
    const via = getTopVia(out);
    assert.ok(via?.ok && via.value.host === '192.0.2.1', 'our Via is the outbound address');
  });

  test('IPv4 in, IPv6 out: the IPv6 address on top (bracketed), the IPv4 one below', async () => {
    const { proxy, layer } = proxyTo({
      uri: 'sip:bob@[2001:db8::50]',
      routes: [],
      destinations: [{ transport: 'UDP', address: '2001:db8::50', port: 5060 }],
    });
    const info = arrivedOn('192.0.2.1', '198.51.100.7');
    const r = request();
    proxy.handle(r, serverTx(r, info).tx, info);
    await settle();
    assert.deepEqual(getHeaders(layer.sent[0]!.req, 'record-route'), [
      '<sip:[2001:db8::1]:5060;lr>',
      '<sip:192.0.2.1:5060;lr>',
    ]);
  });

  test('same interface in and out: one Record-Route', async () => {
    const { proxy, layer } = proxyTo({
      uri: 'sip:bob@192.0.2.50',
      routes: [],
      destinations: [{ transport: 'UDP', address: '192.0.2.50', port: 5060 }],
    });
    const info = arrivedOn('192.0.2.1', '198.51.100.7');
    const r = request();
    proxy.handle(r, serverTx(r, info).tx, info);
    await settle();
    assert.deepEqual(getHeaders(layer.sent[0]!.req, 'record-route'), ['<sip:192.0.2.1:5060;lr>']);
  });

  test('in-dialog requests carrying both recorded routes: both are ours and removed (§16.4), from either side', async () => {
    const { proxy, layer } = proxyTo({ uri: 'sip:unused@192.0.2.50', routes: [] });
    // The callee's BYE: its route set is the Record-Route in order; it reaches us on the public side.
    const fromCallee = request({
      method: 'BYE',
      uri: 'sip:alice@10.0.0.77:5060',
      toTag: 'b1',
      extra: 'Route: <sip:192.0.2.1:5060;lr>, <sip:10.0.0.1:5060;lr>\n',
    });
    const pub = arrivedOn('192.0.2.1', '192.0.2.50');
    proxy.handle(fromCallee, serverTx(fromCallee, pub).tx, pub);
    // The caller's re-INVITE: the reverse order; it reaches us on the inside.
    const fromCaller = request({
      method: 'INVITE',
      callId: 'call-2@10.0.0.77',
      uri: 'sip:bob@192.0.2.50:5060',
      toTag: 'b1',
      extra: 'Route: <sip:10.0.0.1:5060;lr>, <sip:192.0.2.1:5060;lr>\n',
    });
    const inside = arrivedOn('10.0.0.1', '10.0.0.77');
    proxy.handle(fromCaller, serverTx(fromCaller, inside).tx, inside);
    await settle();
    assert.equal(layer.sent.length, 2);
    const bye = layer.sent.find((x) => x.req.method === 'BYE')!;
    const reinvite = layer.sent.find((x) => x.req.method === 'INVITE')!;
    assert.deepEqual(getHeaders(bye.req, 'route'), []);
    assert.deepEqual(getHeaders(reinvite.req, 'route'), []);
    assert.deepEqual([bye.dest.address, bye.dest.port], ['10.0.0.77', 5060], 'to the Request-URI');
    assert.deepEqual([reinvite.dest.address, reinvite.dest.port], ['192.0.2.50', 5060]);
    assert.deepEqual(getHeaders(reinvite.req, 'record-route'), [], 'an in-dialog request is not Record-Routed again');
  });
});

describe('proxy: the listener a request leaves from follows its target', () => {
  /** bob registered on the inside listener (10.0.0.1) from 10.0.0.77; carol on the public one (192.0.2.1). */
  const binding = (user: string, local: string, source: string): ProxyBinding => ({
    contact: `sip:${user}@${source}:5060`,
    path: [],
    q: 1000,
    flow: { transport: 'udp', source: { address: source, port: 5060 }, local: { address: local, port: 5060 } },
  });
  const bindings: Record<string, ProxyBinding[]> = {
    'sip:bob@example.com': [binding('bob', '10.0.0.1', '10.0.0.77')],
    'sip:carol@example.com': [binding('carol', '192.0.2.1', '198.51.100.9')],
  };
  const localZone = () =>
    makeProxy({
      routing: { searchRules: [{ name: 'local', pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' }] },
      searcher: sipZoneSearcher({ location: { lookup: (aor) => bindings[aor] ?? [] }, dns: noDns }),
      listeners: LISTENERS,
    });

  test('a registered endpoint is called from the listener its registration arrived on (Via, Record-Route, socket)', async () => {
    const { proxy, layer } = localZone();
    // The call comes in on the public side; bob registered on the inside one.
    const info = arrivedOn('192.0.2.1', '198.51.100.7');
    const r = request();
    proxy.handle(r, serverTx(r, info).tx, info);
    await settle();
    assert.equal(layer.sent.length, 1);
    const { req, dest } = layer.sent[0]!;
    assert.deepEqual(dest.local, { address: '10.0.0.1', port: 5060 }, 'sent from the inside listener');
    const via = getTopVia(req);
    assert.ok(via?.ok && via.value.host === '10.0.0.1', 'our Via names the inside listener');
    assert.deepEqual(getHeaders(req, 'record-route'), ['<sip:10.0.0.1:5060;lr>', '<sip:192.0.2.1:5060;lr>']);
  });

  test('the same call to an endpoint registered on the public side stays there: one Record-Route', async () => {
    const { proxy, layer } = localZone();
    const info = arrivedOn('10.0.0.1', '10.0.0.77');
    const r = request({ uri: 'sip:carol@example.com' });
    proxy.handle(r, serverTx(r, info).tx, info);
    await settle();
    const { req, dest } = layer.sent[0]!;
    assert.deepEqual(dest.local, { address: '192.0.2.1', port: 5060 });
    const via = getTopVia(req);
    assert.ok(via?.ok && via.value.host === '192.0.2.1');
    assert.deepEqual(getHeaders(req, 'record-route'), ['<sip:192.0.2.1:5060;lr>', '<sip:10.0.0.1:5060;lr>']);
  });

  test('a registration on a socket that is not a listener of the transport: the first listener of the family', async () => {
    const { proxy, layer } = makeProxy({
      routing: { searchRules: [{ name: 'local', pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' }] },
      searcher: {
        search: () => [
          {
            uri: 'sip:bob@10.0.0.77:5060',
            routes: [],
            destinations: [
              { transport: 'UDP', address: '10.0.0.77', port: 5060, local: { address: '10.9.9.9', port: 5060 } },
            ],
          },
        ],
      },
      listeners: LISTENERS,
    });
    const info = arrivedOn('192.0.2.1', '198.51.100.7');
    const r = request();
    proxy.handle(r, serverTx(r, info).tx, info);
    await settle();
    const via = getTopVia(layer.sent[0]!.req);
    assert.ok(via?.ok && via.value.host === '192.0.2.1', 'falls back to the rule of transport and family');
  });
});
