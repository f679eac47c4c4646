import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { errorResponse } from '../../../src/sip/transport/message-codec.ts';
import { responseTarget } from '../../../src/sip/transport/response-target.ts';
import { eventually, makeLayer, request, streamClient, tcpConnect, udpClient } from './helpers.ts';

const sum = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);

/** Random bytes, truncated valid requests, valid requests with one byte changed, and header soup. */
function junk(): fc.Arbitrary<Buffer> {
  const valid = Buffer.from(request({ body: 'v=0\r\n', extra: ['Content-Type: application/sdp'] }));
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 1500 }).map((a) => Buffer.from(a)),
    fc.integer({ min: 1, max: valid.length - 1 }).map((n) => valid.subarray(0, n)),
    fc.tuple(fc.integer({ min: 0, max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, b]) => {
      const copy = Buffer.from(valid);
      copy[i] = b;
      return copy;
    }),
    fc
      .array(fc.constantFrom('Via: ', 'SIP/2.0', '\r\n', ':', ';rport', 'CSeq: 1 ', 'INVITE ', '\x00', '<sip:', '  '), {
        maxLength: 60,
      })
      .map((parts) => Buffer.from(parts.join(''), 'latin1')),
  );
}

describe('garbage flood', () => {
  const t = makeLayer({
    connections: { maxConnections: 500, idleTimeoutSeconds: 60, newConnectionsPerSecondPerSource: 0 },
  });
  let udpPort = 0;
  let tcpPort = 0;

  before(async () => {
    udpPort = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    tcpPort = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
  });
  after(() => t.layer.close());

  test('3000 random and truncated datagrams, then a valid request is still answered', async () => {
    const c = await udpClient();
    try {
      const samples = fc.sample(junk(), { numRuns: 3000, seed: 4475 });
      const before = t.layer.counters();
      const start = Date.now();
      // Every datagram is either handed up (a mutation can stay valid) or dropped and counted (answered or not).
      const accounted = () => {
        const now = t.layer.counters();
        return now.received.UDP - before.received.UDP + (sum(now.drops) - sum(before.drops));
      };
      // Paced in batches of 20 so the kernel's receive buffer (shared with the sender's process) never overflows:
      // then every single datagram must be accounted for.
      for (let i = 0; i < samples.length; i += 20) {
        const batch = samples.slice(i, i + 20);
        await Promise.all(batch.map((b) => c.send(b, udpPort)));
        await eventually(() => accounted() === i + batch.length, 5000, `datagrams ${i}..${i + batch.length}`);
      }
      const elapsed = Date.now() - start;
      const counted = accounted();
      assert.equal(counted, samples.length);
      const now = t.layer.counters();
      assert.equal(now.drops['internal-error'] ?? 0, 0);
      assert.ok(now.errorResponses > before.errorResponses, 'some were answered with 400');
      t.inbox.length = 0;
      c.got.length = 0;
      const ok = await udpClient();
      try {
        await ok.send(request({ viaParams: ';rport' }), udpPort);
        const { msg, info } = await t.nth(1);
        const r = errorResponse(msg as SipRequest, 200, 'OK');
        await t.layer.send(r, responseTarget(r, info)!);
        assert.match((await ok.next()).toString('latin1'), /^SIP\/2\.0 200 OK/);
      } finally {
        await ok.close();
      }
      process.stdout.write(`# flood: ${samples.length} datagrams in ${elapsed} ms, ${counted} accounted for\n`);
    } finally {
      await c.close();
    }
  });

  test('300 garbage TCP connections, then a valid request on a new connection is still answered', async () => {
    const samples = fc.sample(junk(), { numRuns: 300, seed: 5626 });
    const start = Date.now();
    for (let i = 0; i < samples.length; i += 25) {
      await Promise.all(
        samples.slice(i, i + 25).map(async (b, j) => {
          const c = streamClient(await tcpConnect(tcpPort));
          await c.write(Buffer.concat([b, (i + j) % 2 === 0 ? Buffer.from('\r\n\r\n') : Buffer.alloc(0)]));
          await new Promise((r) => setTimeout(r, 5));
          c.socket.destroy();
        }),
      );
    }
    await eventually(() => t.layer.connections().length === 0, 5000, 'garbage connections gone');
    const counters = t.layer.counters();
    assert.equal(counters.drops['internal-error'] ?? 0, 0);
    assert.ok(counters.connections.opened >= 300);
    const c = streamClient(await tcpConnect(tcpPort));
    try {
      t.inbox.length = 0;
      await c.write(request({ transport: 'TCP' }));
      const { msg, info } = await t.nth(1);
      const r = errorResponse(msg as SipRequest, 200, 'OK');
      await t.layer.send(r, responseTarget(r, info)!);
      assert.match(await c.waitFor('\r\n\r\n'), /^SIP\/2\.0 200 OK/);
    } finally {
      c.socket.destroy();
    }
    process.stdout.write(`# flood: 300 garbage connections in ${Date.now() - start} ms\n`);
  });
});
