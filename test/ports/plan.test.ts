import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ConfigError, InternalError } from '../../src/common/errors.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import {
  addressesFromConfig,
  checkPrivileges,
  computePortPlan,
  contains,
  NFT_TARGETS,
  overlaps,
  planToDocument,
  renderMarkdown,
  renderNftables,
  renderTable,
} from '../../src/ports/index.ts';

const plan = (input: CrosswayConfigInput, privileged = true) =>
  computePortPlan(defaultConfig(input), { privileged, unprivilegedPortStart: 1024 });

function rowsOf(md: string, table: string): string[] {
  const start = md.indexOf(`## ${table}`);
  const end = md.indexOf('\n## ', start + 1);
  return md
    .slice(start, end)
    .split('\n')
    .filter((l) => l.startsWith('| ') && !l.startsWith('| Purpose'));
}

describe('port plan: configuration drives the tables', () => {
  const base: CrosswayConfigInput = { role: 'lab', traversalZones: [{ name: 'a' }], h323: { enabled: true } };

  it('a second traversal zone adds 7002 and 6002', () => {
    const one = renderMarkdown(plan(base));
    const two = renderMarkdown(plan({ ...base, traversalZones: [{ name: 'a' }, { name: 'b' }] }));
    assert.match(one, /\| 7001 \|/);
    assert.doesNotMatch(one, /\| 700[2-9] \|/);
    assert.doesNotMatch(one, /\| 6002 \|/);
    assert.match(two, /\| core \| 25000-29999 \| TCP or TLS \| edge \(private\) \| 7002 \| `traversalZones\[1\]`/);
    // 6002 (H.323 over the zone) is listed under "Not opened yet": no node binds it, no ruleset opens it
    const later = two.slice(two.indexOf('## Not opened yet'), two.indexOf('## Listening sockets'));
    assert.match(
      later,
      /\| H\.323 \| Initial RAS connection \| core \| 1719 \| UDP \| edge \(private\) \| 6002 \| `traversalZones\[1\]\.h323` — not opened yet/,
    );
    assert.doesNotMatch(two.slice(0, two.indexOf('## Not opened yet')), /\| 6002 \|/);
    const p = plan({ ...base, traversalZones: [{ name: 'a' }, { name: 'b' }] });
    assert.equal(p.port('traversal-sip:2', 'edge'), 7002);
    assert.ok(!p.has('traversal-ras:2', 'edge'));
    assert.deepEqual(
      p.notOpened.listeners.filter((l) => l.id.startsWith('traversal-ras')).map((l) => [l.id, l.ports.from]),
      [
        ['traversal-ras:1', 6001],
        ['traversal-ras:2', 6002],
      ],
    );
  });

  it('large size adds TURN 3479-3483 and the 36000-36011 mux range', () => {
    const small = plan({ ...base, turn: { enabled: true } });
    const large = plan({ ...base, size: 'large', turn: { enabled: true } });
    const md = renderMarkdown(large);
    assert.match(
      md,
      /TURN control \| endpoint in the internet \(or its firewall\) \| >=1024 \| UDP & TCP \| edge \(public\) \| 3478-3483 \|/,
    );
    assert.doesNotMatch(renderMarkdown(small), /3478-3483/);
    assert.match(md, /\| 36000-36010 \(even ports\) \|/);
    assert.match(md, /\| 36001-36011 \(odd ports\) \|/);
    assert.deepEqual(large.muxPorts('edge'), {
      rtp: [36000, 36002, 36004, 36006, 36008, 36010],
      rtcp: [36001, 36003, 36005, 36007, 36009, 36011],
    });
    assert.deepEqual(small.muxPorts('edge'), { rtp: [36000], rtcp: [36001] });
    const turn = large.node('edge').listener('turn-udp')!;
    for (const p of [3478, 3479, 3480, 3481, 3482, 3483]) assert.ok(contains(turn.ports, p));
    assert.ok(!contains(turn.ports, 3484));
  });

  it('disabling H.323 removes its rows and listeners', () => {
    const on = plan(base);
    const off = plan({ ...base, h323: { enabled: false } });
    // 18 opened; 12 more (Assent, H.460.18, H.323 traversal: zone RAS, core→edge media) are listed as not opened
    assert.equal(rowsOf(renderMarkdown(on), 'H.323 calls').length, 18);
    const later = rowsOf(renderMarkdown(on), 'Not opened yet');
    assert.equal(later.filter((l) => l.startsWith('| H.323 |')).length, 12);
    assert.equal(later.filter((l) => l.startsWith('| edge |')).length, 3);
    assert.deepEqual(rowsOf(renderMarkdown(off), 'H.323 calls'), []);
    assert.match(renderTable(off), /== H\.323 calls\n\(none in this configuration\)/);
    assert.ok(on.has('h323-ras', 'edge') && on.notOpened.listeners.some((l) => l.id === 'traversal-ras:1'));
    assert.ok(!off.listeners.some((l) => l.id.startsWith('h323') || l.id.startsWith('traversal-ras')));
    assert.ok(!off.flows.some((f) => f.table === 'H.323'));
    assert.deepEqual(off.notOpened, { listeners: [], flows: [] });
  });

  it('lists what no node opens yet apart: Assent, H.460.18, H.323 over a zone; never in a ruleset', () => {
    const p = plan(base);
    assert.deepEqual(p.notOpened.listeners.map((l) => `${l.node} ${l.id} ${l.transport} ${l.ports.from}`).sort(), [
      'edge h323-assent tcp 2776',
      'edge h323-h245-h46018 tcp 2777',
      'edge traversal-ras:1 udp 6001',
    ]);
    // the edge serves Q.931 on its public side; Q.931 from the core to its private side is H.460.18 (not opened)
    assert.equal(p.node('edge').listener('h323-q931')?.side, 'public');
    const toPrivate1720 = (f: { to: { peer: string; side?: string; ports: { from: number } } }) =>
      f.to.peer === 'edge' && f.to.side === 'private' && f.to.ports.from === 1720;
    assert.ok(!p.flows.some(toPrivate1720));
    assert.ok(p.notOpened.flows.some(toPrivate1720));
    for (const f of p.notOpened.flows) assert.match(f.notOpened, /^not opened yet: /);
    // H.323 traversal media core → edge is not opened: only SIP's (core media → the demux ports) crosses
    const coreToEdgeMedia = p.flows.filter(
      (f) => f.from.peer === 'core' && f.to.peer === 'edge' && f.protocols.includes('udp'),
    );
    assert.deepEqual(coreToEdgeMedia.map((f) => `${f.table} ${f.purpose} ${f.to.ports.from}-${f.to.ports.to}`).sort(), [
      'SIP Assent RTCP (traversed media) 36001-36001',
      'SIP Assent RTP (traversed media) 36000-36000',
    ]);
    const opened = new Set(p.listeners.map((l) => l.id));
    for (const f of p.flows) if (f.listener) assert.ok(opened.has(f.listener), `${f.id} goes to ${f.listener}`);
    for (const t of NFT_TARGETS) {
      const nft = renderNftables(p, t);
      assert.doesNotMatch(nft, /dport (2776|2777|6001)\b/, t);
    }
    // every-other-port ranges keep their parity (even RTP from the edge to the internet)
    assert.match(
      renderNftables(p, 'outside-firewall'),
      /ip saddr @edge_public4 udp sport 36000-59998 udp sport & 1 == 0 udp dport 1024-65535 ct state new accept comment "H\.323: RTP \(non-multiplexed\)/,
    );
    assert.match(renderTable(p), /== Not opened yet[^\n]*\n[\s\S]*edge +h323-assent +TCP +both +2776/);
  });

  it('neighbour zones (routing.zones) add their flows, each with the zone that produced it', () => {
    const zones = [
      { name: 'tls-n', type: 'neighbor' as const, address: '10.9.0.5', transport: 'tls' as const },
      { name: 'udp-n', type: 'neighbor' as const, address: '10.9.0.6', transport: 'udp' as const, port: 5070 },
      { name: 'gk', type: 'neighbor' as const, protocol: 'h323' as const, address: '10.9.0.7' },
      { name: 'dns', type: 'dns' as const },
    ];
    const p = plan({ role: 'lab', portOffset: 100, h323: { enabled: true }, routing: { zones } });
    const line = (f: (typeof p.flows)[number]) =>
      `${f.setting} ${f.from.peer}${f.from.side ? `(${f.from.side})` : ''}:${f.from.ports.from}-${f.from.ports.to} ` +
      `${f.protocols.join('+')} ${f.to.peer}${f.to.side ? `(${f.to.side})` : ''}:${f.to.ports.from}-${f.to.ports.to}`;
    const got = p.flows.filter((f) => f.setting.startsWith('routing.zones')).map(line);
    assert.deepEqual(got.sort(), [
      // SIP over TLS: from the outbound range to the neighbour's 5061 (its port: no offset); its requests to ours
      'routing.zones[0] core:25100-30099 tls inside-neighbour:5061-5061',
      'routing.zones[0] edge(public):25100-30099 tls outside-neighbour:5061-5061',
      'routing.zones[0] inside-neighbour:1024-65535 tls core:5161-5161',
      'routing.zones[0] outside-neighbour:1024-65535 tls edge(public):5161-5161',
      // SIP over UDP: only the core has a UDP socket to send from (off by default on the edge)
      'routing.zones[1] core:5160-5160 udp inside-neighbour:5070-5070',
      'routing.zones[1] inside-neighbour:1024-65535 udp core:5160-5160',
      // H.323: LRQ between the RAS ports, signalling and H.245 both ways
      'routing.zones[2] core:15100-20099 tcp inside-neighbour:1024-65535',
      'routing.zones[2] core:1819-1819 udp inside-neighbour:1719-1719',
      'routing.zones[2] edge(public):15100-20099 tcp outside-neighbour:1024-65535',
      'routing.zones[2] edge(public):1819-1819 udp outside-neighbour:1719-1719',
      'routing.zones[2] inside-neighbour:1024-65535 tcp core:15100-20099',
      'routing.zones[2] inside-neighbour:1024-65535 tcp core:1820-1820',
      'routing.zones[2] inside-neighbour:1024-65535 udp core:1819-1819',
      'routing.zones[2] outside-neighbour:1024-65535 tcp edge(public):15100-20099',
      'routing.zones[2] outside-neighbour:1024-65535 tcp edge(public):1820-1820',
      'routing.zones[2] outside-neighbour:1024-65535 udp edge(public):1819-1819',
    ]);
    // the table names the zone under each row
    assert.match(
      renderTable(p),
      /SIP neighbour zone +core +25100-30099 +TLS +neighbour zone \(inside\) +5061\n +↳ routing\.zones\[0\] — neighbour zone "tls-n" at 10\.9\.0\.5/,
    );
    // without H.323 the gatekeeper neighbour has no flows; with SIP UDP on the edge it sends UDP too
    const q = plan({ role: 'lab', sip: { transports: { udp: { enabled: true } } }, routing: { zones } });
    assert.ok(!q.flows.some((f) => f.setting === 'routing.zones[2]'));
    assert.ok(
      q.flows.some((f) => f.setting === 'routing.zones[1]' && f.from.peer === 'edge' && f.to.ports.from === 5070),
    );
    // the rulesets allow them, matched on the neighbours' addresses
    const edge = plan({ role: 'edge', network: { address: '10.1.0.10' }, routing: { zones } });
    const book = addressesFromConfig(
      defaultConfig({ role: 'edge', network: { address: '10.1.0.10' }, routing: { zones } }),
    );
    assert.deepEqual(book.outside_neighbours, ['10.9.0.5', '10.9.0.6', '10.9.0.7']);
    const nft = renderNftables(edge, 'edge-host', book);
    assert.match(nft, /ip daddr @outside_neighbours4 tcp sport 25000-29999 tcp dport 5061 ct state new accept/);
    assert.match(nft, /elements = \{ 10\.9\.0\.5, 10\.9\.0\.6, 10\.9\.0\.7 \}/);
  });

  it('an H.323 neighbour named by host name has the same flows, the name in their note, and no ruleset address', () => {
    const zones = [{ name: 'gk', type: 'neighbor' as const, protocol: 'h323' as const, address: 'gk.example.net' }];
    const p = plan({ role: 'edge', network: { address: '10.1.0.10' }, h323: { enabled: true }, routing: { zones } });
    const lrq = p.flows.filter((f) => f.setting === 'routing.zones[0]' && f.protocols.includes('udp'));
    assert.deepEqual(
      lrq.map((f) => [f.from.peer, f.from.ports.from, f.to.peer, f.to.ports.from, f.note]),
      [
        ['edge', 1719, 'outside-neighbour', 1719, 'neighbour zone "gk" at gk.example.net: LRQ from our RAS'],
        ['outside-neighbour', 1024, 'edge', 1719, 'neighbour zone "gk" at gk.example.net: its LRQs'],
      ],
    );
    // names are not resolved for the rulesets (as for SIP neighbours and LDAP servers): the administrator adds them
    const book = addressesFromConfig(
      defaultConfig({ role: 'edge', network: { address: '10.1.0.10' }, h323: { enabled: true }, routing: { zones } }),
    );
    assert.equal(book.outside_neighbours, undefined);
  });

  it('management.exposePublic adds management from the internet to the edge public side, and only then', () => {
    const on = plan({ role: 'edge', management: { snmp: true, exposePublic: true } });
    const off = plan({ role: 'edge', management: { snmp: true } });
    const pub = (p: typeof on) =>
      p.flows
        .filter((f) => f.table === 'management' && f.to.side === 'public')
        .map((f) => `${f.from.peer} ${f.protocols.join('+')} ${f.to.ports.from} ${f.setting} ${f.listener}`);
    assert.deepEqual(pub(on), [
      'internet udp 161 management.exposePublic snmp',
      'internet tcp 80 management.exposePublic http',
      'internet tls 443 management.exposePublic https',
    ]);
    assert.deepEqual(pub(off), []);
    assert.equal(on.node().listener('https')?.side, 'both');
    assert.match(
      renderNftables(on, 'outside-firewall'),
      /ip daddr @edge_public4 tcp sport 1024-65535 tcp dport 443 ct state new accept comment "management: HTTPS Management of the edge, internet→edge TLS 443 \[management\.exposePublic\]"/,
    );
    assert.doesNotMatch(renderNftables(off, 'outside-firewall'), /dport 443/);
  });

  it('turn.additionalRelayAddress: the relay pool is also bound there, its flows and rules name it in its family', () => {
    const turn = { enabled: true, sharedSecret: 'plan-test-secret' };
    const on = plan({ role: 'edge', turn: { ...turn, additionalRelayAddress: '2001:db8::10' } });
    const off = plan({ role: 'edge', turn });
    assert.deepEqual(on.node().pools.find((p) => p.id === 'turn-relay')?.alsoOn, [
      { address: '2001:db8::10', setting: 'turn.additionalRelayAddress' },
    ]);
    assert.equal(off.node().pools.find((p) => p.id === 'turn-relay')?.alsoOn, undefined);
    const relay = on.range('turn-relay');
    const at = (p: typeof on) =>
      p.flows
        .filter((f) => f.from.address || f.to.address)
        .map((f) => `${f.from.peer} ${f.from.address ?? ''}>${f.to.peer} ${f.to.address ?? ''} ${f.setting}`);
    assert.deepEqual(at(on), [
      'edge 2001:db8::10>internet  turn.additionalRelayAddress',
      'internet >edge 2001:db8::10 turn.additionalRelayAddress',
    ]);
    assert.deepEqual(at(off), []);
    for (const f of on.flows.filter((x) => x.setting === 'turn.additionalRelayAddress')) {
      assert.deepEqual(f.protocols, ['udp', 'tcp']);
      assert.deepEqual(f.from.peer === 'edge' ? f.from.ports : f.to.ports, relay);
    }
    // rules: the address itself, IPv6 only, in the edge host's input/output and on the outside firewall
    const span = `${relay.from}-${relay.to}`;
    for (const target of ['edge-host', 'outside-firewall'] as const) {
      const nft = renderNftables(on, target);
      for (const l4 of ['udp', 'tcp']) {
        assert.ok(
          nft.includes(`ip6 daddr 2001:db8::10 ${l4} sport 1024-65535 ${l4} dport ${span} ct state new accept`),
        );
        assert.ok(
          nft.includes(`ip6 saddr 2001:db8::10 ${l4} sport ${span} ${l4} dport 1024-65535 ct state new accept`),
        );
      }
      assert.doesNotMatch(nft, /ip (s|d)addr 2001:db8::10/, 'never in an IPv4 rule');
      assert.doesNotMatch(renderNftables(off, target), /2001:db8::10/);
    }
    assert.doesNotMatch(renderNftables(on, 'inside-firewall'), /2001:db8::10/, 'relays face the outside only');
    // the port reference names it too
    const md = renderMarkdown(on);
    assert.equal(rowsOf(md, 'SIP calls').filter((r) => r.includes('edge (2001:db8::10)')).length, 2);
    assert.match(renderTable(on), /turn-relay .*also on 2001:db8::10: turn\.additionalRelayAddress/);
    assert.deepEqual(planToDocument(on).nodes[0]?.pools.find((p) => p.id === 'turn-relay')?.alsoOn, [
      { address: '2001:db8::10', setting: 'turn.additionalRelayAddress' },
    ]);
  });

  it('legacy mux ports are 2776/2777 UDP and leave the media pool whole', () => {
    const p = plan({ ...base, media: { muxPorts: 'legacy-2776' } });
    assert.deepEqual(p.muxPorts('edge'), { rtp: [2776], rtcp: [2777] });
    assert.deepEqual(p.mediaPool('edge').ranges, [{ from: 36000, to: 59999, step: 1 }]);
    assert.equal(p.mediaPool('edge').pairs, 12000);
    const large = plan({ ...base, size: 'large', media: { muxPorts: 'legacy-2776' } });
    assert.deepEqual(large.muxPorts('edge')?.rtp[0], 36000, 'a large edge always uses 36000-36011');
  });

  it('takes the demux ports out of the media pool', () => {
    const small = plan(base);
    assert.deepEqual(small.mediaPool('edge').ranges, [{ from: 36002, to: 59999, step: 1 }]);
    assert.equal(small.mediaPool('edge').pairs, 11999);
    assert.ok(!small.mediaPool('edge').allows(36000) && !small.mediaPool('edge').allows(36001));
    assert.ok(small.mediaPool('edge').allows(36002));
    const large = plan({ ...base, size: 'large' });
    assert.equal(large.mediaPool('edge').ranges[0]?.from, 36012);
    // The core does not demultiplex: its pool is the whole range.
    assert.equal(small.mediaPool('core').ranges[0]?.from, 36000);
  });

  it('role defaults: the edge has SIP UDP/TCP off unless enabled, the core on', () => {
    const p = plan({ role: 'lab' });
    assert.ok(!p.has('sip-udp', 'edge') && !p.has('sip-tcp', 'edge'));
    assert.equal(p.port('sip-tls', 'edge'), 5061);
    assert.equal(p.port('sip-mtls', 'edge'), 5062);
    assert.equal(p.port('sip-udp', 'core'), 5060);
    assert.equal(p.port('sip-tcp', 'core'), 5060);
    const e = plan({ role: 'edge', sip: { transports: { udp: { enabled: true } } } });
    assert.equal(e.port('sip-udp'), 5060);
    assert.ok(!e.has('sip-tcp'));
    const c = plan({ role: 'core', sip: { transports: { udp: { enabled: false } } } });
    assert.ok(!c.has('sip-udp') && c.has('sip-tcp'));
  });

  it('applies the port offset to its own ports, not to third parties', () => {
    const p = plan({
      role: 'lab',
      portOffset: 100,
      traversalZones: [{ name: 'a' }],
      management: { snmp: true },
      ldap: { servers: [{ url: 'ldaps://10.0.0.1' }] },
      feedback: { subscribers: [{ url: 'https://10.0.0.2:8443/x' }] },
    });
    assert.equal(p.port('sip-tls', 'edge'), 5161);
    assert.equal(p.port('traversal-sip:1', 'edge'), 7101);
    assert.equal(p.port('snmp', 'core'), 261);
    assert.deepEqual(p.range('outbound-sip', 'core'), { from: 25100, to: 30099, step: 1 });
    assert.deepEqual(p.range('media', 'edge'), { from: 36100, to: 60099, step: 1 });
    assert.deepEqual(p.muxPorts('edge'), { rtp: [36100], rtcp: [36101] });
    const ldap = p.flows.find((f) => f.table === 'LDAP' && f.from.peer === 'core')!;
    assert.equal(ldap.to.ports.from, 636);
    const fb = p.flows.find((f) => f.purpose === 'Feedback events (HTTPS)' && f.from.peer === 'edge')!;
    assert.equal(fb.to.ports.from, 8443);
    // The core connects to the edge's offset traversal port.
    const tz = p.flows.find((f) => f.listener === 'traversal-sip:1')!;
    assert.equal(tz.to.ports.from, 7101);
  });

  it('explicit port overrides are taken as given', () => {
    const p = plan({
      role: 'lab',
      portOffset: 100,
      traversalZones: [{ name: 'a', port: 7777 }],
      sip: { transports: { tls: { port: 5999 } } },
    });
    assert.equal(p.port('traversal-sip:1', 'edge'), 7777);
    assert.equal(p.port('sip-tls', 'core'), 5999);
  });

  it('refuses an offset that pushes a port out of 1-65535, naming the setting', () => {
    assert.throws(
      () => plan({ role: 'lab', management: { snmp: true }, portOffset: -200 }),
      (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'portOffset' && /-39/.test(e.message),
    );
    assert.throws(
      () => plan({ role: 'lab', portOffset: 10_000 }),
      (e: unknown) => e instanceof ConfigError && e.issues[0]?.path === 'portOffset' && /69999/.test(e.message),
    );
  });

  it('lookups refuse what is not in the plan', () => {
    const p = plan({ role: 'lab' });
    assert.throws(() => p.port('sip-tls'), InternalError);
    assert.throws(() => p.port('turn-udp', 'edge'), /turn-udp is not in the edge's port plan/);
    assert.throws(() => p.range('turn-relay', 'edge'), InternalError);
    assert.throws(() => plan({ role: 'edge' }).node('core'), /the edge plan has no core/);
    assert.throws(() => plan({ role: 'edge', size: 'large', turn: { enabled: true } }).port('turn-udp'), /is a range/);
  });

  it('is frozen and serialises to plain JSON', () => {
    const p = plan({ ...base, turn: { enabled: true } });
    assert.ok(Object.isFrozen(p) && Object.isFrozen(p.listeners) && Object.isFrozen(p.flows[0]));
    assert.throws(() => {
      (p.listeners as unknown[]).push(1);
    }, TypeError);
    const doc = JSON.parse(JSON.stringify(planToDocument(p)));
    assert.equal(doc.version, 1);
    assert.equal(doc.nodes.length, 2);
    assert.equal(doc.flows.length, p.flows.length);
    assert.deepEqual(doc.nodes[0].mux, { rtp: [36000], rtcp: [36001] });
    assert.ok(Object.isFrozen(p.notOpened) && Object.isFrozen(p.notOpened.flows[0]));
    assert.deepEqual(
      doc.notOpened.listeners.map((l: { id: string; notOpened: string }) => [
        l.id,
        l.notOpened.startsWith('not opened yet'),
      ]),
      [
        ['traversal-ras:1', true],
        ['h323-assent', true],
        ['h323-h245-h46018', true],
      ],
    );
    assert.equal(doc.notOpened.flows.length, p.notOpened.flows.length);
  });
});

describe('port plan: privileges', () => {
  const mgmt: CrosswayConfigInput = { management: { snmp: true, https: true } };

  it('an unprivileged lab maps 80/161/443 to 8080/8161/8443, listeners and flows alike', () => {
    const p = plan({ role: 'lab', ...mgmt }, false);
    assert.equal(p.port('http', 'edge'), 8080);
    assert.equal(p.port('snmp', 'core'), 8161);
    assert.equal(p.port('https', 'core'), 8443);
    assert.deepEqual(
      [...p.remapped].sort((a, b) => a.from - b.from),
      [
        { from: 80, to: 8080 },
        { from: 161, to: 8161 },
        { from: 443, to: 8443 },
      ],
    );
    const https = p.flows.find((f) => f.listener === 'https' && f.to.peer === 'edge')!;
    assert.equal(https.to.ports.from, 8443);
    assert.ok(checkPrivileges(p, { privileged: false, unprivilegedPortStart: 1024 }).ok);
  });

  it('other roles keep the seed ports, and checkPrivileges names the port and the capability', () => {
    const p = plan({ role: 'edge', ...mgmt }, false);
    assert.equal(p.port('https'), 443);
    const r = checkPrivileges(p, { privileged: false, unprivilegedPortStart: 1024 });
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.deepEqual(
      r.reason.map((x) => x.port).sort((a, b) => a - b),
      [80, 161, 443],
    );
    assert.match(r.reason[0]!.message, /CAP_NET_BIND_SERVICE/);
    assert.match(r.reason.map((x) => x.message).join('\n'), /needs port 443/);
    assert.ok(checkPrivileges(p, { privileged: true, unprivilegedPortStart: 1024 }).ok);
    // A kernel that lets anyone bind from 200 up refuses only 80 and 161.
    const r2 = checkPrivileges(p, { privileged: false, unprivilegedPortStart: 200 });
    assert.equal(r2.ok, false);
    if (!r2.ok)
      assert.deepEqual(
        r2.reason.map((x) => x.port).sort((a, b) => a - b),
        [80, 161],
      );
  });
});

const configArb = fc.record({
  role: fc.constantFrom('edge', 'core', 'lab' as const),
  size: fc.constantFrom('small', 'medium', 'large' as const),
  // 80 − 70 stays ≥ 1 and 59999 + 5000 ≤ 65535: every generated configuration is valid.
  portOffset: fc.integer({ min: -70, max: 5000 }),
  zones: fc.integer({ min: 0, max: 6 }),
  h323: fc.boolean(),
  turn: fc.boolean(),
  snmp: fc.boolean(),
  https: fc.boolean(),
  plainHttp: fc.boolean(),
  udp: fc.option(fc.boolean(), { nil: undefined }),
  tcp: fc.option(fc.boolean(), { nil: undefined }),
  mux: fc.constantFrom('default-36000', 'legacy-2776' as const),
  ldap: fc.boolean(),
  privileged: fc.boolean(),
});

describe('port plan: invariants over random configurations', () => {
  it('no two listeners of a node share a port; flows name existing listeners; demux ports never pooled', () => {
    fc.assert(
      fc.property(configArb, (c) => {
        const p = plan(
          {
            role: c.role,
            size: c.size,
            portOffset: c.portOffset,
            traversalZones: Array.from({ length: c.zones }, (_, i) => ({ name: `z${i}` })),
            h323: { enabled: c.h323 },
            turn: { enabled: c.turn },
            management: { snmp: c.snmp, https: c.https, plainHttp: c.plainHttp },
            media: { muxPorts: c.mux },
            sip: { transports: { udp: { enabled: c.udp }, tcp: { enabled: c.tcp } } },
            ldap: { servers: c.ldap ? [{ url: 'ldap://10.0.0.1' }] : [] },
          },
          c.privileged,
        );
        for (const n of p.nodes) {
          const ls = n.listeners;
          for (let i = 0; i < ls.length; i++) {
            const a = ls[i]!;
            assert.ok(a.ports.from >= 1 && a.ports.to <= 65535);
            for (let j = i + 1; j < ls.length; j++) {
              const b = ls[j]!;
              if (a.transport === b.transport) {
                assert.ok(!overlaps(a.ports, b.ports), `${n.node}: ${a.id} and ${b.id} overlap`);
              }
            }
            if (a.transport === 'udp') {
              for (let port = a.ports.from; port <= a.ports.to; port++) {
                assert.ok(!n.mediaPool().allows(port), `${a.id} port ${port} is in the media pool`);
              }
            }
          }
        }
        for (const f of p.flows) {
          assert.ok(f.from.peer === 'edge' || f.from.peer === 'core' || f.to.peer === 'edge' || f.to.peer === 'core');
          if (f.listener && p.nodes.some((n) => n.node === f.to.peer)) {
            const l = p.node(f.to.peer as 'edge' | 'core').listener(f.listener);
            assert.ok(l, `flow ${f.id} names missing listener ${f.listener}`);
            assert.ok(contains(l.ports, f.to.ports.from) && contains(l.ports, f.to.ports.to), f.id);
          }
        }
        const ids = new Set(p.flows.map((f) => f.id));
        assert.equal(ids.size, p.flows.length, 'flow ids are unique');
      }),
      { numRuns: 150 },
    );
  });
});
