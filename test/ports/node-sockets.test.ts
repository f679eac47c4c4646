/**
 * A real node, started with a port offset, opens what its plan says and nothing else: the sockets the kernel reports
 * for this process (`ss -lntupH`) and the node's own inventory are compared with `computePortPlan`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, describe, it } from 'node:test';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import { compareInventory, type InventoryReport, type NodeSides, parseSs } from '../../src/ports/index.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';

function hasSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function describeReport(r: InventoryReport): string {
  return JSON.stringify(
    {
      missing: r.missing.map(
        (m) => `${m.listener.node}:${m.listener.id}:${m.listener.transport}:${m.address}:${m.port}`,
      ),
      unexpected: r.unexpected,
    },
    null,
    2,
  );
}

/**
 * Listeners the plan has and the node does not open yet, each with the issue that will open it. A listener not in
 * this list must be open; one in it may be (then take it out of the list).
 */
const PENDING: Record<string, string> = {};

const skip = hasSs() ? false : 'ss (iproute2) is not installed: cannot list the sockets of the process';

describe('a running node opens exactly its port plan', { skip }, () => {
  const nodes: RunningNode[] = [];
  let pki: TlsFixtures | undefined;
  after(async () => {
    for (const n of nodes) await n.close();
    pki?.cleanup();
  });
  // an edge (not a lab) needs a certificate of its own
  const tls = () => {
    pki ??= createTlsFixtures({ extraIps: ['127.0.0.3', '127.0.0.4'] });
    return { certificate: pki.server.certPath, privateKey: pki.server.keyPath, caCertificates: pki.ca.certPath };
  };

  const cases: [string, CrosswayConfigInput | (() => CrosswayConfigInput)][] = [
    ['lab defaults', {}],
    [
      'lab, SIP UDP and TCP on for the edge too, one traversal zone',
      {
        sip: { transports: { udp: { enabled: true }, tcp: { enabled: true } } },
        traversalZones: [{ name: 'to-core' }],
      },
    ],
    [
      'lab, H.323 on with two traversal zones (zone RAS), TURN, SNMP',
      {
        traversalZones: [{ name: 'one' }, { name: 'two' }],
        h323: { enabled: true },
        turn: { enabled: true, sharedSecret: 'node-sockets-secret' },
        management: { snmp: true },
      },
    ],
    [
      'lab, size large: TURN 3478-3483 and the demux ports 36000-36011, H.323 and one zone',
      {
        size: 'large',
        traversalZones: [{ name: 'one' }],
        h323: { enabled: true },
        turn: { enabled: true, sharedSecret: 'node-sockets-secret' },
      },
    ],
    [
      'edge with a public and a private address: each listener on its side only',
      () => ({
        role: 'edge',
        tls: tls(),
        network: { address: '127.0.0.3', publicAddress: '127.0.0.4' },
        sip: { transports: { udp: { enabled: true }, tcp: { enabled: true } } },
        traversalZones: [{ name: 'one' }, { name: 'two' }],
        h323: { enabled: true },
        turn: { enabled: true, sharedSecret: 'node-sockets-secret' },
        management: { snmp: true },
      }),
    ],
  ];

  for (const [name, input] of cases) {
    it(name, async (t) => {
      const node = await startTestNode(typeof input === 'function' ? input() : input);
      nodes.push(node);
      assert.ok(node.plan.portOffset !== 0, 'runs with a port offset');
      const sides: Partial<Record<'edge' | 'core', NodeSides>> = Object.fromEntries(node.addresses);

      // What the kernel says this process has open.
      const seen = parseSs(execFileSync('ss', ['-lntupH'], { encoding: 'utf8' }), process.pid);
      const fromKernel = compareInventory(node.plan, seen, sides);
      const pending = fromKernel.missing.filter((m) => PENDING[m.listener.id]);
      for (const m of pending)
        t.diagnostic(`not open yet: ${m.listener.node} ${m.listener.id} ${m.port} — ${PENDING[m.listener.id]}`);
      assert.deepEqual(
        fromKernel.missing.filter((m) => !PENDING[m.listener.id]),
        [],
        describeReport(fromKernel),
      );
      assert.deepEqual(fromKernel.unexpected, [], describeReport(fromKernel));
      assert.ok(fromKernel.matched >= node.plan.listeners.length - pending.length);

      // The node's own inventory says the same.
      const own = node.sockets().map((s) => ({
        transport: s.protocol === 'udp' ? ('udp' as const) : ('tcp' as const),
        address: s.address,
        port: s.port,
      }));
      const fromNode = compareInventory(node.plan, own, sides);
      assert.deepEqual(
        fromNode.missing.filter((m) => !PENDING[m.listener.id]),
        [],
        describeReport(fromNode),
      );
      assert.deepEqual(fromNode.unexpected, [], describeReport(fromNode));

      // And the plan really moved with the offset.
      const tls = node.plan.port('sip-tls', 'edge');
      assert.equal(tls, 5061 + node.plan.portOffset);
      assert.ok(seen.some((s) => s.transport === 'tcp' && s.port === tls && s.address === sides.edge?.public));
      await node.close();
      const after = parseSs(execFileSync('ss', ['-lntupH'], { encoding: 'utf8' }), process.pid);
      assert.ok(!after.some((s) => s.port === tls), 'closed node leaves its TLS port');
    });
  }
});
