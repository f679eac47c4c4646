import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
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

/**
 * One place for a lab with traversal zones: the edge's credential store holds each `[username, password]` of
 * `credentials` (the edge checks the zones' credentials against it, docs/traversal.md), and the core opens `zones`.
 */
async function startWithZones(
  credentials: [string, string][],
  zones: NonNullable<CrosswayConfigInput['traversalZones']>,
): Promise<RunningNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-node-'));
  seedCredentials(
    dataDir,
    'edge',
    credentials.map(([user, password]) => ['traversal', user, password]),
  );
  return startTestNode({ dataDir, traversalZones: zones });
}

test('lab: the core opens its traversal zone to the edge over TLS from its outbound range and keeps it active', async () => {
  let node: RunningNode | undefined;
  try {
    // The edge checks the zone's credentials against its own credential store (docs/traversal.md).
    node = await startWithZones(
      [['tz1-core', 'zone-secret']],
      [{ name: 'tz1', keepaliveSeconds: 1, retryMinSeconds: 0.1, username: 'tz1-core', password: 'zone-secret' }],
    );
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

test('lab: a traversal zone over TCP (transport: tcp) is plain TCP at both ends, authenticated and kept alive', async () => {
  let node: RunningNode | undefined;
  try {
    node = await startWithZones(
      [['tz1-core', 'zone-secret']],
      [
        {
          name: 'tz1',
          transport: 'tcp',
          keepaliveSeconds: 1,
          retryMinSeconds: 0.1,
          username: 'tz1-core',
          password: 'zone-secret',
        },
      ],
    );
    const core = node.sip.get('core')!;
    const edge = node.sip.get('edge')!;
    const zone = await waitFor('zone active', () => core.zones().find((z) => z.state === 'active'));
    assert.equal(zone.peer, `127.0.0.1:${node.plan.port('traversal-sip:1', 'edge')}`);
    const conns = edge.transport.connections().filter((c) => c.direction === 'inbound');
    assert.equal(conns.length, 1, JSON.stringify(conns));
    assert.equal(conns[0]!.transport, 'TCP');
    assert.equal(conns[0]!.local.port, node.plan.port('traversal-sip:1', 'edge'));
    assert.ok(contains(node.plan.range('outbound-sip', 'core'), conns[0]!.remote.port));
    const sz = await waitFor('edge zone active', () => edge.serverZones().find((z) => z.state === 'active'));
    assert.equal(sz.name, 'tz1');
    const probes = zone.probes;
    await waitFor('two more keepalives', () => (core.zones()[0]!.probes >= probes + 2 ? true : undefined), 5000);
    assert.equal(edge.transport.connections().filter((x) => x.direction === 'inbound').length, 1, 'one flow, reused');
  } finally {
    await node?.close();
  }
});

test('lab: two traversal zones (7001 and 7002 in the plan) are active at once on one edge, each on its own listener and flow', async () => {
  let node: RunningNode | undefined;
  try {
    node = await startWithZones(
      [
        ['tz1-core', 'secret-1'],
        ['tz2-core', 'secret-2'],
      ],
      [
        { name: 'tz1', keepaliveSeconds: 1, retryMinSeconds: 0.1, username: 'tz1-core', password: 'secret-1' },
        {
          name: 'tz2',
          transport: 'tcp',
          keepaliveSeconds: 1,
          retryMinSeconds: 0.1,
          username: 'tz2-core',
          password: 'secret-2',
        },
      ],
    );
    const core = node.sip.get('core')!;
    const edge = node.sip.get('edge')!;
    const p1 = node.plan.port('traversal-sip:1', 'edge');
    const p2 = node.plan.port('traversal-sip:2', 'edge');
    // The seed's 7001 and 7002, shifted by the test's port offset alike.
    assert.equal(p2, p1 + 1);
    const both = await waitFor('both zones active on the core', () => {
      const zs = core.zones();
      return zs.length === 2 && zs.every((z) => z.state === 'active') ? zs : undefined;
    });
    assert.deepEqual(
      both.map((z) => [z.name, z.peer]),
      [
        ['tz1', `127.0.0.1:${p1}`],
        ['tz2', `127.0.0.1:${p2}`],
      ],
    );
    const served = await waitFor('both zones active on the edge', () => {
      const zs = edge.serverZones();
      return zs.length === 2 && zs.every((z) => z.state === 'active') ? zs : undefined;
    });
    assert.deepEqual(served.map((z) => z.name).sort(), ['tz1', 'tz2']);
    // Two flows, one per listener, each from the core's outbound range, each with its own transport.
    const conns = edge.transport
      .connections()
      .filter((c) => c.direction === 'inbound')
      .map((c) => [c.local.port, c.transport] as const)
      .sort((a, b) => a[0] - b[0]);
    assert.deepEqual(conns, [
      [p1, 'TLS'],
      [p2, 'TCP'],
    ]);
    // Each zone's flow is its own: the edge's server zones name different peers.
    assert.notEqual(served[0]!.peer, served[1]!.peer);
  } finally {
    await node?.close();
  }
});
