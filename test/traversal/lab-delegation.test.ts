import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { answerChallenge, pickChallenge } from '../../src/sip/auth/client.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { hdr, hdrs, type Msg, seedCredentials, TestUa } from '../roles/helpers-ua.ts';

/*
 * Delegated credential checking through a lab (edge 127.0.0.1, core 127.0.0.2; docs/traversal.md): alice, outside,
 * calls bob, inside; only the core holds alice's password. With delegation the edge passes her INVITE down the zone
 * unchallenged, the core challenges it (407 back through the edge) and her answer is accepted; without it the edge
 * challenges her itself and, holding no password for her, cannot accept her answer.
 */

const DOMAIN = 'example.com';
const rand = () => randomBytes(6).toString('hex');

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function startLab(delegated: boolean): Promise<RunningNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-deleg-'));
  seedCredentials(dataDir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
  seedCredentials(dataDir, 'core', [
    [DOMAIN, 'alice', 'alice-pw'],
    [DOMAIN, 'bob', 'bob-pw'],
  ]);
  const node = await startTestNode({
    dataDir,
    sip: { domains: [DOMAIN], transports: { udp: { enabled: true } } },
    traversalZones: [
      {
        name: 'tz1',
        keepaliveSeconds: 1,
        retryMinSeconds: 0.1,
        retryMaxSeconds: 0.5,
        username: 'tz1-core',
        password: 'zone-secret',
        domains: [DOMAIN],
        delegatedCredentialChecking: delegated,
      },
    ],
    routing: {
      zones: [{ name: 'tz1', type: 'traversal' }],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
        { name: 'across', priority: 100, pattern: { type: 'anyAlias' }, targetZone: 'tz1' },
      ],
      // Both nodes challenge calls from their default zone (a lab's halves share the configuration).
      proxy: { authenticateCalls: true },
    },
  });
  await waitFor('zone active on both nodes', () => {
    const c = node.sip.get('core')!.zones()[0];
    const e = node.sip.get('edge')!.serverZones()[0];
    return c?.state === 'active' && e?.state === 'active' ? true : undefined;
  });
  return node;
}

/** alice's INVITE to bob through the edge, answering one 407 with her password: the challenge and the final answer. */
async function callWithDigest(alice: TestUa, host: string, port: number): Promise<{ challenge: Msg; final: Msg }> {
  const callId = `${rand()}@${alice.ip}`;
  const tag = rand();
  const body = alice.sdp();
  const to = `bob@${DOMAIN}`;
  const invite = (cseq: number, branch: string, auth?: string) =>
    [
      `INVITE sip:${to} SIP/2.0`,
      `Via: SIP/2.0/UDP ${alice.ip}:${alice.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@${DOMAIN}>;tag=${tag}`,
      `To: <sip:${to}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} INVITE`,
      `Contact: <sip:alice@${alice.ip}:${alice.port}>`,
      ...(auth ? [`Proxy-Authorization: ${auth}`] : []),
      'Content-Type: application/sdp',
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n');
  const ack = (branch: string, cseq: number, toHeader: string) =>
    [
      `ACK sip:${to} SIP/2.0`,
      `Via: SIP/2.0/UDP ${alice.ip}:${alice.port};branch=${branch};rport`,
      'Max-Forwards: 70',
      `From: <sip:alice@${DOMAIN}>;tag=${tag}`,
      `To: ${toHeader}`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} ACK`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  const final = (cseq: number) => (m: Msg) =>
    hdr(m, 'call-id') === callId && m.status >= 200 && hdr(m, 'cseq') === `${cseq} INVITE`;
  const b1 = `z9hG4bK${rand()}`;
  alice.send(invite(1, b1), host, port);
  const challenge = await alice.wait(final(1), 'first INVITE final response');
  // RFC 3261 §17.1.1.3: a non-2xx final response is acknowledged hop by hop.
  alice.send(ack(b1, 1, hdr(challenge, 'to') ?? ''), host, port);
  if (challenge.status !== 407) return { challenge, final: challenge };
  const ch = pickChallenge(hdrs(challenge, 'proxy-authenticate'))!;
  const auth = answerChallenge(ch, { username: 'alice', password: 'alice-pw', method: 'INVITE', uri: `sip:${to}` });
  const b2 = `z9hG4bK${rand()}`;
  alice.send(invite(2, b2, auth), host, port);
  const answer = await alice.wait(final(2), 'INVITE final response after the 407');
  if (answer.status >= 300) alice.send(ack(b2, 2, hdr(answer, 'to') ?? ''), host, port);
  return { challenge, final: answer };
}

test('lab delegated credential checking: the core checks an outside caller the edge holds no password for', async () => {
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab(true);
    const edgePort = node.plan.port('sip-udp', 'edge');
    const corePort = node.plan.port('sip-udp', 'core');
    const alice = await TestUa.create('alice', DOMAIN, '127.0.0.4');
    const bob = await TestUa.create('bob', DOMAIN, '127.0.0.3');
    uas.push(alice, bob);
    assert.equal((await bob.register('127.0.0.2', corePort, 'bob-pw')).status, 200);
    const { challenge, final } = await callWithDigest(alice, '127.0.0.1', edgePort);
    assert.equal(challenge.status, 407, challenge.start);
    assert.match(hdrs(challenge, 'proxy-authenticate')[0] ?? '', /realm="example\.com"/);
    // Her answer, checked by the core (the only node with her password), is accepted and bob answers.
    assert.equal(final.status, 200, final.start);
    // The edge challenged nothing: both INVITEs went down the zone, the 407 came back up from the core.
    const counters = node.sip.get('edge')!.proxy!.counters;
    assert.ok(counters.forwarded >= 2, 'both INVITEs forwarded by the edge');
  } finally {
    for (const u of uas) u.close();
    await node?.close();
  }
});

test('lab without delegated credential checking: the edge challenges the caller itself and cannot check her', async () => {
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab(false);
    const edgePort = node.plan.port('sip-udp', 'edge');
    const corePort = node.plan.port('sip-udp', 'core');
    const alice = await TestUa.create('alice', DOMAIN, '127.0.0.4');
    const bob = await TestUa.create('bob', DOMAIN, '127.0.0.3');
    uas.push(alice, bob);
    assert.equal((await bob.register('127.0.0.2', corePort, 'bob-pw')).status, 200);
    const before = node.sip.get('edge')!.proxy!.counters.forwarded;
    const { challenge, final } = await callWithDigest(alice, '127.0.0.1', edgePort);
    assert.equal(challenge.status, 407, challenge.start);
    assert.notEqual(final.status, 200, final.start);
    assert.equal(node.sip.get('edge')!.proxy!.counters.forwarded, before, 'nothing went down the zone');
  } finally {
    for (const u of uas) u.close();
    await node?.close();
  }
});
