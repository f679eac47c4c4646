/**
 * Golden test against the seed port reference: for each size (and, small/medium, each mux choice), the default
 * configuration widened to every feature the seed lists must produce a flow for every row of the seed.
 * Where the seed contradicts itself, a named decision below says what Crossway does instead (docs/ports.md).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/load.ts';
import type { CrosswayConfigInput, DeploymentSize } from '../../src/config/schema.ts';
import { computePortPlan, NOT_OPENED, type PortPlan, span, UNPRIVILEGED } from '../../src/ports/index.ts';
import {
  describeAtom,
  flowMatches,
  inferEdgeSide,
  loadSeedRows,
  normaliseRow,
  type SeedAtom,
  type SeedContext,
  type SeedRow,
} from './seed-normalise.ts';

const ZONES = 2;

/** Every feature the seed lists: traversal zones, SIP UDP/TCP on the edge, H.323, TURN, SNMP, LDAP, feedback. */
function widened(size: DeploymentSize, mux: SeedContext['mux']): CrosswayConfigInput {
  return {
    role: 'lab',
    size,
    traversalZones: Array.from({ length: ZONES }, (_, i) => ({ name: `zone${i + 1}` })),
    sip: { transports: { udp: { enabled: true }, tcp: { enabled: true } } },
    h323: { enabled: true },
    turn: { enabled: true },
    media: { muxPorts: mux },
    management: { snmp: true, https: true },
    ldap: { servers: [{ url: 'ldap://10.9.0.10' }, { url: 'ldaps://10.9.0.10' }] },
    feedback: { subscribers: [{ url: 'http://10.9.0.20/events' }, { url: 'https://10.9.0.20/events' }] },
  };
}

interface Decision {
  name: string;
  /** Which seed rows it is about. */
  applies(row: SeedRow, atom: SeedAtom, ctx: SeedContext): boolean;
  /** The atom Crossway produces instead. */
  apply(atom: SeedAtom, ctx: SeedContext): SeedAtom;
}

/** The seed's contradictions, each named by its row, with the decision taken (also in docs/ports.md). */
const DECISIONS: Decision[] = [
  {
    name:
      'row "HTTP Management of Expressway-C" has destination "Expressway-E private IP": a copy-paste slip (its SNMP ' +
      'and HTTPS siblings go to Expressway-C); Crossway opens HTTP on the core',
    applies: (row) => row.purpose === 'HTTP Management of Expressway-C' && row.dst === 'Expressway-E private IP',
    apply: (a) => ({ ...a, to: { peers: ['core'] } }),
  },
  {
    name:
      'small/medium mux ports: the SIP table says "2776 or 36000", the H.323 table only "2776"; Crossway makes it ' +
      'a setting (media.muxPorts, default 36000/36001) and uses the same pair for SIP and H.323',
    applies: (_row, atom, ctx) =>
      ctx.size !== 'large' && ctx.mux === 'default-36000' && atom.contradiction !== undefined,
    apply: (a) => ({
      ...a,
      toPorts: span(a.toPorts.from === 2776 ? 36000 : 36001, a.toPorts.from === 2776 ? 36000 : 36001),
    }),
  },
  {
    name:
      'row "Q.931 / H.225 signaling" from "Any (endpoint in the Internet)" gives source port 1720: a TCP client ' +
      'connects from an ephemeral port; Crossway allows >=1024 (which includes 1720)',
    applies: (row) => row.purpose === 'Q.931 / H.225 signaling' && row.src === 'Any (endpoint in the Internet)',
    apply: (a) => ({ ...a, fromPorts: UNPRIVILEGED }),
  },
];

function atomsFor(ctx: SeedContext, used?: Set<string>): SeedAtom[] {
  const rows = loadSeedRows();
  const out: SeedAtom[] = [];
  rows.forEach((row, i) => {
    for (let atom of normaliseRow(row, i, ctx)) {
      for (const d of DECISIONS) {
        if (d.applies(row, atom, ctx)) {
          atom = d.apply(atom, ctx);
          used?.add(d.name);
          const { contradiction: _, ...rest } = atom;
          atom = rest;
        }
      }
      out.push(atom);
    }
  });
  return out;
}

/** Planned: opened (`plan.flows`) or listed as not opened yet (`plan.notOpened.flows`). */
function covered(plan: PortPlan, a: SeedAtom): boolean {
  return [...plan.flows, ...plan.notOpened.flows].some((f) => flowMatches(f, a));
}

/**
 * The seed rows Crossway plans but does not open yet (docs/ports.md, "Not opened yet"), by the feature missing:
 * every other row is opened. Keyed by destination port (small/medium legacy and large alike).
 */
function notOpenedRows(ctx: SeedContext): Record<string, string> {
  const mux = ctx.size !== 'large' && ctx.mux === 'legacy-2776' ? 2776 : 36000;
  return {
    ...NOT_OPENED_ROWS,
    [`RTP (multiplexed traversal media) core→edge(private) ${mux}`]: NOT_OPENED.h323Traversal,
    [`RTCP (multiplexed traversal media) core→edge(private) ${mux + 1}`]: NOT_OPENED.h323Traversal,
    'RTP (non-multiplexed traversal media) core→edge(private) 36000': NOT_OPENED.h323Traversal,
    'RTCP (non-multiplexed traversal media) core→edge(private) 36001': NOT_OPENED.h323Traversal,
  };
}

