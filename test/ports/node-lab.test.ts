/**
 * The nodes themselves behind the generated firewalls: a real edge node (`crossway start`, role edge, two
 * interfaces) in the lab's DMZ and a real core node inside. The firewall rulesets are rendered from the nodes' own
 * configurations. The core's own traversal-zone client, restarted behind the firewalls, reaches the edge's traversal
 * listener on 7001 from its outbound range and the zone becomes active. TLS probes show the edge answers SIP there
 * from the core's outbound range and that the same from another source port, from the outside, or to the core is
 * dropped.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { validateConfig } from '../../src/config/load.ts';
import type { CrosswayConfig, CrosswayConfigInput } from '../../src/config/schema.ts';
import { type AddressBook, addressesFromConfig, computePortPlan, renderNftables } from '../../src/ports/index.ts';
import { LAB_ADDRESSES as A, createNetLab, type NetLab, netLabRequired } from '../helpers/netlab.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';

// skipped loudly where the lab cannot run; under CI that fails instead
const skip = netLabRequired('node-lab.test.ts');

function options(n: number, via: string, tag: string): string {
  return [
    `OPTIONS sip:${via} SIP/2.0`,
    `Via: SIP/2.0/TLS probe.invalid;branch=z9hG4bK-${tag}-${n}`,
    'Max-Forwards: 70',
    `From: <sip:probe@lab.invalid>;tag=${tag}${n}`,
    `To: <sip:${via}>`,
    `Call-ID: ${tag}-${n}@lab.invalid`,
    `CSeq: ${n} OPTIONS`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function book(...books: AddressBook[]): AddressBook {
  const out: Record<string, string[]> = {};
  for (const b of books) {
    for (const [k, v] of Object.entries(b)) out[k] = [...new Set([...(out[k] ?? []), ...(v ?? [])])];
  }
  return out;
}

describe('real nodes in the network-namespace lab', { skip }, () => {
  let lab: NetLab;
  let pki: TlsFixtures;
  let dir: string;
  let edgeCfg: Readonly<CrosswayConfig>;
  let coreCfg: Readonly<CrosswayConfig>;
  const files: Record<'edge' | 'core', string> = { edge: '', core: '' };

  before(async () => {
    lab = await createNetLab();
    pki = createTlsFixtures({ extraIps: [A.edgePublic, A.edgePrivate, A.inside] });
    dir = mkdtempSync(join(tmpdir(), 'crossway-node-lab-'));
    const tls = { certificate: pki.server.certPath, privateKey: pki.server.keyPath, caCertificates: pki.ca.certPath };
    const edge: CrosswayConfigInput = {
      role: 'edge',
      name: 'edge',
      dataDir: join(dir, 'edge'),
      network: { address: A.edgePrivate, publicAddress: A.edgePublic },
      traversalZones: [{ name: 'to-core' }],
      tls,
    };
    const core: CrosswayConfigInput = {
      role: 'core',
      name: 'core',
      dataDir: join(dir, 'core'),
      network: { address: A.inside },
      traversalZones: [{ name: 'to-edge', peerAddress: A.edgePrivate }],
      tls,
    };
    edgeCfg = validateConfig(edge);
    coreCfg = validateConfig(core);
    for (const [k, v] of [
      ['edge', edge],
      ['core', core],
    ] as const) {
      files[k] = join(dir, `${k}.json`);
      writeFileSync(files[k], JSON.stringify(v));
    }
  });
  after(async () => {
    await lab?.close();
    pki?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let coreNode: Awaited<ReturnType<NetLab['startCrossway']>> | undefined;

  it('the nodes start in their namespaces and listen where their plans say', async () => {
    const edge = await lab.startCrossway('edge', files.edge);
    const core = await lab.startCrossway('inside', files.core);
    coreNode = core;
    const where = (r: Record<string, unknown>) =>
      (r.sockets as { listener: string; address: string; port: number }[]).map(
        (s) => `${s.listener}@${s.address}:${s.port}`,
      );
    assert.ok(where(edge.ready).includes(`traversal-sip:1@${A.edgePrivate}:7001`), where(edge.ready).join());
    assert.ok(where(edge.ready).includes(`sip-tls@${A.edgePublic}:5061`), where(edge.ready).join());
    assert.ok(where(core.ready).includes(`sip-tls@${A.inside}:5061`), where(core.ready).join());
  });

  it('without firewalls: control', async () => {
    const sip = (n: number) => ({ send: options(n, 'edge', 'ctl'), expect: 'SIP/2.0 ' });
    assert.equal(await lab.probe('outside', { proto: 'tls', host: A.edgePrivate, port: 7001, ...sip(1) }), 'answered');
    assert.equal(await lab.probe('outside', { proto: 'tls', host: A.inside, port: 5061, ...sip(2) }), 'answered');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePublic, port: 9999 }), 'refused');
  });

  it('with the firewalls rendered from the nodes’ configurations', async () => {
    const edgePlan = computePortPlan(edgeCfg);
    const corePlan = computePortPlan(coreCfg);
    const addresses = book(addressesFromConfig(edgeCfg), addressesFromConfig(coreCfg));
    assert.deepEqual(addresses.core, [A.inside]);
    assert.deepEqual(addresses.edge_private, [A.edgePrivate]);
    await lab.loadRuleset('fwOut', renderNftables(edgePlan, 'outside-firewall', addresses));
    await lab.loadRuleset('fwIn', renderNftables(corePlan, 'inside-firewall', addresses));

    const out = corePlan.range('outbound-sip');
    const sip = (n: number) => ({ send: options(n, 'edge', 'fw'), expect: 'SIP/2.0 ' });
    // The core's side: from its outbound range to the edge's traversal listener, a SIP answer from the edge node.
    assert.equal(
      await lab.probe('inside', {
        proto: 'tls',
        host: A.edgePrivate,
        port: corePlan.flows.find((f) => f.listener === 'traversal-sip:1')!.to.ports.from,
        localAddress: A.inside,
        localPort: out.from + 101,
        ...sip(1),
      }),
      'answered',
    );
    // Another source port is dropped by the inside firewall.
    assert.equal(
      await lab.probe('inside', {
        proto: 'tls',
        host: A.edgePrivate,
        port: 7001,
        localPort: out.to + 10_000,
        ...sip(2),
      }),
      'timeout',
    );
    // The internet reaches the edge's public TLS listener …
    assert.equal(await lab.probe('outside', { proto: 'tls', host: A.edgePublic, port: 5061, ...sip(3) }), 'answered');
    // … not its traversal listener, not a port outside the plan (refused before, dropped now), not the core.
    assert.equal(await lab.probe('outside', { proto: 'tls', host: A.edgePrivate, port: 7001, ...sip(4) }), 'timeout');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePublic, port: 9999 }), 'timeout');
    assert.equal(await lab.probe('outside', { proto: 'tls', host: A.inside, port: 5061, ...sip(5) }), 'timeout');
  });

  it('the core node itself opens its traversal zone through the firewalls from its outbound range', async () => {
    // Restart the core behind the loaded firewalls: its new connection must pass the inside firewall.
    await coreNode?.stop();
    const core = await lab.startCrossway('inside', files.core);
    const deadline = Date.now() + 20_000;
    while (!core.log().includes('"msg":"traversal zone active"')) {
      if (Date.now() > deadline) assert.fail(`zone never active:\n${core.log().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const port = computePortPlan(coreCfg).flows.find((f) => f.listener === 'traversal-sip:1')!.to.ports.from;
    const ss = await lab.exec('edge', 'ss', ['-tnH', 'state', 'established', `( sport = :${port} )`]);
    const peers = ss.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.trim().split(/\s+/).pop()!);
    const out = computePortPlan(coreCfg).range('outbound-sip');
    const fromCore = peers.filter((p) => p.startsWith(`${A.inside}:`));
    // The first core's flow may linger on the edge until its idle timeout: every flow must come from the range.
    assert.ok(fromCore.length >= 1, `edge's established connections on ${port}: ${ss.stdout}`);
    for (const p of fromCore) {
      const srcPort = Number(p.split(':').pop());
      assert.ok(srcPort >= out.from && srcPort <= out.to, `the core connected from ${srcPort}`);
    }
    await core.stop();
  });

  it('the host rulesets alone, on the nodes themselves: the zone comes up, the rest is dropped by the hosts', async () => {
    // Routers open; each node's own ruleset (input and output, default deny) is all that filters.
    await lab.exec('fwOut', 'nft', ['flush', 'ruleset']);
    await lab.exec('fwIn', 'nft', ['flush', 'ruleset']);
    const sip = (n: number) => ({ send: options(n, 'edge', 'host'), expect: 'SIP/2.0 ' });
    // control: with the routers open, the outside reaches the edge's private traversal listener
    assert.equal(await lab.probe('outside', { proto: 'tls', host: A.edgePrivate, port: 7001, ...sip(1) }), 'answered');
    const addresses = book(addressesFromConfig(edgeCfg), addressesFromConfig(coreCfg));
    await lab.loadRuleset('edge', renderNftables(computePortPlan(edgeCfg), 'edge-host', addresses));
    await lab.loadRuleset('inside', renderNftables(computePortPlan(coreCfg), 'core-host', addresses));
    const core = await lab.startCrossway('inside', files.core);
    try {
      const deadline = Date.now() + 20_000;
      while (!core.log().includes('"msg":"traversal zone active"')) {
        if (Date.now() > deadline)
          assert.fail(`zone never active behind the host rulesets:\n${core.log().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // the edge host: 7001 only from the core, 5061 on its public side from anyone
      assert.equal(await lab.probe('outside', { proto: 'tls', host: A.edgePrivate, port: 7001, ...sip(2) }), 'timeout');
      assert.equal(await lab.probe('outside', { proto: 'tls', host: A.edgePublic, port: 5061, ...sip(3) }), 'answered');
      // the core host: its SIP listener serves inside endpoints, not the outside
      assert.equal(await lab.probe('outside', { proto: 'tls', host: A.inside, port: 5061, ...sip(4) }), 'timeout');
    } finally {
      await core.stop();
    }
  });
});
