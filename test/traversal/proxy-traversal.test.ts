import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import { routingConfigSchema } from '../../src/routing/config.ts';
import { Router } from '../../src/routing/router.ts';
import type { AuthResult, RequestAuthenticator } from '../../src/sip/auth/types.ts';
import { createResponse, getHeader, getHeaders, parseMessage } from '../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/types.ts';
import { DELEGATED_AUTH_HEADER, StatefulProxy } from '../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../src/sip/proxy/resolver.ts';
import type { ProxyTransactions, ProxyTraversal, SipTarget } from '../../src/sip/proxy/types.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransportInfo,
} from '../../src/sip/transaction/types.ts';
import { FlowTokens } from '../../src/traversal/flow-token.ts';

/*
 * The proxy's traversal rules that docs/traversal.md adds beyond anchoring: the Path names the edge's traversal
 * listener, flow tokens outlive a restart of the edge, and delegated credential checking (edge and core sides).
 */

const noDns: DnsLookup = { naptr: async () => [], srv: async () => [], a: async () => [], aaaa: async () => [] };
const tick = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

function request(
  method: string,
  o: { uri?: string; from?: string; route?: string; headers?: [string, string][]; via?: string } = {},
): SipRequest {
  const text =
    `${method} ${o.uri ?? 'sip:bob@example.com'} SIP/2.0\r\n` +
    `Via: SIP/2.0/${o.via ?? 'UDP 198.51.100.7:5060'};branch=z9hG4bK${Math.random().toString(36).slice(2)};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    (o.route ? `Route: ${o.route}\r\n` : '') +
    `From: <${o.from ?? 'sip:alice@example.com'}>;tag=ft1\r\n` +
    'To: <sip:bob@example.com>\r\n' +
    `Call-ID: ${Math.random().toString(36).slice(2)}\r\n` +
    `CSeq: 1 ${method}\r\n` +
    'Contact: <sip:alice@198.51.100.7>\r\n' +
    (o.headers ?? []).map(([n, v]) => `${n}: ${v}\r\n`).join('') +
    'Content-Length: 0\r\n\r\n';
  const r = parseMessage(Buffer.from(text));
  assert.ok(r.ok);
  return r.value as SipRequest;
}

const OUTSIDE_UDP: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};
/** The core's flow as the edge sees it. */
const FLOW: Destination = { transport: 'TLS', address: '10.0.0.2', port: 25001, connectionId: 'core-flow' };
const ON_FLOW: TransportInfo = {
  transport: 'TLS',
  reliable: true,
  source: { address: FLOW.address, port: FLOW.port },
  local: { address: '192.0.2.1', port: 7001 },
  connectionId: FLOW.connectionId!,
};

class FakeLayer implements ProxyTransactions {
  sent: { req: SipRequest; dest: Destination }[] = [];
  #n = 0;
  sendRequest(request: SipRequest, destination: Destination): ClientTransactionHandle {
    this.sent.push({ req: request, dest: destination });
    return { key: `c${++this.#n}`, kind: 'ict', request, destination } as unknown as ClientTransactionHandle;
  }
  cancel() {
    return { status: 'pending' as const };
  }
  sendStateless(): void {}
}

function server(req: SipRequest, info: TransportInfo) {
  const responses: SipResponse[] = [];
  const tx = {
    key: `s-${Math.random()}`,
    kind: req.method === 'INVITE' ? 'ist' : 'nist',
    request: req,
    transportInfo: info,
    respond: (r: SipResponse) => {
      responses.push(r);
      return true;
    },
  } as unknown as ServerTransactionHandle;
  return { tx, responses };
}

/** Challenges (407) a request without Proxy-Authorization, accepts one with it; counts what it was asked. */
class FakeAuth implements RequestAuthenticator {
  asked: string[] = [];
  authenticate(request: SipRequest, ctx: { realm: string }): AuthResult {
    this.asked.push(ctx.realm);
    if (getHeader(request, 'proxy-authorization') !== undefined) {
      return { kind: 'authenticated', username: 'alice', realm: ctx.realm };
    }
    return {
      kind: 'challenge',
      response: createResponse(request, 407, 'Proxy Authentication Required', {
        toTag: 'x',
        headers: [['Proxy-Authenticate', `Digest realm="${ctx.realm}", nonce="n"`]],
      }),
    };
  }
}

interface Setup {
  role: 'edge' | 'core';
  flowUp?: boolean;
  delegating?: boolean;
  tokens?: FlowTokens;
}

