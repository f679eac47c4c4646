import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { createTlsFixtures } from '../../helpers/tls-fixtures.ts';
import { eventually, makeLayer, parsed, request, streamClient, tcpConnect } from './helpers.ts';

const conns = (over: Partial<{ max: number; idle: number; rate: number; setupMs: number }> = {}) => ({
  maxConnections: over.max ?? 100,
  idleTimeoutSeconds: over.idle ?? 60,
  newConnectionsPerSecondPerSource: over.rate ?? 0,
  connectTimeoutMs: over.setupMs ?? 10_000,
});

describe('connection limits', () => {
  test('idle timeout runs on the injected clock: traffic defers it, silence closes the connection', async () => {
    const clock = new FakeClock();
    const t = makeLayer({ connections: conns({ idle: 5 }) }, clock);
    const port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    const c = streamClient(await tcpConnect(port));
    try {
      await c.write(request({ transport: 'TCP' }));
      await t.nth(1);
      clock.advance(4000);
      await c.write(request({ transport: 'TCP' }));
      await t.nth(2);
      clock.advance(3000); // 3 s since the last message
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(c.ended, false, 'still open after 3 s of silence');
      assert.equal(t.layer.connections().length, 1);
      clock.advance(2500); // 5.5 s since the last message
      await c.closed;
      assert.equal(t.layer.connections().length, 0);
      const counters = t.layer.counters().connections;
      assert.equal(counters.opened, 1);
      assert.equal(counters.closed, 1);
    } finally {
      c.socket.destroy();
      await t.layer.close();
    }
    assert.equal(clock.pending, 0, 'close() leaves no timer armed');
  });

  test('the connection cap refuses the (N+1)th inbound connection and outbound ones above it', async () => {
    const t = makeLayer({ connections: conns({ max: 2 }) });
    const port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    const a = streamClient(await tcpConnect(port));
    const b = streamClient(await tcpConnect(port));
    try {
      await eventually(() => t.layer.connections().length === 2, 2000, 'two connections');
      const c = streamClient(await tcpConnect(port));
      await c.closed;
      assert.equal(t.layer.counters().connections.refused, 1);
      assert.equal(t.layer.counters().drops['connection-limit'], 1);
      await a.write(request({ transport: 'TCP' }));
      await b.write(request({ transport: 'TCP' }));
      await t.nth(2);
      await assert.rejects(
        t.layer.send(parsed(request({ transport: 'TCP' })), { transport: 'TCP', address: '127.0.0.1', port: 9 }),
        { code: 'ERR_SIP_TRANSPORT_CONNECTION_LIMIT' },
      );
      assert.equal(t.layer.counters().connections.refused, 2);
    } finally {
      a.socket.destroy();
      b.socket.destroy();
      await t.layer.close();
    }
  });

  test('new connections per second per source: the third in one second is refused, the next second admits', async () => {
    const clock = new FakeClock();
    const t = makeLayer({ connections: conns({ rate: 2 }) }, clock);
    const port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    const open: Array<ReturnType<typeof streamClient>> = [];
    try {
      for (let i = 0; i < 2; i++) open.push(streamClient(await tcpConnect(port)));
      await eventually(() => t.layer.connections().length === 2, 2000, 'two admitted');
      const third = streamClient(await tcpConnect(port));
      await third.closed;
      assert.equal(t.layer.counters().drops['connection-rate'], 1);
      clock.advance(1000);
      open.push(streamClient(await tcpConnect(port)));
      await eventually(() => t.layer.connections().length === 3, 2000, 'admitted in the next second');
    } finally {
      for (const c of open) c.socket.destroy();
      await t.layer.close();
    }
  });

  test('a TLS connection that never handshakes is closed at the setup deadline (injected clock)', async () => {
    const fx = createTlsFixtures();
    const clock = new FakeClock();
    const t = makeLayer(
      {
        connections: conns({ setupMs: 3000 }),
        tls: { certificate: fx.server.cert, privateKey: fx.server.key, caCertificates: fx.ca.cert },
      },
      clock,
    );
    try {
      const port = (await t.layer.listen({ protocol: 'tls', address: '127.0.0.1', port: 0 })).port;
      const c = streamClient(await tcpConnect(port));
      await eventually(() => t.layer.connections().length === 1, 2000, 'pending connection');
      assert.equal(t.layer.connections()[0]!.state, 'handshaking');
      clock.advance(2999);
      await new Promise((r) => setTimeout(r, 30));
      assert.equal(c.ended, false);
      clock.advance(1);
      await c.closed;
      assert.equal(t.layer.connections().length, 0);
      assert.equal(t.layer.counters().connections.refused, 1);
    } finally {
      await t.layer.close();
      fx.cleanup();
    }
    assert.equal(clock.pending, 0);
  });

  test('close() frees every listener, connection and timer, and later sends are refused', async () => {
    const clock = new FakeClock();
    const t = makeLayer({}, clock);
    const port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 });
    const c = streamClient(await tcpConnect(port));
    await c.write(request({ transport: 'TCP' }));
    await t.nth(1);
    await t.layer.close();
    await c.closed;
    assert.equal(t.layer.closed, true);
    assert.deepEqual(t.layer.listeners(), []);
    assert.deepEqual(t.layer.connections(), []);
    assert.equal(clock.pending, 0);
    await assert.rejects(t.layer.send(parsed(request()), { transport: 'UDP', address: '127.0.0.1', port: 9 }), {
      code: 'ERR_SIP_TRANSPORT_CLOSED',
    });
    // The port is free again.
    const again = makeLayer();
    await again.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port });
    await again.layer.close();
  });
});
