/**
 * A real node, started with a port offset, opens what its plan says and nothing else: the sockets the kernel reports
 * for this process (`ss -lntupH`) and the node's own inventory are compared with `computePortPlan`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { after, describe, it } from 'node:test';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import { compareInventory, contains, type InventoryReport, type NodeSides, parseSs } from '../../src/ports/index.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { encodeFirstByteOf4 } from '../../src/stun/attributes.ts';
import { Attr, Method } from '../../src/stun/constants.ts';
import { TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';
import { StreamClient } from '../turn/stream-client.ts';

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

/** Makes the node open sockets of its pools (its client sockets listen on nothing); returns what closes them. */
type Exercise = (node: RunningNode) => Promise<() => void>;

/**
 * Two allocations on the lab edge's TURN server, each with a relay on `turn.additionalRelayAddress` (::1 beside the
 * lab's IPv4 address): a dual UDP allocation (ADDITIONAL-ADDRESS-FAMILY IPv6: relays on 127.0.0.1 and ::1) and an
 * RFC 6062 TCP allocation of family IPv6 (a TCP relay listener on ::1).
 */
async function relaysOnAdditionalAddress(node: RunningNode): Promise<() => void> {
  const port = node.plan.port('turn-udp', 'edge');
  const ipv6: [number, Buffer] = [Attr.ADDITIONAL_ADDRESS_FAMILY, encodeFirstByteOf4(2)];
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const udpSession = new TurnClientSession('alice', 'wonderland');
  const ask = async (bytes: Buffer) => {
    const answer = once(udp, 'message', { signal: AbortSignal.timeout(5000) });
    udp.send(bytes, port, '127.0.0.1');
    const [msg] = (await answer) as [Buffer];
    const a = udpSession.answer(msg);
    assert.ok(a, 'a STUN answer');
    return a;
  };
  assert.equal((await ask(udpSession.request(Method.allocate, [turnAttr.udpTransport(), ipv6]))).error, 401);
  const dual = await ask(udpSession.request(Method.allocate, [turnAttr.udpTransport(), ipv6]));
  assert.equal(dual.error, undefined, `dual Allocate: ${dual.error}`);
  assert.deepEqual(
    dual.relayed.map((r) => r.address),
    ['127.0.0.1', '::1'],
  );
  // the allocation outlives its client's socket, which ss would list among this process's sockets
  await new Promise<void>((r) => udp.close(() => r()));

  const control = net.connect({ host: '127.0.0.1', port: node.plan.port('turn-tcp', 'edge') });
  await once(control, 'connect');
  const c = new StreamClient(control);
  const tcpSession = new TurnClientSession('alice', 'wonderland');
  const tcp: [number, Buffer][] = [
    [Attr.REQUESTED_TRANSPORT, encodeFirstByteOf4(6)],
    [Attr.REQUESTED_ADDRESS_FAMILY, encodeFirstByteOf4(2)],
  ];
  assert.equal((await c.exchange(tcpSession, tcpSession.request(Method.allocate, tcp))).error, 401);
  const tcpAlloc = await c.exchange(tcpSession, tcpSession.request(Method.allocate, tcp));
  assert.equal(tcpAlloc.error, undefined, `TCP Allocate: ${tcpAlloc.error}`);
  assert.equal(tcpAlloc.relayed[0]?.address, '::1');

  // the test is about these sockets: they must really be open on ::1 in the plan's relay range
  const relay = node.plan.range('turn-relay', 'edge');
  const seen = parseSs(execFileSync('ss', ['-lntupH'], { encoding: 'utf8' }), process.pid);
  for (const transport of ['udp', 'tcp'] as const) {
    assert.ok(
      seen.some((s) => s.transport === transport && s.address === '::1' && contains(relay, s.port)),
      `a ${transport} relay on ::1 in ${relay.from}-${relay.to}`,
    );
  }
  return () => control.destroy();
}

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

  const cases: [string, CrosswayConfigInput | (() => CrosswayConfigInput), Exercise?][] = [
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
    [
      'lab, TURN with turn.additionalRelayAddress ::1: UDP and TCP relays allocated there are in the plan',
      {
        turn: {
          enabled: true,
          users: [{ username: 'alice', password: 'wonderland' }],
          additionalRelayAddress: '::1',
        },
      },
      relaysOnAdditionalAddress,
    ],
  ];

  for (const [name, input, exercise] of cases) {
    it(name, async (t) => {
      const node = await startTestNode(typeof input === 'function' ? input() : input);
      nodes.push(node);
      assert.ok(node.plan.portOffset !== 0, 'runs with a port offset');
      const sides: Partial<Record<'edge' | 'core', NodeSides>> = Object.fromEntries(node.addresses);
      const done = exercise ? await exercise(node) : undefined;
      t.after(() => done?.());

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
