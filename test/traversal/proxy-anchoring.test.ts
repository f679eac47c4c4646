import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import { type MediaIo, mediaConfigSchema, PortAllocator, RelayCore } from '../../src/media/index.ts';
import { routingConfigSchema } from '../../src/routing/config.ts';
import { Router } from '../../src/routing/router.ts';
import { createResponse, getHeader, getHeaders, parseMessage } from '../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/types.ts';
import { StatefulProxy } from '../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../src/sip/proxy/resolver.ts';
import type { ProxyMedia, ProxyTransactions, ProxyTraversal, SipTarget } from '../../src/sip/proxy/types.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransportInfo,
} from '../../src/sip/transaction/types.ts';

/*
 * The proxy's calls into the media relay and the traversal wiring (docs/traversal.md), with a fake relay that records
 * what it is asked and a fake transaction layer: each rule of "Media anchoring in the proxy" and the flow-token Path.
 */

const noDns: DnsLookup = { naptr: async () => [], srv: async () => [], a: async () => [], aaaa: async () => [] };
const tick = async () => {
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
};

const SDP = 'v=0\r\no=a 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

function request(
  method: string,
  opts: { toTag?: string; fromTag?: string; body?: string; route?: string; uri?: string; cseq?: number } = {},
) {
  const body = opts.body ?? '';
  const text =
    `${method} ${opts.uri ?? 'sip:bob@example.com'} SIP/2.0\r\n` +
    'Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKc' +
    Math.random().toString(36).slice(2) +
    ';rport\r\n' +
    'Max-Forwards: 70\r\n' +
    (opts.route ? `Route: ${opts.route}\r\n` : '') +
    `From: <sip:alice@example.com>;tag=${opts.fromTag ?? 'ft1'}\r\n` +
    `To: <sip:bob@example.com>${opts.toTag ? `;tag=${opts.toTag}` : ''}\r\n` +
    'Call-ID: call-1\r\n' +
    `CSeq: ${opts.cseq ?? 1} ${method}\r\n` +
    'Contact: <sip:alice@198.51.100.7>\r\n' +
    (body ? 'Content-Type: application/sdp\r\n' : '') +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const r = parseMessage(Buffer.from(text));
  assert.ok(r.ok);
  return r.value as SipRequest;
}

const UDP_IN: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};
const FLOW: Destination = { transport: 'TLS', address: '10.0.0.2', port: 25001, connectionId: 'core-flow' };
/** What a request coming down the zone's flow from the core arrives with (the edge's traversal listener, 7001). */
const CORE_FLOW_IN: TransportInfo = {
  transport: 'TLS',
  reliable: true,
  source: { address: FLOW.address, port: FLOW.port },
  local: { address: '192.0.2.1', port: 7001 },
  connectionId: FLOW.connectionId!,
};

class FakeLayer implements ProxyTransactions {
  sent: { req: SipRequest; dest: Destination; tx: ClientTransactionHandle }[] = [];
  stateless: { msg: unknown; target: unknown }[] = [];
  #n = 0;
  sendRequest(request: SipRequest, destination: Destination): ClientTransactionHandle {
    const tx = { key: `c${++this.#n}`, kind: 'ict', request, destination } as unknown as ClientTransactionHandle;
    this.sent.push({ req: request, dest: destination, tx });
    return tx;
  }
  cancel() {
    return { status: 'pending' as const };
  }
  sendStateless(msg: unknown, target: unknown): void {
    this.stateless.push({ msg, target });
  }
}

function server(req: SipRequest) {
  const responses: SipResponse[] = [];
  const tx = {
    key: `s-${Math.random()}`,
    kind: 'ist',
    request: req,
    transportInfo: UDP_IN,
    respond: (r: SipResponse) => {
      responses.push(r);
      return true;
    },
  } as unknown as ServerTransactionHandle;
  return { tx, responses };
}

class FakeMedia implements ProxyMedia {
  offers: Parameters<ProxyMedia['offer']>[0][] = [];
  answers: Parameters<ProxyMedia['answer']>[0][] = [];
  deleted: string[] = [];
  calls = new Set<string>();
  refuse: { status: number; message: string } | undefined;
  async offer(req: Parameters<ProxyMedia['offer']>[0]) {
    this.offers.push(req);
    if (this.refuse) return { ok: false as const, reason: this.refuse };
    this.calls.add(req.callId);
    return { ok: true as const, value: { sdp: req.sdp.replace(/198\.51\.100\.7|10\.9\.9\.9/g, 'RELAY') } };
  }
  async answer(req: Parameters<ProxyMedia['answer']>[0]) {
    this.answers.push(req);
    return { ok: true as const, value: { sdp: req.sdp.replace(/198\.51\.100\.7|10\.9\.9\.9/g, 'RELAY') } };
  }
  delete(callId: string) {
    this.deleted.push(callId);
    return this.calls.delete(callId);
  }
  has(callId: string) {
    return this.calls.has(callId);
  }
}

