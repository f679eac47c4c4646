import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { answerChallenge, pickChallenge } from '../../src/sip/auth/client.ts';
import { startTestNode, uniqueOffset } from '../helpers/lab-node.ts';
import { hdr, hdrs, type Msg, seedCredentials, TestUa } from '../roles/helpers-ua.ts';

/*
 * Flow tokens survive a restart of the edge (docs/traversal.md): alice registers through the edge with a Contact that
 * cannot be reached (a private address, as behind a NAT), so only the flow in the edge's Path reaches her. The lab is
 * restarted on the same data directory and ports; bob then calls her: the core's binding (kept in its store) routes
 * the INVITE up the zone with the Path, and the restarted edge still reads its token and sends to her real address.
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

async function startLab(dataDir: string, portOffset: number): Promise<RunningNode> {
  const input: CrosswayConfigInput = {
    dataDir,
    portOffset,
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
      },
    ],
    routing: {
      zones: [{ name: 'tz1', type: 'traversal' }],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
        { name: 'across', priority: 100, pattern: { type: 'anyAlias' }, targetZone: 'tz1' },
      ],
    },
  };
  const node = await startTestNode(input);
  await waitFor('zone active on both nodes', () => {
    const c = node.sip.get('core')!.zones()[0];
    const e = node.sip.get('edge')!.serverZones()[0];
    return c?.state === 'active' && e?.state === 'active' ? true : undefined;
  });
  return node;
}

/** REGISTER from `ua`'s socket with an unreachable Contact (her private address behind a NAT), digest answered. */
async function registerBehindNat(ua: TestUa, host: string, port: number, password: string): Promise<Msg> {
  const callId = `${rand()}@10.255.0.9`;
  const tag = rand();
  const build = (cseq: number, auth?: string) =>
    [
      `REGISTER sip:${DOMAIN} SIP/2.0`,
      `Via: SIP/2.0/UDP 10.255.0.9:5060;branch=z9hG4bK${rand()};rport`,
      'Max-Forwards: 70',
      `From: <sip:${ua.user}@${DOMAIN}>;tag=${tag}`,
      `To: <sip:${ua.user}@${DOMAIN}>`,
      `Call-ID: ${callId}`,
      `CSeq: ${cseq} REGISTER`,
      `Contact: <sip:${ua.user}@10.255.0.9:5060>`,
      'Expires: 300',
      ...(auth ? [`Authorization: ${auth}`] : []),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
  const isFinal = (m: Msg) => hdr(m, 'call-id') === callId && m.status >= 200;
  ua.send(build(1), host, port);
  let res = await ua.wait(isFinal, 'REGISTER response');
  if (res.status === 401) {
    const ch = pickChallenge(hdrs(res, 'www-authenticate'))!;
    const auth = answerChallenge(ch, { username: ua.user, password, method: 'REGISTER', uri: `sip:${DOMAIN}` });
    ua.send(build(2, auth), host, port);
    res = await ua.wait(isFinal, 'REGISTER response after 401');
  }
  return res;
}

test('lab flow tokens after an edge restart: a binding made before it is still called on the endpoint real address', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-restart-'));
  seedCredentials(dataDir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
  seedCredentials(dataDir, 'core', [
    [DOMAIN, 'alice', 'alice-pw'],
    [DOMAIN, 'bob', 'bob-pw'],
  ]);
  const portOffset = uniqueOffset();
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startLab(dataDir, portOffset);
    const alice = await TestUa.create('alice', DOMAIN, '127.0.0.4');
    const bob = await TestUa.create('bob', DOMAIN, '127.0.0.3');
    uas.push(alice, bob);
    const reg = await registerBehindNat(alice, '127.0.0.1', node.plan.port('sip-udp', 'edge'), 'alice-pw');
    assert.equal(reg.status, 200, reg.start);
    const path = node.sip.get('core')!.location!.lookup(`sip:alice@${DOMAIN}`)[0]?.path[0];
    assert.match(path ?? '', /^<sip:cw-/);
    await node.close();

    // The same lab again: same data directory (the edge's token key, the core's bindings), same ports.
    node = await startLab(dataDir, portOffset);
    const binding = node.sip.get('core')!.location!.lookup(`sip:alice@${DOMAIN}`)[0];
    assert.equal(binding?.path[0], path, 'the core kept the binding and its Path');
    assert.equal((await bob.register('127.0.0.2', node.plan.port('sip-udp', 'core'), 'bob-pw')).status, 200);
    // alice's Contact (10.255.0.9) is unreachable: only the token's flow gets the INVITE to her socket.
    const ok = await bob.call(`alice@${DOMAIN}`, '127.0.0.2', node.plan.port('sip-udp', 'core'));
    assert.equal(ok.status, 200, ok.start);
    bob.inDialog('BYE');
  } finally {
    for (const u of uas) u.close();
    await node?.close();
  }
});
