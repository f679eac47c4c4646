/**
 * The traversal acceptance test with real user agents behind real firewalls (issue 6, "Checks that must pass in CI").
 *
 * ```
 *  alice (baresip) 10.77.6.2 ─ [home NAT, masquerade as 10.77.1.2] ─ [fw-out] ─ edge 10.77.2.2 / 10.77.3.2
 *                                                                                  │ traversal zone (TLS, from the core)
 *                                                             bob (baresip) 10.77.4.3 ─ core 10.77.4.2 ─ [fw-in]
 * ```
 * The two firewalls load exactly the nftables rulesets rendered from the nodes' configurations (default deny). The
 * edge and the core are real `crossway start` processes in their namespaces. alice registers through the edge (the
 * core is the registrar and challenges with MD5 digest: baresip 1.0 knows nothing else); bob registers to the core.
 * Calls both ways are answered and carry audio both ways for several seconds, proven at the endpoints: nftables
 * counters on each endpoint's RTP ports in its own namespace and baresip's own end-of-call RTP statistics. Hang-up
 * frees every relay port on both nodes. Then the zone's connection is reset in the inside firewall, during a call
 * (the zone reconnects, audio goes on, the BYE crosses the new flow) and between calls (the next call succeeds).
 * Last, carol behind the same NAT registers over TLS and is called on her own TLS connection.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { validateConfig } from '../../src/config/load.ts';
import type { CrosswayConfig, CrosswayConfigInput } from '../../src/config/schema.ts';
import { type AddressBook, addressesFromConfig, computePortPlan, renderNftables } from '../../src/ports/index.ts';
import { callControl } from '../../src/roles/control.ts';
import { LocalCredentialStore } from '../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../src/store/database.ts';
import { Baresip } from '../helpers/baresip.ts';
import {
  LAB_ADDRESSES as A,
  createNetLab,
  type LabHost,
  type NetLab,
  netLabAvailability,
  netLabRequired,
} from '../helpers/netlab.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';

function baresipAvailability(): string | undefined {
  for (const bin of ['baresip', 'sox']) {
    try {
      execFileSync('which', [bin], { stdio: 'ignore' });
    } catch {
      return `${bin} is not installed (scripts/deps/apt-packages.txt: baresip-core, sox)`;
    }
  }
  return undefined;
}

const lab0 = netLabAvailability();
const missingPeer = baresipAvailability();
// Under CI a lab that cannot run (no namespaces, nft, baresip or sox) fails instead of skipping.
const skip = netLabRequired(
  'netns-baresip.test.ts',
  lab0.ok && missingPeer !== undefined ? { ok: false, reason: missingPeer } : lab0,
);

const DOMAIN = 'example.com';
const BOB_ADDRESS = '10.77.4.3';
const RTP_FROM = 20_000;
/** How long each call carries audio before hang-up (baresip sends 50 packets/s each way). */
const TALK_MS = 5000;
/** Packets each endpoint must count per direction and call: 3 of the 5 seconds. */
const MIN_PACKETS = 150;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 15_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

function book(...books: AddressBook[]): AddressBook {
  const out: Record<string, string[]> = {};
  for (const b of books) {
    for (const [k, v] of Object.entries(b)) out[k] = [...new Set([...(out[k] ?? []), ...(v ?? [])])];
  }
  return out;
}

/** Named nftables counters of what a phone's RTP ports (100 from `from`) receive and send, in its own namespace. */
function counters(table: string, from: number): string {
  const ports = `${from}-${from + 99}`;
  return [
    `table inet ${table} {`,
    '  counter rtp_in { }',
    '  counter rtp_out { }',
    `  chain input { type filter hook input priority -10; policy accept; udp dport ${ports} counter name "rtp_in"; }`,
    `  chain output { type filter hook output priority -10; policy accept; udp sport ${ports} counter name "rtp_out"; }`,
    '}',
    '',
  ].join('\n');
}

/** A phone of the lab: its user agent, the namespace it runs in, its RTP counters, the relay it must hear. */
interface Phone {
  user: string;
  ua: Baresip;
  host: LabHost;
  table: string;
  hears: string;
}

async function rtpCounters(lab: NetLab, p: Phone): Promise<{ in: number; out: number }> {
  const r = await lab.exec(p.host, 'nft', ['list', 'counters', 'table', 'inet', p.table]);
  const get = (name: string) => Number(new RegExp(`counter ${name} \\{\\s*packets (\\d+)`).exec(r.stdout)?.[1] ?? NaN);
  return { in: get('rtp_in'), out: get('rtp_out') };
}