/** Sockets of a real relay engine, faked: handles by port, and what the relay sends. */
class FakeIo implements MediaIo {
  next = 0;
  byPort = new Map<number, number>();
  sent: { handle: number; address: string; port: number }[] = [];
  async openPair(_addr: string, rtpPort: number) {
    const rtp = this.next++;
    const rtcp = this.next++;
    this.byPort.set(rtpPort, rtp);
    return { rtp, rtcp };
  }
  closeSocket() {}
  send(handle: number, _prefix: Buffer | null, _data: Buffer, _offset: number, address: string, port: number) {
    this.sent.push({ handle, address, port });
  }
}

/** A real relay engine (core node: endpoint side 203.0.113.1, traversal side 10.0.0.1) recording what it is asked. */
function realRelay() {
  const io = new FakeIo();
  const core = new RelayCore({
    node: 'core',
    config: mediaConfigSchema.parse({}),
    allocator: new PortAllocator({ ranges: [{ from: 40000, to: 40099, step: 1 }] }),
    addresses: {
      endpoint: { bind: '203.0.113.1', advertise: '203.0.113.1' },
      traversal: { bind: '10.0.0.1', advertise: '10.0.0.1' },
    },
    io,
    clock: new FakeClock(),
  });
  const offers: Parameters<ProxyMedia['offer']>[0][] = [];
  const answers: Parameters<ProxyMedia['answer']>[0][] = [];
  const relay: ProxyMedia = {
    offer: (r) => {
      offers.push(r);
      return core.offer(r);
    },
    answer: (r) => {
      answers.push(r);
      return core.answer(r);
    },
    delete: (id) => core.delete(id),
    has: (id) => core.has(id),
  };
  return { io, core, relay, offers, answers };
}

/** `c=` address and first `m=` port of an SDP body. */
function where(body: Buffer | string): string {
  const text = body.toString();
  const c = /c=IN IP4 (\S+)/.exec(text)?.[1];
  const m = /m=audio (\d+)/.exec(text)?.[1];
  return `${c}:${m}`;
}

const sdpAt = (address: string, port: number) =>
  `v=0\r\no=x 1 1 IN IP4 ${address}\r\ns=-\r\nc=IN IP4 ${address}\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\n`;

const RTP = Buffer.from([0x80, 0, 0, 1, 0, 0, 0, 160, 0x11, 0x22, 0x33, 0x44, ...new Array(160).fill(0xff)]);

function setup(flowUp = true, opts: { media?: ProxyMedia; fork?: boolean } = {}) {
  const clock = new FakeClock();
  const layer = new FakeLayer();
  const media = new FakeMedia();
  const relay = opts.media ?? media;
  const hits: SipTarget[] = [{ uri: 'sip:bob@example.com', routes: [], destinations: [{ ...FLOW }] }];
  if (opts.fork) hits.push({ uri: 'sip:bob2@example.com', routes: [], destinations: [{ ...FLOW }] });
  const config = routingConfigSchema.parse({
    zones: [{ name: 'tz1', type: 'traversal' }],
    searchRules: [{ name: 'all', pattern: { type: 'anyAlias' }, targetZone: 'tz1' }],
  });
  const traversal: ProxyTraversal = {
    sourceZone: (info) => (info.connectionId === FLOW.connectionId ? 'tz1' : undefined),
    isTraversalZone: (z) => z === 'tz1',
    viaFlow: (d) => (d.address === FLOW.address ? { ...FLOW } : d),
    isFlow: (d) => d.connectionId === FLOW.connectionId,
    registerTarget: (domain) =>
      domain === 'example.com'
        ? { zone: 'tz1', target: { uri: '', routes: [], ...(flowUp ? { destinations: [{ ...FLOW }] } : {}) } }
        : undefined,
  };
  const router = new Router<SipTarget>({
    config,
    domains: ['example.com'],
    wallNow: () => clock.wallNow(),
    searcher: { search: () => hits.map((h) => ({ ...h, destinations: [{ ...FLOW }] })) },
  });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => [
      { transport: 'UDP', address: '192.0.2.1', port: 5060 },
      { transport: 'TLS', address: '192.0.2.1', port: 5061 },
    ],
    domains: ['example.com'],
    clock,
    dns: noDns,
    traversal,
    media: () => relay,
  });
  return { layer, media, proxy };
}

const withSdp = (req: SipRequest, status: number, sdp: string, toTag = 'tt1'): SipResponse =>
  createResponse(req, status, undefined, {
    toTag,
    headers: [['Content-Type', 'application/sdp']],
    body: Buffer.from(sdp),
  } as Parameters<typeof createResponse>[3]);

