import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import type { ConnectionEvent } from '../../../src/sip/transport/transport-layer.ts';
import { eventually, header, makeLayer, parsed, request, streamClient, tcpConnect } from './helpers.ts';

describe('outbound connections between two layers', () => {
  const server = makeLayer();
  let port = 0;
  let port6 = 0;

  before(async () => {
    port = (await server.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    port6 = (await server.layer.listen({ protocol: 'tcp', address: '::1', port: 0 })).port;
  });
  after(() => server.layer.close());

  test('sends issued while connecting are queued and arrive in order on one connection', async () => {
    const events: ConnectionEvent[] = [];
    const client = makeLayer({ outboundPorts: { from: 48000, to: 48999 }, onConnectionEvent: (e) => events.push(e) });
    try {
      const before = server.inbox.length;
      const target = { transport: 'TCP' as const, address: '127.0.0.1', port };
      const sends = [1, 2, 3, 4, 5].map((i) =>
        client.layer.send(parsed(request({ transport: 'TCP', callId: `q-${i}` })), target),
      );
      assert.equal(client.layer.connections()[0]?.state, 'connecting');
      await Promise.all(sends);
      await server.nth(before + 5);
      assert.deepEqual(
        server.inbox.slice(before).map((m) => header(m.msg, 'Call-ID')),
        ['q-1', 'q-2', 'q-3', 'q-4', 'q-5'],
      );
      assert.equal(new Set(server.inbox.slice(before).map((m) => m.info.connectionId)).size, 1);
      assert.equal(client.layer.counters().connections.opened, 1);
      assert.equal(events.length, 1);
      assert.equal(events[0]!.type, 'opened');
      assert.equal(events[0]!.connection.direction, 'outbound');
      assert.deepEqual(events[0]!.connection.remote, { address: '127.0.0.1', port });
      const id = events[0]!.connection.id;
      assert.equal(client.layer.closeConnection(id), true);
      await eventually(() => events.length === 2, 2000, 'closed event');
      assert.deepEqual([events[1]!.type, events[1]!.reason], ['closed', 'closed-by-user']);
    } finally {
      await client.layer.close();
    }
  });

  test('IPv6: an outbound connection to ::1 binds a source port from the range', async () => {
    const client = makeLayer({ outboundPorts: { from: 49000, to: 49999 } });
    try {
      const before = server.inbox.length;
      await client.layer.send(parsed(request({ transport: 'TCP', viaHost: '[::1]' })), {
        transport: 'TCP',
        address: '::1',
        port: port6,
      });
      const { info } = await server.nth(before + 1);
      assert.equal(info.source.address, '::1');
      assert.ok(info.source.port >= 49000 && info.source.port <= 49999);
    } finally {
      await client.layer.close();
    }
  });

  test('RFC 5626 ping: the client layer pings, the server layer pongs, the RTT comes back', async () => {
    const client = makeLayer({ outboundPorts: { from: 50000, to: 50999 } });
    try {
      await client.layer.send(parsed(request({ transport: 'TCP' })), { transport: 'TCP', address: '127.0.0.1', port });
      const id = client.layer.connections()[0]!.id;
      const rtt = await client.layer.ping(id, 2000);
      assert.ok(rtt >= 0 && rtt < 2000, `rtt ${rtt}`);
      await assert.rejects(client.layer.ping('tcp-999'), { code: 'ERR_SIP_TRANSPORT_CLOSED' });
    } finally {
      await client.layer.close();
    }
  });
});

test('a ping that gets no pong times out on the injected clock', async () => {
  const clock = new FakeClock();
  // A peer that reads and never answers: a plain TCP listener of another layer would answer, so use a raw one.
  const { createServer } = await import('node:net');
  const silent = createServer((s) => s.on('error', () => {}));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const sport = (silent.address() as { port: number }).port;
  const client = makeLayer({ outboundPorts: { from: 51000, to: 51999 } }, clock);
  try {
    await client.layer.send(parsed(request({ transport: 'TCP' })), {
      transport: 'TCP',
      address: '127.0.0.1',
      port: sport,
    });
    const id = client.layer.connections()[0]!.id;
    const p = client.layer.ping(id, 5000);
    let settled = false;
    p.catch(() => {}).finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(settled, false);
    clock.advance(5000);
    await assert.rejects(p, { code: 'ERR_SIP_TRANSPORT_KEEPALIVE' });
  } finally {
    await client.layer.close();
    silent.close();
  }
});

test('a stream client sees exactly one CRLF per ping even when pings arrive byte by byte', async () => {
  const t = makeLayer();
  const port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
  const c = streamClient(await tcpConnect(port));
  try {
    for (const b of ['\r', '\n', '\r', '\n']) {
      await c.write(b);
      await new Promise((r) => setTimeout(r, 10));
    }
    await c.waitFor(2);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.text(), '\r\n');
  } finally {
    c.socket.destroy();
    await t.layer.close();
  }
});
