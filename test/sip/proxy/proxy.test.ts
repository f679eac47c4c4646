import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CallRegistry } from '../../../src/calls/call-registry.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import { routingConfigSchema } from '../../../src/routing/config.ts';
import { Router, type Zone } from '../../../src/routing/router.ts';
import { computeHa1, computeResponse } from '../../../src/sip/auth/digest.ts';
import {
  createResponse,
  findHeaders,
  getHeader,
  getHeaders,
  getTopVia,
  parseMessage,
  serializeMessage,
} from '../../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { StatefulProxy } from '../../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../../src/sip/proxy/resolver.ts';
import type { SipTarget } from '../../../src/sip/proxy/types.ts';
import type { Destination, ServerTransactionHandle, TransportInfo } from '../../../src/sip/transaction/types.ts';
import { RecordingLayer } from './proxy-fakes.ts';

const noDns: DnsLookup = {
  naptr: async () => [],
  srv: async () => [],
  a: async () => [],
  aaaa: async () => [],
};

const tick = () => new Promise((r) => setImmediate(r));

function parse(text: string): SipRequest {
  const r = parseMessage(Buffer.from(text.replace(/\n/g, '\r\n')));
  assert.ok(r.ok, r.ok ? '' : r.reason.reason);
  return r.value as SipRequest;
}

function invite(opts: { uri?: string; extra?: string; method?: string; toTag?: string } = {}): SipRequest {
  const method = opts.method ?? 'INVITE';
  return parse(
    `${method} ${opts.uri ?? 'sip:bob@example.com'} SIP/2.0\n` +
      'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKcaller1;rport\n' +
      'Max-Forwards: 70\n' +
      'From: <sip:alice@example.com>;tag=ft1\n' +
      `To: <sip:bob@example.com>${opts.toTag ? `;tag=${opts.toTag}` : ''}\n` +
      'Call-ID: call-1@198.51.100.7\n' +
      `CSeq: 1 ${method}\n` +
      'Contact: <sip:alice@198.51.100.7>\n' +
      (opts.extra ?? '') +
      'Content-Length: 0\n\n',
  );
}

/** The message as the next hop would parse it. */
function reparse(msg: SipRequest): SipRequest {
  const r = parseMessage(serializeMessage(msg));
  assert.ok(r.ok);
  return r.value as SipRequest;
}

const UDP_IN: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};

function server(request: SipRequest, info = UDP_IN) {
  const responses: SipResponse[] = [];
  const tx = {
    key: `s-${Math.random()}`,
    kind: request.method === 'INVITE' ? 'ist' : 'nist',
    state: 'Proceeding',
    request,
    transportInfo: info,
    respond(r: SipResponse) {
      responses.push(r);
      return true;
    },
  } as ServerTransactionHandle & { cancels?: ServerTransactionHandle };
  return { tx, responses };
}

const dest = (address: string, port = 5060, transport = 'UDP'): Destination => ({ transport, address, port });

/** A proxy whose zone Z returns the given targets for any alias. */
function setup(
  targets: SipTarget[],
  settings: Record<string, unknown> = {},
  routing: Record<string, unknown> = {},
  extra: Partial<ConstructorParameters<typeof StatefulProxy>[0]> = {},
) {
  const clock = new FakeClock();
  const layer = new RecordingLayer();
  const config = routingConfigSchema.parse({
    zones: [{ name: 'Z', type: 'neighbor', address: '203.0.113.1' }],
    searchRules: [{ name: 'all', pattern: { type: 'anyAlias' }, targetZone: 'Z' }],
    proxy: settings,
    ...routing,
  });
  const router = new Router<SipTarget>({
    config,
    domains: ['example.com'],
    wallNow: () => clock.wallNow(),
    searcher: { search: (_z: Zone) => targets },
  });
  const calls = new CallRegistry({ historySize: 10, wallNow: () => clock.wallNow() });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => [
      { transport: 'UDP', address: '192.0.2.1', port: 5060 },
      { transport: 'TCP', address: '192.0.2.1', port: 5060 },
    ],
    domains: ['example.com'],
    clock,
    dns: noDns,
    calls,
    ...extra,
  });
  return { clock, layer, proxy, router, calls };
}

/** The response a downstream element sends for the forwarded request `req`. */
const answer = (req: SipRequest, status: number, headers: [string, string][] = []) =>
  createResponse(req, status, undefined, { toTag: `tt${status}`, headers });

const target = (address: string, extra: Partial<SipTarget> = {}): SipTarget => ({
  uri: `sip:bob@${address}`,
  routes: [],
  destinations: [dest(address)],
  ...extra,
});

describe('proxy core: request validation (RFC 3261 §16.3)', () => {
  test('Max-Forwards 0: 483 for INVITE; OPTIONS is left to the node itself', () => {
    const { proxy } = setup([target('192.0.2.50')]);
    const req = invite({ extra: '' });
    req.headers = req.headers.map((h) => (h.name === 'Max-Forwards' ? { ...h, value: '0' } : h));
    const s = server(req);
    assert.equal(proxy.handle(req, s.tx, UDP_IN), true);
    assert.equal(s.responses[0]?.status, 483);
    const opt = invite({ method: 'OPTIONS' });
    opt.headers = opt.headers.map((h) => (h.name === 'Max-Forwards' ? { ...h, value: '0' } : h));
    assert.equal(proxy.handle(opt, server(opt).tx, UDP_IN), false);
  });

  test('Proxy-Require with an unknown option tag: 420 listing it in Unsupported', () => {
    const { proxy, layer } = setup([target('192.0.2.50')]);
    const req = invite({ extra: 'Proxy-Require: foo\n' });
    const s = server(req);
    proxy.handle(req, s.tx, UDP_IN);
    assert.equal(s.responses[0]?.status, 420);
    assert.equal(getHeader(s.responses[0]!, 'unsupported'), 'foo');
    assert.equal(layer.sent.length, 0);
  });

  test('a request coming back unchanged through this proxy is a loop: 482; a retargeted one (spiral) is not', async () => {
    const { proxy, layer } = setup([{ uri: 'sip:bob@example.com', routes: [], destinations: [dest('192.0.2.50')] }]);
    const req = invite();
    proxy.handle(req, server(req).tx, UDP_IN);
    await tick();
    const forwarded = layer.sent[0]!.req;
    const back = reparse(forwarded);
    const s = server(back);
    proxy.handle(back, s.tx, UDP_IN);
    assert.equal(s.responses[0]?.status, 482);
    const spiral = reparse(forwarded);
    spiral.uri = 'sip:bob-retargeted@example.com';
    const s2 = server(spiral);
    proxy.handle(spiral, s2.tx, UDP_IN);
    await tick();
    assert.notEqual(s2.responses[0]?.status, 482);
    assert.equal(layer.sent.length, 2);
  });
});