test('anchoring: the first INVITE offer goes through the relay (endpoint → traversal), the 200 answer back through it', async () => {
  const { layer, media, proxy } = setup();
  const inv = request('INVITE', { body: SDP });
  const s = server(inv);
  assert.equal(proxy.handle(inv, s.tx, UDP_IN), true);
  await tick();
  assert.deepEqual(
    media.offers.map((o) => [o.callId, o.fromTag, o.from, o.to]),
    [['call-1', 'ft1', 'endpoint', 'traversal']],
  );
  const fwd = layer.sent[0]!;
  assert.match(fwd.req.body.toString(), /c=IN IP4 RELAY/);
  assert.equal(getHeader(fwd.req, 'content-length'), String(fwd.req.body.length));
  assert.deepEqual(fwd.dest, FLOW);
  const ok = withSdp(fwd.req, 200, SDP.replace(/198\.51\.100\.7/g, '10.9.9.9'));
  proxy.onResponse(ok, fwd.tx);
  await tick();
  assert.deepEqual(
    media.answers.map((a) => [a.fromTag, a.toTag]),
    [['ft1', 'tt1']],
  );
  assert.equal(s.responses.at(-1)?.status, 200);
  assert.match(s.responses.at(-1)!.body.toString(), /c=IN IP4 RELAY/);
});

test('anchoring: a relay refusal (no free port pair) answers the caller 503 and forwards nothing', async () => {
  const { layer, media, proxy } = setup();
  media.refuse = { status: 503, message: 'no free media port pair in the media range' };
  const inv = request('INVITE', { body: SDP });
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  assert.equal(layer.sent.length, 0);
  assert.equal(s.responses.at(-1)?.status, 503);
});

test('anchoring: a failed first INVITE releases the call; a re-INVITE re-offers on the call; a BYE releases it', async () => {
  const { layer, media, proxy } = setup();
  const inv = request('INVITE', { body: SDP });
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  proxy.onResponse(createResponse(layer.sent[0]!.req, 486, 'Busy Here', { toTag: 'tt2' }), layer.sent[0]!.tx);
  await tick();
  assert.equal(s.responses.at(-1)?.status, 486);
  assert.deepEqual(media.deleted, ['call-1']);

  // A fresh call answered, then a re-INVITE (hold) inside it, then BYE.
  const inv2 = request('INVITE', { body: SDP });
  proxy.handle(inv2, server(inv2).tx, UDP_IN);
  await tick();
  const reinv = request('INVITE', {
    toTag: 'tt1',
    body: SDP.replace('m=audio', 'a=sendonly\r\nm=audio'),
    uri: 'sip:bob@10.0.0.2:5061;transport=tls',
  });
  proxy.handle(reinv, server(reinv).tx, UDP_IN);
  await tick();
  const last = media.offers.at(-1)!;
  assert.equal(media.offers.length, 3);
  assert.match(last.sdp, /a=sendonly/);
  assert.match(layer.sent.at(-1)!.req.body.toString(), /c=IN IP4 RELAY/);
  const bye = request('BYE', { toTag: 'tt1', uri: 'sip:bob@10.0.0.2:5061;transport=tls' });
  proxy.handle(bye, server(bye).tx, UDP_IN);
  await tick();
  assert.deepEqual(media.deleted, ['call-1', 'call-1']);
  assert.equal(layer.sent.at(-1)!.req.method, 'BYE');
  // The request for the core went down the core's flow, not to a new connection.
  assert.deepEqual(layer.sent.at(-1)!.dest, FLOW);
});

test('REGISTER through the edge: Path with a signed flow token; a request routed back with it goes out on that flow', async () => {
  const { layer, proxy } = setup();
  const reg = request('REGISTER', { uri: 'sip:example.com' });
  const s = server(reg);
  assert.equal(proxy.handleRegister(reg, s.tx, UDP_IN), true);
  await tick();
  const fwd = layer.sent[0]!;
  assert.deepEqual(fwd.dest, FLOW);
  const path = getHeaders(fwd.req, 'path')[0]!;
  assert.match(path, /^<sip:cw-[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}@192\.0\.2\.1:5060;lr;ob>$/);
  // A REGISTER for a domain not behind a zone is the local registrar's.
  const other = request('REGISTER', { uri: 'sip:elsewhere.org' });
  assert.equal(proxy.handleRegister(other, server(other).tx, UDP_IN), false);

  // The core calls the registered contact with the Path as Route: the edge sends it to alice's own flow.
  const inv = request('INVITE', { uri: 'sip:alice@198.51.100.7', route: path, body: SDP });
  const si = server(inv);
  proxy.handle(inv, si.tx, CORE_FLOW_IN);
  await tick();
  const out = layer.sent.at(-1)!;
  assert.equal(out.req.method, 'INVITE');
  assert.deepEqual(out.dest, { transport: 'UDP', address: '198.51.100.7', port: 5060 });
  assert.equal(getHeaders(out.req, 'route').length, 0);
  assert.ok(getHeaders(out.req, 'record-route').length >= 1, 'Record-Routed so the dialog stays on the edge');

  // A forged token (same shape, wrong signature) is not a flow: the request is not sent to the forged address.
  const forged = path.replace(/\.([A-Za-z0-9_-]{16})@/, '.AAAAAAAAAAAAAAAA@');
  const bad = request('INVITE', { uri: 'sip:alice@198.51.100.7', route: forged });
  const before = layer.sent.length;
  proxy.handle(bad, server(bad).tx, CORE_FLOW_IN);
  await tick();
  const sentBad = layer.sent.slice(before);
  assert.ok(sentBad.every((x) => x.dest.connectionId === FLOW.connectionId || x.dest.address !== '198.51.100.7'));
});

