import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { getTopVia } from '../../../src/sip/message/access.ts';
import { getParam } from '../../../src/sip/message/params.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { errorResponse } from '../../../src/sip/transport/message-codec.ts';
import { responseTarget } from '../../../src/sip/transport/response-target.ts';
import { eventually, LIMITS, makeLayer, request, udpClient } from './helpers.ts';

const vector = (name: string) => readFileSync(new URL(`./vectors/${name}`, import.meta.url));

describe('UDP transport', () => {
  const t = makeLayer();
  let port = 0;
  let port6 = 0;

  before(async () => {
    port = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    port6 = (await t.layer.listen({ protocol: 'udp', address: '::1', port: 0 })).port;
  });
  after(() => t.layer.close());

  test('listeners() reports both bound sockets', () => {
    const ls = t.layer.listeners();
    assert.deepEqual(
      ls.map((l) => [l.protocol, l.address, l.port, l.family]),
      [
        ['udp', '127.0.0.1', port, 'IPv4'],
        ['udp', '::1', port6, 'IPv6'],
      ],
    );
  });

  test('a request in gets received and rport stamped; the response goes back to the source port', async () => {
    const c = await udpClient();
    try {
      const before = t.inbox.length;
      await c.send(request({ viaHost: '192.0.2.10', viaPort: 5070, viaParams: ';rport' }), port);
      const { msg, info } = await t.nth(before + 1);
      assert.equal(msg.kind, 'request');
      const via = getTopVia(msg);
      assert.ok(via?.ok);
      // RFC 3261 §18.2.1 / RFC 3581 §4
      assert.equal(getParam(via.value.params, 'received'), '127.0.0.1');
      assert.equal(getParam(via.value.params, 'rport'), String(c.port));
      assert.deepEqual(info, {
        transport: 'UDP',
        secure: false,
        reliable: false,
        source: { address: '127.0.0.1', port: c.port },
        local: { address: '127.0.0.1', port },
      });
      const response = errorResponse(msg as SipRequest, 200, 'OK');
      const target = responseTarget(response, info);
      assert.deepEqual(target, {
        transport: 'UDP',
        address: '127.0.0.1',
        port: c.port,
        local: { address: '127.0.0.1', port },
      });
      await t.layer.send(response, target!);
      const got = (await c.next()).toString('latin1');
      assert.match(got, /^SIP\/2\.0 200 OK\r\n/);
      assert.match(got, /received=127\.0\.0\.1;rport=\d+|rport=\d+;received=127\.0\.0\.1/);
      assert.ok(t.layer.counters().sent.UDP >= 1);
    } finally {
      await c.close();
    }
  });

  test('RFC 3581 §4: with two UDP listeners, the response leaves from the one the request came in on', async () => {
    const second = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    const c = await udpClient();
    try {
      const before = t.inbox.length;
      await c.send(request({ viaParams: ';rport' }), second);
      const { msg, info } = await t.nth(before + 1);
      assert.deepEqual(info.local, { address: '127.0.0.1', port: second });
      const response = errorResponse(msg as SipRequest, 200, 'OK');
      await t.layer.send(response, responseTarget(response, info)!);
      const { rinfo } = await c.nextFrom();
      assert.equal(rinfo.port, second);
    } finally {
      await c.close();
    }
  });

  test('sent-by equal to the source address and no rport: nothing is added', async () => {
    const c = await udpClient();
    try {
      const before = t.inbox.length;
      await c.send(request({ viaHost: '127.0.0.1', viaPort: c.port }), port);
      const { msg } = await t.nth(before + 1);
      const via = getTopVia(msg);
      assert.ok(via?.ok);
      assert.equal(getParam(via.value.params, 'received'), undefined);
      assert.equal(getParam(via.value.params, 'rport'), undefined);
    } finally {
      await c.close();
    }
  });

  test('IPv6: a request on ::1 is stamped and answered from the IPv6 socket', async () => {
    const c = await udpClient(6);
    try {
      const before = t.inbox.length;
      await c.send(request({ viaHost: '[2001:db8::1]', viaParams: ';rport' }), port6);
      const { msg, info } = await t.nth(before + 1);
      const via = getTopVia(msg);
      assert.ok(via?.ok);
      assert.equal(getParam(via.value.params, 'received'), '::1');
      assert.equal(info.local.address, '::1');
      const response = errorResponse(msg as SipRequest, 200, 'OK');
      await t.layer.send(response, responseTarget(response, info)!);
      assert.match((await c.next()).toString('latin1'), /^SIP\/2\.0 200 OK/);
    } finally {
      await c.close();
    }
  });

  // The transport follows the parser's verdict: a failure with a partial request is answered with its status and
  // reason; one without (no From/To/Call-ID to copy, as in RFC 4475 insuf.dat) is dropped and counted.
  for (const file of ['scalar02.dat', 'clerr.dat', 'mcl01.dat', 'badvers.dat', 'insuf.dat', 'SIP/3.0 request line']) {
    test(`${file}: answered statelessly when the parser can, else dropped and counted`, async () => {
      const bytes = file.endsWith('.dat')
        ? vector(file)
        : Buffer.from(request().replace('sip:crossway.test SIP/2.0', 'sip:crossway.test SIP/3.0'));
      const expected = parseMessage(bytes, LIMITS, { transport: 'datagram' });
      assert.ok(!expected.ok);
      if (file === 'scalar02.dat') assert.equal(expected.reason.status, 400);
      if (file.startsWith('SIP/3.0')) assert.equal(expected.reason.status, 505);
      const c = await udpClient();
      try {
        const before = t.inbox.length;
        const errorsBefore = t.layer.counters().errorResponses;
        const code = `parse:${expected.reason.code}`;
        const dropsBefore = t.layer.counters().drops[code] ?? 0;
        await c.send(bytes, port);
        if (expected.reason.partial) {
          const got = (await c.next()).toString('latin1');
          const statusLine = got.slice(0, got.indexOf('\r\n'));
          assert.equal(statusLine, `SIP/2.0 ${expected.reason.status} ${expected.reason.reason}`);
          assert.notEqual(expected.reason.reason, 'Bad Request', 'the reason names the fault');
          assert.equal(t.layer.counters().errorResponses, errorsBefore + 1);
        } else {
          await eventually(() => (t.layer.counters().drops[code] ?? 0) === dropsBefore + 1, 2000, code);
          await assert.rejects(c.next(200), /timed out/);
        }
        assert.equal(t.layer.counters().drops[code], dropsBefore + 1);
        assert.equal(t.inbox.length, before, 'not handed up');
      } finally {
        await c.close();
      }
    });
  }

  test('garbage is counted and not answered; a bare CRLF is ignored', async () => {
    const c = await udpClient();
    try {
      const dropsBefore = t.layer.counters().drops;
      const sum = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);
      await c.send(Buffer.from('\x00\x01\x02garbage\r\n\r\n'), port);
      await c.send(Buffer.from('\r\n\r\n'), port);
      await eventually(() => sum(t.layer.counters().drops) >= sum(dropsBefore) + 2, 2000, 'drops counted');
      await assert.rejects(c.next(300), /timed out/);
      assert.ok((t.layer.counters().drops['keepalive-datagram'] ?? 0) >= 1);
    } finally {
      await c.close();
    }
  });

  test('an ACK that does not parse gets no answer (RFC 3261 §17.2.1)', async () => {
    const c = await udpClient();
    try {
      const text = request({ method: 'ACK' }).replace(/CSeq: \d+ ACK/, 'CSeq: x ACK');
      await c.send(text, port);
      await assert.rejects(c.next(300), /timed out/);
    } finally {
      await c.close();
    }
  });

  test('an oversize datagram is dropped and counted', async () => {
    const small = makeLayer({ limits: { ...LIMITS, maxMessageBytes: 1024 } });
    const p = (await small.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    const c = await udpClient();
    try {
      await c.send(request({ body: 'x'.repeat(2000), extra: ['Content-Type: text/plain'] }), p);
      await eventually(() => small.layer.counters().drops['oversize-datagram'] === 1, 2000, 'oversize drop');
      assert.equal(small.inbox.length, 0);
      await assert.rejects(c.next(200), /timed out/);
    } finally {
      await c.close();
      await small.layer.close();
    }
  });

  test('send to an IPv6 target with no IPv6 UDP listener is rejected', async () => {
    const only4 = makeLayer();
    await only4.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 });
    try {
      const msg = parseMessage(Buffer.from(request()), LIMITS);
      assert.ok(msg.ok);
      await assert.rejects(only4.layer.send(msg.value, { transport: 'UDP', address: '::1', port: 5060 }), {
        code: 'ERR_SIP_TRANSPORT_NO_LISTENER',
      });
    } finally {
      await only4.layer.close();
    }
  });
});

test('UDP listeners get the configured receive buffer (bursts wait in the kernel instead of being dropped)', async () => {
  const { execFileSync } = await import('node:child_process');
  const small = makeLayer();
  const big = makeLayer({ udpReceiveBufferBytes: 1_048_576 });
  try {
    const a = await small.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 });
    const b = await big.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 });
    // ss shows each socket's rcvbuf as "rb<bytes>" in its skmem field.
    const rb = (port: number) => {
      const out = execFileSync('ss', ['-uamnH', 'src', `127.0.0.1:${port}`], { encoding: 'utf8' });
      const m = /rb(\d+)/.exec(out);
      assert.ok(m, out);
      return Number(m[1]);
    };
    assert.ok(rb(b.port) >= 1_048_576, `configured socket has rb ${rb(b.port)}`);
    assert.ok(rb(b.port) > rb(a.port), 'larger than the kernel default');
  } finally {
    await small.layer.close();
    await big.layer.close();
  }
});
