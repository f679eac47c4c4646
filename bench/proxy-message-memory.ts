/**
 * Heap held by answered non-INVITE requests in the proxy core: `node --expose-gc --import tsx
 * bench/proxy-message-memory.ts [N]` sends N MESSAGEs through the proxy (in process, a transaction layer that keeps
 * nothing), answers each 200 and never ends the client transactions (as before their Timer K), then reads the heap
 * after a full GC. Before a57c580 each answered MESSAGE stayed reachable from its branch until Timer K.
 */
import { FakeClock } from '../src/common/timers.ts';
import { routingConfigSchema } from '../src/routing/config.ts';
import { Router } from '../src/routing/router.ts';
import { createResponse, parseMessage } from '../src/sip/message/index.ts';
import type { SipRequest } from '../src/sip/message/types.ts';
import { StatefulProxy } from '../src/sip/proxy/proxy.ts';
import type { SipTarget } from '../src/sip/proxy/types.ts';
import type { ClientTransactionHandle, ServerTransactionHandle, TransportInfo } from '../src/sip/transaction/types.ts';

const N = Number(process.argv[2] ?? 20_000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const config = routingConfigSchema.parse({
  zones: [{ name: 'Z', type: 'neighbor', address: '203.0.113.1' }],
  searchRules: [{ name: 'all', pattern: { type: 'anyAlias' }, targetZone: 'Z' }],
  searchHistorySize: 1,
});
const target: SipTarget = {
  uri: 'sip:bob@192.0.2.50',
  routes: [],
  destinations: [{ transport: 'UDP', address: '192.0.2.50', port: 5060 }],
};
const router = new Router<SipTarget>({ config, domains: [], wallNow: () => 0, searcher: { search: () => [target] } });
let last: { req: SipRequest; tx: ClientTransactionHandle } | undefined;
let n = 0;
const proxy = new StatefulProxy({
  settings: config.proxy,
  router,
  clock: new FakeClock(),
  domains: [],
  dns: { naptr: async () => [], srv: async () => [], a: async () => [], aaaa: async () => [] },
  listeners: () => [{ transport: 'UDP', address: '192.0.2.1', port: 5060 }],
  transactions: {
    sendRequest(request, destination) {
      const tx = { key: `c${++n}`, kind: 'nict', request, destination } as unknown as ClientTransactionHandle;
      last = { req: request, tx };
      return tx;
    },
    cancel: () => ({ status: 'too-late' as const }),
    sendStateless() {},
  },
});
const info: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};

gc();
const before = process.memoryUsage().heapUsed;
for (let i = 0; i < N; i++) {
  const text =
    `MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK${i}\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:alice@example.com>;tag=f${i}\r\nTo: <sip:bob@example.com>\r\nCall-ID: m${i}\r\n` +
    `CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n${'x'.repeat(100)}`;
  const r = parseMessage(Buffer.from(text));
  if (!r.ok) throw new Error(r.reason.reason);
  const req = r.value as SipRequest;
  const server = {
    key: `s${i}`,
    kind: 'nist',
    request: req,
    respond: () => true,
  } as unknown as ServerTransactionHandle;
  proxy.handle(req, server, info);
  await new Promise((res) => setImmediate(res));
  proxy.onResponse(createResponse(last!.req, 200, undefined, { toTag: 't' }), last!.tx);
}
last = undefined;
gc();
const grown = process.memoryUsage().heapUsed - before;
console.log(
  `${N} MESSAGEs answered, client transactions not ended: heap +${(grown / 1048576).toFixed(1)} MiB ` +
    `(${Math.round(grown / N)} B each); branches still followed: ${proxy.branchesInFlight}`,
);
