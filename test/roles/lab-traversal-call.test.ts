import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import type { CallRecord } from '../../src/calls/call-registry.ts';
import type { NodeStatus } from '../../src/calls/status.ts';
import { formatStatus } from '../../src/cli/commands/status.ts';
import { callControl } from '../../src/roles/control.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { hdr, hdrs, seedCredentials, TestUa } from './helpers-ua.ts';

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const DOMAIN = 'example.com';

/**
 * Both relays hold no call's ports. A pair another process held when the relay tried it (parallel test files share
 * the media range) stays out of the pool for a minute: those are the only ones still counted.
 */
const idle = (node: RunningNode) =>
  (['edge', 'core'] as const).every((k) => {
    const r = node.media.get(k)!.core;
    return r.portsInUse === r.counters.bindFailures;
  });

/** alice (outside, 127.0.0.4) and bob (inside, 127.0.0.3), added to `uas` so the test closes them. */
async function parties(uas: TestUa[]): Promise<{ alice: TestUa; bob: TestUa }> {
  const alice = await TestUa.create('alice', DOMAIN, '127.0.0.4');
  const bob = await TestUa.create('bob', DOMAIN, '127.0.0.3');
  uas.push(alice, bob);
  return { alice, bob };
}

/**
 * One place for the media check of a call: `a` and `b` each send `n` RTP packets at once (to `aSdp` and `bSdp`), then
 * both must have received at least 90% of them.
 */
async function mediaBothWays(a: TestUa, aSdp: string, b: TestUa, bSdp: string, n: number, label = ''): Promise<void> {
  await Promise.all([a.sendRtp(aSdp, n), b.sendRtp(bSdp, n)]);
  await new Promise((r) => setTimeout(r, 200));
  const min = n * 0.9;
  assert.ok(a.rtpIn >= min && b.rtpIn >= min, `${label}${a.user} ${a.rtpIn}, ${b.user} ${b.rtpIn} of ${n}`);
}

/** `ua` hangs up its dialog; resolves with the 200 to its BYE. */
function hangUp(ua: TestUa, what: string) {
  ua.inDialog('BYE');
  return ua.wait((m) => m.status === 200 && /BYE/.test(hdr(m, 'cseq') ?? ''), what);
}

/** A lab (edge 127.0.0.1, core 127.0.0.2) with one authenticated traversal zone serving example.com. */
async function startLab(
  extra: { media?: { timeoutSeconds: number } } = {},
  transport: 'tls' | 'tcp' = 'tls',
): Promise<RunningNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-node-'));
  seedCredentials(dataDir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
  seedCredentials(dataDir, 'core', [
    [DOMAIN, 'alice', 'alice-pw'],
    [DOMAIN, 'bob', 'bob-pw'],
  ]);
  const node = await startTestNode({
    ...extra,
    dataDir,
    sip: { domains: [DOMAIN], transports: { udp: { enabled: true } } },
    traversalZones: [
      {
        name: 'tz1',
        transport,
        keepaliveSeconds: 1,
        retryMinSeconds: 0.1,
        retryMaxSeconds: 0.5,
        username: 'tz1-core',
        password: 'zone-secret',
        domains: [DOMAIN],
      },
    ],
    routing: {
      zones: [{ name: 'tz1', type: 'traversal' }],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
        { name: 'across', priority: 100, pattern: { type: 'anyAlias' }, targetZone: 'tz1' },
      ],
    },
  });
  await waitFor('zone active on both nodes', () => {
    const c = node.sip.get('core')!.zones()[0];
    const e = node.sip.get('edge')!.serverZones()[0];
    return c?.state === 'active' && e?.state === 'active';
  });
  return node;
}