/** baresip's end-of-call tables (`rtp_stats yes`): audio packets [transmitted, received], one entry per call. */
function endOfCallStats(log: string): [number, number][] {
  const out: [number, number][] = [];
  for (const m of log.matchAll(/audio\s+Transmit:\s+Receive:\s+packets:\s+(\d+)\s+(\d+)/g)) {
    out.push([Number(m[1]), Number(m[2])]);
  }
  return out;
}

/** Port pairs the relay's calls hold: those in use less the quarantined ones (see `portPairsQuarantined`). */
const callPairs = (m: MediaStatus) => m.portPairsInUse - m.portPairsQuarantined;

interface MediaStatus {
  node: string;
  calls: number;
  portPairsInUse: number;
  /**
   * Of those, pairs found bound by another socket and kept out of the pool for 60 s with no call (RelayCore's
   * quarantine). The core shares its namespace with bob's baresip, whose resolver sockets sit on ephemeral ports
   * (32768–60999) inside the core's media pool (36000–59999): a call that walks onto one leaves such a pair behind.
   */
  portPairsQuarantined: number;
  /** Media sockets open (the mux ports stay open; a call's port pairs are opened and closed with it). */
  sockets: number;
}

describe('baresip behind NAT ↔ edge ↔ traversal zone ↔ core ↔ baresip, behind the generated firewalls', {
  skip,
  timeout: 240_000,
}, () => {
  let lab: NetLab;
  let pki: TlsFixtures;
  let dir: string;
  let alice: Phone;
  let bob: Phone;
  let carol: Phone;
  const dataDirs = { edge: '', core: '' };
  type NodeHandle = Awaited<ReturnType<NetLab['startCrossway']>>;
  let edgeNode: NodeHandle;
  let coreNode: NodeHandle;

  const media = async (kind: 'edge' | 'core') =>
    ((await callControl(dataDirs[kind], 'media.status')) as MediaStatus[])[0]!;
  const zone = async (kind: 'edge' | 'core') =>
    (
      (await callControl(dataDirs[kind], 'sip.status')) as {
        zones: { state: string; peer: string; lastError?: string; role?: string }[];
      }[]
    )[0]!.zones[0]!;
  /**
   * What each relay still holds (`media.calls`: Call-ID, tags, streams, when last touched) and the calls each node's
   * proxy still counts active; the nodes' whole logs go to test-artifacts/ (the message keeps their tails).
   */
  const relayContext = async (what: string) => {
    const held = await Promise.all(
      (['edge', 'core'] as const).map(async (kind) => {
        const relay = await callControl(dataDirs[kind], 'media.calls').catch((err: Error) => err.message);
        const active = await callControl(dataDirs[kind], 'calls.status').catch((err: Error) => err.message);
        return `\n--- ${kind} relay calls ---\n${JSON.stringify(relay)}\n--- ${kind} calls.status ---\n${JSON.stringify(active)}`;
      }),
    );
    const stem = join('test-artifacts', `netns-baresip-${what.replace(/[^\w]+/g, '-')}-${Date.now()}`);
    mkdirSync('test-artifacts', { recursive: true });
    writeFileSync(`${stem}-edge.log`, edgeNode?.log() ?? '');
    writeFileSync(`${stem}-core.log`, coreNode?.log() ?? '');
    for (const p of [alice, bob, carol]) if (p) writeFileSync(`${stem}-${p.user}.log`, p.ua.log);
    return `${held.join('')}\n(whole logs: ${stem}-*.log)${failureContext()}`;
  };
  const failureContext = () =>
    `\n--- edge log ---\n${edgeNode?.log().slice(-4000)}\n--- core log ---\n${coreNode?.log().slice(-4000)}` +
    [alice, bob, carol].map((p) => (p ? `\n--- ${p.user} ---\n${p.ua.log.slice(-3000)}` : '')).join('');

  before(async () => {
    lab = await createNetLab();
    await lab.addNatHost();
    await lab.exec('inside', 'ip', ['addr', 'add', `${BOB_ADDRESS}/24`, 'dev', 'eth0']);
    pki = createTlsFixtures({ extraIps: [A.edgePublic, A.edgePrivate, A.inside] });
    dir = mkdtempSync(join(tmpdir(), 'crossway-netns-baresip-'));
    const tls = { certificate: pki.server.certPath, privateKey: pki.server.keyPath, caCertificates: pki.ca.certPath };
    const routing = {
      zones: [{ name: 'tz1', type: 'traversal' as const }],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' as const }, targetZone: 'LocalZone' },
        { name: 'across', priority: 100, pattern: { type: 'anyAlias' as const }, targetZone: 'tz1' },
      ],
    };
    const sip = { domains: [DOMAIN], transports: { udp: { enabled: true } } };
    dataDirs.edge = join(dir, 'edge');
    dataDirs.core = join(dir, 'core');
    const edge: CrosswayConfigInput = {
      role: 'edge',
      name: 'edge',
      dataDir: dataDirs.edge,
      network: { address: A.edgePrivate, publicAddress: A.edgePublic },
      tls,
      sip,
      traversalZones: [{ name: 'tz1', username: 'tz1-core', domains: [DOMAIN] }],
      routing,
    };
    const core: CrosswayConfigInput = {
      role: 'core',
      name: 'core',
      dataDir: dataDirs.core,
      network: { address: A.inside },
      tls,
      sip,
      // libre 1.1 (baresip 1.0) answers MD5 digest only.
      auth: { algorithms: ['MD5'] },
      traversalZones: [
        {
          name: 'tz1',
          peerAddress: A.edgePrivate,
          username: 'tz1-core',
          password: 'zone-secret',
          keepaliveSeconds: 1,
          retryMinSeconds: 0.2,
          retryMaxSeconds: 1,
        },
      ],
      routing,
    };
    const edgeCfg: Readonly<CrosswayConfig> = validateConfig(edge);
    const coreCfg: Readonly<CrosswayConfig> = validateConfig(core);
    // Credentials: the zone's user on the edge, the two phones on the core (the registrar).
    for (const [kind, users] of [
      ['edge', [['traversal', 'tz1-core', 'zone-secret']]],
      [
        'core',
        [
          [DOMAIN, 'alice', 'alice-pw'],
          [DOMAIN, 'bob', 'bob-pw'],
          [DOMAIN, 'carol', 'carol-pw'],
        ],
      ],
    ] as const) {
      mkdirSync(dataDirs[kind], { recursive: true, mode: 0o700 });
      const store = NodeStore.open(dataDirs[kind]);
      try {
        const creds = new LocalCredentialStore(store);
        for (const [realm, user, pw] of users) creds.add(realm, user, pw);
      } finally {
        store.close();
      }
    }
    const files = { edge: join(dir, 'edge.json'), core: join(dir, 'core.json') };
    writeFileSync(files.edge, JSON.stringify(edge));
    writeFileSync(files.core, JSON.stringify(core));

    // The firewalls: exactly the rulesets rendered from the two configurations.
    const addresses = book(addressesFromConfig(edgeCfg), addressesFromConfig(coreCfg));
    await lab.loadRuleset('fwOut', renderNftables(computePortPlan(edgeCfg), 'outside-firewall', addresses));
    await lab.loadRuleset('fwIn', renderNftables(computePortPlan(coreCfg), 'inside-firewall', addresses));
    await lab.loadRuleset('behindNat', counters('rtp_alice', RTP_FROM));
    await lab.loadRuleset('behindNat', counters('rtp_carol', RTP_FROM + 100));
    await lab.loadRuleset('inside', counters('rtp_bob', RTP_FROM));

    edgeNode = await lab.startCrossway('edge', files.edge);
    coreNode = await lab.startCrossway('inside', files.core);
    await waitFor('the zone active on both nodes', async () => {
      const [e, c] = await Promise.all([zone('edge'), zone('core')]);
      return e.state === 'active' && c.state === 'active' ? true : undefined;
    }).catch((err: Error) => assert.fail(`${err.message}${failureContext()}`));

    const account = (user: string, proxy: string) =>
      `<sip:${user}@${DOMAIN}>;auth_pass=${user}-pw;outbound="sip:${proxy}";regint=300;answermode=auto`;
    const [a, b, c] = await Promise.all([
      Baresip.start({
        netns: lab.ns.behindNat,
        address: A.behindNat,
        rtpPort: RTP_FROM,
        toneHz: 440,
        account: account('alice', `${A.edgePublic}:5060`),
      }),
      Baresip.start({
        netns: lab.ns.inside,
        address: BOB_ADDRESS,
        rtpPort: RTP_FROM,
        toneHz: 1000,
        account: account('bob', `${A.inside}:5060`),
      }),
      // carol, behind the same NAT, registers over TLS: calls to her must come back on her own connection (baresip
      // accepts no TLS connection without a certificate of its own).
      Baresip.start({
        netns: lab.ns.behindNat,
        address: A.behindNat,
        sipPort: 5070,
        ctrlPort: 4445,
        rtpPort: RTP_FROM + 100,
        toneHz: 700,
        account: `<sip:carol@${DOMAIN};transport=tls>;auth_pass=carol-pw;outbound="sip:${A.edgePublic}:5061;transport=tls";regint=300;answermode=auto`,
      }),
    ]);
    alice = { user: 'alice', ua: a, host: 'behindNat', table: 'rtp_alice', hears: A.edgePublic };
    bob = { user: 'bob', ua: b, host: 'inside', table: 'rtp_bob', hears: A.inside };
    carol = { user: 'carol', ua: c, host: 'behindNat', table: 'rtp_carol', hears: A.edgePublic };
  });

  after(async () => {
    await Promise.allSettled([alice?.ua.close(), bob?.ua.close(), carol?.ua.close()]);
    await lab?.close();
    pki?.cleanup();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('alice registers through the edge (behind NAT) and bob to the core, both with digest at the core', async () => {
    try {
      await alice.ua.waitRegistered(15_000);
      await bob.ua.waitRegistered(15_000);
    } catch (err) {
      assert.fail(`${(err as Error).message}${failureContext()}`);
    }
  });

  /** One answered call with audio both ways, hung up by `hangsUp`; returns after every relay port is free. */
  async function call(caller: Phone, callee: Phone, hangsUp: Phone, n: number, during?: () => Promise<void>) {
    const both = [caller, callee];
    const idle = await Promise.all([media('edge'), media('core')]);
    if (idle.some((m) => m.calls !== 0 || callPairs(m) !== 0)) {
      assert.fail(`call ${n}: relays idle before the call: ${JSON.stringify(idle)}${await relayContext(`idle-${n}`)}`);
    }
    const c0 = await Promise.all(both.map((p) => rtpCounters(lab, p)));
    const stats0 = both.map((p) => endOfCallStats(p.ua.log).length);
    const count = (p: Phone, type: string) => p.ua.events.filter((e) => e.type === type).length;
    const closed0 = both.map((p) => count(p, 'CALL_CLOSED'));
    const established0 = both.map((p) => count(p, 'CALL_ESTABLISHED'));
    const dial = await caller.ua.cmd('dial', `sip:${callee.user}@${DOMAIN}`);
    assert.ok(dial.ok, dial.data);
    try {
      await waitFor('both ends established', () =>
        both.every((p, i) => count(p, 'CALL_ESTABLISHED') > established0[i]!) ? true : undefined,
      );
    } catch (err) {
      assert.fail(`call ${n}: ${(err as Error).message}${failureContext()}`);
    }
    const busy = await Promise.all([media('edge'), media('core')]);
    for (const [i, kind] of ['edge', 'core'].entries()) {
      assert.equal(busy[i]!.calls, 1, `call ${n} anchored on the ${kind}`);
      assert.ok(busy[i]!.sockets > idle[i]!.sockets, `call ${n}: the ${kind} opened media ports for it`);
    }
    const talkEnd = Date.now() + TALK_MS;
    await during?.();
    await sleep(Math.max(0, talkEnd - Date.now()));
    const c1 = await Promise.all(both.map((p) => rtpCounters(lab, p)));
    await hangsUp.ua.cmd('hangup');
    await waitFor('both ends closed', () =>
      both.every((p, i) => count(p, 'CALL_CLOSED') > closed0[i]!) ? true : undefined,
    );
    // Counted at the endpoints, in their own namespaces, while the call was up.
    const got: Record<string, number> = {};
    both.forEach((p, i) => {
      got[`${p.user}In`] = c1[i]!.in - c0[i]!.in;
      got[`${p.user}Out`] = c1[i]!.out - c0[i]!.out;
    });
    for (const [k, v] of Object.entries(got)) {
      assert.ok(v >= MIN_PACKETS, `call ${n}: ${k} ${v} RTP packets (< ${MIN_PACKETS}): ${JSON.stringify(got)}`);
    }
    // Each phone hears its own node's relay (the edge's public address through the NAT), never the other phone.
    for (const p of both) {
      const heard = [...p.ua.log.matchAll(/incoming rtp for 'audio' established, receiving from ([\d.]+):/g)];
      assert.equal(heard.at(-1)?.[1], p.hears, `call ${n}: ${p.user}'s RTP source`);
    }
    // baresip's own statistics at call end: packets sent and received by each user agent.
    const st = await waitFor('both end-of-call tables', () => {
      const tables = both.map((p) => endOfCallStats(p.ua.log));
      return tables.every((t, i) => t.length > stats0[i]!) ? tables.map((t) => t.at(-1)!) : undefined;
    });
    both.forEach((p, i) => {
      const [tx, rx] = st[i]!;
      assert.ok(tx >= MIN_PACKETS && rx >= MIN_PACKETS, `call ${n}: ${p.user} sent ${tx}, received ${rx}`);
      got[`${p.user}Stats`] = tx;
      got[`${p.user}StatsRx`] = rx;
    });
    // Hang-up releases every port on both relays.
    let last: MediaStatus[] = [];
    await waitFor(`call ${n}: every relay port free on both nodes`, async () => {
      last = await Promise.all([media('edge'), media('core')]);
      const free = (m: MediaStatus, before: MediaStatus) =>
        callPairs(m) === 0 && m.calls === 0 && m.sockets === before.sockets;
      return free(last[0]!, idle[0]!) && free(last[1]!, idle[1]!) ? true : undefined;
    }).catch(async (err: Error) =>
      assert.fail(`${err.message}: ${JSON.stringify(last)}${await relayContext(`release-${n}`)}`),
    );
    return got;
  }

  it('outside → inside: answered, audio both ways for several seconds, hang-up frees every relay port', async () => {
    const r = await call(alice, bob, alice, 1);
    process.stderr.write(`call 1 (alice → bob): ${JSON.stringify(r)}\n`);
  });

  it('inside → outside: answered, audio both ways for several seconds, hang-up frees every relay port', async () => {
    const r = await call(bob, alice, alice, 2);
    process.stderr.write(`call 2 (bob → alice): ${JSON.stringify(r)}\n`);
  });

  /** Resets the zone's connection in the inside firewall until the core sees it failed, then mends the firewall. */
  async function breakZone(): Promise<void> {
    const before = await zone('edge');
    // Reset the zone's TCP connection in the inside firewall, in both directions, ahead of the generated rules.
    for (const dir of ['dport', 'sport']) {
      const r = await lab.exec('fwIn', 'nft', [
        `insert rule inet crossway_inside_fw forward tcp ${dir} 7001 reject with tcp reset comment "break"`,
      ]);
      assert.equal(r.code, 0, r.stderr);
    }
    await waitFor('the core sees its zone failed', async () =>
      (await zone('core')).state === 'failed' ? true : undefined,
    ).catch(async (err: Error) =>
      assert.fail(
        `${err.message}: ${JSON.stringify(await zone('core'))}\n${await lab.ruleset('fwIn')}${failureContext()}`,
      ),
    );
    // Mend the firewall: back to exactly the generated rules.
    const listed = await lab.exec('fwIn', 'nft', ['-a', 'list', 'chain', 'inet', 'crossway_inside_fw', 'forward']);
    const handles = [...listed.stdout.matchAll(/comment "break" # handle (\d+)/g)].map((m) => m[1]!);
    assert.equal(handles.length, 2, listed.stdout);
    for (const h of handles) {
      await lab.exec('fwIn', 'nft', ['delete', 'rule', 'inet', 'crossway_inside_fw', 'forward', 'handle', h]);
    }
    const again = await waitFor('the zone active again on a new flow', async () => {
      const [e, c] = await Promise.all([zone('edge'), zone('core')]);
      return e.state === 'active' && c.state === 'active' && e.peer !== before.peer ? e : undefined;
    }).catch((err: Error) => assert.fail(`${err.message}${failureContext()}`));
    assert.match(again.peer, new RegExp(`^${A.inside.replaceAll('.', '\\.')}:\\d+$`));
  }

  it('the zone broken in the inside firewall during a call: it reconnects, audio goes on, the BYE crosses the new flow', async () => {
    // Traversal media is UDP through the mux, not on the zone's connection; in-dialog requests take the new flow.
    const r = await call(alice, bob, bob, 3, breakZone);
    process.stderr.write(`call 3, zone broken and back during it (alice → bob): ${JSON.stringify(r)}\n`);
  });

  it('the zone broken between calls reconnects, and the next call succeeds', async () => {
    await breakZone();
    const r = await call(bob, alice, bob, 4);
    process.stderr.write(`call 4 after reconnect (bob → alice): ${JSON.stringify(r)}\n`);
  });

  it('a phone behind the NAT on TLS: registered through the edge, called on its own connection both ways', async () => {
    await carol.ua.waitRegistered(15_000).catch((err: Error) => assert.fail(`${err.message}${failureContext()}`));
    const r1 = await call(bob, carol, carol, 5);
    process.stderr.write(`call 5 (bob → carol over TLS): ${JSON.stringify(r1)}\n`);
    const r2 = await call(carol, bob, bob, 6);
    process.stderr.write(`call 6 (carol over TLS → bob): ${JSON.stringify(r2)}\n`);
  });
});