describe('proxy core: routing and forwarding (§16.4–§16.6)', () => {
  test('in-dialog request: our Route removed, next hop from the next Route, Max-Forwards decremented, our Via on top', async () => {
    const { proxy, layer } = setup([]);
    const req = invite({
      method: 'BYE',
      uri: 'sip:bob@192.0.2.60:5070',
      toTag: 'b1',
      extra: 'Route: <sip:192.0.2.1:5060;lr>, <sip:192.0.2.99:5080;lr>\n',
    });
    proxy.handle(req, server(req).tx, UDP_IN);
    await tick();
    const { req: out, dest: d } = layer.sent[0]!;
    assert.deepEqual(getHeaders(out, 'route'), ['<sip:192.0.2.99:5080;lr>']);
    assert.deepEqual([d.address, d.port], ['192.0.2.99', 5080]);
    assert.equal(getHeader(out, 'max-forwards'), '69');
    const via = getTopVia(out)!;
    assert.ok(via.ok && via.value.host === '192.0.2.1');
    assert.equal(out.uri, 'sip:bob@192.0.2.60:5070');
  });

  test('strict router upstream: our URI in the Request-URI is replaced by the last Route (§16.4)', async () => {
    const { proxy, layer } = setup([]);
    const req = invite({
      method: 'BYE',
      uri: 'sip:192.0.2.1:5060;lr',
      toTag: 'b1',
      extra: 'Route: <sip:192.0.2.70:5060;lr>, <sip:bob@192.0.2.60:5070>\n',
    });
    proxy.handle(req, server(req).tx, UDP_IN);
    await tick();
    const { req: out, dest: d } = layer.sent[0]!;
    assert.equal(out.uri, 'sip:bob@192.0.2.60:5070');
    assert.deepEqual(getHeaders(out, 'route'), ['<sip:192.0.2.70:5060;lr>']);
    assert.equal(d.address, '192.0.2.70');
  });

  test('Record-Route once on the same transport, twice when crossing from TCP to UDP (outbound side on top)', async () => {
    const same = setup([target('192.0.2.50')]);
    const r1 = invite();
    same.proxy.handle(r1, server(r1).tx, UDP_IN);
    await tick();
    assert.deepEqual(getHeaders(same.layer.sent[0]!.req, 'record-route'), ['<sip:192.0.2.1:5060;lr>']);

    const cross = setup([target('192.0.2.50')]);
    const r2 = invite();
    const tcpIn: TransportInfo = { ...UDP_IN, transport: 'TCP', reliable: true };
    cross.proxy.handle(r2, server(r2, tcpIn).tx, tcpIn);
    await tick();
    assert.deepEqual(getHeaders(cross.layer.sent[0]!.req, 'record-route'), [
      '<sip:192.0.2.1:5060;lr>',
      '<sip:192.0.2.1:5060;transport=tcp;lr>',
    ]);
  });

  test('a registration Path becomes Route headers, and the next hop is the first of them (RFC 3327)', async () => {
    const { proxy, layer } = setup([
      { uri: 'sip:bob@10.0.0.5:5060', routes: ['sip:192.0.2.80:5062;lr', 'sip:192.0.2.81;lr'] },
    ]);
    const r = invite();
    proxy.handle(r, server(r).tx, UDP_IN);
    await tick();
    const { req: out, dest: d } = layer.sent[0]!;
    assert.deepEqual(getHeaders(out, 'route'), ['<sip:192.0.2.80:5062;lr>', '<sip:192.0.2.81;lr>']);
    assert.deepEqual([d.address, d.port], ['192.0.2.80', 5062]);
    assert.equal(out.uri, 'sip:bob@10.0.0.5:5060');
  });

  test('ACK for a 2xx is forwarded statelessly along the route set', () => {
    const { proxy, layer } = setup([]);
    const ack = invite({
      method: 'ACK',
      uri: 'sip:bob@192.0.2.60:5070',
      toTag: 'b1',
      extra: 'Route: <sip:192.0.2.1:5060;lr>\n',
    });
    assert.equal(proxy.handleAck(ack, UDP_IN), true);
    return tick().then(() => {
      const sent = layer.stateless[0]!;
      const msg = sent.msg as SipRequest;
      assert.equal(findHeaders(msg, 'route').length, 0);
      assert.equal((sent.target as Destination).port, 5070);
      assert.equal(getHeaders(msg, 'via').length, 2);
      assert.equal(proxy.counters.acksForwarded, 1);
    });
  });
});