function setup(o: Setup) {
  const clock = new FakeClock();
  const layer = new FakeLayer();
  const auth = new FakeAuth();
  const flowUp = o.flowUp ?? true;
  const config = routingConfigSchema.parse({
    zones: [{ name: 'tz1', type: 'traversal' }],
    searchRules: [{ name: 'all', pattern: { type: 'anyAlias' }, targetZone: 'tz1' }],
    proxy: { authenticateCalls: true },
  });
  const inside: Destination = { transport: 'UDP', address: '10.0.0.9', port: 5060 };
  const down = { uri: '', routes: [], ...(flowUp ? { destinations: [{ ...FLOW }] } : {}) };
  const traversal: ProxyTraversal =
    o.role === 'edge'
      ? {
          sourceZone: (info) => (info.connectionId === FLOW.connectionId ? 'tz1' : undefined),
          isTraversalZone: (z) => z === 'tz1',
          viaFlow: (d) => (d.address === FLOW.address && d.port === 5061 ? { ...FLOW } : d),
          isFlow: (d) => d.connectionId === FLOW.connectionId,
          flowListener: (d) =>
            d.connectionId === FLOW.connectionId ? { transport: 'TLS', address: '192.0.2.1', port: 7001 } : undefined,
          registerTarget: (domain) => (domain === 'example.com' ? { zone: 'tz1', target: down } : undefined),
          delegatedTarget: (domain) =>
            o.delegating && domain === 'example.com' ? { zone: 'tz1', target: down } : undefined,
        }
      : {
          // The core: its flow to the edge arrives from the edge's traversal listener.
          sourceZone: (info) => (info.source.address === '192.0.2.1' && info.source.port === 7001 ? 'tz1' : undefined),
          isTraversalZone: (z) => z === 'tz1',
          viaFlow: (d) => d,
          isFlow: () => false,
          registerTarget: () => undefined,
        };
  const router = new Router<SipTarget>({
    config,
    domains: ['example.com'],
    wallNow: () => clock.wallNow(),
    searcher: {
      search: () => [
        o.role === 'edge'
          ? { uri: 'sip:bob@example.com', routes: [], destinations: [{ ...FLOW }] }
          : { uri: 'sip:bob@10.0.0.9', routes: [], destinations: [inside] },
      ],
    },
  });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => [
      { transport: 'UDP', address: '192.0.2.1', port: 5060 },
      { transport: 'TCP', address: '192.0.2.1', port: 5060 },
      { transport: 'TLS', address: '192.0.2.1', port: 5061 },
      { transport: 'TLS', address: '192.0.2.1', port: 7001 },
    ],
    domains: ['example.com'],
    clock,
    dns: noDns,
    authenticator: auth,
    traversal,
    ...(o.tokens ? { flowTokens: o.tokens } : {}),
  });
  return { layer, proxy, auth };
}

/** The edge's view of a request from the core on the zone's flow (the core's Via and the flow's transport). */
const fromCore = (uri: string, route: string) => request('INVITE', { uri, route, via: 'TLS 10.0.0.2:5061' });

test("REGISTER through the edge: the Path names the edge's traversal listener, where the core reaches the edge", async () => {
  const { layer, proxy } = setup({ role: 'edge' });
  const reg = request('REGISTER', { uri: 'sip:example.com' });
  assert.equal(proxy.handleRegister(reg, server(reg, OUTSIDE_UDP).tx, OUTSIDE_UDP), true);
  await tick();
  assert.deepEqual(layer.sent[0]?.dest, FLOW);
  const path = getHeaders(layer.sent[0]!.req, 'path')[0]!;
  assert.match(path, /^<sip:cw-[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}@192\.0\.2\.1:7001;transport=tls;lr;ob>$/);
});

test('flow tokens after an edge restart: a Path from before still routes to the endpoint address, the old connection id is dropped', async () => {
  const key = randomBytes(32);
  const before = setup({ role: 'edge', tokens: new FlowTokens(key, 'boot-1') });
  // alice registered over TCP from behind a NAT (198.51.100.7:40000), on the edge's connection tcp-5.
  const tcpIn: TransportInfo = {
    transport: 'TCP',
    reliable: true,
    source: { address: '198.51.100.7', port: 40000 },
    local: { address: '192.0.2.1', port: 5060 },
    connectionId: 'tcp-5',
  };
  const reg = request('REGISTER', { uri: 'sip:example.com', via: 'TCP 10.1.1.1:5060' });
  before.proxy.handleRegister(reg, server(reg, tcpIn).tx, tcpIn);
  await tick();
  const path = getHeaders(before.layer.sent[0]!.req, 'path')[0]!;

  // The same process: the call goes out on alice's own connection.
  const inv1 = fromCore('sip:alice@10.1.1.1', path);
  before.proxy.handle(inv1, server(inv1, ON_FLOW).tx, ON_FLOW);
  await tick();
  assert.deepEqual(before.layer.sent.at(-1)!.dest, {
    transport: 'TCP',
    address: '198.51.100.7',
    port: 40000,
    connectionId: 'tcp-5',
  });

  // Restarted (same key from the store, another boot): to alice's address, never to whatever is tcp-5 now.
  const after = setup({ role: 'edge', tokens: new FlowTokens(key, 'boot-2') });
  const inv2 = fromCore('sip:alice@10.1.1.1', path);
  after.proxy.handle(inv2, server(inv2, ON_FLOW).tx, ON_FLOW);
  await tick();
  assert.deepEqual(after.layer.sent.at(-1)!.dest, { transport: 'TCP', address: '198.51.100.7', port: 40000 });

  // An edge with another key does not take the token for its own: it routes by the Request-URI instead.
  const stranger = setup({ role: 'edge', tokens: new FlowTokens(randomBytes(32), 'boot-3') });
  const inv3 = fromCore('sip:alice@10.1.1.1', path);
  stranger.proxy.handle(inv3, server(inv3, ON_FLOW).tx, ON_FLOW);
  await tick();
  for (const s of stranger.layer.sent) assert.notEqual(s.dest.port, 40000);
});

