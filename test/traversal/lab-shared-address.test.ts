import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { seedCredentials, TestUa } from '../roles/helpers-ua.ts';

/*
 * Only the other node's own hops cross a zone (docs/traversal.md, "Next hops onto the flow"). In a lab (edge
 * 127.0.0.1, core 127.0.0.2) an outside phone that shares the core's address (as one behind the same NAT as the core
 * would) registers through the edge; a call from inside must reach that phone, not be sent back down the core's flow
 * because its address is the core's.
 */

const DOMAIN = 'example.com';

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("lab: an outside phone at the core's own address is called on its flow, not sent down the core's flow", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-shared-'));
  seedCredentials(dataDir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
  seedCredentials(dataDir, 'core', [
    [DOMAIN, 'alice', 'alice-pw'],
    [DOMAIN, 'bob', 'bob-pw'],
  ]);
  let node: RunningNode | undefined;
  const uas: TestUa[] = [];
  try {
    node = await startTestNode({
      dataDir,
      sip: { domains: [DOMAIN], transports: { udp: { enabled: true } } },
      traversalZones: [
        {
          name: 'tz1',
          keepaliveSeconds: 1,
          retryMinSeconds: 0.1,
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
    const n = node;
    await waitFor('zone active', () => (n.sip.get('edge')!.serverZones()[0]?.state === 'active' ? true : undefined));
    // alice is outside but on the core's address (another port): she registers through the edge.
    const alice = await TestUa.create('alice', DOMAIN, '127.0.0.2');
    const bob = await TestUa.create('bob', DOMAIN, '127.0.0.3');
    uas.push(alice, bob);
    assert.equal((await alice.register('127.0.0.1', node.plan.port('sip-udp', 'edge'), 'alice-pw')).status, 200);
    const corePort = node.plan.port('sip-udp', 'core');
    assert.equal((await bob.register('127.0.0.2', corePort, 'bob-pw')).status, 200);
    const ok = await bob.call(`alice@${DOMAIN}`, '127.0.0.2', corePort);
    assert.equal(ok.status, 200, ok.start);
    bob.inDialog('BYE');
    await alice.wait((m) => m.method === 'BYE', 'BYE at alice');
  } finally {
    for (const u of uas) u.close();
    await node?.close();
  }
});
