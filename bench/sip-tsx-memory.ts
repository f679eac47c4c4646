/**
 * Heap per completed non-INVITE server transaction on UDP: N parsed OPTIONS answered 200 through a TransactionLayer
 * on a FakeClock (so every one is still in Completed, RFC 3261 §17.2.2 Timer J = 32 s), heap + array buffers
 * measured after a full GC, divided by N. The sender prepares like `transportSender` (bytes plus a SendTarget).
 *
 *   node --import tsx bench/sip-tsx-memory.ts [N] [source tree root, default this one]
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const n = Number(process.argv[2] ?? '50000');
const root = process.argv[3] ?? new URL('..', import.meta.url).pathname;
// biome-ignore lint/suspicious/noExplicitAny: modules of another tree are loaded by path, untyped
type Any = any;
const { FakeClock } = (await import(`${root}/src/common/timers.ts`)) as Any;
const { createResponse, newTag, parseMessage, serializeMessage } = (await import(
  `${root}/src/sip/message/index.ts`
)) as Any;
const { TransactionLayer } = (await import(`${root}/src/sip/transaction/transaction-layer.ts`)) as Any;
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const clock = new FakeClock();
const layer = new TransactionLayer({
  clock,
  timers: { t1: 500, t2: 4000, t4: 5000 },
  maxTransactions: 10_000_000,
  maxCompletedTransactions: 10_000_000,
  sender: {
    send() {},
    prepare: (m: Any, t: Any) => ({
      bytes: serializeMessage(m),
      to: {
        transport: 'UDP',
        address: t.replyTo.source.address,
        port: t.replyTo.source.port,
        local: { ...t.replyTo.local },
      },
    }),
    sendPrepared() {},
  },
  user: {
    onRequest: (req: Any, tx: Any) => tx.respond(createResponse(req, 200, 'OK', { toTag: newTag() })),
    onAck() {},
    onResponse() {},
    onStrayResponse() {},
    onTimeout() {},
    onTransportError() {},
    onTerminated() {},
  },
});
const info = {
  transport: 'UDP',
  reliable: false,
  source: { address: '192.0.2.1', port: 5060 },
  local: { address: '192.0.2.2', port: 5060 },
};
gc();
const before = process.memoryUsage();
const cpu0 = process.cpuUsage();
for (let i = 0; i < n; i++) {
  const r = parseMessage(
    Buffer.from(
      `OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-c${i}\r\nMax-Forwards: 70\r\n` +
        `From: <sip:a@example.com>;tag=f${i}\r\nTo: <sip:example.com>\r\nCall-ID: c${i}@example.com\r\nCSeq: 1 OPTIONS\r\n` +
        'Content-Length: 0\r\n\r\n',
    ),
  );
  layer.receive(r.value, info);
}
const cpu = process.cpuUsage(cpu0);
await new Promise((resolve) => setImmediate(resolve)); // WeakRef targets live until the job that made them ends
gc();
const after = process.memoryUsage();
const heap = (after.heapUsed - before.heapUsed) / n;
const buffers = (after.arrayBuffers - before.arrayBuffers) / n;
console.log(
  `${n} completed transactions (${root}): ${(heap + buffers).toFixed(0)} B each (heap ${heap.toFixed(0)}, buffers ` +
    `${buffers.toFixed(0)}), ${clock.pending} timers armed, ${((cpu.user + cpu.system) / n).toFixed(1)} µs CPU each`,
);
