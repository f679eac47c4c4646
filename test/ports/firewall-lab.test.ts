/**
 * The generated nftables rulesets on real firewalls: a network-namespace lab (outside host, outside firewall, edge
 * in the DMZ, inside firewall, core inside) whose routers load `renderNftables(plan, 'outside-firewall' |
 * 'inside-firewall')` (and the hosts their host rulesets) as `nft -f` reads it. Small echo programs listen on the
 * plan's ports here, to test the rulesets themselves (every size and feature, the mux ports, what stays closed);
 * `node-lab.test.ts` runs the same proof with the nodes themselves (`crossway start` as edge and core).
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { defaultConfig } from '../../src/config/load.ts';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import {
  type AddressBook,
  computePortPlan,
  NFT_TARGETS,
  type PortPlan,
  renderAllNftables,
  renderNftables,
} from '../../src/ports/index.ts';
import {
  LAB_ADDRESSES as A,
  createNetLab,
  type LabListener,
  type NetLab,
  netLabRequired,
  underCi,
} from '../helpers/netlab.ts';

// skipped loudly where the lab cannot run; under CI that fails instead
const skip = netLabRequired('firewall-lab.test.ts');

const LAB_CONFIG: CrosswayConfigInput = {
  role: 'lab',
  traversalZones: [{ name: 'to-core' }],
  h323: { enabled: true },
  turn: { enabled: true },
};
const BOOK: AddressBook = { edge_public: [A.edgePublic], edge_private: [A.edgePrivate], core: [A.inside] };

describe('generated rulesets load with nft -f', { skip }, () => {
  let lab: NetLab;
  before(async () => {
    lab = await createNetLab();
  });
  after(async () => {
    await lab?.close();
  });

  for (const size of ['small', 'medium', 'large'] as const) {
    it(`every target, size ${size}, all features, twice (reload replaces the table)`, async () => {
      const plan = computePortPlan(
        defaultConfig({
          ...LAB_CONFIG,
          size,
          traversalZones: [{ name: 'a' }, { name: 'b' }],
          sip: { transports: { udp: { enabled: true }, tcp: { enabled: true } } },
          management: { snmp: true, plainHttp: true, exposePublic: true },
          ldap: { servers: [{ url: 'ldap://10.9.0.1' }, { url: 'ldaps://[2001:db8::1]' }] },
          feedback: { subscribers: [{ url: 'https://10.9.0.2/' }] },
          turn: { enabled: true, additionalRelayAddress: '2001:db8::20' },
          routing: {
            zones: [
              { name: 'sip-tls', type: 'neighbor', address: '10.9.0.3', transport: 'tls' },
              { name: 'sip-udp', type: 'neighbor', address: '10.9.0.4', transport: 'udp' },
              { name: 'gk', type: 'neighbor', protocol: 'h323', address: '10.9.0.5' },
            ],
          },
        }),
      );
      assert.ok(plan.flows.some((f) => f.to.peer === 'outside-neighbour'));
      for (const target of NFT_TARGETS) {
        const rules = renderNftables(plan, target, BOOK);
        await lab.loadRuleset('fwOut', rules);
        await lab.loadRuleset('fwOut', rules);
        const listed = await lab.ruleset('fwOut');
        const comments = rules.match(/ accept comment "/g)?.length ?? 0;
        assert.ok(comments > 5, `${target}: ${comments} rules`);
        assert.match(listed, /policy drop/);
        assert.match(listed, /10\.77\.2\.2/);
        // the relays on turn.additionalRelayAddress face the outside: matched by that address, IPv6 only
        if (target === 'edge-host' || target === 'outside-firewall') {
          assert.match(listed, /ip6 daddr 2001:db8::20 udp sport 1024-65535 udp dport \d+-\d+ ct state new accept/);
        }
      }
      // The all-in-one output loads too (four tables side by side).
      await lab.loadRuleset('fwOut', renderAllNftables(plan, BOOK));
      await lab.exec('fwOut', 'nft', ['flush', 'ruleset']);
    });
  }
});

describe('a lab that cannot run: skipped loudly, failed under CI', () => {
  // a fixture file that needs the lab, run with an `nft` that fails first on PATH, with and without CI set
  const run = (ci: boolean) => {
    const bin = mkdtempSync(join(tmpdir(), 'crossway-nonft-'));
    writeFileSync(join(bin, 'nft'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
    delete env.CI;
    delete env.NODE_TEST_CONTEXT; // a run of its own, not a child of this one
    if (ci) env.CI = 'true';
    const fixture = fileURLToPath(new URL('./fixtures/netlab-required.ts', import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', fixture], {
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    rmSync(bin, { recursive: true, force: true });
    return r;
  };

  it('without CI: every lab test is skipped, with the reason on stderr, and the run passes', () => {
    const r = run(false);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // the file's stderr comes back as diagnostics in the runner's output
    assert.match(r.stdout + r.stderr, /\*\*\* netlab-required fixture: SKIPPED LOUDLY: nft is not installed/);
    assert.match(r.stdout, /# SKIP SKIPPED LOUDLY: nft is not installed[\s\S]*# SKIP SKIPPED LOUDLY/);
    assert.match(r.stdout, /# pass 0\n# fail 0\n/);
  });

  it('with CI set: the run fails and says why', () => {
    const r = run(true);
    assert.notEqual(r.status, 0, r.stdout + r.stderr);
    assert.match(
      r.stdout,
      /CI is set and netlab-required fixture cannot run its network-namespace lab: nft is not installed/,
    );
    assert.match(r.stdout, /# pass 0\n# fail 1\n/);
  });

  it('underCi reads CI as CI systems set it', () => {
    assert.equal(underCi({ CI: 'true' }), true);
    assert.equal(underCi({ CI: '1' }), true);
    assert.equal(underCi({}), false);
    assert.equal(underCi({ CI: '' }), false);
    assert.equal(underCi({ CI: 'false' }), false);
    assert.equal(underCi({ CI: '0' }), false);
  });
});

describe('network-namespace lab helper cleans up', { skip }, () => {
  const names = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

  it('close() deletes every namespace of the lab', async () => {
    const lab = await createNetLab();
    const ns = Object.values(lab.ns);
    assert.ok(ns.every((n) => names().includes(n)));
    await lab.close();
    assert.ok(lab.closed);
    assert.deepEqual(
      ns.filter((n) => names().includes(n)),
      [],
    );
  });

  it('a process that dies without close() leaves no namespace behind', async () => {
    const helper = new URL('../helpers/netlab.ts', import.meta.url).href;
    const script = `import(${JSON.stringify(helper)}).then(async (m) => { const l = await m.createNetLab(); process.stdout.write(l.id); process.exit(3); });`;
    const id = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', '-e', script], { timeout: 60_000 }, (err, stdout) => {
        if (err && (err as { code?: unknown }).code !== 3) reject(err);
        else resolve(stdout.trim());
      });
    });
    assert.match(id, /^cwlab\d+x/);
    assert.ok(!names().includes(id), `namespaces of ${id} left behind`);
  });
});

describe('network-namespace lab: the firewalls enforce the plan', { skip }, () => {
  let lab: NetLab;
  let plan: PortPlan;
  let edge: LabListener;
  const closers: (() => Promise<void>)[] = [];

  before(async () => {
    lab = await createNetLab();
    plan = computePortPlan(defaultConfig(LAB_CONFIG));
  });
  after(async () => {
    for (const c of closers) await c();
    await lab?.close();
  });

  it('without firewalls every path is open (control)', async () => {
    const core = await lab.listen('inside', 'tcp', A.inside, [plan.port('sip-tls', 'core')]);
    closers.push(core.close);
    edge = await lab.listen('edge', 'tcp', '0.0.0.0', [plan.port('traversal-sip:1', 'edge'), 9999]);
    closers.push(edge.close);
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.inside, port: 5061 }), 'answered');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePublic, port: 9999 }), 'answered');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePrivate, port: 7001 }), 'answered');
    assert.equal(
      await lab.probe('inside', { proto: 'tcp', host: A.edgePrivate, port: 7001, localPort: 40001 }),
      'answered',
    );
  });

  it('with the generated firewall rulesets loaded', async () => {
    await lab.loadRuleset('fwOut', renderNftables(plan, 'outside-firewall', BOOK));
    await lab.loadRuleset('fwIn', renderNftables(plan, 'inside-firewall', BOOK));

    const traversal = plan.port('traversal-sip:1', 'edge');
    assert.equal(traversal, 7001);
    const out = plan.range('outbound-sip', 'core');
    const tls = await lab.listen('edge', 'tcp', '0.0.0.0', [plan.port('sip-tls', 'edge')]);
    closers.push(tls.close);
    const mux = await lab.listen('edge', 'udp', '0.0.0.0', plan.muxPorts('edge')!.rtp);
    closers.push(mux.close);

    // The core reaches edge:7001 from its outbound range …
    const src = out.from + 17;
    assert.equal(
      await lab.probe('inside', {
        proto: 'tcp',
        host: A.edgePrivate,
        port: traversal,
        localAddress: A.inside,
        localPort: src,
      }),
      'answered',
    );
    // The listener reports on its stdout, read asynchronously: give it a moment.
    for (let i = 0; i < 100 && !edge.seen.includes(`${A.inside}:${src}`); i++) await sleep(20);
    assert.ok(edge.seen.includes(`${A.inside}:${src}`), `edge saw ${edge.seen.join(', ')}`);
    // … and not from a port outside it.
    assert.equal(
      await lab.probe('inside', { proto: 'tcp', host: A.edgePrivate, port: traversal, localPort: out.to + 10_001 }),
      'timeout',
    );
    // Traversal media: the core sends first from its media range to the demux port.
    const media = plan.range('media', 'core');
    assert.equal(
      await lab.probe('inside', { proto: 'udp', host: A.edgePrivate, port: 36000, localPort: media.from + 2 }),
      'answered',
    );
    // … but not the edge's private media range: H.323 traversal media is not opened yet (docs/ports.md), and SIP's
    // goes to the demux ports only.
    const rtp = await lab.listen('edge', 'udp', A.edgePrivate, [media.from + 100]);
    closers.push(rtp.close);
    assert.equal(
      await lab.probe('inside', {
        proto: 'udp',
        host: A.edgePrivate,
        port: media.from + 100,
        localPort: media.from + 4,
      }),
      'timeout',
    );
    // The internet reaches the edge's public SIP TLS port …
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePublic, port: 5061 }), 'answered');
    // … but not a port the plan does not have, nor the private-side traversal port, nor the core.
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePublic, port: 9999 }), 'timeout');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePublic, port: traversal }), 'timeout');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.edgePrivate, port: traversal }), 'timeout');
    assert.equal(await lab.probe('outside', { proto: 'tcp', host: A.inside, port: 5061 }), 'timeout');
    // The edge, compromised or not, cannot open the inside either.
    assert.equal(await lab.probe('edge', { proto: 'tcp', host: A.inside, port: 5061 }), 'timeout');

    const fwIn = await lab.ruleset('fwIn');
    assert.match(
      fwIn,
      /tcp sport 25000-29999 tcp dport 7001 ct state new .*accept comment "SIP: SIP signaling, core→edge/,
    );
  });

  it('with the node host rulesets loaded as well, the planned flow still passes', async () => {
    await lab.loadRuleset('edge', renderNftables(plan, 'edge-host', BOOK));
    await lab.loadRuleset('inside', renderNftables(plan, 'core-host', BOOK));
    const out = plan.range('outbound-sip', 'core');
    assert.equal(
      await lab.probe('inside', { proto: 'tcp', host: A.edgePrivate, port: 7001, localPort: out.to - 3 }),
      'answered',
    );
    // The core host's own output chain refuses what the plan does not have.
    assert.equal(
      await lab.probe('inside', { proto: 'tcp', host: A.edgePrivate, port: 9999, localPort: out.from }),
      'timeout',
    );
  });
});
