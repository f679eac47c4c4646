import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import { createRequest } from '../../src/sip/message/index.ts';
import type { SipTarget } from '../../src/sip/proxy/types.ts';
import type { ServerTransactionHandle } from '../../src/sip/transaction/types.ts';
import { TraversalRoutes } from '../../src/traversal/routes.ts';
import { TraversalServerZone } from '../../src/traversal/server-zone.ts';

const notFound = { search: () => [] as SipTarget[] };

async function activeServerZone(): Promise<TraversalServerZone> {
  const z = new TraversalServerZone({ name: 'tz1', port: 7001, realm: 'traversal', clock: new FakeClock() });
  const req = createRequest({
    method: 'OPTIONS',
    uri: 'sip:192.0.2.1:7001',
    headers: [
      ['Via', 'SIP/2.0/TLS 10.0.0.2;branch=z9hG4bKx'],
      ['From', '<sip:tz1@10.0.0.2>;tag=a'],
      ['To', '<sip:192.0.2.1>'],
      ['Call-ID', 'c'],
      ['CSeq', '1 OPTIONS'],
    ],
  });
  // No authenticator configured: the first flow on the listener is the zone's.
  z.handle(req, { respond: () => true } as unknown as ServerTransactionHandle, {
    transport: 'TLS',
    reliable: true,
    source: { address: '10.0.0.2', port: 25007 },
    local: { address: '192.0.2.1', port: 7001 },
    connectionId: 'conn-1',
  });
  return z;
}

test("edge routes: requests for the core (its address, its zone, its domains) go down the core's own connection", async () => {
  const sz = await activeServerZone();
  const r = new TraversalRoutes({
    servers: [sz],
    clients: [],
    domains: new Map([['example.com', 'tz1']]),
    zoneNames: new Set(['tz1']),
  });
  const flow = { transport: 'TLS', address: '10.0.0.2', port: 25007, connectionId: 'conn-1' };
  // A Record-Route of the core (its TLS listener) is reached on the flow, never by a new inbound connection.
  assert.deepEqual(r.viaFlow({ transport: 'TLS', address: '10.0.0.2', port: 5061 }), flow);
  assert.deepEqual(r.viaFlow({ transport: 'UDP', address: '198.51.100.7', port: 5060 }), {
    transport: 'UDP',
    address: '198.51.100.7',
    port: 5060,
  });
  assert.equal(r.isFlow(flow), true);
  // Requests sent down the flow are Record-Routed with the edge's traversal listener (the flow's local end).
  assert.deepEqual(r.flowListener(flow), { transport: 'TLS', address: '192.0.2.1', port: 7001 });
  assert.equal(r.flowListener({ transport: 'UDP', address: '198.51.100.7', port: 5060 }), undefined);
  assert.equal(r.isFlow({ transport: 'UDP', address: '198.51.100.7', port: 5060 }), false);
  assert.equal(
    r.sourceZone({ transport: 'TLS', source: { address: '10.0.0.2', port: 25007 }, connectionId: 'conn-1' }),
    'tz1',
  );
  assert.equal(
    r.sourceZone({ transport: 'TLS', source: { address: '10.0.0.2', port: 25007 }, connectionId: 'other' }),
    undefined,
  );
  assert.deepEqual(r.registerTarget('example.com'), {
    zone: 'tz1',
    target: { uri: '', routes: [], destinations: [flow] },
  });
  assert.equal(r.registerTarget('elsewhere.org'), undefined);
  const hits = await r
    .searcher(notFound)
    .search({ name: 'tz1', type: 'traversal', transport: 'udp', trusted: false }, 'bob@example.com');
  assert.deepEqual(hits, [{ uri: 'sip:bob@example.com', routes: [], destinations: [flow] }]);
  // Other zone types are the base searcher's.
  assert.deepEqual(await r.searcher(notFound).search({ name: 'LocalZone', type: 'local' }, 'bob@example.com'), []);
  // The flow gone: nothing found, and REGISTER has nowhere to go (the proxy answers 503).
  sz.connectionClosed('conn-1');
  assert.deepEqual(
    await r
      .searcher(notFound)
      .search({ name: 'tz1', type: 'traversal', transport: 'udp', trusted: false }, 'bob@example.com'),
    [],
  );
  assert.deepEqual(r.registerTarget('example.com'), { zone: 'tz1', target: { uri: '', routes: [] } });
});

test('core routes: everything for the edge goes to its traversal listener, which the transport reaches on the open flow', () => {
  const r = new TraversalRoutes({
    servers: [],
    clients: [{ name: 'tz1', transport: 'TLS', host: '192.0.2.1', port: 7001 }],
    domains: new Map(),
    zoneNames: new Set(['tz1']),
  });
  const zoneDest = { transport: 'TLS', address: '192.0.2.1', port: 7001 };
  // The edge's Record-Route / Path name its traversal listener: moved onto the zone's flow.
  assert.deepEqual(r.viaFlow({ transport: 'TLS', address: '192.0.2.1', port: 7001 }), zoneDest);
  assert.deepEqual(r.viaFlow({ transport: 'UDP', address: '10.0.0.50', port: 5060 }), {
    transport: 'UDP',
    address: '10.0.0.50',
    port: 5060,
  });
  assert.equal(r.isFlow(zoneDest), true);
  assert.equal(r.sourceZone({ transport: 'TLS', source: { address: '192.0.2.1', port: 7001 } }), 'tz1');
  assert.equal(r.sourceZone({ transport: 'TCP', source: { address: '192.0.2.1', port: 7001 } }), undefined);
  assert.equal(r.isTraversalZone('tz1'), true);
  assert.equal(r.isTraversalZone('LocalZone'), false);
  // REGISTER proxying is the edge's.
  assert.equal(r.registerTarget('example.com'), undefined);
});