test('lab traversal: outside registers through the edge, calls cross the zone both ways with media relayed, hang-up frees every port', async () => {
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab();
    const edgePort = node.plan.port('sip-udp', 'edge');
    const corePort = node.plan.port('sip-udp', 'core');
    const edge = node.sip.get('edge')!;
    const core = node.sip.get('core')!;
    // The edge's server zone names the core's flow (from the core's outbound range) and the core's zone is active.
    const sz = edge.serverZones()[0]!;
    assert.match(sz.peer, /^127\.0\.0\.2:\d+$/);

    // Outside: alice on 127.0.0.4 registers to the edge; the core is the registrar and challenges her.
    const { alice, bob } = await parties(uas);
    const regA = await alice.register('127.0.0.1', edgePort, 'alice-pw');
    assert.equal(regA.status, 200, regA.raw);
    // Inside: bob registers to the core directly.
    const regB = await bob.register('127.0.0.2', corePort, 'bob-pw');
    assert.equal(regB.status, 200, regB.raw);
    // The edge kept no binding: the core holds alice's, with the edge's Path (a flow token with ;ob) naming the
    // edge's traversal listener, the only port of the edge the core sends to (up the zone's flow).
    assert.equal(edge.location?.lookup(`sip:alice@${DOMAIN}`).length ?? 0, 0);
    const bindings = core.location!.lookup(`sip:alice@${DOMAIN}`);
    assert.equal(bindings.length, 1);
    const zonePort = node.plan.node('edge').listener('traversal-sip:1')!.ports.from;
    assert.equal(
      bindings[0]!.path[0],
      bindings[0]!.path[0]?.replace(/@.*$/, `@127.0.0.1:${zonePort};transport=tls;lr;ob>`),
    );
    assert.match(bindings[0]!.path[0] ?? '', /^<sip:cw-[^@]+@/);

    // Outside → inside: alice calls bob through the edge.
    const okAB = await alice.call(`bob@${DOMAIN}`, '127.0.0.1', edgePort);
    // Record-Route names both nodes, so the BYE follows them.
    const rr = hdrs(okAB, 'record-route').join(' ');
    assert.match(rr, /127\.0\.0\.1/);
    assert.match(rr, /127\.0\.0\.2/);
    // Each party sees the relay of its own node, never the other party's address.
    assert.match(okAB.body, /c=IN IP4 127\.0\.0\.1/);
    assert.match(bob.offerSeen, /c=IN IP4 127\.0\.0\.2/);
    assert.doesNotMatch(bob.offerSeen, /x-crossway-mux/);
    assert.equal(node.media.get('edge')!.core.callCount, 1);
    assert.equal(node.media.get('core')!.core.callCount, 1);
    // Counted at the endpoints: alice receives from the edge, bob from the core.
    await mediaBothWays(alice, okAB.body, bob, bob.offerSeen, 100);
    assert.match(alice.rtpFrom, /^127\.0\.0\.1:/);
    assert.match(bob.rtpFrom, /^127\.0\.0\.2:/);
    // Operators see the call's media on both nodes, per direction (the control socket's media.call).
    const callIdAB = hdr(okAB, 'call-id')!;
    const live = (await callControl(dirname(node.control.path), 'media.call', { callId: callIdAB })) as {
      node: string;
      fromCaller: { packets: number; bytes: number; lastAt: number };
      fromCallee: { packets: number; bytes: number; lastAt: number };
    }[];
    assert.deepEqual(live.map((x) => x.node).sort(), ['core', 'edge']);
    for (const x of live) {
      assert.ok(x.fromCaller.packets >= 90 && x.fromCaller.packets <= 100, `${x.node} ${x.fromCaller.packets}`);
      assert.ok(x.fromCallee.packets >= 90 && x.fromCallee.packets <= 100, `${x.node} ${x.fromCallee.packets}`);
      assert.ok(x.fromCaller.bytes >= x.fromCaller.packets * 12);
      assert.ok(Math.abs(x.fromCaller.lastAt - Date.now()) < 60_000, 'last packet time is wall-clock');
    }
    await assert.rejects(callControl(dirname(node.control.path), 'media.call', { callId: 'nope' }), /no media session/);
    await assert.rejects(callControl(dirname(node.control.path), 'media.call', {}), /needs callId/);
    // The same figures in the active-call listings: calls.status (what crossway status prints) and the API's calls.
    const listed = (await callControl(dirname(node.control.path), 'calls.status', { limit: 5 })) as NodeStatus[];
    for (const n of listed) {
      const a = n.calls.active.find((x) => x.id.startsWith(`${callIdAB};`));
      assert.ok(a?.media, `${n.node} lists the call with its media: ${JSON.stringify(n.calls.active)}`);
      assert.ok(a.media.fromCaller.packets >= 90 && a.media.fromCallee.packets >= 90, JSON.stringify(a.media));
      assert.deepEqual(a.mediaPath?.codecs, { caller: ['audio:PCMU'], callee: ['audio:PCMU'] }, `${n.node} media path`);
      assert.match(formatStatus(n), /media: caller sends audio:PCMU, callee sends audio:PCMU; relay session 0 /);
      assert.match(
        formatStatus(n),
        /media relayed: from caller \d+ packets \d+ B \(last \d\d:\d\d:\d\d\), from callee/,
      );
    }
    const byeOk = await hangUp(alice, 'BYE 200');
    assert.equal(byeOk.status, 200);
    await waitFor('ports released', () => (idle(node!) ? true : undefined));
    // The call records keep what each node relayed, per direction.
    for (const svc of [edge, core]) {
      const rec = await waitFor('call recorded', () => svc.calls!.history(1)[0]);
      assert.ok(rec.id.startsWith(callIdAB), rec.id);
      assert.ok(rec.media, `${rec.id} has media totals`);
      assert.ok(rec.media.fromCaller.packets >= 90 && rec.media.fromCallee.packets >= 90, JSON.stringify(rec.media));
    }
    // The stored records (the store behind call history) keep each node's media path: codecs of both SDPs, and the
    // relay ports the parties were given (the edge's toward alice, the core's toward bob).
    const rtpPort = (sdp: string) => Number(/m=audio (\d+)/.exec(sdp)?.[1]);
    const storedEdge = edge.callStore!.recent(1)[0]!;
    const storedCore = core.callStore!.recent(1)[0]!;
    for (const r of [storedEdge, storedCore]) {
      assert.ok(r.callId.startsWith(callIdAB), r.callId);
      assert.deepEqual(r.mediaPath?.codecs, { caller: ['audio:PCMU'], callee: ['audio:PCMU'] }, r.callId);
      assert.equal(r.mediaPath?.relay.length, 1, JSON.stringify(r.mediaPath));
    }
    const edgeRelay = storedEdge.mediaPath!.relay[0]!;
    assert.deepEqual([edgeRelay.session, edgeRelay.address], [0, '127.0.0.1']);
    assert.deepEqual(edgeRelay.caller, { rtp: rtpPort(okAB.body), rtcp: rtpPort(okAB.body) + 1 });
    const coreRelay = storedCore.mediaPath!.relay[0]!;
    assert.equal(coreRelay.calleeAddress ?? coreRelay.address, '127.0.0.2');
    assert.deepEqual(coreRelay.callee, { rtp: rtpPort(bob.offerSeen), rtcp: rtpPort(bob.offerSeen) + 1 });
    assert.equal(node.media.get('edge')!.core.callCount, 0);
    assert.equal(node.media.get('core')!.core.callCount, 0);

    // Inside → outside: bob calls alice; the core routes by her binding's Path, up the zone's flow, and the edge sends
    // the INVITE on alice's own flow.
    alice.rtpIn = 0;
    bob.rtpIn = 0;
    const okBA = await bob.call(`alice@${DOMAIN}`, '127.0.0.2', corePort);
    assert.match(okBA.body, /c=IN IP4 127\.0\.0\.2/);
    assert.match(alice.offerSeen, /c=IN IP4 127\.0\.0\.1/);
    await mediaBothWays(bob, okBA.body, alice, alice.offerSeen, 100);
    // The callee hangs up this time: its BYE follows the Record-Route back through edge and core.
    await hangUp(alice, 'BYE 200 from bob');
    await waitFor('ports released after the second call', () => (idle(node!) ? true : undefined));
    // The inside never accepted a connection: every connection of the core is outbound.
    assert.deepEqual(
      core.transport.connections().filter((c) => c.direction === 'inbound'),
      [],
    );

    // The zone's flow breaks mid-test (the edge drops the core's connection): the edge shows the zone failed, the core
    // reconnects from its outbound range and authenticates again, and the next call crosses the new flow.
    const before = edge.serverZones()[0]!;
    const flowConn = edge.transport.connections().find((c) => `${c.remote.address}:${c.remote.port}` === before.peer)!;
    assert.ok(edge.transport.closeConnection(flowConn.id));
    await waitFor('edge zone failed', () => (edge.serverZones()[0]!.state === 'failed' ? true : undefined), 3000);
    assert.equal(edge.serverZones()[0]!.lastError, 'flow closed');
    const after = await waitFor('edge zone active on a new flow', () => {
      const z = edge.serverZones()[0]!;
      return z.state === 'active' && z.peer !== before.peer ? z : undefined;
    });
    assert.match(after.peer, /^127\.0\.0\.2:\d+$/);
    alice.rtpIn = 0;
    bob.rtpIn = 0;
    const again = await alice.call(`bob@${DOMAIN}`, '127.0.0.1', edgePort);
    await mediaBothWays(alice, again.body, bob, bob.offerSeen, 50, 'after reconnect: ');
    await hangUp(bob, 'BYE 200 after reconnect');
    await waitFor('ports released after the reconnect call', () => (idle(node!) ? true : undefined));
  } finally {
    for (const u of uas) u.close();
    await node?.close();
  }
});