describe('proxy core: responses (§16.7), CANCEL (§16.10), Timer C (§16.8)', () => {
  test('forking: provisional forwarded at once; the first 2xx forwarded and the other branch cancelled; a late 487 is not', async () => {
    const { proxy, layer, calls } = setup([target('192.0.2.50'), target('192.0.2.51')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(layer.sent.length, 2, 'parallel fork to both targets');
    const [a, b] = layer.sent;
    proxy.onResponse(answer(a!.req, 100), a!.tx);
    proxy.onResponse(answer(a!.req, 180), a!.tx);
    proxy.onResponse(answer(b!.req, 200), b!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [180, 200],
    );
    // Our Via is gone from what goes upstream.
    assert.equal(getHeaders(s.responses[1]!, 'via').length, 1);
    assert.deepEqual(layer.cancelled, [a!.tx]);
    proxy.onResponse(answer(a!.req, 487), a!.tx);
    assert.equal(s.responses.length, 2);
    assert.equal(calls.active()[0]?.state, 'active');
  });

  test('best response: lowest class wins, 6xx beats everything, 503 becomes 500, no answer at all is 408', async () => {
    const run = async (statuses: number[]) => {
      const { proxy, layer } = setup(statuses.map((_, i) => target(`192.0.2.${50 + i}`)));
      const r = invite();
      const s = server(r);
      proxy.handle(r, s.tx, UDP_IN);
      await tick();
      for (const [i, st] of statuses.entries()) proxy.onResponse(answer(layer.sent[i]!.req, st), layer.sent[i]!.tx);
      return s.responses.at(-1)!.status;
    };
    assert.equal(await run([503, 404]), 404);
    assert.equal(await run([486, 302]), 302);
    assert.equal(await run([404, 603]), 603);
    assert.equal(await run([503]), 500);
    assert.equal(await run([408, 486]), 486);
  });

  test('a 6xx cancels the branches still pending', async () => {
    const { proxy, layer } = setup([target('192.0.2.50'), target('192.0.2.51')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 603), layer.sent[0]!.tx);
    assert.deepEqual(layer.cancelled, [layer.sent[1]!.tx]);
    proxy.onResponse(answer(layer.sent[1]!.req, 487), layer.sent[1]!.tx);
    assert.equal(s.responses.at(-1)!.status, 603);
  });

  test('401 and 407 from two branches: the challenges are gathered into the response sent upstream', async () => {
    const { proxy, layer } = setup([target('192.0.2.50'), target('192.0.2.51')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(
      answer(layer.sent[0]!.req, 401, [['WWW-Authenticate', 'Digest realm="a", nonce="1"']]),
      layer.sent[0]!.tx,
    );
    proxy.onResponse(
      answer(layer.sent[1]!.req, 407, [['Proxy-Authenticate', 'Digest realm="b", nonce="2"']]),
      layer.sent[1]!.tx,
    );
    const out = s.responses.at(-1)!;
    assert.equal(out.status, 401);
    assert.equal(getHeaders(out, 'www-authenticate').length, 1);
    assert.equal(getHeaders(out, 'proxy-authenticate').length, 1);
  });

  test('CANCEL from the caller: 200 at once, every pending branch cancelled, then 487 upstream', async () => {
    const { proxy, layer, calls } = setup([target('192.0.2.50'), target('192.0.2.51')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 180), layer.sent[0]!.tx);
    const cancel = invite({ method: 'CANCEL' });
    const c = server(cancel);
    (c.tx as { cancels?: ServerTransactionHandle }).cancels = s.tx;
    assert.equal(proxy.handle(cancel, c.tx, UDP_IN), true);
    assert.equal(c.responses[0]?.status, 200);
    assert.equal(layer.cancelled.length, 2);
    proxy.onResponse(answer(layer.sent[0]!.req, 487), layer.sent[0]!.tx);
    proxy.onResponse(answer(layer.sent[1]!.req, 487), layer.sent[1]!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [180, 487],
    );
    assert.equal(calls.history()[0]?.cause, 'cancelled by caller');
  });

  test('Timer C: a ringing branch is cancelled; a silent one counts as 408; reset by each provisional', async () => {
    const { proxy, layer, clock } = setup([target('192.0.2.50'), target('192.0.2.51')], { timerCSeconds: 200 });
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    clock.advance(150_000);
    proxy.onResponse(answer(layer.sent[0]!.req, 180), layer.sent[0]!.tx);
    clock.advance(60_000);
    // Branch 2 (no provisional) timed out at 200 s: treated as a 408; branch 1 was reset at 150 s.
    assert.equal(layer.cancelled.length, 0);
    clock.advance(150_000);
    assert.deepEqual(layer.cancelled, [layer.sent[0]!.tx]);
    assert.equal(proxy.counters.timerC, 2);
    proxy.onResponse(answer(layer.sent[0]!.req, 487), layer.sent[0]!.tx);
    assert.equal(s.responses.at(-1)!.status, 487);
  });

  test('RFC 3263 failover: 503 or a transport error moves to the next destination of the target', async () => {
    const { proxy, layer } = setup([
      {
        uri: 'sip:bob@example.net',
        routes: [],
        destinations: [dest('192.0.2.50'), dest('192.0.2.51'), dest('192.0.2.52')],
      },
    ]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 503), layer.sent[0]!.tx);
    assert.equal(layer.sent[1]!.dest.address, '192.0.2.51');
    assert.equal(getHeaders(layer.sent[1]!.req, 'via').length, 2, 'one Via of ours, replaced');
    proxy.onTransportError(layer.sent[1]!.tx);
    assert.equal(layer.sent[2]!.dest.address, '192.0.2.52');
    proxy.onResponse(answer(layer.sent[2]!.req, 200), layer.sent[2]!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [200],
    );
    assert.equal(proxy.counters.failovers, 2);
  });

  test('3xx with redirects=recurse: the Contacts become new branches', async () => {
    const { proxy, layer } = setup([target('192.0.2.50')], { redirects: 'recurse' });
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 302, [['Contact', '<sip:bob@192.0.2.77:5090>']]), layer.sent[0]!.tx);
    await tick();
    assert.equal(layer.sent[1]!.req.uri, 'sip:bob@192.0.2.77:5090');
    assert.equal(layer.sent[1]!.dest.port, 5090);
    proxy.onResponse(answer(layer.sent[1]!.req, 200), layer.sent[1]!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [200],
    );
  });

  test('404 when routing finds nothing, 403 when call policy rejects', async () => {
    const nf = setup([]);
    const r = invite();
    const s = server(r);
    nf.proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(s.responses[0]?.status, 404);
    const pol = setup([target('192.0.2.50')], {}, { callPolicy: [{ source: 'alice@.*', action: 'reject' }] });
    const r2 = invite();
    const s2 = server(r2);
    pol.proxy.handle(r2, s2.tx, UDP_IN);
    await tick();
    assert.equal(s2.responses[0]?.status, 403);
    assert.equal(pol.layer.sent.length, 0);
  });

  test('contexts and branches are released when their transactions end', async () => {
    const { proxy, layer } = setup([target('192.0.2.50')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 486), layer.sent[0]!.tx);
    assert.equal(proxy.onTerminated(layer.sent[0]!.tx), true);
    assert.equal(proxy.onTerminated(s.tx), true);
    assert.equal(proxy.contexts, 0);
    assert.equal(proxy.branchesInFlight, 0);
  });
});

describe('proxy core: memory of answered non-INVITE requests', () => {
  test("an answered MESSAGE is let go at once, not held until its client transaction's Timer K", async () => {
    const { proxy, layer } = setup([target('192.0.2.50'), target('192.0.2.51')]);
    const r = invite({ method: 'MESSAGE' });
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(proxy.branchesInFlight, 2);
    proxy.onResponse(answer(layer.sent[0]!.req, 200), layer.sent[0]!.tx);
    assert.equal(s.responses[0]?.status, 200);
    assert.equal(proxy.branchesInFlight, 1, 'the other branch is still followed');
    proxy.onResponse(answer(layer.sent[1]!.req, 404), layer.sent[1]!.tx);
    assert.equal(proxy.branchesInFlight, 0);
    assert.equal(proxy.contexts, 0);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [200],
    );
    // Their Timer K comes later: nothing of the proxy's any more.
    assert.equal(proxy.onTerminated(layer.sent[0]!.tx), false);
  });
});

