import assert from 'node:assert/strict';
import { CallRegistry } from '../../../src/calls/call-registry.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import { routingConfigSchema } from '../../../src/routing/config.ts';
import { Router, type ZoneSearcher } from '../../../src/routing/router.ts';
import { createResponse, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { StatefulProxy } from '../../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../../src/sip/proxy/resolver.ts';
import type { ProxyListener, ProxyTransactions, SipTarget } from '../../../src/sip/proxy/types.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransportInfo,
} from '../../../src/sip/transaction/types.ts';

/**
 * Small fakes for proxy unit tests kept out of proxy.test.ts: a transaction layer that records what the proxy sends, a
 * server transaction that records what it answers, and a proxy over a router and a zone searcher of the test's choice.
 */

/** Lets the proxy's async routing (router, DNS) run to its sends. */
export async function settle(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

export function parse(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text.replace(/\r?\n/g, '\r\n')));
  assert.ok(r.ok, r.ok ? '' : r.reason.reason);
  assert.equal(r.value.kind, 'request');
  return r.value as SipRequest;
}

/** An INVITE (or another method) from alice at 198.51.100.7. */
export function request(
  opts: { uri?: string; method?: string; toTag?: string; extra?: string; callId?: string } = {},
): SipRequest {
  const method = opts.method ?? 'INVITE';
  return parse(
    `${method} ${opts.uri ?? 'sip:bob@example.com'} SIP/2.0\n` +
      'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKcaller1;rport\n' +
      'Max-Forwards: 70\n' +
      'From: <sip:alice@example.com>;tag=ft1\n' +
      `To: <sip:bob@example.com>${opts.toTag ? `;tag=${opts.toTag}` : ''}\n` +
      `Call-ID: ${opts.callId ?? 'call-1@198.51.100.7'}\n` +
      `CSeq: 1 ${method}\n` +
      'Contact: <sip:alice@198.51.100.7>\n' +
      (opts.extra ?? '') +
      'Content-Length: 0\n\n',
  );
}

/** A transaction layer that records each client transaction the proxy starts. */
export class RecordingLayer implements ProxyTransactions {
  sent: { req: SipRequest; dest: Destination; tx: ClientTransactionHandle }[] = [];
  stateless: { msg: unknown; target: unknown }[] = [];
  cancelled: ClientTransactionHandle[] = [];
  #n = 0;
  sendRequest(req: SipRequest, destination: Destination): ClientTransactionHandle {
    const tx = {
      key: `c${++this.#n}`,
      kind: req.method === 'INVITE' ? 'ict' : 'nict',
      state: 'Calling',
      request: req,
      branch: 'x',
      destination,
    } as ClientTransactionHandle;
    this.sent.push({ req, dest: destination, tx });
    return tx;
  }
  cancel(invite: ClientTransactionHandle) {
    this.cancelled.push(invite);
    return { status: 'pending' as const };
  }
  sendStateless(msg: unknown, target: unknown): void {
    this.stateless.push({ msg, target });
  }
}

/** A server transaction for `req` that records the responses the proxy sends upstream. */
export function serverTx(req: SipRequest, info: TransportInfo) {
  const responses: SipResponse[] = [];
  const tx = {
    key: `s-${Math.random()}`,
    kind: req.method === 'INVITE' ? 'ist' : 'nist',
    state: 'Proceeding',
    request: req,
    transportInfo: info,
    respond(r: SipResponse) {
      responses.push(r);
      return true;
    },
  } as unknown as ServerTransactionHandle;
  return { tx, responses };
}

/** The response a downstream element sends for the forwarded request `req`. */
export const answer = (req: SipRequest, status: number) =>
  createResponse(req, status, undefined, { toTag: `tt${status}` });

/** A DNS that answers nothing: any name has no record. */
export const noDns: DnsLookup = { naptr: async () => [], srv: async () => [], a: async () => [], aaaa: async () => [] };

export function makeProxy(opts: {
  routing: Parameters<typeof routingConfigSchema.parse>[0];
  searcher: ZoneSearcher<SipTarget>;
  listeners: ProxyListener[];
  dns?: DnsLookup;
  domains?: string[];
}) {
  const clock = new FakeClock();
  const layer = new RecordingLayer();
  const config = routingConfigSchema.parse(opts.routing);
  const domains = opts.domains ?? ['example.com'];
  const router = new Router<SipTarget>({ config, domains, wallNow: () => clock.wallNow(), searcher: opts.searcher });
  const calls = new CallRegistry({ historySize: 10, wallNow: () => clock.wallNow() });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => opts.listeners,
    domains,
    clock,
    dns: opts.dns ?? noDns,
    calls,
  });
  return { clock, layer, proxy, router, calls };
}
