import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { contains } from '../../src/ports/index.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { seedCredentials } from './helpers-ua.ts';

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('lab: the core opens its traversal zone to the edge over TLS from its outbound range and keeps it active', async () => {
  let node: RunningNode | undefined;
  try {
    // The edge checks the zone's credentials against its own credential store (docs/traversal.md).
    const dataDir = mkdtempSync(join(tmpdir(), 'crossway-node-'));
    seedCredentials(dataDir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
    node = await startTestNode({
      dataDir,
      traversalZones: [
        { name: 'tz1', keepaliveSeconds: 1, retryMinSeconds: 0.1, username: 'tz1-core', password: 'zone-secret' },
      ],
    });
    const core = node.sip.get('core')!;
    const edge = node.sip.get('edge')!;
    const zone = await waitFor('zone active', () => core.zones().find((z) => z.state === 'active'));
    assert.equal(zone.name, 'tz1');
    assert.equal(zone.peer, `127.0.0.1:${node.plan.port('traversal-sip:1', 'edge')}`);
    // The edge sees one inbound TLS connection on its traversal listener, from a port of the core's outbound range.
    const conns = edge.transport.connections().filter((c) => c.direction === 'inbound');
    assert.equal(conns.length, 1, JSON.stringify(conns));
    const c = conns[0]!;
    assert.equal(c.transport, 'TLS');
    assert.equal(c.local.port, node.plan.port('traversal-sip:1', 'edge'));
    assert.equal(c.remote.address, '127.0.0.2');
    assert.ok(contains(node.plan.range('outbound-sip', 'core'), c.remote.port), `source port ${c.remote.port}`);
    // Keepalives flow on the same connection.
    const probes = zone.probes;
    await waitFor('two more keepalives', () => (core.zones()[0]!.probes >= probes + 2 ? true : undefined), 5000);
    assert.equal(core.zones()[0]!.state, 'active');
    assert.equal(edge.transport.connections().filter((x) => x.direction === 'inbound').length, 1, 'one flow, reused');
  } finally {
    await node?.close();
  }
});

test('lab: a traversal zone whose edge does not answer is failed with the reason and retries', async () => {
  let node: RunningNode | undefined;
  try {
    // The zone points at a loopback address where nothing listens.
    node = await startTestNode({
      traversalZones: [{ name: 'dead', peerAddress: '127.0.0.9', retryMinSeconds: 0.1, retryMaxSeconds: 0.2 }],
    });
    const core = node.sip.get('core')!;
    const zone = await waitFor('zone failed twice', () =>
      core.zones().find((z) => z.state === 'failed' && z.failures >= 2),
    );
    assert.match(zone.lastError ?? '', /transport|refused|ECONNREFUSED/i);
  } finally {
    await node?.close();
  }
});
