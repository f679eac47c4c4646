import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeaders, getTopVia } from '../../../src/sip/message/index.ts';
import type { ProxyListener, SipTarget } from '../../../src/sip/proxy/types.ts';
import type { TransportInfo } from '../../../src/sip/transaction/types.ts';
import { makeProxy, request, serverTx, settle } from './proxy-fakes.ts';

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
