import fc from 'fast-check';
import type { BitString } from '../../src/h323/per/codec.ts';
import type { Desc } from '../../src/h323/per/descriptor.ts';

/**
 * Values made from the generated descriptors, for tests: `minimalValue` (the smallest value of a type, deterministic)
 * and `arbitraryOf` (fast-check arbitraries). Recursive types are bounded by each descriptor's minimal depth.
 */

const minDepthCache = new Map<Desc, number>();

/** Smallest nesting a value of `d` needs (Infinity while being computed: breaks cycles). */
export function minDepth(d: Desc, seen = new Set<Desc>()): number {
  const c = minDepthCache.get(d);
  if (c !== undefined) return c;
  if (seen.has(d)) return Number.POSITIVE_INFINITY;
  seen.add(d);
  let r: number;
  switch (d.k) {
    case 'seq':
      r = 1 + Math.max(0, ...d.fields.filter((f) => !f.optional).map((f) => minDepth(f.type, seen)));
      break;
    case 'seqof':
      r = d.lb === 0 ? 1 : 1 + minDepth(d.item, seen);
      break;
    case 'choice':
      r = 1 + Math.min(...d.root.map((f) => minDepth(f.type, seen)));
      break;
    case 'open':
      r = d.inner ? minDepth(d.inner, seen) : 0;
      break;
    default:
      r = 0;
  }
  seen.delete(d);
  if (Number.isFinite(r)) minDepthCache.set(d, r);
  return r;
}

function firstChar(d: Extract<Desc, { k: 'str' }>): string {
  if (d.alphabet) return String.fromCodePoint(d.alphabet[0]!);
  if (d.permitted) return String.fromCodePoint(Math.min(...d.permitted));
  if (d.b === 0) return 'a';
  return d.kind === 'NumericString' ? '1' : 'a';
}

/** The smallest value of a type: lower bounds, first alternatives that terminate, no optional components. */
export function minimalValue(d: Desc): unknown {
  switch (d.k) {
    case 'bool':
      return false;
    case 'null':
      return null;
    case 'oid':
      return '0.0.8.2250.0.7';
    case 'int':
      return d.lb ?? 0;
    case 'enum':
      return d.root[0];
    case 'bits':
      return { length: d.lb, data: new Uint8Array((d.lb + 7) >> 3) } satisfies BitString;
    case 'oct':
      return new Uint8Array(d.lb);
    case 'str':
      return firstChar(d).repeat(d.lb);
    case 'seq': {
      const o: Record<string, unknown> = {};
      for (const f of d.fields) if (!f.optional) o[f.name] = minimalValue(f.type);
      for (const a of d.additions) for (const f of a.fields) if (!f.optional) o[f.name] = minimalValue(f.type);
      return o;
    }
    case 'seqof':
      return Array.from({ length: d.lb }, () => minimalValue(d.item));
    case 'choice': {
      let best = d.root[0]!;
      for (const f of d.root) if (minDepth(f.type) < minDepth(best.type)) best = f;
      return { choice: best.name, value: minimalValue(best.type) };
    }
    case 'open':
      return d.inner ? minimalValue(d.inner) : new Uint8Array(1);
  }
}

function charArb(d: Extract<Desc, { k: 'str' }>): fc.Arbitrary<string> {
  if (d.alphabet) return fc.constantFrom(...Array.from(d.alphabet, (c) => String.fromCodePoint(c)));
  if (d.permitted) return fc.constantFrom(...Array.from(d.permitted, (c) => String.fromCodePoint(c)));
  if (d.b === 0) return fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
  if (d.kind === 'NumericString') return fc.constantFrom(...' 0123456789');
  return fc
    .integer({ min: d.kind === 'VisibleString' ? 32 : 0, max: Math.min(d.maxCode, 0xd7ff) })
    .map((c) => String.fromCodePoint(c));
}

/** Integers beyond fast-check's 32-bit `integer`. */
function intIn(min: number, max: number): fc.Arbitrary<number> {
  return fc.bigInt({ min: BigInt(min), max: BigInt(max) }).map(Number);
}

function sizeArb(lb: number, ub: number | undefined, cap: number): fc.Arbitrary<number> {
  return fc.integer({ min: lb, max: Math.max(lb, Math.min(ub ?? lb + cap, lb + cap)) });
}