describe('proxy core: calls', () => {
  test('a BYE from either side ends the call, and the record says who hung up', async () => {
    for (const who of ['caller', 'callee'] as const) {
      const { proxy, layer, calls } = setup([target('192.0.2.50')]);
      const r = invite();
      proxy.handle(r, server(r).tx, UDP_IN);
      await tick();
      proxy.onResponse(answer(layer.sent[0]!.req, 200), layer.sent[0]!.tx);
      assert.equal(calls.activeCount, 1);
      // The callee's BYE swaps the tags: its From tag is the callee's, its To tag the caller's.
      const bye =
        who === 'caller'
          ? invite({ method: 'BYE', uri: 'sip:bob@192.0.2.50', toTag: 'tt200' })
          : parse(
              'BYE sip:alice@198.51.100.7 SIP/2.0\nVia: SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bKcallee1\n' +
                'Max-Forwards: 70\nFrom: <sip:bob@example.com>;tag=tt200\nTo: <sip:alice@example.com>;tag=ft1\n' +
                'Call-ID: call-1@198.51.100.7\nCSeq: 7 BYE\nContent-Length: 0\n\n',
            );
      proxy.handle(bye, server(bye).tx, UDP_IN);
      await tick();
      const fwd = layer.sent[1]!;
      proxy.onResponse(answer(fwd.req, 200), fwd.tx);
      assert.equal(calls.activeCount, 0, who);
      assert.equal(calls.history()[0]!.cause, `bye from ${who}`);
    }
  });
});

