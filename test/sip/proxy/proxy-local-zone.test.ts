import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeaders } from '../../../src/sip/message/index.ts';
import { sipZoneSearcher } from '../../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../../src/sip/proxy/resolver.ts';
import type { ProxyBinding, ProxyLocation } from '../../../src/sip/proxy/types.ts';
import type { TransportInfo } from '../../../src/sip/transaction/types.ts';
import { answer, makeProxy, request, serverTx, settle } from './proxy-fakes.ts';

/*
 * The local zone as the SIP searcher sees it: every live binding of the AOR is a target of its own (parallel forking,
 * RFC 3261 §16.5–§16.6). A binding registered directly is reached on its flow; one registered through an edge
 * (RFC 3327 Path) is reached along its Path, which becomes its Route set.
 */

const UDP_IN: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};

const LOCAL = { name: 'LocalZone', type: 'local' } as const;

/** DNS answers only for the edge named in the Path. */
const dns: DnsLookup = {
  naptr: async () => [],
  srv: async () => [],
  a: async (name) => (name === 'edge.example.com' ? ['192.0.2.90'] : []),
  aaaa: async () => [],
};

const DESK: ProxyBinding = {
  contact: 'sip:bob@192.168.1.20:5060',
  path: [],
  q: 1000,
  flow: {
    transport: 'udp',
    source: { address: '203.0.113.50', port: 61000 },
    local: { address: '192.0.2.1', port: 5060 },
  },
};
const MOBILE: ProxyBinding = {
  contact: 'sip:bob@10.9.9.9:5070;transport=tls',
  path: ['<sip:edge.example.com:7001;transport=tls;lr>'],
  q: 500,
  flow: {
    transport: 'TLS',
    source: { address: '192.0.2.90', port: 7001 },
    local: { address: '192.0.2.1', port: 5061 },
    connectionId: 'conn-edge',
  },
};

/** A location service holding bob's two bindings; records the AORs asked for. */
function location() {
  const asked: string[] = [];
  const loc: ProxyLocation = {
    lookup(aor) {
      asked.push(aor);
      return aor === 'sip:bob@example.com' ? [DESK, MOBILE] : [];
    },
  };
  return { loc, asked };
}

describe('proxy: the local zone searcher', () => {
  test('two bindings of the AOR: two targets, one on its flow, one along its Path', async () => {
    const { loc, asked } = location();
    const searcher = sipZoneSearcher({ location: loc, dns });
    const targets = await searcher.search(LOCAL, 'bob@EXAMPLE.com');
    assert.deepEqual(asked, ['sip:bob@example.com'], 'the AOR with its host lower-cased');
    assert.deepEqual(targets, [
      {
        uri: 'sip:bob@192.168.1.20:5060',
        routes: [],
        destinations: [
          { transport: 'UDP', address: '203.0.113.50', port: 61000, local: { address: '192.0.2.1', port: 5060 } },
        ],
      },
      { uri: 'sip:bob@10.9.9.9:5070;transport=tls', routes: ['sip:edge.example.com:7001;transport=tls;lr'] },
    ]);
    assert.deepEqual(await searcher.search(LOCAL, 'carol@example.com'), [], 'no binding: not found');
    assert.deepEqual(await sipZoneSearcher({ dns }).search(LOCAL, 'bob@example.com'), [], 'no location service');
  });

  test('through the proxy: forked to both; the Path binding goes to the edge with the Path as Route', async () => {
    const { loc } = location();
    const { proxy, layer, calls } = makeProxy({
      routing: {}, // the default rule: any alias to LocalZone
      searcher: sipZoneSearcher({ location: loc, dns }),
      dns,
      listeners: [
        { transport: 'UDP', address: '192.0.2.1', port: 5060 },
        { transport: 'TLS', address: '192.0.2.1', port: 5061 },
      ],
    });
    const r = request({ uri: 'sip:bob@example.com' });
    const s = serverTx(r, UDP_IN);
    proxy.handle(r, s.tx, UDP_IN);
    await settle();
    assert.equal(layer.sent.length, 2);
    const desk = layer.sent.find((x) => x.req.uri.includes('192.168.1.20'));
    const mobile = layer.sent.find((x) => x.req.uri.includes('10.9.9.9'));
    assert.equal(desk!.req.uri, 'sip:bob@192.168.1.20:5060');
    assert.deepEqual(desk!.dest, {
      transport: 'UDP',
      address: '203.0.113.50',
      port: 61000,
      local: { address: '192.0.2.1', port: 5060 },
    });
    assert.deepEqual(getHeaders(desk!.req, 'route'), []);
    assert.equal(mobile!.req.uri, 'sip:bob@10.9.9.9:5070;transport=tls');
    assert.deepEqual(getHeaders(mobile!.req, 'route'), ['<sip:edge.example.com:7001;transport=tls;lr>']);
    assert.deepEqual([mobile!.dest.transport, mobile!.dest.address, mobile!.dest.port], ['TLS', '192.0.2.90', 7001]);

    // The desk phone answers: the mobile branch is cancelled, the caller gets the 200, the call has two legs.
    proxy.onResponse(answer(desk!.req, 180), desk!.tx);
    proxy.onResponse(answer(mobile!.req, 180), mobile!.tx);
    proxy.onResponse(answer(desk!.req, 200), desk!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [180, 180, 200],
    );
    assert.deepEqual(layer.cancelled, [mobile!.tx]);
    const active = calls.active();
    assert.equal(active.length, 1);
    assert.deepEqual(
      active[0]!.legs.map((l) => l.target),
      ['sip:bob@192.168.1.20:5060', 'sip:bob@10.9.9.9:5070;transport=tls'],
    );
  });
});
