import assert from 'node:assert/strict';
import type { RemoteInfo } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';
import { hdrs, type Msg, parse, seedCredentials, TestUa } from './helpers-ua.ts';

/*
 * A two-address edge (public 127.0.0.4, private 127.0.0.3) and a core (127.0.0.5) on loopback: a request the edge
 * forwards leaves from, and names in its Via and Record-Route, the listener of the side its target is reached through
 * (docs/routing.md, "Which listener a request leaves from"): down the traversal zone, the private side's traversal
 * listener the core's flow is connected to; to an outside phone, the public side. Before, the Via of a request sent
 * down the zone named the edge's public TLS listener, which the core may not reach (the inside firewall opens only
 * the traversal port on the edge's private side).
 */

const DOMAIN = 'example.com';
const EDGE_PRIVATE = '127.0.0.3';
const EDGE_PUBLIC = '127.0.0.4';
const CORE = '127.0.0.5';

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** host:port of a Via value (`SIP/2.0/UDP host:port;…`) and its transport. */
function sentBy(via: string): { transport: string; host: string; port: number } {
  const m = /^SIP\/2\.0\/(\S+)\s+([^;:\s]+):(\d+)/.exec(via.trim());
  assert.ok(m, `Via ${via}`);
  return { transport: m[1]!, host: m[2]!, port: Number(m[3]) };
}

/** The host of a Record-Route value (`<sip:[user@]host:port;…>`). */
const rrHost = (rr: string) => /<sips?:(?:[^@>]*@)?([^:;>]+)/.exec(rr)?.[1];

/** Every INVITE a test phone receives, with the address it came from (the node's sending socket). */
function inviteTap(ua: TestUa): { msg: Msg; from: RemoteInfo }[] {
  const seen: { msg: Msg; from: RemoteInfo }[] = [];
  ua.sip.on('message', (b, from) => {
    const msg = parse(b.toString());
    if (msg.method === 'INVITE') seen.push({ msg, from });
  });
  return seen;
}