const NOT_OPENED_ROWS: Record<string, string> = {
  'Initial RAS connection core→edge(private) 6001': NOT_OPENED.h323Traversal,
  'Initial RAS connection core→edge(private) 6002': NOT_OPENED.h323Traversal,
  'Q.931 / H.225 signaling internet→edge(public) 2776': NOT_OPENED.assent,
  'Q.931 / H.225 signaling core→edge(private) 2776': NOT_OPENED.assent,
  'Q.931 / H.225 signaling core→edge(private) 1720': NOT_OPENED.h46018,
  'H.245 core→edge(private) 2776': NOT_OPENED.assent,
  'H.245 core→edge(private) 2777': NOT_OPENED.h46018,
  'H.245 internet→edge(public) 2776': NOT_OPENED.assent,
  'H.245 internet→edge(public) 2777': NOT_OPENED.h46018,
};

function notOpenedKey(plan: PortPlan, a: SeedAtom): string | undefined {
  const f = plan.notOpened.flows.find((x) => flowMatches(x, a));
  if (!f) return undefined;
  const end = (e: typeof f.from) => `${e.peer}${e.side ? `(${e.side})` : ''}`;
  return `${f.purpose} ${end(f.from)}→${end(f.to)} ${f.to.ports.from}`;
}

const CASES: SeedContext[] = [
  { size: 'small', mux: 'default-36000', zones: ZONES },
  { size: 'small', mux: 'legacy-2776', zones: ZONES },
  { size: 'medium', mux: 'default-36000', zones: ZONES },
  { size: 'medium', mux: 'legacy-2776', zones: ZONES },
  { size: 'large', mux: 'default-36000', zones: ZONES },
];