test('REGISTER through the edge while the zone is down: 503 with Retry-After, nothing forwarded', async () => {
  const { layer, proxy } = setup(false);
  const reg = request('REGISTER', { uri: 'sip:example.com' });
  const s = server(reg);
  assert.equal(proxy.handleRegister(reg, s.tx, UDP_IN), true);
  await tick();
  assert.equal(layer.sent.length, 0);
  assert.equal(s.responses[0]?.status, 503);
  assert.equal(getHeader(s.responses[0]!, 'retry-after'), '30');
});

test('REGISTER through the edge with a Route naming the edge (outbound proxy): the Route is consumed, the REGISTER goes down the zone', async () => {
  const { layer, proxy } = setup();
  const reg = request('REGISTER', { uri: 'sip:example.com', route: '<sip:192.0.2.1:5060;lr>' });
  assert.equal(proxy.handleRegister(reg, server(reg).tx, UDP_IN), true);
  await tick();
  assert.equal(layer.sent.length, 1);
  const fwd = layer.sent[0]!;
  assert.deepEqual(fwd.dest, FLOW);
  assert.equal(getHeaders(fwd.req, 'route').length, 0);
  assert.equal(getHeaders(fwd.req, 'path').length, 1);
});

test('Record-Route facing an endpoint carries its flow: in-dialog requests from the core reach a NATed endpoint whose Contact is private', async () => {
  const privateContact = 'sip:alice@10.1.1.1:5060';
  const byeFromCore = async (proxy: StatefulProxy, layer: FakeLayer, routes: string[]) => {
    const bye = request('BYE', { uri: privateContact, toTag: 'tt1', route: routes.join(', ') });
    const before = layer.sent.length;
    proxy.handle(bye, server(bye).tx, CORE_FLOW_IN);
    await tick();
    const out = layer.sent.slice(before);
    assert.equal(out.length, 1);
    return out[0]!;
  };

  // alice (behind NAT, arriving from 198.51.100.7:5060) calls in: the Record-Route facing her names her flow.
  {
    const { layer, proxy } = setup();
    const inv = request('INVITE', { body: SDP });
    proxy.handle(inv, server(inv).tx, UDP_IN);
    await tick();
    const rr = getHeaders(layer.sent[0]!.req, 'record-route');
    assert.equal(rr.length, 2);
    assert.doesNotMatch(rr[0]!, /@/, 'the entry facing the core names no flow');
    assert.match(rr[1]!, /^<sip:cw-[^@]+@192\.0\.2\.1:5060;lr;ob>$/);
    // The callee's BYE comes up the zone with the route set in Record-Route order; the edge sends it to alice's flow.
    const bye = await byeFromCore(proxy, layer, rr);
    assert.deepEqual(bye.dest, { transport: 'UDP', address: '198.51.100.7', port: 5060 });
    assert.equal(bye.req.uri, privateContact);
    assert.equal(getHeaders(bye.req, 'route').length, 0);
  }

  // The core calls alice through her registration's Path: the Record-Route facing her names her flow.
  {
    const { layer, proxy } = setup();
    const reg = request('REGISTER', { uri: 'sip:example.com' });
    proxy.handleRegister(reg, server(reg).tx, UDP_IN);
    await tick();
    const path = getHeaders(layer.sent[0]!.req, 'path')[0]!;
    const inv = request('INVITE', { uri: privateContact, route: path, body: SDP });
    proxy.handle(inv, server(inv).tx, CORE_FLOW_IN);
    await tick();
    const sent = layer.sent.at(-1)!;
    assert.deepEqual(sent.dest, { transport: 'UDP', address: '198.51.100.7', port: 5060 });
    const rr = getHeaders(sent.req, 'record-route');
    assert.equal(rr.length, 2);
    assert.match(rr[0]!, /^<sip:cw-[^@]+@192\.0\.2\.1:5060;lr;ob>$/);
    assert.doesNotMatch(rr[1]!, /@/);
    // The caller's BYE (its route set is Record-Route reversed) goes to alice's flow, not to her private Contact.
    const bye = await byeFromCore(proxy, layer, [...rr].reverse());
    assert.deepEqual(bye.dest, { transport: 'UDP', address: '198.51.100.7', port: 5060 });
  }
});

test('anchoring a late offer: no offer in the INVITE, the callee offers in the 200, the caller answers in the ACK', async () => {
  const { layer, media, proxy } = setup();
  const inv = request('INVITE');
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  assert.equal(media.offers.length, 0);
  const fwd = layer.sent[0]!;
  proxy.onResponse(withSdp(fwd.req, 200, SDP.replace(/198\.51\.100\.7/g, '10.9.9.9')), fwd.tx);
  await tick();
  // The callee (To tag tt1) is the offerer; its leg faces the zone, the caller's is an endpoint.
  assert.deepEqual(
    media.offers.map((o) => [o.fromTag, o.from, o.to]),
    [['tt1', 'traversal', 'endpoint']],
  );
  assert.match(s.responses.at(-1)!.body.toString(), /c=IN IP4 RELAY/);
  const ack = request('ACK', {
    toTag: 'tt1',
    body: SDP.replace(/198\.51\.100\.7/g, '10.9.9.9'),
    uri: 'sip:bob@10.0.0.2:5061;transport=tls',
  });
  assert.equal(proxy.handleAck(ack, UDP_IN), true);
  await tick();
  assert.deepEqual(
    media.answers.map((a) => [a.fromTag, a.toTag]),
    [['tt1', 'ft1']],
  );
  const sentAck = layer.stateless.at(-1)!.msg as SipRequest;
  assert.equal(sentAck.method, 'ACK');
  assert.match(sentAck.body.toString(), /c=IN IP4 RELAY/);
  assert.equal(getHeader(sentAck, 'content-length'), String(sentAck.body.length));
});

