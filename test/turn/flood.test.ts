import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { describe, it } from 'node:test';
import { MAGIC_COOKIE, Method } from '../../src/stun/constants.ts';
import { TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { defaultTurnConfig } from '../../src/turn/config.ts';
import { startTurnServer } from '../../src/turn/server.ts';

/** Garbage of several shapes: random bytes, STUN headers with lying lengths, truncated ChannelData. */
function garbage(i: number): Buffer {
  const b = randomBytes(24 + (i % 180));
  switch (i % 4) {
    case 0:
      return b;
    case 1:
      b[0] = 0x00;
      b[1] = 0x03;
      b.writeUInt32BE(MAGIC_COOKIE, 4);
      b.writeUInt16BE((i * 4) & 0xffff, 2);
      return b;
    case 2:
      b[0] = 0x40;
      b.writeUInt16BE(0xffff, 2);
      return b;
    default:
      b[0] = 0x00;
      b[1] = 0x01;
      b.writeUInt32BE(MAGIC_COOKIE, 4);
      b.writeUInt16BE(b.length - 20, 2);
      b.writeUInt16BE(0x0006, 20);
      b.writeUInt16BE(0xfff0, 22);
      return b;
  }
}

describe('malformed-packet flood against the TURN server', () => {
  it('drops and counts garbage and keeps answering Allocate and TCP clients during the flood', async (t) => {
    const server = await startTurnServer({
      config: defaultTurnConfig({ enabled: true, users: [{ username: 'alice', password: 'wonderland' }] }),
      listen: [{ address: '127.0.0.1', port: 0 }],
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange: { from: 47400, to: 47420 },
      udpBufferBytes: 4 * 1024 * 1024,
    });
    const port = server.listening[0]!.port;
    const flooder = dgram.createSocket('udp4');
    const client = dgram.createSocket('udp4');
    await new Promise<void>((r) => client.bind(0, '127.0.0.1', () => r()));
    const session = new TurnClientSession('alice', 'wonderland');
    const answers: Buffer[] = [];
    client.on('message', (m) => answers.push(m));
    const ask = async (bytes: Buffer) => {
      const n = answers.length;
      client.send(bytes, port, '127.0.0.1');
      for (let t = 0; t < 200 && answers.length === n; t++) await new Promise((r) => setTimeout(r, 5));
      return answers.length > n ? session.answer(answers.at(-1)!) : undefined;
    };
    try {
      const total = 30_000;
      const deadline = Date.now() + 15_000;
      let sent = 0;
      let answered = 0;
      while (sent < total && Date.now() < deadline) {
        for (let k = 0; k < 100; k++) flooder.send(garbage(sent++), port, '127.0.0.1');
        await new Promise((r) => setTimeout(r, 1));
        if (sent % 5000 === 0) {
          const a = await ask(session.request(Method.binding));
          if (a && (a.error === 401 || a.error === undefined)) answered++;
        }
      }
      assert.ok(answered >= 4, `answered ${answered} Binding requests during the flood`);
      // The Binding challenges gave the session a nonce: this Allocate carries credentials.
      const a = await ask(session.request(Method.allocate, [turnAttr.udpTransport()]));
      assert.ok(a);
      assert.equal(a.error, undefined);
      assert.equal(a.integrity, true);
      assert.equal(a.relayed.length, 1);
      // Let queued garbage drain, then look at the counters.
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(server.counters.malformedDropped > total / 4, `dropped ${server.counters.malformedDropped}`);
      t.diagnostic(`sent ${sent} garbage datagrams, ${server.counters.malformedDropped} dropped and counted`);
      // A TCP client speaking garbage is disconnected; the server still takes new connections.
      const sock = net.connect(port, '127.0.0.1');
      await new Promise<void>((r) => sock.once('connect', () => r()));
      sock.write(Buffer.from('160301020001fc0303', 'hex'));
      await new Promise<void>((r) => sock.once('close', () => r()));
      assert.ok(server.counters.allocationsActive === 1);
    } finally {
      flooder.close();
      client.close();
      await server.close();
    }
  });
});

describe('TCP control connections', () => {
  it('closes idle connections without an allocation and keeps those with one', async () => {
    const server = await startTurnServer({
      config: defaultTurnConfig({ enabled: true, users: [{ username: 'alice', password: 'wonderland' }] }),
      listen: [{ address: '127.0.0.1', port: 0, protocols: ['tcp'] }],
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange: { from: 47430, to: 47440 },
      tcpIdleSeconds: 1,
    });
    const port = server.listening[0]!.port;
    try {
      const idle = net.connect(port, '127.0.0.1');
      const idleClosed = new Promise<number>((r) => idle.once('close', () => r(Date.now())));
      const busy = net.connect(port, '127.0.0.1');
      await new Promise<void>((r) => busy.once('connect', () => r()));
      const session = new TurnClientSession('alice', 'wonderland');
      const ask = (req: Buffer) =>
        new Promise<ReturnType<TurnClientSession['answer']>>((resolve) => {
          busy.once('data', (d: Buffer) => resolve(session.answer(d)));
          busy.write(req);
        });
      const start = Date.now();
      assert.equal((await ask(session.request(Method.allocate, [turnAttr.udpTransport()])))?.error, 401);
      const ok = await ask(session.request(Method.allocate, [turnAttr.udpTransport()]));
      assert.equal(ok?.error, undefined);
      const closedAt = await idleClosed;
      assert.ok(closedAt - start >= 800 && closedAt - start < 5000, `idle closed after ${closedAt - start} ms`);
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(busy.destroyed, false, 'a connection with an allocation stays');
      assert.equal(server.counters.allocationsActive, 1);
      busy.destroy();
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(server.counters.allocationsActive, 0, 'closing the connection deletes its allocation');
    } finally {
      await server.close();
    }
  });
});