test('lab traversal: a call whose media stops is released on both relays after media.timeoutSeconds, both parties get a BYE, an alarm is raised then lowered once they answered', async () => {
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab({ media: { timeoutSeconds: 1 } });
    const edgePort = node.plan.port('sip-udp', 'edge');
    const corePort = node.plan.port('sip-udp', 'core');
    const { alice, bob } = await parties(uas);
    assert.equal((await bob.register('127.0.0.2', corePort, 'bob-pw')).status, 200);
    const events: { node: 'edge' | 'core'; event: string; id: unknown }[] = [];
    for (const kind of ['edge', 'core'] as const) {
      node.management?.nodes.get(kind)?.bus.on((e) => {
        if (e.event === 'alarm-raised' || e.event === 'alarm-lowered')
          events.push({ node: kind, event: e.event, id: e.data.id });
      });
    }
    await alice.call(`bob@${DOMAIN}`, '127.0.0.1', edgePort);
    assert.ok(node.media.get('edge')!.core.portsInUse > 0 && node.media.get('core')!.core.portsInUse > 0);
    const byeA = alice.wait((m) => m.method === 'BYE', 'BYE after the media timeout', 10_000);
    const byeB = bob.wait((m) => m.method === 'BYE', 'BYE after the media timeout', 10_000);
    // No RTP at all: each relay's timer releases the call.
    await waitFor('both relays released by the media timeout', () => (idle(node!) ? true : undefined), 8000);
    // Both parties are told: each node sends a BYE to both sides (the second one each gets is answered too).
    const [ba, bb] = await Promise.all([byeA, byeB]);
    assert.match(ba.start, /^BYE sip:alice@/);
    assert.match(bb.start, /^BYE sip:bob@/);
    // The node whose relay timed out first raises the alarm and ends the call; its BYE crossing the other node ends
    // the call there too (that relay's call is deleted by the BYE before its own timer fires, or times out as well).
    await waitFor('alarm lowered', () => (events.some((e) => e.event === 'alarm-lowered') ? true : undefined));
    const raisedOn = [...new Set(events.filter((e) => e.event === 'alarm-raised').map((e) => e.node))];
    assert.ok(raisedOn.length >= 1);
    for (const kind of raisedOn) {
      await waitFor(`${kind} alarm lowered`, () =>
        events.some((e) => e.node === kind && e.event === 'alarm-lowered') ? true : undefined,
      );
      const mine = events.filter((e) => e.node === kind && e.id === 'media-timeout').map((e) => e.event);
      assert.deepEqual(mine.slice(0, 2), ['alarm-raised', 'alarm-lowered'], kind);
      assert.equal(
        node.management?.nodes
          .get(kind)
          ?.alarms.list()
          .find((a) => a.id === 'media-timeout'),
        undefined,
      );
    }
    // At least one node recorded the call as ended by the media timeout (the other may have seen the BYE first).
    const causes = (['edge', 'core'] as const).flatMap((k) =>
      node!.sip
        .get(k)!
        .calls!.history()
        .map((c) => c.cause),
    );
    assert.ok(causes.includes('media timeout'), JSON.stringify(causes));
    // Every record of the call, however it ended on that node, carries the relay's totals: nothing either way.
    for (const kind of ['edge', 'core'] as const) {
      const rec: CallRecord = node.sip.get(kind)!.calls!.history(1)[0]!;
      assert.deepEqual([rec.media?.fromCaller.packets, rec.media?.fromCallee.packets], [0, 0], `${kind} ${rec.cause}`);
    }
    // Neither node still counts the call as active.
    for (const kind of ['edge', 'core'] as const) assert.equal(node.sip.get(kind)!.calls!.activeCount, 0, kind);
    assert.equal(node.sip.get('edge')!.dialogs.size + node.sip.get('core')!.dialogs.size, 0);
  } finally {
    for (const u of uas) u.close();
    await node?.close();
  }
});