describe('proxy core: hostile input', () => {
  test('random Request-URIs, Max-Forwards, Route and Proxy-Require values never throw and always get an outcome', async () => {
    const fc = (await import('fast-check')).default;
    const tokenChar = fc.constantFrom(...'abcXYZ019-_.!~*%+;=,@:<>[]" '.split(''));
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: tokenChar, maxLength: 30 }),
        fc.string({ unit: tokenChar, maxLength: 30 }),
        fc.string({ unit: tokenChar, maxLength: 40 }),
        fc.constantFrom('70', '0', '1', '256', 'x', ''),
        fc.boolean(),
        async (user, host, route, mf, toTag) => {
          const { proxy, layer } = setup([target('192.0.2.50')]);
          const text =
            `INVITE sip:${user}@${host || 'h'} SIP/2.0\r\n` +
            'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKfuzz\r\n' +
            `Max-Forwards: ${mf}\r\n` +
            'From: <sip:alice@example.com>;tag=f\r\n' +
            `To: <sip:bob@example.com>${toTag ? ';tag=t' : ''}\r\n` +
            'Call-ID: fuzz\r\nCSeq: 1 INVITE\r\n' +
            (route ? `Route: ${route}\r\n` : '') +
            'Content-Length: 0\r\n\r\n';
          const parsed = parseMessage(Buffer.from(text));
          if (!parsed.ok || parsed.value.kind !== 'request') return;
          const s = server(parsed.value);
          const taken = proxy.handle(parsed.value, s.tx, UDP_IN);
          await tick();
          if (taken) assert.ok(s.responses.length + layer.sent.length > 0, text);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('asserted identity (RFC 3325)', () => {
  const alice = {
    authenticate: () => ({ kind: 'authenticated' as const, username: 'alice', realm: 'example.com' }),
  };
  const zones = (trusted: boolean) => ({
    zones: [{ name: 'Z', type: 'neighbor', address: '203.0.113.1', trusted }],
  });

  test('§5: P-Asserted-Identity from an untrusted source is removed before forwarding', async () => {
    const { proxy, layer } = setup([target('192.0.2.50')], {}, zones(true));
    const req = invite({ extra: 'P-Asserted-Identity: <sip:ceo@example.com>\n' });
    proxy.handle(req, server(req).tx, UDP_IN);
    await tick();
    assert.equal(layer.sent.length, 1);
    assert.deepEqual(getHeaders(reparse(layer.sent[0]!.req), 'p-asserted-identity'), []);
  });

  test('§5/§6: an authenticated caller is asserted toward a trusted zone, P-Preferred-Identity never forwarded', async () => {
    const { proxy, layer } = setup([target('192.0.2.50')], { authenticateCalls: true }, zones(true), {
      authenticator: alice,
    });
    const req = invite({ extra: 'P-Preferred-Identity: <sip:boss@example.com>\n' });
    proxy.handle(req, server(req).tx, UDP_IN);
    await tick();
    await tick();
    const fwd = reparse(layer.sent[0]!.req);
    assert.deepEqual(getHeaders(fwd, 'p-asserted-identity'), ['<sip:alice@example.com>']);
    assert.deepEqual(getHeaders(fwd, 'p-preferred-identity'), []);
  });

  test('§5: no identity is asserted toward an untrusted zone', async () => {
    const { proxy, layer } = setup([target('192.0.2.50')], { authenticateCalls: true }, zones(false), {
      authenticator: alice,
    });
    const req = invite();
    proxy.handle(req, server(req).tx, UDP_IN);
    await tick();
    await tick();
    assert.deepEqual(getHeaders(reparse(layer.sent[0]!.req), 'p-asserted-identity'), []);
  });
});

/** A proxy with zones N1, N2 (neighbors) and LocalZone, each returning its own target; `rules` as configured. */
function setupZones(
  rules: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
  settings = {},
  more: Partial<ConstructorParameters<typeof StatefulProxy>[0]> = {},
) {
  const clock = new FakeClock();
  const layer = new RecordingLayer();
  const config = routingConfigSchema.parse({
    zones: [
      { name: 'N1', type: 'neighbor', address: '192.0.2.71', ...(extra.n1 ?? {}) },
      { name: 'N2', type: 'neighbor', address: '192.0.2.72', ...(extra.n2 ?? {}) },
    ],
    searchRules: rules,
    proxy: settings,
  });
  const byZone: Record<string, SipTarget> = {
    N1: target('192.0.2.71'),
    N2: target('192.0.2.72'),
    LocalZone: target('192.0.2.70'),
  };
  const router = new Router<SipTarget>({
    config,
    domains: ['example.com'],
    wallNow: () => clock.wallNow(),
    searcher: { search: (z: Zone) => (byZone[z.name] ? [byZone[z.name]!] : []) },
  });
  const calls = new CallRegistry({ historySize: 10, wallNow: () => clock.wallNow() });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => [{ transport: 'UDP', address: '192.0.2.1', port: 5060 }],
    domains: ['example.com'],
    clock,
    dns: noDns,
    calls,
    ...more,
  });
  return { clock, layer, proxy, router, calls };
}

const searchRule = (name: string, priority: number, targetZone: string, more: Record<string, unknown> = {}) => ({
  name,
  priority,
  targetZone,
  pattern: { type: 'anyAlias' },
  ...more,
});

describe('proxy core: search rules that continue (docs/routing.md)', () => {
  test('a neighbor answering 404 under a "continue" rule: the next priority level is searched, and its 200 goes upstream', async () => {
    const { proxy, layer, router, calls } = setupZones([searchRule('n1', 10, 'N1'), searchRule('n2', 20, 'N2')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(layer.sent.length, 1);
    assert.equal(layer.sent[0]!.dest.address, '192.0.2.71');
    proxy.onResponse(answer(layer.sent[0]!.req, 100), layer.sent[0]!.tx);
    proxy.onResponse(answer(layer.sent[0]!.req, 404), layer.sent[0]!.tx);
    await tick();
    assert.equal(layer.sent.length, 2, 'the search went on to N2');
    assert.equal(layer.sent[1]!.dest.address, '192.0.2.72');
    assert.equal(s.responses.length, 0, 'the 404 was not forwarded');
    proxy.onResponse(answer(layer.sent[1]!.req, 200), layer.sent[1]!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [200],
    );
    const rec = router.history.recent(1)[0]!;
    assert.equal(rec.result, 'found');
    assert.equal(rec.continued, 1);
    assert.deepEqual(
      rec.rules.map((x) => [x.rule, x.result, x.answer]),
      [
        ['n1', 'found', '404'],
        ['n2', 'found', undefined],
      ],
    );
    assert.deepEqual(rec.targets, [{ zone: 'N2', alias: 'bob@example.com' }]);
    assert.equal(proxy.counters.searchesContinued, 1);
    const call = calls.active()[0]!;
    assert.deepEqual(
      call.legs.map((l) => [l.zone, l.status]),
      [
        ['N1', 404],
        ['N2', 200],
      ],
    );
  });

  test('"stop" on the matching rule: the 404 goes upstream, no other zone is tried', async () => {
    const { proxy, layer } = setupZones([
      searchRule('n1', 10, 'N1', { onSuccess: 'stop' }),
      searchRule('n2', 20, 'N2'),
    ]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 404), layer.sent[0]!.tx);
    await tick();
    assert.equal(layer.sent.length, 1);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [404],
    );
  });

  test('answers outside searchContinueOn (486) and LocalZone answers end the search', async () => {
    const busy = setupZones([searchRule('n1', 10, 'N1'), searchRule('n2', 20, 'N2')]);
    const r = invite();
    const s = server(r);
    busy.proxy.handle(r, s.tx, UDP_IN);
    await tick();
    busy.proxy.onResponse(answer(busy.layer.sent[0]!.req, 486), busy.layer.sent[0]!.tx);
    await tick();
    assert.equal(busy.layer.sent.length, 1);
    assert.equal(s.responses[0]?.status, 486);

    const local = setupZones([searchRule('local', 10, 'LocalZone'), searchRule('n2', 20, 'N2')]);
    const r2 = invite();
    const s2 = server(r2);
    local.proxy.handle(r2, s2.tx, UDP_IN);
    await tick();
    local.proxy.onResponse(answer(local.layer.sent[0]!.req, 404), local.layer.sent[0]!.tx);
    await tick();
    assert.equal(local.layer.sent.length, 1);
    assert.equal(s2.responses[0]?.status, 404);
  });

  test('equal priority searched in parallel: the search goes on only when every branch failed so; the last zone answers', async () => {
    // LocalZone answers never continue: with one of them in the step, its best answer goes upstream.
    const { proxy, layer, router } = setupZones([
      searchRule('n1', 10, 'N1'),
      searchRule('local', 10, 'LocalZone'),
      searchRule('n2', 20, 'N2'),
    ]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(layer.sent.length, 2);
    proxy.onResponse(answer(layer.sent[0]!.req, 404), layer.sent[0]!.tx);
    proxy.onResponse(answer(layer.sent[1]!.req, 480), layer.sent[1]!.tx);
    await tick();
    assert.equal(layer.sent.length, 2, 'a LocalZone branch was part of the step: no continuation');
    assert.equal(s.responses[0]?.status, 404);

    // Two neighbors at the same priority, both failing: on to the next level, whose 480 is the best answer overall.
    const two = setupZones([searchRule('a', 10, 'N1'), searchRule('b', 10, 'N2'), searchRule('c', 20, 'LocalZone')]);
    const r2 = invite();
    const s2 = server(r2);
    two.proxy.handle(r2, s2.tx, UDP_IN);
    await tick();
    two.proxy.onResponse(answer(two.layer.sent[0]!.req, 503), two.layer.sent[0]!.tx);
    two.proxy.onResponse(answer(two.layer.sent[1]!.req, 404), two.layer.sent[1]!.tx);
    await tick();
    assert.equal(two.layer.sent.length, 3);
    assert.equal(two.layer.sent[2]!.dest.address, '192.0.2.70');
    two.proxy.onResponse(answer(two.layer.sent[2]!.req, 480), two.layer.sent[2]!.tx);
    assert.equal(s2.responses[0]?.status, 404, 'a far-end 4xx: the first of the class among the answers');
    const rec = two.router.history.recent(1)[0]!;
    assert.deepEqual(
      rec.rules.map((x) => x.answer),
      ['503', '404', undefined],
    );
    assert.equal(router.history.recent(1)[0]!.continued, undefined);
    assert.equal(rec.continued, 1);
  });

  test('a zone that rang until Timer C and never answered the CANCEL was found: no search onward, 408 upstream', async () => {
    const { proxy, layer, clock } = setupZones(
      [searchRule('n1', 10, 'N1'), searchRule('n2', 20, 'N2')],
      {},
      {
        timerCSeconds: 100,
      },
    );
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 180), layer.sent[0]!.tx);
    clock.advance(100_000);
    clock.advance(100_000);
    await tick();
    assert.equal(layer.sent.length, 1);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [180, 408],
    );
  });

  test('CANCEL from the caller while the search goes on: 487, nothing more is forwarded', async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1'), searchRule('n2', 20, 'N2')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 404), layer.sent[0]!.tx);
    // The caller's CANCEL lands before the next level's search comes back.
    const cancel = invite({ method: 'CANCEL' });
    const cs = server(cancel);
    (cs.tx as { cancels?: unknown }).cancels = s.tx;
    assert.equal(proxy.handle(cancel, cs.tx, UDP_IN), true);
    await tick();
    await tick();
    assert.equal(cs.responses[0]?.status, 200);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [487],
    );
    assert.equal(layer.sent.length, 1, 'the next level was never forwarded to');
  });
});

