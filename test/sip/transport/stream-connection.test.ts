import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { StreamConnection } from '../../../src/sip/transport/stream-connection.ts';
import { streamClient, tcpConnect } from './helpers.ts';

describe('StreamConnection state machine', () => {
  let server: Server;
  let port = 0;
  const peers: Socket[] = [];

  before(async () => {
    server = createServer((s) => {
      s.on('error', () => {});
      peers.push(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of peers) s.destroy();
    await new Promise((r) => server.close(r));
  });

  function make(clock: FakeClock, over: { maxQueuedBytes?: number; setupTimeoutMs?: number } = {}) {
    const closed: string[] = [];
    const data: Buffer[] = [];
    const conn = new StreamConnection({
      id: 'tcp-test',
      transport: 'TCP',
      direction: 'outbound',
      remote: { address: '127.0.0.1', port },
      clock,
      idleTimeoutMs: 10_000,
      setupTimeoutMs: over.setupTimeoutMs ?? 5000,
      maxQueuedBytes: over.maxQueuedBytes ?? 1024,
      host: {
        onData: (_c, chunk) => data.push(chunk),
        onClosed: (_c, why) => closed.push(why),
        linger: (s) => s.destroy(),
      },
    });
    return { conn, closed, data };
  }

  test('connecting: sends are queued, then flushed in order once open; data flows up', async () => {
    const clock = new FakeClock();
    const { conn, data } = make(clock);
    assert.equal(conn.state, 'connecting');
    const sent = [conn.send(Buffer.from('one ')), conn.send(Buffer.from('two ')), conn.send(Buffer.from('three'))];
    const n = peers.length;
    const sock = await tcpConnect(port);
    conn.attach(sock, 'open');
    assert.equal(conn.state, 'open');
    assert.equal(conn.wasOpen, true);
    await Promise.all(sent);
    while (peers.length === n) await new Promise((r) => setTimeout(r, 5));
    const peer = streamClient(peers[n]!);
    assert.equal(await peer.waitFor('three'), 'one two three');
    await peer.write('pong');
    while (data.length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(Buffer.concat(data).toString(), 'pong');
    assert.deepEqual(conn.info().local.address, '127.0.0.1');
    conn.close('closing');
    assert.equal(clock.pending, 0);
  });

  test('connecting → closed: queued sends are rejected with the cause; a late socket is destroyed', async () => {
    const clock = new FakeClock();
    const { conn, closed } = make(clock);
    const p = conn.send(Buffer.from('lost'));
    const cause = Object.assign(new Error('refused'), { code: 'ERR_SIP_TRANSPORT_CONNECT' });
    conn.close('connect-failed', cause);
    await assert.rejects(p, { code: 'ERR_SIP_TRANSPORT_CONNECT' });
    assert.deepEqual(closed, ['connect-failed']);
    assert.equal(conn.state, 'closed');
    const sock = await tcpConnect(port);
    conn.attach(sock, 'open');
    await new Promise<void>((r) => (sock.destroyed ? r() : sock.once('close', () => r())));
    assert.equal(sock.destroyed, true);
    await assert.rejects(conn.send(Buffer.from('x')), { code: 'ERR_SIP_TRANSPORT_CLOSED' });
    conn.close('again');
    assert.deepEqual(closed, ['connect-failed'], 'close is idempotent');
  });

  test('the setup deadline closes a connection that never opens', () => {
    const clock = new FakeClock();
    const { conn, closed } = make(clock, { setupTimeoutMs: 3000 });
    clock.advance(2999);
    assert.equal(conn.state, 'connecting');
    clock.advance(1);
    assert.deepEqual(closed, ['setup-timeout']);
    assert.equal(clock.pending, 0);
  });

  test('a send that would queue more than the cap is refused', async () => {
    const clock = new FakeClock();
    const { conn } = make(clock, { maxQueuedBytes: 10 });
    const first = conn.send(Buffer.alloc(8));
    await assert.rejects(conn.send(Buffer.alloc(8)), { code: 'ERR_SIP_TRANSPORT_BACKLOG' });
    conn.close('closing');
    await assert.rejects(first, { code: 'ERR_SIP_TRANSPORT_CLOSED' });
  });

  test('handshaking → open replaces the raw socket; an illegal edge is a programming error', async () => {
    const clock = new FakeClock();
    const { conn } = make(clock);
    const sock = await tcpConnect(port);
    conn.attach(sock, 'handshaking');
    assert.equal(conn.state, 'handshaking');
    assert.equal(conn.wasOpen, false);
    conn.attach(sock, 'open');
    assert.equal(conn.state, 'open');
    assert.equal(sock.listenerCount('close'), 1, 'listeners are not stacked on re-attach');
    assert.equal(sock.listenerCount('data'), 1);
    assert.throws(() => conn.attach(sock, 'handshaking'), { code: 'ERR_SIP_CONN_STATE' });
    assert.equal(sock.listenerCount('close'), 1);
    conn.close('closing');
  });
});