describe('port plan against the seed port reference', () => {
  it('reads all 59 rows of the seed', () => {
    const rows = loadSeedRows();
    assert.equal(rows.length, 59);
    assert.deepEqual([...new Set(rows.map((r) => r.table))], ['SIP', 'H.323', 'TMS', 'LDAP']);
  });

  for (const ctx of CASES) {
    it(`covers every seed row: ${ctx.size}, mux ${ctx.mux}, ${ctx.zones} zones`, () => {
      const plan = computePortPlan(defaultConfig(widened(ctx.size, ctx.mux)));
      const atoms = atomsFor(ctx);
      assert.ok(atoms.length >= 59, `only ${atoms.length} atoms`);
      const unresolved = atoms.filter((a) => a.contradiction);
      assert.deepEqual(unresolved.map(describeAtom), [], 'seed contradictions without a decision');
      const missing = atoms.filter((a) => !covered(plan, a)).map(describeAtom);
      assert.deepEqual(missing, [], `seed rows with no generated flow:\n${missing.join('\n')}`);
      // Rows planned but not opened: exactly the named ones, each with its reason; every other row is opened.
      const later = new Map<string, string>();
      for (const a of atoms) {
        if (plan.flows.some((f) => flowMatches(f, a))) continue;
        const key = notOpenedKey(plan, a);
        assert.ok(key, describeAtom(a));
        later.set(key, plan.notOpened.flows.find((f) => flowMatches(f, a))!.notOpened);
      }
      assert.deepEqual(
        Object.fromEntries([...later].sort()),
        Object.fromEntries(Object.entries(notOpenedRows(ctx)).sort()),
      );
    });
  }

  it('infers the side of a plain "Expressway-E" from the other end, so a flow on the wrong side fails', () => {
    const ctx = CASES[0]!;
    const plan = computePortPlan(defaultConfig(widened(ctx.size, ctx.mux)));
    const seed = loadSeedRows();
    const plain = atomsFor(ctx).filter((a) => {
      const r = seed[a.row]!;
      return /^expressway-e[†‡\s]*$/i.test(r.src) || /^expressway-e[†‡\s]*$/i.test(r.dst);
    });
    assert.ok(plain.length >= 15, `only ${plain.length} atoms with a sideless Expressway-E`);
    for (const a of plain) {
      const edgeEnd = a.from.peers.includes('edge') ? a.from : a.to;
      const other = edgeEnd === a.from ? a.to : a.from;
      assert.equal(edgeEnd.side, other.peers.includes('core') ? 'private' : 'public', describeAtom(a));
      // the same row on the other side of the edge is not planned
      const flip = { ...edgeEnd, side: edgeEnd.side === 'public' ? ('private' as const) : ('public' as const) };
      const flipped: SeedAtom = edgeEnd === a.from ? { ...a, from: flip } : { ...a, to: flip };
      assert.equal(covered(plan, flipped), false, `covered on the wrong side: ${describeAtom(flipped)}`);
    }
    // and a plan that puts a flow on the wrong side fails the golden comparison
    const sip5061 = plain.find((a) => a.protocol === 'tls' && a.toPorts.from === 5061)!;
    const moved = plan.flows.map((f) =>
      f.to.peer === 'edge' && f.to.side === 'public' && f.to.ports.from === 5061
        ? { ...f, to: { ...f.to, side: 'private' as const } }
        : f,
    );
    assert.ok(plan.flows.some((f) => flowMatches(f, sip5061)));
    assert.ok(!moved.some((f) => flowMatches(f, sip5061)), 'a 5061 flow moved to the private side still matches');
    assert.throws(
      () => inferEdgeSide({ peers: ['edge'] }, { peers: ['directory'] }, 'Expressway-E'),
      /cannot tell the edge side/,
    );
  });

  it('applies each named decision, and only where the seed contradicts itself', () => {
    const used = new Set<string>();
    for (const ctx of CASES) atomsFor(ctx, used);
    assert.deepEqual([...used].sort(), DECISIONS.map((d) => d.name).sort());
    // The mux decision is about the H.323 rows only: the SIP rows offer 36000 themselves.
    const h323Mux = atomsFor({ size: 'small', mux: 'default-36000', zones: ZONES }).filter(
      (a) => a.table === 'H.323' && a.purpose.includes('(multiplexed traversal media)') && a.toPorts.from === 36000,
    );
    assert.ok(h323Mux.length >= 2);
  });

  it('fails on a wrong port: every row with its destination moved by 3 is not covered', () => {
    for (const ctx of CASES) {
      const plan = computePortPlan(defaultConfig(widened(ctx.size, ctx.mux)));
      for (const a of atomsFor(ctx)) {
        const wrong = { ...a, toPorts: span(a.toPorts.from + 3, a.toPorts.to + 3, a.toPorts.step) };
        assert.equal(covered(plan, wrong), false, `covered with a wrong port: ${describeAtom(wrong)}`);
        const wrongSrc = { ...a, fromPorts: span(a.fromPorts.from + 3, a.fromPorts.to + 3, a.fromPorts.step) };
        assert.equal(covered(plan, wrongSrc), false, `covered with a wrong source port: ${describeAtom(wrongSrc)}`);
      }
    }
  });

  it('fails on a wrong direction: a row turned around is not covered unless the seed lists that direction too', () => {
    const ctx = CASES[0]!;
    const plan = computePortPlan(defaultConfig(widened(ctx.size, ctx.mux)));
    const atoms = atomsFor(ctx);
    let checked = 0;
    for (const a of atoms) {
      const back: SeedAtom = { ...a, from: a.to, to: a.from, fromPorts: a.toPorts, toPorts: a.fromPorts };
      const listed = atoms.some(
        (b) =>
          b.purpose === back.purpose &&
          b.protocol === back.protocol &&
          JSON.stringify([b.from, b.to, b.fromPorts, b.toPorts]) ===
            JSON.stringify([back.from, back.to, back.fromPorts, back.toPorts]),
      );
      // The core serves inside endpoints in both directions (they register with it): not a firewall flow.
      if (listed || a.to.peers.includes('inside-endpoint')) continue;
      // Named extra beyond the seed: with SIP UDP enabled on the edge, the edge sends from 5060 to endpoints
      // (the seed lists the same flow for the core, row 1, and leaves it out for the edge).
      if (a.row === 4 && a.protocol === 'udp') {
        assert.equal(covered(plan, back), true, 'edge 5060/UDP → endpoints is planned when UDP is on');
        continue;
      }
      checked++;
      assert.equal(covered(plan, back), false, `covered turned around: ${describeAtom(back)}`);
    }
    assert.ok(checked > 50, `only ${checked} rows could be turned around`);
  });

  it('is size-sensitive: a small plan does not cover the large rows (TURN 3478-3483, mux 36000-36010)', () => {
    const small = computePortPlan(defaultConfig(widened('small', 'default-36000')));
    const largeAtoms = atomsFor({ size: 'large', mux: 'default-36000', zones: ZONES });
    const missing = largeAtoms.filter((a) => !covered(small, a));
    const rows = new Set(missing.map((a) => a.row));
    const seed = loadSeedRows();
    const purposes = new Set([...rows].map((r) => seed[r]!.purpose));
    assert.ok(purposes.has('TURN control'));
    assert.ok(purposes.has('RTP (multiplexed traversal media)'));
    assert.ok(purposes.has('Assent RTCP (traversed media)'));
  });

  it('is feature-sensitive: without H.323, TURN, LDAP the matching rows are not covered', () => {
    const ctx = CASES[0]!;
    const cfg = widened(ctx.size, ctx.mux);
    const plan = computePortPlan(
      defaultConfig({ ...cfg, h323: { enabled: false }, turn: { enabled: false }, ldap: { servers: [] } }),
    );
    const atoms = atomsFor(ctx);
    const seed = loadSeedRows();
    for (const a of atoms) {
      const t = seed[a.row]!;
      const off = t.table === 'H.323' || t.table === 'LDAP' || t.purpose.startsWith('TURN');
      assert.equal(covered(plan, a), !off, describeAtom(a));
    }
  });
});