test('lab traversal over a TCP zone (transport: tcp): registration through the edge and calls both ways with media', async () => {
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab({}, 'tcp');
    const edge = node.sip.get('edge')!;
    const flow = edge.transport.connections().find((c) => c.direction === 'inbound')!;
    assert.equal(flow.transport, 'TCP');
    assert.equal(flow.local.port, node.plan.port('traversal-sip:1', 'edge'));
    const edgePort = node.plan.port('sip-udp', 'edge');
    const corePort = node.plan.port('sip-udp', 'core');
    const { alice, bob } = await parties(uas);
    assert.equal((await alice.register('127.0.0.1', edgePort, 'alice-pw')).status, 200);
    assert.equal((await bob.register('127.0.0.2', corePort, 'bob-pw')).status, 200);
    // The Path names the edge's zone listener over TCP: the core reaches alice up the same flow.
    const path = node.sip.get('core')!.location!.lookup(`sip:alice@${DOMAIN}`)[0]!.path[0] ?? '';
    assert.match(path, /;transport=tcp;lr;ob>$/);
    const ok = await alice.call(`bob@${DOMAIN}`, '127.0.0.1', edgePort);
    assert.equal(ok.status, 200);
    await mediaBothWays(alice, ok.body, bob, bob.offerSeen, 50);
    await hangUp(alice, 'BYE 200');
    alice.rtpIn = 0;
    bob.rtpIn = 0;
    const back = await bob.call(`alice@${DOMAIN}`, '127.0.0.2', corePort);
    assert.equal(back.status, 200);
    await mediaBothWays(bob, back.body, alice, alice.offerSeen, 50);
    await hangUp(bob, 'BYE 200 from alice');
    await waitFor('ports released', () => (idle(node!) ? true : undefined));
  } finally {
    for (const ua of uas) ua.close();
    await node?.close();
  }
});

