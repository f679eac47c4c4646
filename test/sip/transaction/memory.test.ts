import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { createResponse, getTopVia, newTag, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';

test('a completed non-INVITE server transaction keeps its messages but not their parsed headers', () => {
  const clock = new FakeClock();
  const sent: unknown[] = [];
  let request: SipRequest | undefined;
  const layer = new TransactionLayer({
    clock,
    timers: { t1: 500, t2: 4000, t4: 5000 },
    sender: { send: (m) => sent.push(m) },
    user: {
      onRequest: (req, tx) => {
        request = req;
        tx.respond(createResponse(req, 200, 'OK', { toTag: newTag() }));
      },
      onAck() {},
      onResponse() {},
      onStrayResponse() {},
      onTimeout() {},
      onTransportError() {},
    },
  });
  const text =
    'OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-mem1\r\nMax-Forwards: 70\r\n' +
    'From: <sip:a@example.com>;tag=1\r\nTo: <sip:example.com>\r\nCall-ID: mem1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';
  const info = {
    transport: 'UDP',
    reliable: false,
    source: { address: '192.0.2.1', port: 5060 },
    local: { address: '192.0.2.2', port: 5060 },
  };
  const parsed = parseMessage(Buffer.from(text));
  assert.ok(parsed.ok);
  layer.receive(parsed.value, info);
  assert.ok(request);
  const cache = Object.getOwnPropertySymbols(request).map(
    (s) => (request as unknown as Record<symbol, { rs: unknown[] }>)[s],
  );
  assert.equal(cache.length, 1);
  assert.equal(cache[0]!.rs.length, 0, 'parsed header values released in Completed');
  // A retransmission is still matched and answered again (the parsed values are recomputed on demand).
  const again = parseMessage(Buffer.from(text));
  assert.ok(again.ok);
  assert.equal(layer.receive(again.value, info).action, 'retransmission');
  assert.equal(sent.length, 2);
  assert.equal(getTopVia(request)?.ok, true);
  clock.advance(32_000);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
});