/** The digest parameters of a credentials header value. */
function digestParams(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of value.replace(/^Digest\s+/i, '').matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)) out[m[1]!] = m[3] ?? m[2]!;
  return out;
}

describe('proxy core: answering a neighbor zone challenge with its credentials', () => {
  const creds = { n1: { authentication: { username: 'crossway', password: 's3cret' } } };

  test('407 from a zone with credentials: sent again on a new branch with Proxy-Authorization (MD5, qop=auth, nc 1) and CSeq + 1; the caller sees only the 200, with its own CSeq', async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1')], creds);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    const first = layer.sent[0]!;
    const firstVia = getHeader(first.req, 'via');
    proxy.onResponse(
      answer(first.req, 407, [
        ['Proxy-Authenticate', 'Digest realm="n1.example", nonce="n-1", qop="auth", algorithm=MD5'],
      ]),
      first.tx,
    );
    assert.equal(layer.sent.length, 2);
    const again = layer.sent[1]!;
    assert.equal(again.dest.address, '192.0.2.71');
    assert.equal(getHeader(again.req, 'cseq'), '2 INVITE');
    assert.notEqual(getHeader(again.req, 'via'), firstVia, 'a new branch');
    assert.equal(getHeaders(again.req, 'via').length, 2);
    const p = digestParams(getHeader(again.req, 'proxy-authorization')!);
    assert.equal(p.username, 'crossway');
    assert.equal(p.realm, 'n1.example');
    assert.equal(p.uri, again.req.uri);
    assert.equal(p.nc, '00000001');
    assert.equal(p.qop, 'auth');
    const ha1 = computeHa1('MD5', 'crossway', 'n1.example', 's3cret');
    const want = computeResponse('MD5', {
      ha1,
      nonce: 'n-1',
      method: 'INVITE',
      uri: again.req.uri,
      qop: 'auth',
      nc: p.nc,
      cnonce: p.cnonce!,
    });
    assert.equal(p.response, want);
    assert.equal(s.responses.length, 0, 'the challenge stays between the proxy and the zone');
    proxy.onResponse(answer(again.req, 180), again.tx);
    proxy.onResponse(answer(again.req, 200), again.tx);
    assert.deepEqual(
      s.responses.map((x) => [x.status, getHeader(x, 'cseq')]),
      [
        [180, '1 INVITE'],
        [200, '1 INVITE'],
      ],
    );
    assert.equal(proxy.counters.challengesAnswered, 1);
    assert.equal(proxy.shiftedDialogs, 1);

    // The caller's ACK and BYE carry its own CSeqs; the callee gets them one higher, the caller gets its own back.
    const ack = invite({ method: 'ACK', uri: 'sip:bob@192.0.2.71', toTag: 'tt200' });
    proxy.handleAck(ack, UDP_IN);
    await tick();
    assert.equal(getHeader(layer.stateless[0]!.msg as SipRequest, 'cseq'), '2 ACK');
    // Another dialog of the same call (a forked 2xx from elsewhere) keeps the caller's CSeq.
    const other = invite({ method: 'ACK', uri: 'sip:bob@192.0.2.80', toTag: 'elsewhere' });
    proxy.handleAck(other, UDP_IN);
    await tick();
    assert.equal(getHeader(layer.stateless[1]!.msg as SipRequest, 'cseq'), '1 ACK');
    const bye = invite({ method: 'BYE', uri: 'sip:bob@192.0.2.71', toTag: 'tt200' });
    bye.headers = bye.headers.map((h) => (h.name === 'CSeq' ? { ...h, value: '2 BYE' } : h));
    const bs = server(bye);
    proxy.handle(bye, bs.tx, UDP_IN);
    await tick();
    const fbye = layer.sent[2]!;
    assert.equal(getHeader(fbye.req, 'cseq'), '3 BYE');
    proxy.onResponse(answer(fbye.req, 200), fbye.tx);
    assert.equal(getHeader(bs.responses[0]!, 'cseq'), '2 BYE');
    assert.equal(proxy.shiftedDialogs, 0, 'forgotten once the dialog ended');
  });

  test("an early dialog of the authenticated INVITE (183 with a To tag) shifts the caller's UPDATE too; a failed call forgets it", async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1')], creds);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(
      answer(layer.sent[0]!.req, 407, [['Proxy-Authenticate', 'Digest realm="n1.example", nonce="n-7"']]),
      layer.sent[0]!.tx,
    );
    const again = layer.sent[1]!;
    proxy.onResponse(answer(again.req, 183), again.tx);
    assert.equal(proxy.shiftedDialogs, 1);
    const update = invite({ method: 'UPDATE', uri: 'sip:bob@192.0.2.71', toTag: 'tt183' });
    update.headers = update.headers.map((h) => (h.name === 'CSeq' ? { ...h, value: '2 UPDATE' } : h));
    const us = server(update);
    proxy.handle(update, us.tx, UDP_IN);
    await tick();
    assert.equal(getHeader(layer.sent[2]!.req, 'cseq'), '3 UPDATE');
    proxy.onResponse(answer(layer.sent[2]!.req, 200), layer.sent[2]!.tx);
    assert.equal(getHeader(us.responses[0]!, 'cseq'), '2 UPDATE');
    proxy.onResponse(answer(again.req, 486), again.tx);
    assert.equal(s.responses.at(-1)?.status, 486);
    assert.equal(proxy.shiftedDialogs, 0);
  });

  test('401 with SHA-256 and MD5 offered: Authorization with SHA-256 (RFC 8760 order); a MESSAGE works the same', async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1')], creds);
    const r = invite({ method: 'MESSAGE' });
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(
      answer(layer.sent[0]!.req, 401, [
        ['WWW-Authenticate', 'Digest realm="n1.example", nonce="n-2", qop="auth", algorithm=SHA-256'],
        ['WWW-Authenticate', 'Digest realm="n1.example", nonce="n-2", qop="auth", algorithm=MD5'],
      ]),
      layer.sent[0]!.tx,
    );
    const again = layer.sent[1]!;
    assert.equal(getHeader(again.req, 'proxy-authorization'), undefined);
    const p = digestParams(getHeader(again.req, 'authorization')!);
    assert.equal(p.algorithm, 'SHA-256');
    const ha1 = computeHa1('SHA-256', 'crossway', 'n1.example', 's3cret');
    assert.equal(
      p.response,
      computeResponse('SHA-256', {
        ha1,
        nonce: 'n-2',
        method: 'MESSAGE',
        uri: again.req.uri,
        qop: 'auth',
        nc: p.nc,
        cnonce: p.cnonce!,
      }),
    );
    proxy.onResponse(answer(again.req, 202), again.tx);
    assert.equal(s.responses[0]?.status, 202);
    assert.equal(getHeader(s.responses[0]!, 'cseq'), '1 MESSAGE');
  });

  test('a branch challenged after another branch answered is not sent again (it is being cancelled)', async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1'), searchRule('n2', 10, 'N2')], creds);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(layer.sent.length, 2);
    proxy.onResponse(answer(layer.sent[1]!.req, 100), layer.sent[1]!.tx);
    proxy.onResponse(answer(layer.sent[1]!.req, 200), layer.sent[1]!.tx);
    assert.deepEqual(layer.cancelled, [layer.sent[0]!.tx]);
    proxy.onResponse(
      answer(layer.sent[0]!.req, 407, [['Proxy-Authenticate', 'Digest realm="n1.example", nonce="n-5"']]),
      layer.sent[0]!.tx,
    );
    assert.equal(layer.sent.length, 2);
    assert.equal(proxy.counters.challengesAnswered, 0);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [200],
    );
  });

  test("credentials on a traversal zone are not used: the other Crossway node's challenge is the caller's to answer", async () => {
    const { proxy, layer } = setup(
      [target('192.0.2.50')],
      {},
      {
        zones: [{ name: 'Z', type: 'traversal', authentication: { username: 'crossway', password: 's3cret' } }],
      },
    );
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(
      answer(layer.sent[0]!.req, 407, [['Proxy-Authenticate', 'Digest realm="core.example", nonce="n-6"']]),
      layer.sent[0]!.tx,
    );
    assert.equal(layer.sent.length, 1);
    assert.equal(s.responses[0]?.status, 407);
  });

  test('a zone without credentials: its 407 goes back to the caller as it is', async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1')]);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(
      answer(layer.sent[0]!.req, 407, [['Proxy-Authenticate', 'Digest realm="n1.example", nonce="n-3"']]),
      layer.sent[0]!.tx,
    );
    assert.equal(layer.sent.length, 1);
    assert.equal(s.responses[0]?.status, 407);
    assert.match(getHeader(s.responses[0]!, 'proxy-authenticate')!, /n1\.example/);
  });

  test('challenged again: a stale nonce is answered once more (same nonce: nc 2); refused credentials end the branch with 403', async () => {
    const { proxy, layer } = setupZones([searchRule('n1', 10, 'N1')], creds);
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    const challenge = (stale: boolean): [string, string][] => [
      ['Proxy-Authenticate', `Digest realm="n1.example", nonce="n-4", qop="auth"${stale ? ', stale=true' : ''}`],
    ];
    proxy.onResponse(answer(layer.sent[0]!.req, 407, challenge(false)), layer.sent[0]!.tx);
    proxy.onResponse(answer(layer.sent[1]!.req, 407, challenge(true)), layer.sent[1]!.tx);
    assert.equal(layer.sent.length, 3);
    assert.equal(getHeader(layer.sent[2]!.req, 'cseq'), '3 INVITE');
    assert.equal(getHeaders(layer.sent[2]!.req, 'proxy-authorization').length, 1, 'the old answer replaced');
    assert.equal(digestParams(getHeader(layer.sent[2]!.req, 'proxy-authorization')!).nc, '00000002');
    proxy.onResponse(answer(layer.sent[2]!.req, 407, challenge(false)), layer.sent[2]!.tx);
    assert.equal(layer.sent.length, 3, 'no endless loop on wrong credentials');
    assert.equal(s.responses[0]?.status, 403);
  });
});

