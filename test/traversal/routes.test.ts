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
  // The edge's Record-Route / Path (its 5061 or 5060) is moved onto the zone's listener.
  assert.deepEqual(r.viaFlow({ transport: 'UDP', address: '192.0.2.1', port: 5060 }), zoneDest);
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