test("delegated credential checking, edge: a caller of the zone's domain goes down the zone unchallenged and marked", async () => {
  const { layer, proxy, auth } = setup({ role: 'edge', delegating: true });
  // A marker from outside is never passed on as the edge's own: here the edge delegates, so it writes its own.
  const inv = request('INVITE', { headers: [[DELEGATED_AUTH_HEADER, 'forged']] });
  const s = server(inv, OUTSIDE_UDP);
  proxy.handle(inv, s.tx, OUTSIDE_UDP);
  await tick();
  assert.deepEqual(auth.asked, [], 'the edge holds no credentials for example.com and does not challenge');
  assert.equal(s.responses.filter((r) => r.status >= 300).length, 0);
  assert.deepEqual(layer.sent.at(-1)?.dest, FLOW);
  assert.deepEqual(getHeaders(layer.sent.at(-1)!.req, DELEGATED_AUTH_HEADER), ['tz1']);

  // A caller from another domain is the edge's own business: challenged as before, nothing sent.
  const sent = layer.sent.length;
  const foreign = request('INVITE', {
    from: 'sip:carol@elsewhere.org',
    headers: [[DELEGATED_AUTH_HEADER, 'forged']],
  });
  const sf = server(foreign, OUTSIDE_UDP);
  proxy.handle(foreign, sf.tx, OUTSIDE_UDP);
  await tick();
  assert.equal(sf.responses.at(-1)?.status, 407);
  assert.equal(layer.sent.length, sent);
  // Once carol authenticates at the edge, the forged mark is removed before forwarding.
  const again = request('INVITE', {
    from: 'sip:carol@elsewhere.org',
    headers: [
      [DELEGATED_AUTH_HEADER, 'forged'],
      ['Proxy-Authorization', 'Digest username="carol", realm="elsewhere.org"'],
    ],
  });
  proxy.handle(again, server(again, OUTSIDE_UDP).tx, OUTSIDE_UDP);
  await tick();
  assert.equal(layer.sent.length, sent + 1);
  assert.deepEqual(getHeaders(layer.sent.at(-1)!.req, DELEGATED_AUTH_HEADER), []);
});

test('delegated credential checking, edge: with the zone down the caller gets 503 Retry-After, not a challenge', async () => {
  const { layer, proxy, auth } = setup({ role: 'edge', delegating: true, flowUp: false });
  const inv = request('INVITE');
  const s = server(inv, OUTSIDE_UDP);
  proxy.handle(inv, s.tx, OUTSIDE_UDP);
  await tick();
  assert.deepEqual(auth.asked, []);
  assert.equal(layer.sent.length, 0);
  assert.equal(s.responses.at(-1)?.status, 503);
  assert.equal(getHeader(s.responses.at(-1)!, 'retry-after'), '30');
});

test('delegated credential checking, core: a marked request on the flow is challenged; authenticated, it goes on unmarked', async () => {
  const { layer, proxy, auth } = setup({ role: 'core' });
  const edgeFlow: TransportInfo = {
    transport: 'TLS',
    reliable: true,
    source: { address: '192.0.2.1', port: 7001 },
    local: { address: '10.0.0.2', port: 25001 },
    connectionId: 'edge-flow',
  };
  const via = 'TLS 192.0.2.1:7001';
  const marked = request('INVITE', { via, headers: [[DELEGATED_AUTH_HEADER, 'tz1']] });
  const s = server(marked, edgeFlow);
  proxy.handle(marked, s.tx, edgeFlow);
  await tick();
  assert.deepEqual(auth.asked, ['example.com']);
  assert.equal(s.responses.at(-1)?.status, 407);
  assert.equal(layer.sent.length, 0);

  const answered = request('INVITE', {
    via,
    headers: [
      [DELEGATED_AUTH_HEADER, 'tz1'],
      ['Proxy-Authorization', 'Digest username="alice", realm="example.com"'],
    ],
  });
  proxy.handle(answered, server(answered, edgeFlow).tx, edgeFlow);
  await tick();
  assert.equal(layer.sent.length, 1);
  assert.deepEqual(getHeaders(layer.sent[0]!.req, DELEGATED_AUTH_HEADER), []);

  // Without the mark the edge checked the caller itself (or trusted it): the zone is trusted as before.
  const plain = request('INVITE', { via });
  proxy.handle(plain, server(plain, edgeFlow).tx, edgeFlow);
  await tick();
  assert.equal(auth.asked.length, 2);
  assert.equal(layer.sent.length, 2);
});