test('lab traversal: a re-INVITE without SDP crosses edge and core as a late offer; media keeps to both relays', async () => {
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab();
    const edgePort = node.plan.port('sip-udp', 'edge');
    const corePort = node.plan.port('sip-udp', 'core');
    const { alice, bob } = await parties(uas);
    assert.equal((await alice.register('127.0.0.1', edgePort, 'alice-pw')).status, 200);
    assert.equal((await bob.register('127.0.0.2', corePort, 'bob-pw')).status, 200);
    const ok = await alice.call(`bob@${DOMAIN}`, '127.0.0.1', edgePort);
    assert.equal(ok.status, 200);
    const d = alice.dialog!;
    const first = /<sip:([^;>]+)/.exec(d.routes[0]!)![1]!;
    const [host, port] = (first.includes('@') ? first.split('@')[1]! : first).split(':');
    const inDialog = (method: 'INVITE' | 'ACK', cseq: number, body = '') =>
      alice.send(
        [
          `${method} ${d.remoteUri} SIP/2.0`,
          `Via: SIP/2.0/UDP ${alice.ip}:${alice.port};branch=z9hG4bK${Math.random().toString(36).slice(2)};rport`,
          'Max-Forwards: 70',
          ...d.routes.map((r) => `Route: ${r}`),
          `From: <sip:alice@${DOMAIN}>;tag=${d.localTag}`,
          `To: <sip:bob@${DOMAIN}>;tag=${d.remoteTag}`,
          `Call-ID: ${d.callId}`,
          `CSeq: ${cseq} ${method}`,
          `Contact: <sip:alice@${alice.ip}:${alice.port}>`,
          ...(body ? ['Content-Type: application/sdp'] : []),
          `Content-Length: ${Buffer.byteLength(body)}`,
          '',
          body,
        ].join('\r\n'),
        host!,
        Number(port),
      );
    // alice asks bob to offer: the re-INVITE reaches bob without a body, bob offers in the 200 (his own address).
    inDialog('INVITE', 10);
    const reinv = await bob.wait((m) => m.method === 'INVITE', 're-INVITE at bob');
    assert.equal(reinv.body, '');
    const ok2 = await alice.wait(
      (m) => m.status === 200 && hdr(m, 'cseq') === '10 INVITE' && hdr(m, 'call-id') === d.callId,
      '200 to the re-INVITE',
    );
    // The offer alice sees names the edge's relay, not bob.
    assert.match(ok2.body, /c=IN IP4 127\.0\.0\.1\r?\n/);
    assert.doesNotMatch(ok2.body, /c=IN IP4 127\.0\.0\.3/);
    // alice answers in the ACK; bob receives it rewritten to the core's relay.
    inDialog('ACK', 10, alice.sdp());
    const ack = await bob.wait((m) => m.method === 'ACK' && m.body !== '', 'ACK with the answer at bob');
    assert.match(ack.body, /c=IN IP4 127\.0\.0\.2\r?\n/);
    assert.doesNotMatch(ack.body, /c=IN IP4 127\.0\.0\.4/);
    // Media after the renegotiation goes through both relays, counted at both endpoints.
    await mediaBothWays(alice, ok2.body, bob, ack.body, 50);
    assert.match(alice.rtpFrom, /^127\.0\.0\.1:/);
    assert.match(bob.rtpFrom, /^127\.0\.0\.2:/);
    // No port pair was added by the re-offer: still one call on each relay.
    assert.equal(node.media.get('edge')!.core.callCount, 1);
    assert.equal(node.media.get('core')!.core.callCount, 1);
    await hangUp(alice, 'BYE 200');
    await waitFor('ports released', () => (idle(node!) ? true : undefined));
  } finally {
    for (const ua of uas) ua.close();
    await node?.close();
  }
});
