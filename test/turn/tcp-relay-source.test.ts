/**
 * RFC 6062 TCP relay on real sockets: a client's Connect makes the server open a TCP connection to the peer, and
 * that connection leaves from the relay address with a source port of the relay range (the port plan's turn-relay
 * flow, "TURN media edge 24000-29999 → any"), not from an ephemeral port a firewall built from the plan would drop.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, it } from 'node:test';
import { encodeFirstByteOf4 } from '../../src/stun/attributes.ts';
import { Attr, Method } from '../../src/stun/constants.ts';
import { TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { defaultTurnConfig } from '../../src/turn/config.ts';
import { startTurnServer, type TurnServerHandle } from '../../src/turn/server.ts';
import { StreamClient } from './stream-client.ts';

describe('TURN TCP relay (RFC 6062): Connect leaves from the relay range', () => {
  // below the kernel's ephemeral range (32768-60999 by default), so an ephemeral port cannot fall in it by chance
  const base = 20_000 + (process.pid % 1000) * 4;
  const relayRange = { from: base, to: base + 3 };
  let server: TurnServerHandle;
  const peers: net.Server[] = [];
  const accepted: { address: string; port: number }[] = [];

  before(async () => {
    server = await startTurnServer({
      config: defaultTurnConfig({
        enabled: true,
        realm: 'crossway.test',
        users: [{ username: 'alice', password: 'wonderland' }],
        // loopback peers are denied by default; the peer here is on 127.0.0.1
        peers: { allowed: ['127.0.0.1/32'] },
      }),
      listen: [{ address: '127.0.0.1', port: 0, protocols: ['tcp'] }],
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange,
    });
    // two peers: one connection per peer address and allocation (446 for a second)
    for (let i = 0; i < 2; i++) {
      const peer = net.createServer((s) => {
        accepted.push({ address: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
        s.on('error', () => {});
      });
      peer.listen(0, '127.0.0.1');
      await once(peer, 'listening');
      peers.push(peer);
    }
  });

  after(async () => {
    await server?.close();
    for (const p of peers) p.close();
  });

  it('Connect to a peer: the peer sees a source port inside the relay range, other than the relayed port', async () => {
    const port = server.listening.find((l) => l.protocol === 'tcp')!.port;
    const sock = net.connect({ host: '127.0.0.1', port });
    await once(sock, 'connect');
    try {
      const c = new StreamClient(sock);
      const session = new TurnClientSession('alice', 'wonderland');
      const tcp: [number, Buffer] = [Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(6)];
      const challenge = await c.exchange(session, session.request(Method.allocate, [tcp]));
      assert.equal(challenge.error, 401);
      const alloc = await c.exchange(session, session.request(Method.allocate, [tcp]));
      assert.equal(alloc.error, undefined, `Allocate failed: ${alloc.error}`);
      const relayed = alloc.relayed[0]!;
      assert.ok(relayed.port >= relayRange.from && relayed.port <= relayRange.to, `relayed ${relayed.port}`);

      const at = (p: net.Server) => ({
        family: 4 as const,
        address: '127.0.0.1',
        port: (p.address() as net.AddressInfo).port,
      });
      const to = at(peers[0]!);
      const perm = await c.exchange(
        session,
        session.request(Method.createPermission, [turnAttr.peer(to, Buffer.alloc(12))]),
      );
      assert.equal(perm.error, undefined, `CreatePermission failed: ${perm.error}`);
      for (let i = 1; i <= 2; i++) {
        const tid = Buffer.alloc(12, i);
        const dst = at(peers[i - 1]!);
        const conn = await c.exchange(session, session.request(Method.connect, [turnAttr.peer(dst, tid)], tid));
        assert.equal(conn.error, undefined, `Connect ${i} failed: ${conn.error}`);
        assert.ok(conn.integrity);
      }
      while (accepted.length < 2) await new Promise((r) => setTimeout(r, 10));
      for (const a of accepted) {
        assert.equal(a.address, '127.0.0.1');
        assert.ok(
          a.port >= relayRange.from && a.port <= relayRange.to,
          `source port ${a.port} outside ${base}-${base + 3}`,
        );
        assert.notEqual(a.port, relayed.port, 'the relayed port is the listener: another port of the range');
      }
      assert.notEqual(accepted[0]!.port, accepted[1]!.port);
    } finally {
      sock.destroy();
    }
  });
});
