import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeLayer, udpClient } from './helpers.ts';

// `sendBytesNoWait`: the promise-free UDP send path used for answers and retransmissions.
describe('sendBytesNoWait', () => {
  const t = makeLayer();
  let port = 0;

  before(async () => {
    port = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
  });
  after(() => t.layer.close());

  test('a datagram reaches its destination from the listener, byte for byte, and is counted once sent', async () => {
    const c = await udpClient();
    try {
      const bytes = Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n');
      const sentBefore = t.layer.counters().sent.UDP;
      const errors: Error[] = [];
      t.layer.sendBytesNoWait(bytes, { transport: 'UDP', address: '127.0.0.1', port: c.port }, (e) => errors.push(e));
      const got = await c.nextFrom();
      assert.deepEqual(got.msg, bytes);
      assert.deepEqual({ address: got.rinfo.address, port: got.rinfo.port }, { address: '127.0.0.1', port });
      await new Promise((r) => setImmediate(r));
      assert.equal(t.layer.counters().sent.UDP, sentBefore + 1);
      assert.deepEqual(errors, []);
    } finally {
      await c.close();
    }
  });

  test('no listener of the family: onError is called, asynchronously, not a throw', async () => {
    let called: Error | undefined;
    let sync = true;
    t.layer.sendBytesNoWait(Buffer.from('x'), { transport: 'UDP', address: '::1', port: 5060 }, (e) => {
      called = e;
      assert.equal(sync, false, 'reported after the call returned');
    });
    sync = false;
    await new Promise((r) => setImmediate(r));
    assert.ok(called);
    assert.equal((called as Error & { code?: string }).code, 'ERR_SIP_TRANSPORT_NO_LISTENER');
  });

  test('a datagram too large for UDP is refused through onError', async () => {
    const err = await new Promise<Error>((resolve) =>
      t.layer.sendBytesNoWait(Buffer.alloc(70_000), { transport: 'UDP', address: '127.0.0.1', port: 9 }, resolve),
    );
    assert.equal((err as Error & { code?: string }).code, 'ERR_SIP_TRANSPORT_TOO_LARGE');
  });
});