/** An answered call anchored on a real relay: alice 198.51.100.7:4000 (endpoint) ↔ bob 10.9.9.9:5000 (zone). */
async function answeredCall() {
  const r = realRelay();
  const { layer, proxy } = setup(true, { media: r.relay });
  const inv = request('INVITE', { body: sdpAt('198.51.100.7', 4000) });
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  const fwd = layer.sent[0]!;
  proxy.onResponse(withSdp(fwd.req, 200, sdpAt('10.9.9.9', 5000)), fwd.tx);
  await tick();
  assert.equal(s.responses.at(-1)?.status, 200);
  // What each party was told: alice sends to the relay's endpoint side, bob to its traversal side.
  const towardAlice = where(s.responses.at(-1)!.body);
  const towardBob = where(fwd.req.body);
  assert.match(towardAlice, /^203\.0\.113\.1:\d+$/);
  assert.match(towardBob, /^10\.0\.0\.1:\d+$/);
  return { ...r, layer, proxy, towardAlice, towardBob };
}

test('anchoring a re-INVITE without SDP: the 2xx offer and the ACK answer go through the relay on the call ports', async () => {
  const { layer, proxy, core, offers, answers, towardAlice, towardBob } = await answeredCall();
  const bobUri = 'sip:bob@10.0.0.2:5061;transport=tls';

  // alice asks for an offer (re-INVITE, no body): nothing to anchor yet, forwarded without a body.
  const reinv = request('INVITE', { toTag: 'tt1', uri: bobUri, cseq: 2 });
  const s = server(reinv);
  proxy.handle(reinv, s.tx, UDP_IN);
  await tick();
  const fwd = layer.sent.at(-1)!;
  assert.equal(fwd.req.method, 'INVITE');
  assert.equal(fwd.req.body.length, 0);
  assert.equal(offers.length, 1);
  // bob offers a new address in the 200: the relay learns it from bob's tag, alice sees the relay's same port.
  proxy.onResponse(withSdp(fwd.req, 200, sdpAt('10.9.9.9', 5100)), fwd.tx);
  await tick();
  assert.deepEqual(
    offers.map((o) => o.fromTag),
    ['ft1', 'tt1'],
  );
  assert.equal(s.responses.at(-1)?.status, 200);
  assert.equal(where(s.responses.at(-1)!.body), towardAlice);
  // alice answers in the ACK with a new port: rewritten toward bob with the relay's traversal port.
  const ack = request('ACK', { toTag: 'tt1', uri: bobUri, cseq: 2, body: sdpAt('198.51.100.7', 4200) });
  assert.equal(proxy.handleAck(ack, UDP_IN), true);
  await tick();
  assert.deepEqual(
    answers.map((a) => [a.fromTag, a.toTag]),
    [
      ['ft1', 'tt1'],
      ['tt1', 'ft1'],
    ],
  );
  const sentAck = layer.stateless.at(-1)!.msg as SipRequest;
  assert.equal(where(sentAck.body), towardBob);
  assert.equal(getHeader(sentAck, 'content-length'), String(sentAck.body.length));
  const st = core.stats('call-1')!;
  assert.equal(st.streams[0]!.sides[0].remote, '198.51.100.7:4200');
  assert.equal(st.streams[0]!.sides[1].remote, '10.9.9.9:5100');
  assert.equal(core.portsInUse, 2, 'no new port pair for a re-offer');

  // The same from bob's side (From tt1, To ft1): alice offers in the 200, bob answers in the ACK.
  const back = request('INVITE', { fromTag: 'tt1', toTag: 'ft1', uri: 'sip:alice@198.51.100.7', cseq: 1 });
  const sb = server(back);
  proxy.handle(back, sb.tx, CORE_FLOW_IN);
  await tick();
  const fwdBack = layer.sent.at(-1)!;
  assert.equal(fwdBack.req.body.length, 0);
  proxy.onResponse(withSdp(fwdBack.req, 200, sdpAt('198.51.100.7', 4300), 'ft1'), fwdBack.tx);
  await tick();
  assert.equal(offers.at(-1)!.fromTag, 'ft1');
  assert.equal(where(sb.responses.at(-1)!.body), towardBob);
  const ackBack = request('ACK', {
    fromTag: 'tt1',
    toTag: 'ft1',
    uri: 'sip:alice@198.51.100.7',
    body: sdpAt('10.9.9.9', 5200),
  });
  proxy.handleAck(ackBack, CORE_FLOW_IN);
  await tick();
  assert.deepEqual(answers.at(-1), { callId: 'call-1', fromTag: 'ft1', toTag: 'tt1', sdp: sdpAt('10.9.9.9', 5200) });
  assert.equal(where((layer.stateless.at(-1)!.msg as SipRequest).body), towardAlice);
  assert.equal(core.stats('call-1')!.streams[0]!.sides[1].remote, '10.9.9.9:5200');
  assert.equal(core.stats('call-1')!.streams[0]!.sides[0].remote, '198.51.100.7:4300');

  // A re-INVITE without SDP in a call the relay does not know is passed as is.
  const stranger = request('INVITE', { toTag: 'tt9', uri: bobUri, cseq: 5 });
  stranger.headers = stranger.headers.map((h) => (h.name === 'Call-ID' ? { ...h, value: 'other-call' } : h));
  const ss = server(stranger);
  proxy.handle(stranger, ss.tx, UDP_IN);
  await tick();
  const fwdStranger = layer.sent.at(-1)!;
  proxy.onResponse(withSdp(fwdStranger.req, 200, sdpAt('10.9.9.9', 6000), 'tt9'), fwdStranger.tx);
  await tick();
  assert.equal(where(ss.responses.at(-1)!.body), '10.9.9.9:6000');
  assert.equal(core.has('other-call'), false);
});