test("core routes: only the edge's traversal listener goes up the zone, not everything at the edge's address", () => {
  const r = new TraversalRoutes({
    servers: [],
    clients: [
      { name: 'tz1', transport: 'TLS', host: '192.0.2.1', port: 7001, serverName: 'edge.example.com' },
      { name: 'tz2', transport: 'TLS', host: '192.0.2.1', port: 7002 },
    ],
    domains: new Map(),
    zoneNames: new Set(['tz1', 'tz2']),
  });
  // Another port of the edge (its public SIP listener, a DNS-routed target there) is sent as routed.
  const other = { transport: 'UDP', address: '192.0.2.1', port: 5060 };
  assert.deepEqual(r.viaFlow(other), other);
  assert.equal(r.isFlow(other), false);
  // Two zones to one edge: each listener to its own zone; the TLS verify subject name goes with the flow.
  assert.deepEqual(r.viaFlow({ transport: 'TLS', address: '192.0.2.1', port: 7002 }), {
    transport: 'TLS',
    address: '192.0.2.1',
    port: 7002,
  });
  assert.deepEqual(r.flowOf('tz1'), {
    transport: 'TLS',
    address: '192.0.2.1',
    port: 7001,
    serverName: 'edge.example.com',
  });
});

test("edge routes: only the core's own hops go down its flow, not an outside endpoint behind the core's NAT", async () => {
  const sz = await activeServerZone();
  const r = new TraversalRoutes({ servers: [sz], clients: [], domains: new Map(), zoneNames: new Set(['tz1']) });
  const flow = { transport: 'TLS', address: '10.0.0.2', port: 25007, connectionId: 'conn-1' };
  // Same public address as the core's flow, another port: an endpoint, reached as routed.
  const neighbour = { transport: 'UDP', address: '10.0.0.2', port: 40012 };
  assert.deepEqual(r.viaFlow(neighbour), neighbour);
  // The flow itself and the core's Via sent-by (its Record-Route) go down the flow.
  assert.deepEqual(r.viaFlow({ transport: 'TLS', address: '10.0.0.2', port: 25007 }), flow);
  assert.deepEqual(r.viaFlow({ transport: 'TLS', address: '10.0.0.2', port: 5061 }), flow);
  // A core behind NAT names its private address in Via: that hop is learned from requests on the flow.
  sz.handle(
    createRequest({
      method: 'INVITE',
      uri: 'sip:alice@example.com',
      headers: [
        ['Via', 'SIP/2.0/TLS 172.16.0.5:5061;branch=z9hG4bKy'],
        ['From', '<sip:bob@example.com>;tag=b'],
        ['To', '<sip:alice@example.com>'],
        ['Call-ID', 'c2'],
        ['CSeq', '1 INVITE'],
      ],
    }),
    { respond: () => true } as unknown as ServerTransactionHandle,
    {
      transport: 'TLS',
      reliable: true,
      source: { address: '10.0.0.2', port: 25007 },
      local: { address: '192.0.2.1', port: 7001 },
      connectionId: 'conn-1',
    },
  );
  assert.deepEqual(r.viaFlow({ transport: 'TLS', address: '172.16.0.5', port: 5061 }), flow);
  // Flow closed: nothing goes down it any more.
  sz.connectionClosed('conn-1');
  const core = { transport: 'TLS', address: '10.0.0.2', port: 5061 };
  assert.deepEqual(r.viaFlow(core), core);
});

test("edge routes: delegated credential checking sends callers of the zone's domains down that zone only", async () => {
  const sz = await activeServerZone();
  const flow = { transport: 'TLS', address: '10.0.0.2', port: 25007, connectionId: 'conn-1' };
  const plain = new TraversalRoutes({
    servers: [sz],
    clients: [],
    domains: new Map([['example.com', 'tz1']]),
    zoneNames: new Set(['tz1']),
  });
  assert.equal(plain.delegatedTarget('example.com'), undefined);
  const r = new TraversalRoutes({
    servers: [sz],
    clients: [],
    domains: new Map([['example.com', 'tz1']]),
    zoneNames: new Set(['tz1']),
    delegating: new Set(['tz1']),
  });
  assert.deepEqual(r.delegatedTarget('example.com'), {
    zone: 'tz1',
    target: { uri: '', routes: [], destinations: [flow] },
  });
  assert.equal(r.delegatedTarget('elsewhere.org'), undefined);
  sz.connectionClosed('conn-1');
  // Zone down: still delegated (the proxy answers 503), never checked or routed elsewhere by the edge.
  assert.deepEqual(r.delegatedTarget('example.com'), { zone: 'tz1', target: { uri: '', routes: [] } });
});
