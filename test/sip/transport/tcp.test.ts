import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { getTopVia } from '../../../src/sip/message/access.ts';
import { getParam } from '../../../src/sip/message/params.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { errorResponse } from '../../../src/sip/transport/message-codec.ts';
import { responseTarget } from '../../../src/sip/transport/response-target.ts';
import { eventually, makeLayer, parsed, request, streamClient, tcpConnect } from './helpers.ts';

describe('TCP transport', () => {
  const t = makeLayer({ aliasPolicy: 'always' });
  let port = 0;

  before(async () => {
    port = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
  });
  after(() => t.layer.close());

  test('a request in is stamped, the response comes back on the same connection', async () => {
    const c = streamClient(await tcpConnect(port));
    try {
      const before = t.inbox.length;
      await c.write(request({ transport: 'TCP', viaHost: 'client.example.test', viaPort: 5080, viaParams: ';rport' }));
      const { msg, info } = await t.nth(before + 1);
      const via = getTopVia(msg);
      assert.ok(via?.ok);
      // RFC 3261 §18.2.1: a domain name in sent-by always gets received.
      assert.equal(getParam(via.value.params, 'received'), '127.0.0.1');
      assert.equal(getParam(via.value.params, 'rport'), String(c.socket.localPort));
      assert.equal(info.transport, 'TCP');
      assert.equal(info.reliable, true);
      assert.equal(info.secure, false);
      assert.ok(info.connectionId);
      assert.deepEqual(info.source, { address: '127.0.0.1', port: c.socket.localPort });
      const conns = t.layer.connections();
      const mine = conns.find((x) => x.id === info.connectionId);
      assert.ok(mine);
      assert.equal(mine.direction, 'inbound');
      assert.equal(mine.state, 'open');
      assert.deepEqual(mine.local, { address: '127.0.0.1', port });

      const response = errorResponse(msg as SipRequest, 200, 'OK');
      const target = responseTarget(response, info);
      assert.deepEqual(target, {
        transport: 'TCP',
        address: '127.0.0.1',
        port: 5080,
        connectionId: info.connectionId,
      });
      await t.layer.send(response, target!);
      assert.match(await c.waitFor('\r\n\r\n'), /^SIP\/2\.0 200 OK\r\n/);
    } finally {
      c.socket.destroy();
    }
  });

  test('several messages in one write, one message across many writes', async () => {
    const c = streamClient(await tcpConnect(port));
    try {
      const before = t.inbox.length;
      const three = [1, 2, 3].map((i) => request({ transport: 'TCP', callId: `batch-${i}`, body: `body ${i}` }));
      await c.write(three.join(''));
      await t.nth(before + 3);
      assert.deepEqual(
        t.inbox.slice(before).map((m) => m.msg.body.toString()),
        ['body 1', 'body 2', 'body 3'],
      );
      const one = Buffer.from(request({ transport: 'TCP', callId: 'split', body: 'split body' }));
      for (let i = 0; i < one.length; i += 7) {
        await c.write(one.subarray(i, i + 7));
        await new Promise((r) => setImmediate(r));
      }
      const { msg } = await t.nth(before + 4);
      assert.equal(msg.body.toString(), 'split body');
    } finally {
      c.socket.destroy();
    }
  });

  test('RFC 5626 keepalive: CRLFCRLF is answered with one CRLF', async () => {
    const c = streamClient(await tcpConnect(port));
    try {
      await c.write('\r\n\r\n');
      assert.equal(await c.waitFor(2), '\r\n');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(c.text(), '\r\n', 'exactly one CRLF');
      assert.equal(c.ended, false, 'connection stays open');
    } finally {
      c.socket.destroy();
    }
  });

  test('a 64 KiB header line closes the connection; the layer serves the next one', async () => {
    const c = streamClient(await tcpConnect(port));
    const big = `OPTIONS sip:x SIP/2.0\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n`;
    c.write(big).catch(() => {});
    await c.closed;
    assert.ok(Object.keys(t.layer.counters().drops).some((k) => k.startsWith('parse:')));
    const d = streamClient(await tcpConnect(port));
    try {
      const before = t.inbox.length;
      await d.write(request({ transport: 'TCP' }));
      await t.nth(before + 1);
    } finally {
      d.socket.destroy();
    }
  });

  test('RFC 3261 §18.3: a stream message without Content-Length is a framing error that closes the connection', async () => {
    const c = streamClient(await tcpConnect(port));
    const n = t.layer.counters().drops['parse:bad-content-length'] ?? 0;
    await c.write(request({ transport: 'TCP' }).replace(/Content-Length: 0\r\n/, ''));
    await c.closed;
    assert.equal(t.layer.counters().drops['parse:bad-content-length'], n + 1);
  });

  test('a malformed but framed request gets 400 and the connection stays usable', async () => {
    const c = streamClient(await tcpConnect(port));
    try {
      const bad = request({ transport: 'TCP' }).replace(/CSeq: (\d+) OPTIONS/, 'CSeq: $1 INVITE');
      await c.write(bad);
      const got = await c.waitFor('\r\n\r\n');
      assert.match(got, /^SIP\/2\.0 400 /);
      const before = t.inbox.length;
      await c.write(request({ transport: 'TCP' }));
      await t.nth(before + 1);
      assert.equal(c.ended, false);
    } finally {
      c.socket.destroy();
    }
  });

  test('a peer-opened connection with alias is reused for requests to its sent-by', async () => {
    const c = streamClient(await tcpConnect(port));
    try {
      const before = t.inbox.length;
      await c.write(request({ transport: 'TCP', viaHost: '127.0.0.1', viaPort: 5999, viaParams: ';alias' }));
      const { msg, info } = await t.nth(before + 1);
      const conn = t.layer.connections().find((x) => x.id === info.connectionId);
      assert.ok(conn?.aliases.includes('TCP 127.0.0.1:5999'));
      const openedBefore = t.layer.counters().connections.opened;
      // A new request to 127.0.0.1:5999 (nobody listens there) must go down the aliased connection.
      const req = { ...(msg as SipRequest), method: 'NOTIFY' };
      await t.layer.send(req, { transport: 'TCP', address: '127.0.0.1', port: 5999 });
      assert.match(await c.waitFor('NOTIFY sip:'), /NOTIFY sip:/);
      assert.equal(t.layer.counters().connections.opened, openedBefore, 'no new connection');
    } finally {
      c.socket.destroy();
    }
  });

  test('IPv6 listener accepts and answers', async () => {
    const six = makeLayer();
    const p = (await six.layer.listen({ protocol: 'tcp', address: '::1', port: 0 })).port;
    const c = streamClient(await tcpConnect(p, '::1'));
    try {
      await c.write(request({ transport: 'TCP', viaHost: '[::1]', viaPort: 5060 }));
      const { msg, info } = await six.nth(1);
      assert.equal(info.source.address, '::1');
      const response = errorResponse(msg as SipRequest, 200, 'OK');
      await six.layer.send(response, responseTarget(response, info)!);
      assert.match(await c.waitFor('\r\n\r\n'), /^SIP\/2\.0 200 OK/);
    } finally {
      c.socket.destroy();
      await six.layer.close();
    }
  });
});