test('anchoring a late offer on the flow-token path: the core calls an endpoint registered through the edge without SDP', async () => {
  const { layer, media, proxy } = setup();
  const reg = request('REGISTER', { uri: 'sip:example.com' });
  proxy.handleRegister(reg, server(reg).tx, UDP_IN);
  await tick();
  const path = getHeaders(layer.sent[0]!.req, 'path')[0]!;
  const inv = request('INVITE', { uri: 'sip:alice@10.1.1.1', route: path });
  const s = server(inv);
  proxy.handle(inv, s.tx, CORE_FLOW_IN);
  await tick();
  const out = layer.sent.at(-1)!;
  assert.deepEqual(out.dest, { transport: 'UDP', address: '198.51.100.7', port: 5060 });
  assert.equal(media.offers.length, 0);
  // alice offers in her 200: her leg is the endpoint, the caller's the zone.
  proxy.onResponse(withSdp(out.req, 200, SDP), out.tx);
  await tick();
  assert.deepEqual(
    media.offers.map((o) => [o.fromTag, o.from, o.to]),
    [['tt1', 'endpoint', 'traversal']],
  );
  assert.equal(s.responses.at(-1)?.status, 200);
  assert.match(s.responses.at(-1)!.body.toString(), /c=IN IP4 RELAY/);
  assert.doesNotMatch(s.responses.at(-1)!.body.toString(), /198\.51\.100\.7/);
  // The core's answer in the ACK, routed back along the Record-Route set, reaches alice rewritten.
  const rr = getHeaders(out.req, 'record-route');
  const ack = request('ACK', {
    uri: 'sip:alice@10.1.1.1',
    toTag: 'tt1',
    route: [...rr].reverse().join(', '),
    body: SDP.replace(/198\.51\.100\.7/g, '10.9.9.9'),
  });
  assert.equal(proxy.handleAck(ack, CORE_FLOW_IN), true);
  await tick();
  assert.deepEqual(
    media.answers.map((a) => [a.fromTag, a.toTag]),
    [['tt1', 'ft1']],
  );
  const sentAck = layer.stateless.at(-1)!;
  assert.deepEqual(sentAck.target, { transport: 'UDP', address: '198.51.100.7', port: 5060 });
  assert.match((sentAck.msg as SipRequest).body.toString(), /c=IN IP4 RELAY/);

  // A late-offer call that fails releases the relay's call like an early offer does.
  const inv2 = request('INVITE', { uri: 'sip:alice@10.1.1.1', route: path });
  inv2.headers = inv2.headers.map((h) => (h.name === 'Call-ID' ? { ...h, value: 'call-2' } : h));
  const s2 = server(inv2);
  proxy.handle(inv2, s2.tx, CORE_FLOW_IN);
  await tick();
  const out2 = layer.sent.at(-1)!;
  proxy.onResponse(createResponse(out2.req, 486, 'Busy Here', { toTag: 'tt2' }), out2.tx);
  await tick();
  assert.equal(s2.responses.at(-1)?.status, 486);
  assert.ok(media.deleted.includes('call-2'));
});