/** A fast-check arbitrary of values of `d`; `depth` bounds nesting, `cap` bounds sizes above the lower bound. */
export function arbitraryOf(d: Desc, depth = 12, cap = 3): fc.Arbitrary<unknown> {
  const tooDeep = (t: Desc) => minDepth(t) > depth - 1;
  switch (d.k) {
    case 'bool':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'oid':
      return fc
        .tuple(
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 39 }),
          fc.array(intIn(0, 2 ** 40), { maxLength: 4 }),
        )
        .map(([a, b, rest]) => [a, b, ...rest].join('.'));
    case 'int': {
      if (d.lb !== undefined && d.ub !== undefined) {
        const root = intIn(d.lb, d.ub);
        return d.ext ? fc.oneof(root, intIn(d.ub + 1, d.ub + 100000)) : root;
      }
      if (d.lb !== undefined) return intIn(d.lb, d.lb + 2 ** 40);
      return fc.oneof(
        intIn(-(2 ** 40), 2 ** 40),
        fc
          .bigInt({ min: -(2n ** 100n), max: 2n ** 100n })
          .filter((b) => b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER)),
      );
    }
    case 'enum':
      return fc.constantFrom(...d.root, ...(d.ext ?? []));
    case 'bits':
      return sizeArb(d.lb, d.ub, cap * 8).chain((n) =>
        fc.uint8Array({ minLength: (n + 7) >> 3, maxLength: (n + 7) >> 3 }).map((data) => {
          if (n & 7) data[data.length - 1]! &= (0xff << (8 - (n & 7))) & 0xff;
          return { length: n, data } satisfies BitString;
        }),
      );
    case 'oct':
      return sizeArb(d.lb, d.ub, cap * 4).chain((n) => fc.uint8Array({ minLength: n, maxLength: n }));
    case 'str':
      return sizeArb(d.lb, d.ub, cap * 3).chain((n) =>
        fc.array(charArb(d), { minLength: n, maxLength: n }).map((a) => a.join('')),
      );
    case 'seq': {
      const parts: Record<string, fc.Arbitrary<unknown>> = {};
      const required: string[] = [];
      for (const f of d.fields) {
        if (f.optional && tooDeep(f.type)) continue;
        parts[f.name] = arbitraryOf(f.type, depth - 1, cap);
        if (!f.optional) required.push(f.name);
      }
      const groups: Array<fc.Arbitrary<Record<string, unknown>>> = [];
      for (const a of d.additions) {
        if (a.fields.some((f) => !f.optional && tooDeep(f.type))) continue;
        const g: Record<string, fc.Arbitrary<unknown>> = {};
        const req: string[] = [];
        for (const f of a.fields) {
          if (f.optional && tooDeep(f.type)) continue;
          g[f.name] = arbitraryOf(f.type, depth - 1, cap);
          if (!f.optional) req.push(f.name);
        }
        groups.push(
          fc.option(fc.record(g, { requiredKeys: req }), { nil: {} as Record<string, unknown> }) as fc.Arbitrary<
            Record<string, unknown>
          >,
        );
      }
      return fc
        .tuple(fc.record(parts, { requiredKeys: required }), ...groups)
        .map(([root, ...adds]) => Object.assign({}, root, ...adds));
    }
    case 'seqof': {
      if (d.lb === 0 && tooDeep(d.item)) return fc.constant([]);
      return fc.array(arbitraryOf(d.item, depth - 1, cap), {
        minLength: d.lb,
        maxLength: Math.max(d.lb, Math.min(d.ub ?? d.lb + cap, d.lb + cap)),
      });
    }
    case 'choice': {
      const alts = [...d.root, ...(d.ext ?? [])].filter((f) => !tooDeep(f.type));
      const use = alts.length ? alts : [d.root.reduce((a, b) => (minDepth(b.type) < minDepth(a.type) ? b : a))];
      return fc.oneof(
        ...use.map((f) => arbitraryOf(f.type, depth - 1, cap).map((value) => ({ choice: f.name, value }))),
      );
    }
    case 'open':
      return d.inner ? arbitraryOf(d.inner, depth, cap) : fc.uint8Array({ minLength: 1, maxLength: 8 });
  }
}
