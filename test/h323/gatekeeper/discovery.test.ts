import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { systemClock } from '../../../src/common/timers.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { aliasFromText, fromH225Address, H225_PROTOCOL_ID, h225Address, type IpPort } from '../../../src/h323/api.ts';
import {
  answerDiscovery,
  DISCOVERY_GROUP,
  type DiscoveryCounters,
  DiscoveryServer,
} from '../../../src/h323/gatekeeper/discovery.ts';
import { Gatekeeper, type GatekeeperOptions } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { RasServer } from '../../../src/h323/gatekeeper/ras-server.ts';
import type { RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { compareInventory, computePortPlan, parseSs, renderNftables } from '../../../src/ports/index.ts';
import { startTestNode, uniqueOffset } from '../../helpers/lab-node.ts';

/**
 * Multicast gatekeeper discovery (H.225.0 §7.2.1): a GRQ sent to 224.0.1.41:1718 is answered with a GCF carrying
 * the gatekeeperIdentifier and the RAS address to use, unicast to the GRQ's rasAddress and from the RAS socket.
 * Multicast runs over the loopback interface (the group is joined on a loopback address).
 */

const options = (over: Partial<GatekeeperOptions> = {}): GatekeeperOptions => ({
  gatekeeperIdentifier: 'crossway-test',
  rasAddress: { ip: '192.0.2.1', port: 1719 },
  callSignalAddress: { ip: '192.0.2.1', port: 1720 },
  timeToLive: 60,
  expiryGraceSeconds: 5,
  maxRegistrations: 100,
  policy: { mode: 'allow-all', patterns: [] },
  allowDialledIp: false,
  maxBandwidthPerCall: 20_000,
  ...over,
});

const grq = (rasAddress: IpPort, over: Record<string, unknown> = {}): RasMessage => ({
  choice: 'gatekeeperRequest',
  value: {
    requestSeqNum: 7,
    protocolIdentifier: H225_PROTOCOL_ID,
    rasAddress: h225Address(rasAddress.ip, rasAddress.port),
    endpointType: { terminal: {}, mc: false, undefinedNode: false },
    ...over,
  },
});

const counters = (): DiscoveryCounters => ({ grq: 0, gcf: 0, grj: 0, notForUs: 0, ignored: 0 });

describe('multicast gatekeeper discovery (sans-I/O)', () => {
  const from: IpPort = { ip: '198.51.100.7', port: 40_000 };
  const ras: IpPort = { ip: '198.51.100.7', port: 1719 };

  it("a GRQ on the group is answered with GCF (gatekeeperIdentifier, RAS address) sent to the GRQ's rasAddress", () => {
    const gk = new Gatekeeper(options(), systemClock);
    const c = counters();
    const out = answerDiscovery(gk, rasCodec.encode(grq(ras)), from, c);
    assert.ok(out);
    assert.deepEqual(out.to, ras, 'to the rasAddress, not the source of the datagram');
    assert.equal(out.message.choice, 'gatekeeperConfirm');
    assert.ok(out.message.choice === 'gatekeeperConfirm');
    assert.equal(out.message.value.gatekeeperIdentifier, 'crossway-test');
    assert.deepEqual(fromH225Address(out.message.value.rasAddress), { ip: '192.0.2.1', port: 1719 });
    assert.equal(out.message.value.requestSeqNum, 7);
    assert.deepEqual(rasCodec.decode(out.bytes), { ok: true, value: out.message });
    assert.deepEqual(c, { grq: 1, gcf: 1, grj: 0, notForUs: 0, ignored: 0 });
  });

  it('a GRQ naming another gatekeeper is left unanswered (no GRJ terminalExcluded on a shared group)', () => {
    const gk = new Gatekeeper(options(), systemClock);
    const c = counters();
    assert.equal(
      answerDiscovery(gk, rasCodec.encode(grq(ras, { gatekeeperIdentifier: 'other-gk' })), from, c),
      undefined,
    );
    assert.equal(c.notForUs, 1);
  });

  it('aliases the registration policy refuses get GRJ securityDenial, also at the rasAddress', () => {
    const gk = new Gatekeeper(options({ policy: { mode: 'allow-list', patterns: ['2*'] } }), systemClock);
    const c = counters();
    const out = answerDiscovery(gk, rasCodec.encode(grq(ras, { endpointAlias: [aliasFromText('alice')] })), from, c);
    assert.ok(out && out.message.choice === 'gatekeeperReject');
    assert.equal(out.message.value.rejectReason.choice, 'securityDenial');
    assert.deepEqual(out.to, ras);
    assert.equal(c.grj, 1);
  });

  it('other RAS messages and malformed datagrams on the group are ignored (malformed counted by the gatekeeper)', () => {
    const gk = new Gatekeeper(options(), systemClock);
    const c = counters();
    const rrq: RasMessage = {
      choice: 'registrationRequest',
      value: {
        requestSeqNum: 2,
        protocolIdentifier: H225_PROTOCOL_ID,
        discoveryComplete: true,
        callSignalAddress: [h225Address('198.51.100.7', 1720)],
        rasAddress: [h225Address(ras.ip, ras.port)],
        terminalType: { terminal: {}, mc: false, undefinedNode: false },
        terminalAlias: [aliasFromText('alice')],
        endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      },
    };
    assert.equal(answerDiscovery(gk, rasCodec.encode(rrq), from, c), undefined);
    assert.equal(gk.size, 0, 'nobody registers through the discovery group');
    assert.equal(answerDiscovery(gk, Uint8Array.of(0xff, 0x00, 0x13), from, c), undefined);
    assert.equal(answerDiscovery(gk, new Uint8Array(5000), from, c), undefined);
    assert.equal(c.ignored, 3);
    assert.equal(gk.counters.malformed, 2);
  });
});

describe('multicast gatekeeper discovery over loopback', () => {
  const closers: Array<() => unknown> = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('a GRQ multicast to 224.0.1.41 gets a GCF from the RAS socket, sent to the GRQ rasAddress', async () => {
    const gk = new Gatekeeper(options({ rasAddress: { ip: '127.0.0.1', port: 0 } }), systemClock);
    const ras = await RasServer.start(gk, '127.0.0.1', 0);
    closers.push(() => ras.close());
    gk.setAddresses({ rasAddress: ras.address() });
    const port = 21_000 + Math.floor(Math.random() * 3000);
    const discovery = await DiscoveryServer.start(gk, { port, interfaceAddress: '127.0.0.1' });
    closers.push(() => discovery.close());
    assert.deepEqual(discovery.address(), { ip: DISCOVERY_GROUP, port });

    // the endpoint sends from one socket and receives RAS on another (its rasAddress)
    const sender = dgram.createSocket('udp4');
    const receiver = dgram.createSocket('udp4');
    closers.push(() => sender.close());
    closers.push(() => receiver.close());
    await new Promise<void>((r) => sender.bind(0, '127.0.0.9', () => r()));
    await new Promise<void>((r) => receiver.bind(0, '127.0.0.9', () => r()));
    sender.setMulticastInterface('127.0.0.9');
    sender.setMulticastLoopback(true);
    const rasAddress = { ip: '127.0.0.9', port: receiver.address().port };
    const got = new Promise<{ m: RasMessage; from: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no GCF; discovery ${JSON.stringify(discovery.counters)}`)), 3000);
      receiver.once('message', (b, r) => {
        clearTimeout(t);
        const d = rasCodec.decode(b);
        if (d.ok) resolve({ m: d.value, from: `${r.address}:${r.port}` });
        else reject(new Error(d.reason.message));
      });
    });
    sender.send(rasCodec.encode(grq(rasAddress)), port, DISCOVERY_GROUP);
    const { m, from } = await got;
    assert.ok(m.choice === 'gatekeeperConfirm');
    assert.equal(m.value.gatekeeperIdentifier, 'crossway-test');
    assert.deepEqual(fromH225Address(m.value.rasAddress), ras.address(), 'the RAS address to use');
    assert.equal(from, `127.0.0.1:${ras.address().port}`, 'sent from the RAS socket');
    assert.deepEqual(discovery.counters, { grq: 1, gcf: 1, grj: 0, notForUs: 0, ignored: 0 });
  });
});

describe('multicast gatekeeper discovery in the port plan', () => {
  it('off by default (1718 is not in the seed table); when enabled each node has a 1718/udp listener on the group and the firewall rules follow', () => {
    const off = computePortPlan(validateConfig({ role: 'lab', h323: { enabled: true } }));
    assert.ok(off.nodes.every((n) => !n.listener('h323-ras-discovery')));
    const cfg = validateConfig({ role: 'lab', h323: { enabled: true, gatekeeper: { multicastDiscovery: true } } });
    const plan = computePortPlan(cfg);
    for (const n of plan.nodes) {
      const l = n.listener('h323-ras-discovery');
      assert.ok(l, `${n.node} listens for discovery`);
      assert.equal(l.transport, 'udp');
      assert.equal(l.group, DISCOVERY_GROUP);
      assert.deepEqual(l.ports, { from: 1718, to: 1718, step: 1 });
      assert.equal(l.side, n.node === 'edge' ? 'public' : 'private');
    }
    const flows = plan.flows.filter((f) => f.listener === 'h323-ras-discovery');
    assert.deepEqual(
      flows.map((f) => [f.from.peer, f.to.peer, f.to.group]),
      [
        ['internet', 'edge', DISCOVERY_GROUP],
        ['inside-endpoint', 'core', DISCOVERY_GROUP],
      ],
    );
    const nft = renderNftables(plan, 'edge-host');
    assert.match(nft, /ip daddr 224\.0\.1\.41 udp sport 1024-65535 udp dport 1718 ct state new/);
  });

  it('a lab node with multicastDiscovery answers a multicast GRQ on 1718 + offset; its sockets match the plan', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-disc-'));
    const portOffset = uniqueOffset();
    const node = await startTestNode({
      dataDir,
      portOffset,
      h323: { enabled: true, gatekeeper: { multicastDiscovery: true } },
    });
    const sock = dgram.createSocket('udp4');
    try {
      const disc = node.sockets().filter((s) => s.listener === 'h323-ras-discovery');
      assert.deepEqual(
        disc.map((s) => [s.node, s.protocol, s.address, s.port]),
        [
          ['edge', 'udp', DISCOVERY_GROUP, 1718 + portOffset],
          ['core', 'udp', DISCOVERY_GROUP, 1718 + portOffset],
        ],
      );
      // the kernel's view (ss) and the node's own both match the plan's discovery listeners
      const sides = Object.fromEntries(node.addresses);
      const own = node.sockets().map((s) => ({
        transport: s.protocol === 'udp' ? ('udp' as const) : ('tcp' as const),
        address: s.address,
        port: s.port,
      }));
      const kernel = parseSs(execFileSync('ss', ['-lntupH'], { encoding: 'utf8' }), process.pid);
      for (const report of [compareInventory(node.plan, own, sides), compareInventory(node.plan, kernel, sides)]) {
        assert.deepEqual(
          report.missing.filter((m) => m.listener.id === 'h323-ras-discovery'),
          [],
        );
        assert.deepEqual(
          report.unexpected.filter((s) => s.port === 1718 + portOffset),
          [],
        );
      }
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
      sock.setMulticastInterface('127.0.0.1');
      const me = sock.address().port;
      const answers: RasMessage[] = [];
      sock.on('message', (b) => {
        const d = rasCodec.decode(b);
        if (d.ok) answers.push(d.value);
      });
      sock.send(rasCodec.encode(grq({ ip: '127.0.0.1', port: me })), 1718 + portOffset, DISCOVERY_GROUP);
      const start = Date.now();
      while (answers.length < 2 && Date.now() - start < 3000) await new Promise((r) => setTimeout(r, 25));
      // both gatekeepers of the lab (edge, core) are on the loopback segment and both answer
      assert.deepEqual(
        answers.map((a) => a.choice),
        ['gatekeeperConfirm', 'gatekeeperConfirm'],
      );
      const rasPorts = answers.map((a) =>
        a.choice === 'gatekeeperConfirm' ? fromH225Address(a.value.rasAddress) : undefined,
      );
      assert.deepEqual(
        rasPorts.map((r) => r?.port),
        [1719 + portOffset, 1719 + portOffset],
      );
      assert.deepEqual(new Set(rasPorts.map((r) => r?.ip)), new Set(['127.0.0.1', '127.0.0.2']));
    } finally {
      sock.close();
      await node.close();
    }
  });
});