test('anchoring an UPDATE with SDP in an answered call: offer through the relay, its 200 answer rewritten', async () => {
  const { layer, proxy, core, offers, answers, towardAlice, towardBob } = await answeredCall();
  const upd = request('UPDATE', {
    toTag: 'tt1',
    uri: 'sip:bob@10.0.0.2:5061;transport=tls',
    cseq: 2,
    body: sdpAt('198.51.100.7', 4400),
  });
  const s = server(upd);
  proxy.handle(upd, s.tx, UDP_IN);
  await tick();
  const fwd = layer.sent.at(-1)!;
  assert.equal(fwd.req.method, 'UPDATE');
  assert.equal(offers.at(-1)!.fromTag, 'ft1');
  assert.equal(where(fwd.req.body), towardBob);
  assert.equal(getHeader(fwd.req, 'content-length'), String(fwd.req.body.length));
  proxy.onResponse(withSdp(fwd.req, 200, sdpAt('10.9.9.9', 5500)), fwd.tx);
  await tick();
  assert.deepEqual(answers.at(-1), { callId: 'call-1', fromTag: 'ft1', toTag: 'tt1', sdp: sdpAt('10.9.9.9', 5500) });
  assert.equal(s.responses.at(-1)?.status, 200);
  assert.equal(where(s.responses.at(-1)!.body), towardAlice);
  const st = core.stats('call-1')!;
  assert.equal(st.streams[0]!.sides[0].remote, '198.51.100.7:4400');
  assert.equal(st.streams[0]!.sides[1].remote, '10.9.9.9:5500');
  assert.equal(core.portsInUse, 2);
  // An UPDATE without a body carries no offer: nothing asked of the relay.
  const n = offers.length + answers.length;
  const bare = request('UPDATE', { toTag: 'tt1', uri: 'sip:bob@10.0.0.2:5061;transport=tls', cseq: 3 });
  proxy.handle(bare, server(bare).tx, UDP_IN);
  await tick();
  proxy.onResponse(createResponse(layer.sent.at(-1)!.req, 200, 'OK', { toTag: 'tt1' }), layer.sent.at(-1)!.tx);
  await tick();
  assert.equal(offers.length + answers.length, n);
});

test('anchoring early media: a 183 with SDP is rewritten and media flows callee → caller before the answer', async () => {
  const { core, io, relay, answers } = realRelay();
  const { layer, proxy } = setup(true, { media: relay });
  const inv = request('INVITE', { body: sdpAt('198.51.100.7', 4000) });
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  const fwd = layer.sent[0]!;
  proxy.onResponse(withSdp(fwd.req, 183, sdpAt('10.9.9.9', 5000)), fwd.tx);
  await tick();
  assert.deepEqual(
    answers.map((a) => [a.fromTag, a.toTag]),
    [['ft1', 'tt1']],
  );
  const early = s.responses.find((r) => r.status === 183)!;
  assert.ok(early, 'the 183 is forwarded');
  const towardAlice = where(early.body);
  assert.match(towardAlice, /^203\.0\.113\.1:\d+$/);
  // bob's early media reaches the relay's traversal side and goes out to alice from the side she was told of.
  const bobSide = Number(where(fwd.req.body).split(':')[1]);
  const aliceSide = Number(towardAlice.split(':')[1]);
  core.receive(io.byPort.get(bobSide)!, RTP, '10.9.9.9', 5000);
  assert.deepEqual(io.sent.at(-1), { handle: io.byPort.get(aliceSide)!, address: '198.51.100.7', port: 4000 });
  // The 200 with the same SDP is answered through the relay again and keeps the same relay address.
  proxy.onResponse(withSdp(fwd.req, 200, sdpAt('10.9.9.9', 5000)), fwd.tx);
  await tick();
  assert.equal(answers.length, 2);
  assert.equal(where(s.responses.at(-1)!.body), towardAlice);
});

test('anchoring a forked call: each branch answer goes through the relay, the branch that answered 200 is kept', async () => {
  const r = realRelay();
  const { layer, proxy } = setup(true, { media: r.relay, fork: true });
  const inv = request('INVITE', { body: sdpAt('198.51.100.7', 4000) });
  const s = server(inv);
  proxy.handle(inv, s.tx, UDP_IN);
  await tick();
  assert.equal(layer.sent.length, 2, 'forked to both targets');
  assert.equal(r.offers.length, 1, 'one offer for the call, whatever the fork');
  const [b1, b2] = layer.sent;
  assert.equal(b1!.req.body.toString(), b2!.req.body.toString());
  proxy.onResponse(withSdp(b1!.req, 183, sdpAt('10.9.9.21', 7000), 'B1'), b1!.tx);
  await tick();
  proxy.onResponse(withSdp(b2!.req, 183, sdpAt('10.9.9.22', 7100), 'B2'), b2!.tx);
  await tick();
  const early = s.responses.filter((x) => x.status === 183);
  assert.equal(early.length, 2);
  assert.equal(where(early[0]!.body), where(early[1]!.body), 'the caller keeps one media address');
  assert.equal(r.core.stats('call-1')!.tags[1], 'B2');
  proxy.onResponse(withSdp(b1!.req, 200, sdpAt('10.9.9.21', 7000), 'B1'), b1!.tx);
  await tick();
  assert.deepEqual(
    r.answers.map((a) => a.toTag),
    ['B1', 'B2', 'B1'],
  );
  assert.equal(s.responses.at(-1)?.status, 200);
  assert.equal(where(s.responses.at(-1)!.body), where(early[0]!.body));
  const st = r.core.stats('call-1')!;
  assert.equal(st.tags[1], 'B1');
  assert.equal(st.streams[0]!.sides[1].remote, '10.9.9.21:7000');
  assert.equal(r.core.portsInUse, 2);
});