describe('a two-address edge forwards each request from the side its target is on', { timeout: 60_000 }, () => {
  let pki: TlsFixtures;
  let dir: string;
  let edge: RunningNode;
  let core: RunningNode;
  const uas: TestUa[] = [];
  let alice: TestUa;
  let bob: TestUa;
  let atAlice: { msg: Msg; from: RemoteInfo }[];
  let atBob: { msg: Msg; from: RemoteInfo }[];

  before(async () => {
    pki = createTlsFixtures({ extraIps: [EDGE_PRIVATE, EDGE_PUBLIC, CORE] });
    dir = mkdtempSync(join(tmpdir(), 'crossway-two-address-'));
    seedCredentials(dir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
    seedCredentials(dir, 'core', [
      [DOMAIN, 'alice', 'alice-pw'],
      [DOMAIN, 'bob', 'bob-pw'],
    ]);
    const tls = { certificate: pki.server.certPath, privateKey: pki.server.keyPath, caCertificates: pki.ca.certPath };
    const routing = {
      zones: [{ name: 'tz1', type: 'traversal' as const }],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' as const }, targetZone: 'LocalZone' },
        { name: 'across', priority: 100, pattern: { type: 'anyAlias' as const }, targetZone: 'tz1' },
      ],
    };
    const sip = { domains: [DOMAIN], transports: { udp: { enabled: true } } };
    edge = await startTestNode({
      role: 'edge',
      dataDir: join(dir, 'edge'),
      network: { address: EDGE_PRIVATE, publicAddress: EDGE_PUBLIC },
      tls,
      sip,
      traversalZones: [{ name: 'tz1', username: 'tz1-core', domains: [DOMAIN] }],
      routing,
    });
    // Same offset as the edge: the core finds the edge's traversal port in its own plan (other addresses, no clash).
    core = await startTestNode({
      role: 'core',
      dataDir: join(dir, 'core'),
      portOffset: edge.plan.portOffset,
      network: { address: CORE },
      tls,
      sip,
      traversalZones: [
        {
          name: 'tz1',
          peerAddress: EDGE_PRIVATE,
          username: 'tz1-core',
          password: 'zone-secret',
          keepaliveSeconds: 1,
          retryMinSeconds: 0.1,
        },
      ],
      routing,
    });
    const e = edge;
    await waitFor('zone active', () => (e.sip.get('edge')!.serverZones()[0]?.state === 'active' ? true : undefined));
    // alice is outside (registers on the edge's public side, through the zone); bob is inside, on the core.
    alice = await TestUa.create('alice', DOMAIN, '127.0.0.6');
    bob = await TestUa.create('bob', DOMAIN, '127.0.0.7');
    uas.push(alice, bob);
    atAlice = inviteTap(alice);
    atBob = inviteTap(bob);
    assert.equal((await alice.register(EDGE_PUBLIC, edge.plan.port('sip-udp', 'edge'), 'alice-pw')).status, 200);
    assert.equal((await bob.register(CORE, core.plan.port('sip-udp', 'core'), 'bob-pw')).status, 200);
  });

  after(async () => {
    for (const u of uas) u.close();
    await core?.close();
    await edge?.close();
    pki?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('down the traversal zone: Via and Record-Route name the private traversal listener the flow is on', async () => {
    const ok = await alice.call(`bob@${DOMAIN}`, EDGE_PUBLIC, edge.plan.port('sip-udp', 'edge'));
    assert.equal(ok.status, 200);
    const { msg } = await waitFor('INVITE at bob', () => atBob[0]);
    // bob sees the core's Via, then the edge's, then alice's.
    const vias = hdrs(msg, 'via');
    assert.equal(vias.length, 3, vias.join(' | '));
    const edgeVia = sentBy(vias[1]!);
    // The socket the INVITE left the edge from: the local end of the core's flow, as the edge's transport has it.
    const flow = edge.sip
      .get('edge')!
      .transport.connections()
      .find((c) => c.direction === 'inbound' && c.remote.address === CORE);
    assert.ok(flow, 'the core has its flow open to the edge');
    assert.equal(flow.local.address, EDGE_PRIVATE);
    assert.deepEqual(
      edgeVia,
      { transport: 'TLS', host: flow.local.address, port: flow.local.port },
      `the edge's Via names the socket the request left from (${vias[1]})`,
    );
    assert.equal(flow.local.port, edge.plan.port('traversal-sip:1', 'edge'));
    // Record-Route: the core's two, then the edge's toward the core (private) and toward alice (public).
    const rr = hdrs(msg, 'record-route');
    assert.equal(rr.length, 4, rr.join(' | '));
    assert.deepEqual(rr.map(rrHost), [CORE, CORE, EDGE_PRIVATE, EDGE_PUBLIC]);
    alice.inDialog('BYE');
    await bob.wait((m) => m.method === 'BYE', 'BYE at bob');
  });

  it('to an outside phone: sent from the public address, Via and Record-Route name it', async () => {
    const ok = await bob.call(`alice@${DOMAIN}`, CORE, core.plan.port('sip-udp', 'core'));
    assert.equal(ok.status, 200);
    const { msg, from } = await waitFor('INVITE at alice', () => atAlice[0]);
    assert.equal(from.address, EDGE_PUBLIC, 'the INVITE left the edge from its public address');
    assert.equal(from.port, edge.plan.port('sip-udp', 'edge'));
    const vias = hdrs(msg, 'via');
    assert.deepEqual(sentBy(vias[0]!), { transport: 'UDP', host: EDGE_PUBLIC, port: from.port });
    const rr = hdrs(msg, 'record-route');
    assert.equal(rrHost(rr[0]!), EDGE_PUBLIC, rr.join(' | '));
    assert.equal(rrHost(rr[1]!), EDGE_PRIVATE, rr.join(' | '));
    bob.inDialog('BYE');
    await alice.wait((m) => m.method === 'BYE', 'BYE at alice');
  });
});