describe('proxy core: Timer C and 3xx recursion edge cases', () => {
  test('Timer C: a branch CANCELled that never answers the CANCEL is given up when Timer C fires again (408 upstream)', async () => {
    const { proxy, layer, clock } = setup([target('192.0.2.50')], { timerCSeconds: 200 });
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 180), layer.sent[0]!.tx);
    clock.advance(200_000);
    assert.equal(layer.cancelled.length, 1);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [180],
    );
    clock.advance(200_000);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [180, 408],
    );
    assert.equal(proxy.branchesInFlight, 0, 'the silent transaction is not ours any more');
  });

  test('3xx recursed while another branch fails: no final answer before the Contacts are tried; the 3xx is not the answer', async () => {
    let release!: () => void;
    const slow = new Promise<void>((r) => {
      release = r;
    });
    const dns: DnsLookup = {
      ...noDns,
      a: async (host: string) => {
        await slow;
        return host === 'carol.example' ? ['192.0.2.90'] : [];
      },
    };
    const { proxy, layer } = setup([target('192.0.2.50'), target('192.0.2.51')], { redirects: 'recurse' }, {}, { dns });
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    proxy.onResponse(answer(layer.sent[0]!.req, 302, [['Contact', '<sip:carol@carol.example>']]), layer.sent[0]!.tx);
    proxy.onResponse(answer(layer.sent[1]!.req, 486), layer.sent[1]!.tx);
    await tick();
    assert.equal(s.responses.length, 0, 'the recursion is still resolving its target');
    release();
    for (let i = 0; i < 5 && layer.sent.length < 3; i++) await tick();
    assert.equal(layer.sent[2]!.dest.address, '192.0.2.90');
    proxy.onResponse(answer(layer.sent[2]!.req, 404), layer.sent[2]!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [486],
      'the best of 486/404 (first of the class), the recursed 302 out of the running',
    );
  });
});