test('an ACK for a 2xx, forwarded without a transaction, keeps its branch when retransmitted (RFC 3261 §16.11)', async () => {
  const { layer, proxy } = setup();
  const uri = 'sip:bob@10.0.0.2:5061;transport=tls';
  const ack = (cseq: number, branch: string) => {
    const a = request('ACK', { toTag: 'tt1', uri, cseq });
    a.headers = a.headers.map((h) =>
      h.name === 'Via' ? { ...h, value: `SIP/2.0/UDP 198.51.100.7:5060;branch=${branch};rport` } : h,
    );
    return a;
  };
  const topVia = () => getHeaders(layer.stateless.at(-1)!.msg as SipRequest, 'via')[0]!;
  proxy.handleAck(ack(1, 'z9hG4bKa1'), UDP_IN);
  await tick();
  const first = topVia();
  assert.match(first, /;branch=z9hG4bK/);
  // The same ACK again (the caller answering a retransmitted 200): the same branch downstream.
  proxy.handleAck(ack(1, 'z9hG4bKa1'), UDP_IN);
  await tick();
  assert.equal(layer.stateless.length, 2);
  assert.equal(topVia(), first);
  // Another ACK (a later re-INVITE's, or another branch upstream): another branch.
  proxy.handleAck(ack(2, 'z9hG4bKa2'), UDP_IN);
  await tick();
  assert.notEqual(topVia(), first);
  proxy.handleAck(ack(1, 'z9hG4bKb1'), UDP_IN);
  await tick();
  assert.notEqual(topVia(), first);
});

test('a BYE ends the relay call for good: a re-INVITE 2xx offer or a late-offer 2xx retransmission after it allocates nothing', async () => {
  // A re-INVITE without SDP crosses the caller's BYE: the callee's 200 (its offer) comes back after the BYE released
  // the call. Before, the relay took that offer for a new call and kept its ports until the media timeout.
  const { layer, proxy, core } = await answeredCall();
  const bobUri = 'sip:bob@10.0.0.2:5061;transport=tls';
  const reinv = request('INVITE', { toTag: 'tt1', uri: bobUri, cseq: 2 });
  const s = server(reinv);
  proxy.handle(reinv, s.tx, UDP_IN);
  await tick();
  const fwd = layer.sent.at(-1)!;
  const bye = request('BYE', { toTag: 'tt1', uri: bobUri, cseq: 3 });
  proxy.handle(bye, server(bye).tx, UDP_IN);
  await tick();
  assert.equal(core.callCount, 0);
  proxy.onResponse(withSdp(fwd.req, 200, sdpAt('10.9.9.9', 5100)), fwd.tx);
  await tick();
  assert.equal(s.responses.at(-1)?.status, 200, 'the 2xx still reaches the caller');
  assert.deepEqual([core.callCount, core.portsInUse], [0, 0], 'no call re-created by the offer in the 2xx');

  // A late-offer call (no SDP in the INVITE): answered, ACKed, hung up; then the callee's 200 again (a retransmission
  // that crossed the ACK) is forwarded without creating a call.
  const r = realRelay();
  const late = setup(true, { media: r.relay });
  const inv = request('INVITE');
  late.proxy.handle(inv, server(inv).tx, UDP_IN);
  await tick();
  const out = late.layer.sent[0]!;
  const ok200 = withSdp(out.req, 200, sdpAt('10.9.9.9', 5000));
  late.proxy.onResponse(ok200, out.tx);
  await tick();
  assert.deepEqual([r.core.callCount, r.core.portsInUse], [1, 2]);
  const bye2 = request('BYE', { toTag: 'tt1', uri: bobUri, cseq: 2 });
  late.proxy.handle(bye2, server(bye2).tx, UDP_IN);
  await tick();
  assert.equal(r.core.callCount, 0);
  late.proxy.onResponse(withSdp(out.req, 200, sdpAt('10.9.9.9', 5000)), out.tx);
  await tick();
  assert.deepEqual([r.core.callCount, r.core.portsInUse], [0, 0], 'no call re-created by a retransmitted 2xx');
});

test('a re-INVITE whose call the relay lost while its offer waited is answered 481, asked without creating a call', async () => {
  const { layer, media, proxy } = setup();
  const inv = request('INVITE', { body: SDP });
  proxy.handle(inv, server(inv).tx, UDP_IN);
  await tick();
  assert.equal(media.offers.at(-1)?.create, true, 'a first INVITE may create the call');
  const sent = layer.sent.length;
  media.refuse = { status: 481, message: 'no media session call-1' };
  const reinv = request('INVITE', { toTag: 'tt1', body: SDP, uri: 'sip:bob@10.0.0.2:5061;transport=tls', cseq: 2 });
  const s = server(reinv);
  proxy.handle(reinv, s.tx, UDP_IN);
  await tick();
  assert.equal(media.offers.at(-1)?.create, false);
  assert.deepEqual([s.responses.at(-1)?.status, s.responses.at(-1)?.reason], [481, 'Call/Transaction Does Not Exist']);
  assert.equal(layer.sent.length, sent, 'nothing forwarded');
});