describe('TCP outbound connections', () => {
  let server: Server;
  let serverPort = 0;
  const accepted: Socket[] = [];

  before(async () => {
    server = createServer((s) => {
      accepted.push(s);
      s.on('error', () => {});
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverPort = (server.address() as { port: number }).port;
  });
  after(async () => {
    for (const s of accepted) s.destroy();
    await new Promise((r) => server.close(r));
  });

  async function freePortPair(): Promise<[Server, number]> {
    // A taken port p (held by a listening socket) with p+1 free at this moment.
    for (let i = 0; i < 20; i++) {
      const holder = createServer();
      await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
      const p = (holder.address() as { port: number }).port;
      const probe = createServer();
      const free = await new Promise<boolean>((r) => {
        probe.once('error', () => r(false));
        probe.listen(p + 1, '127.0.0.1', () => r(true));
      });
      if (free) {
        await new Promise((r) => probe.close(r));
        return [holder, p];
      }
      await new Promise((r) => holder.close(r));
    }
    throw new Error('no port pair found');
  }

  const msg = () => parsed(request({ transport: 'TCP' }));

  test('the source port lies in the range; two sends reuse one connection', async () => {
    const from = 41000 + Math.floor(Math.random() * 2000);
    const t = makeLayer({ outboundPorts: { from, to: from + 200 } });
    try {
      const m = msg();
      const n = accepted.length;
      await t.layer.send(m, { transport: 'TCP', address: '127.0.0.1', port: serverPort });
      await t.layer.send(m, { transport: 'TCP', address: '127.0.0.1', port: serverPort });
      await eventually(() => accepted.length === n + 1, 2000, 'accept');
      const peer = accepted[n]!;
      assert.ok(peer.remotePort! >= from && peer.remotePort! <= from + 200, `source port ${peer.remotePort}`);
      const conns = t.layer.connections();
      assert.equal(conns.length, 1);
      assert.equal(conns[0]!.direction, 'outbound');
      assert.equal(conns[0]!.local.port, peer.remotePort);
      assert.equal(t.layer.counters().sent.TCP, 2);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(accepted.length, n + 1, 'still one connection');
    } finally {
      await t.layer.close();
    }
  });

  test('with the first port of the range taken, the next one is used', async () => {
    const [holder, p] = await freePortPair();
    const t = makeLayer({ outboundPorts: { from: p, to: p + 1 } });
    try {
      const m = msg();
      const n = accepted.length;
      await t.layer.send(m, { transport: 'TCP', address: '127.0.0.1', port: serverPort });
      await eventually(() => accepted.length === n + 1, 2000, 'accept');
      assert.equal(accepted[n]!.remotePort, p + 1);
    } finally {
      await t.layer.close();
      await new Promise((r) => holder.close(r));
    }
  });

  test('an exhausted range is reported to the caller', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const p = (holder.address() as { port: number }).port;
    const t = makeLayer({ outboundPorts: { from: p, to: p } });
    try {
      const m = msg();
      await assert.rejects(t.layer.send(m, { transport: 'TCP', address: '127.0.0.1', port: serverPort }), {
        code: 'ERR_SIP_TRANSPORT_PORTS_EXHAUSTED',
      });
      assert.equal(t.layer.counters().connections.failed, 1);
      assert.equal(t.layer.connections().length, 0);
    } finally {
      await t.layer.close();
      await new Promise((r) => holder.close(r));
    }
  });

  test('a refused connection rejects the send', async () => {
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    const dead = (holder.address() as { port: number }).port;
    await new Promise((r) => holder.close(r));
    const t = makeLayer({ outboundPorts: { from: 43500, to: 43999 } });
    try {
      const m = msg();
      await assert.rejects(t.layer.send(m, { transport: 'TCP', address: '127.0.0.1', port: dead }), {
        code: 'ERR_SIP_TRANSPORT_CONNECT',
      });
    } finally {
      await t.layer.close();
    }
  });
});