describe('proxy core: "must be authenticated" search rules and authenticateCalls', () => {
  /** Accepts any Proxy-Authorization as alice; challenges a request without one. */
  const authenticator = {
    authenticate: (req: SipRequest) =>
      getHeader(req, 'proxy-authorization') !== undefined
        ? { kind: 'authenticated' as const, username: 'alice', realm: 'example.com' }
        : {
            kind: 'challenge' as const,
            response: createResponse(req, 407, 'Proxy Authentication Required', {
              toTag: 'ch',
              headers: [['Proxy-Authenticate', 'Digest realm="example.com", nonce="x"']],
            }),
          },
  };
  const rules = [searchRule('staff-only', 10, 'N1', { requireAuthenticated: true }), searchRule('others', 20, 'N2')];

  test('authenticateCalls off (the default): nobody is challenged, so a must-be-authenticated rule is skipped', async () => {
    const { proxy, layer, router } = setupZones(rules, {}, {}, { authenticator });
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    await tick();
    assert.equal(s.responses.length, 0);
    assert.equal(layer.sent[0]!.dest.address, '192.0.2.72');
    const rec = router.history.recent(1)[0]!;
    assert.equal(rec.authenticated, false);
    assert.deepEqual(
      rec.rules.map((x) => [x.rule, x.result]),
      [
        ['staff-only', 'skipped-unauthenticated'],
        ['others', 'found'],
      ],
    );
  });

  test('authenticateCalls on: 407 first; with credentials the must-be-authenticated rule applies', async () => {
    const { proxy, layer, router } = setupZones(rules, {}, { authenticateCalls: true }, { authenticator });
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, UDP_IN);
    await tick();
    assert.equal(s.responses[0]?.status, 407);
    assert.equal(layer.sent.length, 0);
    const again = invite({ extra: 'Proxy-Authorization: Digest username="alice", realm="example.com"\n' });
    const s2 = server(again);
    proxy.handle(again, s2.tx, UDP_IN);
    await tick();
    await tick();
    assert.equal(layer.sent[0]!.dest.address, '192.0.2.71');
    assert.equal(getHeader(layer.sent[0]!.req, 'proxy-authorization'), undefined, "our realm's credentials consumed");
    const rec = router.history.recent(1)[0]!;
    assert.equal(rec.authenticated, true);
    assert.equal(rec.rules[0]!.result, 'found');
  });

  test('a trusted neighbor counts as authenticated without a challenge', async () => {
    const { proxy, layer } = setupZones(
      rules,
      { n2: { trusted: true } },
      { authenticateCalls: true },
      { authenticator },
    );
    const r = invite();
    const s = server(r);
    proxy.handle(r, s.tx, { ...UDP_IN, source: { address: '192.0.2.72', port: 5060 } });
    await tick();
    await tick();
    assert.equal(s.responses.length, 0);
    assert.equal(layer.sent[0]!.dest.address, '192.0.2.71');
  });
});
