/**
 * The bandwidth quota on RFC 6062 TCP relaying, on real sockets: the bytes of a ConnectionBind data pipe, both
 * directions, are counted in bytesToPeers / bytesFromPeers and held to `quotas.bandwidthBytesPerSecond` by
 * pausing the side that reads (TCP backpressure), where the UDP path drops datagrams.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeFirstByteOf4 } from '../../src/stun/attributes.ts';
import { Attr, Method } from '../../src/stun/constants.ts';
import { findAttribute } from '../../src/stun/message.ts';
import { TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { defaultTurnConfig } from '../../src/turn/config.ts';
import { startTurnServer, type TurnServerHandle } from '../../src/turn/server.ts';
import { StreamClient } from './stream-client.ts';

/** Collects what a socket receives, with a way to wait (bounded) for a byte count. */
function sink(sock: net.Socket, onBytes: () => void) {
  const chunks: Buffer[] = [];
  let length = 0;
  let ended = false;
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    length += d.length;
    onBytes();
  });
  sock.on('end', () => {
    ended = true;
  });
  return {
    get length() {
      return length;
    },
    get ended() {
      return ended;
    },
    bytes: () => Buffer.concat(chunks),
    async until(test: () => boolean, what: string, ms: number) {
      const deadline = performance.now() + ms;
      while (!test()) {
        if (performance.now() > deadline) throw new Error(`${what}: not within ${ms} ms (have ${length} bytes)`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

describe('TURN TCP relay (RFC 6062): bandwidth quota on the data pipe', () => {
  const base = 16_000 + (process.pid % 1000) * 8;
  const relayRange = { from: base, to: base + 7 };
  const RATE = 40_000;
  let server: TurnServerHandle;
  let peerServer: net.Server;
  const peerSockets: net.Socket[] = [];

  before(async () => {
    server = await startTurnServer({
      config: defaultTurnConfig({
        enabled: true,
        realm: 'crossway.test',
        users: [{ username: 'alice', password: 'wonderland' }],
        peers: { allowed: ['127.0.0.1/32'] },
        quotas: { bandwidthBytesPerSecond: RATE },
      }),
      listen: [{ address: '127.0.0.1', port: 0, protocols: ['tcp'] }],
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange,
    });
    peerServer = net.createServer((s) => {
      s.on('error', () => {});
      peerSockets.push(s);
    });
    peerServer.listen(0, '127.0.0.1');
    await once(peerServer, 'listening');
  });

  after(async () => {
    await server?.close();
    for (const s of peerSockets) s.destroy();
    peerServer?.close();
  });

  it('counts both directions and never relays more than the bucket plus the rate since the Allocate', async () => {
    const port = server.listening.find((l) => l.protocol === 'tcp')!.port;
    const control = net.connect({ host: '127.0.0.1', port });
    await once(control, 'connect');
    const data = net.connect({ host: '127.0.0.1', port });
    await once(data, 'connect');
    try {
      const c = new StreamClient(control);
      const session = new TurnClientSession('alice', 'wonderland');
      const tcp: [number, Buffer] = [Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(6)];
      assert.equal((await c.exchange(session, session.request(Method.allocate, [tcp]))).error, 401);
      // the bucket starts full at the Allocate: at any time t after it, at most RATE * (1 + t) bytes have gone through
      const t0 = performance.now();
      const alloc = await c.exchange(session, session.request(Method.allocate, [tcp]));
      assert.equal(alloc.error, undefined, `Allocate failed: ${alloc.error}`);
      const peer = { family: 4 as const, address: '127.0.0.1', port: (peerServer.address() as net.AddressInfo).port };
      const perm = await c.exchange(
        session,
        session.request(Method.createPermission, [turnAttr.peer(peer, Buffer.alloc(12))]),
      );
      assert.equal(perm.error, undefined);
      const tid = Buffer.alloc(12, 7);
      const conn = await c.exchange(session, session.request(Method.connect, [turnAttr.peer(peer, tid)], tid));
      assert.equal(conn.error, undefined, `Connect failed: ${conn.error}`);
      const ref = findAttribute(conn.msg, Attr.CONNECTION_ID)!;
      const id = Buffer.from(conn.msg.raw.subarray(ref.offset, ref.offset + 4));
      const d = new StreamClient(data);
      const bind = await d.exchange(session, session.request(Method.connectionBind, [[Attr.CONNECTION_ID, id]]));
      assert.equal(bind.error, undefined, `ConnectionBind failed: ${bind.error}`);
      assert.equal(d.detach().length, 0);
      while (peerSockets.length < 1) await new Promise((r) => setTimeout(r, 10));
      const peerSock = peerSockets[0]!;

      const before = { ...server.counters };
      let worst = 0;
      const check = () => {
        const allowed = RATE * (1 + (performance.now() - t0) / 1000);
        worst = Math.max(worst, (atPeer.length + atClient.length) / allowed);
      };
      const atPeer = sink(peerSock, check);
      const atClient = sink(data, check);
      const up = randomBytes(60_000);
      const down = randomBytes(60_000);
      data.write(up);
      peerSock.write(down);
      // 120 kB at 40 kB/s with a 40 kB bucket: about 2 s; unthrottled loopback would take milliseconds
      await atPeer.until(() => atPeer.length >= up.length, 'client → peer', 15_000);
      await atClient.until(() => atClient.length >= down.length, 'peer → client', 15_000);
      assert.ok(atPeer.bytes().equals(up), 'client → peer bytes intact and in order');
      assert.ok(atClient.bytes().equals(down), 'peer → client bytes intact and in order');
      assert.ok(worst <= 1, `relayed ${worst.toFixed(3)} × what the quota allows`);
      assert.equal(server.counters.bytesToPeers - before.bytesToPeers, up.length);
      assert.equal(server.counters.bytesFromPeers - before.bytesFromPeers, down.length);
      assert.ok(server.counters.bandwidthThrottled > before.bandwidthThrottled, 'the pipe was held back');
      assert.equal(server.counters.bandwidthDropped, before.bandwidthDropped, 'a stream drops nothing');

      // The peer sends more and closes at once: the client still gets every byte the quota held, then the end.
      const last = randomBytes(20_000);
      peerSock.end(last);
      await atClient.until(() => atClient.ended, 'end after the held bytes', 15_000);
      assert.equal(atClient.length, down.length + last.length, 'every held byte before the end');
      assert.ok(atClient.bytes().subarray(down.length).equals(last), 'held bytes delivered before the close');
      assert.ok(worst <= 1, `relayed ${worst.toFixed(3)} × what the quota allows`);
    } finally {
      control.destroy();
      data.destroy();
    }
  });
});
