import type { RawField, RawNode, StringKind } from '../per/descriptor.ts';
import type { Component, Constraint, Elem, Module, Tag, TypeNode, Value } from './ast.ts';

/**
 * Compiles parsed ASN.1 modules into the PER descriptor table (`RawNode[]`) and TypeScript type declarations.
 * Names are scoped per module as X.680 says (several modules define `NonStandardParameter`); TypeScript names get a
 * module prefix only where a name is defined more than once.
 */

interface Ctx {
  module: string;
  /** Actual parameters of a parameterised type being instantiated. */
  params?: Map<string, { type: TypeNode; ctx: Ctx }>;
}

interface Sum {
  lo?: bigint;
  hi?: bigint;
  hasRange: boolean;
  size?: { lo?: bigint; hi?: bigint; ext: boolean };
  alpha?: Set<string>;
  inner?: { type: TypeNode; ctx: Ctx };
  ext: boolean;
}

const MODULE_PREFIX: Record<string, string> = {
  'H323-MESSAGES': 'H225',
  'MULTIMEDIA-SYSTEM-CONTROL': 'H245',
  'H235-SECURITY-MESSAGES': 'H235',
};

export interface CompiledSchema {
  table: RawNode[];
  /** TypeScript name → table index, for every non-parameterised type assignment. */
  named: Record<string, number>;
  /** TypeScript name → ASN.1 `Module.Type`. */
  asn1Names: Record<string, string>;
  /** TypeScript declarations of every type assignment. */
  typesSource: string;
}

export class Compiler {
  readonly #mods = new Map<string, Module>();
  readonly #defs = new Map<string, Map<string, Module['assignments'][number]>>();
  readonly #imports = new Map<string, Map<string, string>>();
  readonly #defCount = new Map<string, number>();
  readonly table: RawNode[] = [];
  readonly #named = new Map<string, number>();
  readonly #inst = new Map<string, number>();

  constructor(modules: Module[]) {
    for (const m of modules) {
      this.#mods.set(m.name, m);
      const defs = new Map<string, Module['assignments'][number]>();
      for (const a of m.assignments) {
        defs.set(a.name, a);
        if (a.type) this.#defCount.set(a.name, (this.#defCount.get(a.name) ?? 0) + 1);
      }
      this.#defs.set(m.name, defs);
      const imp = new Map<string, string>();
      for (const i of m.imports) for (const s of i.symbols) imp.set(s, i.from);
      this.#imports.set(m.name, imp);
    }
  }

  /** The TypeScript name of `module.name`. */
  tsName(module: string, name: string): string {
    const base = name.replace(/-/g, '_');
    return (this.#defCount.get(name) ?? 0) > 1 ? `${MODULE_PREFIX[module] ?? module.replace(/-/g, '_')}_${base}` : base;
  }

  #lookup(module: string, name: string): { module: string; a: Module['assignments'][number] } {
    const a = this.#defs.get(module)?.get(name);
    if (a) return { module, a };
    const from = this.#imports.get(module)?.get(name);
    if (from) return this.#lookup(from, name);
    throw new Error(`${module}: undefined reference ${name}`);
  }

  compileAll(): CompiledSchema {
    const named: Record<string, number> = {};
    const asn1Names: Record<string, string> = {};
    for (const [mname, m] of this.#mods) {
      for (const a of m.assignments) {
        if (!a.type || a.params) continue;
        const ts = this.tsName(mname, a.name);
        named[ts] = this.#namedIndex(mname, a.name);
        asn1Names[ts] = `${mname}.${a.name}`;
      }
    }
    return { table: this.table, named, asn1Names, typesSource: this.#emitTypes() };
  }

  #namedIndex(module: string, name: string): number {
    const { module: m, a } = this.#lookup(module, name);
    const key = `${m}.${a.name}`;
    const have = this.#named.get(key);
    if (have !== undefined) return have;
    if (!a.type) throw new Error(`${key} is not a type`);
    const idx = this.table.length;
    this.table.push({ k: 'null' });
    this.#named.set(key, idx);
    const body = this.#node(a.type, { module: m }, [], a.name);
    this.table[idx] = body;
    return idx;
  }

  #push(n: RawNode): number {
    this.table.push(n);
    return this.table.length - 1;
  }

  /** Compiles a type to a table index, reusing a named type's index when no constraint is added. */
  #index(t: TypeNode, ctx: Ctx, extra: Array<{ c: Constraint; ctx: Ctx }> = [], hint?: string): number {
    const own = (t.constraints ?? []).map((c) => ({ c, ctx }));
    const all = [...own, ...extra];
    if (t.t === 'ref') {
      const p = t.module ? undefined : ctx.params?.get(t.name);
      if (p) return this.#index(p.type, p.ctx, all, hint);
      const { module: m, a } = this.#lookup(t.module ?? ctx.module, t.name);
      if (!a.type) throw new Error(`${t.name} is not a type`);
      if (a.params) {
        const args = t.args ?? [];
        const params = new Map<string, { type: TypeNode; ctx: Ctx }>();
        a.params.forEach((pn, i) => {
          const arg = args[i];
          if (!arg) throw new Error(`${t.name}: missing parameter ${pn}`);
          params.set(pn, { type: arg, ctx });
        });
        const key = `${m}.${a.name}{${args.map((x) => JSON.stringify(x)).join(',')}}@${ctx.module}`;
        if (all.length === 0) {
          const have = this.#inst.get(key);
          if (have !== undefined) return have;
        }
        const idx = this.#push({ k: 'null' });
        if (all.length === 0) this.#inst.set(key, idx);
        this.table[idx] = this.#node(a.type, { module: m, params }, all, a.name);
        return idx;
      }
      if (all.length === 0 || !this.#visible(a.type, { module: m }, all)) return this.#namedIndex(m, a.name);
      const idx = this.#push({ k: 'null' });
      this.table[idx] = this.#node(a.type, { module: m }, all, a.name);
      return idx;
    }
    const idx = this.#push({ k: 'null' });
    this.table[idx] = this.#node({ ...t, constraints: [] } as TypeNode, ctx, all, hint);
    return idx;
  }

  /** Whether added constraints change the PER encoding of the referenced type. */
  #visible(t: TypeNode, ctx: Ctx, cs: Array<{ c: Constraint; ctx: Ctx }>): boolean {
    const base = this.#resolveBase(t, ctx);
    if (['SEQUENCE', 'SET', 'CHOICE', 'NULL', 'BOOLEAN', 'OBJECT IDENTIFIER', 'ENUMERATED'].includes(base.t))
      return false;
    return cs.length > 0;
  }

  #resolveBase(t: TypeNode, ctx: Ctx): TypeNode {
    let cur = t;
    let c = ctx;
    for (let i = 0; i < 50 && cur.t === 'ref'; i++) {
      const p = c.params?.get(cur.name);
      if (p) {
        cur = p.type;
        c = p.ctx;
        continue;
      }
      const { module: m, a } = this.#lookup(cur.module ?? c.module, cur.name);
      cur = a.type!;
      c = { module: m };
    }
    return cur;
  }

  #node(t: TypeNode, ctx: Ctx, extra: Array<{ c: Constraint; ctx: Ctx }>, hint?: string): RawNode {
    const cs = [...(t.constraints ?? []).map((c) => ({ c, ctx })), ...extra];
    if (t.t === 'ref') {
      // a reference with constraints: compile the referenced type's body with them
      const p = t.module ? undefined : ctx.params?.get(t.name);
      if (p)
        return this.#node(
          p.type,
          p.ctx,
          cs.filter((x) => !(t.constraints ?? []).includes(x.c)).concat((t.constraints ?? []).map((c) => ({ c, ctx }))),
          hint,
        );
      const { module: m, a } = this.#lookup(t.module ?? ctx.module, t.name);
      if (a.params || !this.#visible(a.type!, { module: m }, cs))
        return this.table[this.#index({ ...t, constraints: [] } as TypeNode, ctx)]!;
      return this.#node(a.type!, { module: m }, cs, a.name);
    }
    const s = this.#summarize(cs);
    switch (t.t) {
      case 'BOOLEAN':
        return { k: 'bool' };
      case 'NULL':
        return { k: 'null' };
      case 'OBJECT IDENTIFIER':
        return { k: 'oid' };
      case 'INTEGER': {
        const n: Extract<RawNode, { k: 'int' }> = { k: 'int' };
        if (s.lo !== undefined) n.lb = num(s.lo);
        if (s.hi !== undefined) n.ub = num(s.hi);
        if (s.ext && s.hasRange) n.x = 1;
        return n;
      }
      case 'ENUMERATED': {
        // X.691 §14.1: root items are sorted by their value
        let next = 0n;
        const used = new Set(t.root.filter((r) => r.value !== undefined).map((r) => r.value!));
        const vals = t.root.map((r) => {
          if (r.value !== undefined) return { name: r.name, v: r.value };
          while (used.has(next)) next++;
          used.add(next);
          return { name: r.name, v: next };
        });
        vals.sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0));
        const n: Extract<RawNode, { k: 'enum' }> = { k: 'enum', r: vals.map((v) => v.name) };
        if (t.extensible) {
          n.x = 1;
          if (t.additions.length) n.e = t.additions.map((a) => a.name);
        }
        return n;
      }
      case 'BIT STRING':
      case 'OCTET STRING': {
        const n: Extract<RawNode, { k: 'bits' | 'oct' }> = { k: t.t === 'BIT STRING' ? 'bits' : 'oct', lb: 0 };
        applySize(n, s);
        return n;
      }
      case 'string': {
        const n: Extract<RawNode, { k: 'str' }> = { k: 'str', s: t.kind as StringKind, lb: 0 };
        if (t.kind === 'ISO646String') n.s = 'VisibleString';
        if (
          [
            'IA5String',
            'PrintableString',
            'NumericString',
            'VisibleString',
            'BMPString',
            'UniversalString',
            'ISO646String',
          ].includes(t.kind)
        ) {
          applySize(n, s);
          if (s.alpha) n.a = [...s.alpha].sort().join('');
        }
        return n;
      }
      case 'SEQUENCE OF': {
        const sizeCs = t.size ? [{ c: { root: { e: 'size', c: t.size } as Elem, extensible: false }, ctx }] : [];
        const s2 = this.#summarize([...sizeCs, ...cs]);
        const n: Extract<RawNode, { k: 'seqof' }> = { k: 'seqof', t: this.#index(t.item, ctx), lb: 0 };
        applySize(n, s2);
        return n;
      }
      case 'SEQUENCE':
      case 'SET': {
        const cl = t.components;
        const field = (c: Component): RawField => [c.name, this.#index(c.type, ctx, [], c.name), c.optional ? 1 : 0];
        let root = [...cl.root, ...cl.root2];
        // X.691 §21: a SET's root components are encoded in the canonical order of their tags (AUTOMATIC TAGS
        // numbers them in textual order, so only modules with written tags reorder)
        if (t.t === 'SET') root = this.#canonical(root, ctx);
        const n: Extract<RawNode, { k: 'seq' }> = { k: 'seq', f: root.map(field) };
        if (hint) n.n = hint;
        if (cl.extensible) {
          n.x = 1;
          if (cl.additions.length) n.e = cl.additions.map((a) => ('group' in a ? a.group.map(field) : field(a)));
        }
        return n;
      }
      case 'CHOICE': {
        const alt = (c: Component): [string, number] => [c.name, this.#index(c.type, ctx, [], c.name)];
        // X.691 §23: the root alternatives are indexed in the canonical order of their tags
        const n: Extract<RawNode, { k: 'choice' }> = { k: 'choice', r: this.#canonical(t.root, ctx).map(alt) };
        if (hint) n.n = hint;
        if (t.extensible) {
          n.x = 1;
          const adds = t.additions.flatMap((a) => ('group' in a ? a.group : [a]));
          if (adds.length) n.e = adds.map(alt);
        }
        return n;
      }
      case 'open': {
        const n: Extract<RawNode, { k: 'open' }> = { k: 'open' };
        if (s.inner) n.t = this.#index(s.inner.type, s.inner.ctx);
        return n;
      }
    }
  }

  /** Components in canonical tag order (X.680 §8.6) when the module writes tags; else as written. */
  #canonical(comps: Component[], ctx: Ctx): Component[] {
    if (this.#mods.get(ctx.module)?.tagDefault === 'AUTOMATIC' && comps.every((c) => !c.type.tag)) return comps;
    const rank = { UNIVERSAL: 0, APPLICATION: 1, CONTEXT: 2, PRIVATE: 3 } as const;
    const key = (c: Component) => {
      const tg = this.#tagOf(c.type, ctx, 0);
      return tg ? rank[tg.cls] * 1e9 + tg.num : Number.MAX_SAFE_INTEGER;
    };
    return comps
      .map((c, i) => ({ c, i, k: key(c) }))
      .sort((a, b) => a.k - b.k || a.i - b.i)
      .map((x) => x.c);
  }

  /** The outermost tag of a type: written, inherited through references, universal, or a CHOICE's smallest. */
  #tagOf(t: TypeNode, ctx: Ctx, depth: number): Tag | undefined {
    if (t.tag) return t.tag;
    if (depth > 50) return undefined;
    const universal: Record<string, number> = {
      BOOLEAN: 1,
      INTEGER: 2,
      'BIT STRING': 3,
      'OCTET STRING': 4,
      NULL: 5,
      'OBJECT IDENTIFIER': 6,
      ENUMERATED: 10,
      SEQUENCE: 16,
      'SEQUENCE OF': 16,
      SET: 17,
    };
    const strings: Record<string, number> = {
      UTF8String: 12,
      NumericString: 18,
      PrintableString: 19,
      TeletexString: 20,
      T61String: 20,
      IA5String: 22,
      GraphicString: 25,
      VisibleString: 26,
      ISO646String: 26,
      GeneralString: 27,
      UniversalString: 28,
      BMPString: 30,
    };
    switch (t.t) {
      case 'string':
        return { cls: 'UNIVERSAL', num: strings[t.kind] ?? 0 };
      case 'CHOICE': {
        const tags = t.root.map((c) => this.#tagOf(c.type, ctx, depth + 1)).filter((x): x is Tag => x !== undefined);
        const rank = { UNIVERSAL: 0, APPLICATION: 1, CONTEXT: 2, PRIVATE: 3 } as const;
        return tags.sort((a, b) => rank[a.cls] - rank[b.cls] || a.num - b.num)[0];
      }
      case 'ref': {
        const p = t.module ? undefined : ctx.params?.get(t.name);
        if (p) return this.#tagOf(p.type, p.ctx, depth + 1);
        const { module: m, a } = this.#lookup(t.module ?? ctx.module, t.name);
        return a.type ? this.#tagOf(a.type, { module: m }, depth + 1) : undefined;
      }
      case 'open':
        return undefined;
      default:
        return universal[t.t] === undefined ? undefined : { cls: 'UNIVERSAL', num: universal[t.t]! };
    }
  }

  #value(v: Value, ctx: Ctx): bigint | undefined {
    if (v.v === 'num') return v.n;
    if (v.v === 'min' || v.v === 'max') return undefined;
    if (v.v === 'ref') {
      const { module: m, a } = this.#lookup(ctx.module, v.name);
      if (!a.value) throw new Error(`${v.name} is not a value`);
      return this.#value(a.value, { module: m });
    }
    throw new Error(`unsupported value in a constraint: ${JSON.stringify(v)}`);
  }

  /** The PER-visible effect of serially applied constraints (X.691 §10.3): value range, size, alphabet. */
  #summarize(cs: Array<{ c: Constraint; ctx: Ctx }>): Sum {
    const out: Sum = { hasRange: false, ext: false };
    for (const { c, ctx } of cs) {
      const s = this.#constraint(c, ctx);
      if (s.hasRange) {
        out.hasRange = true;
        out.lo = maxB(out.lo, s.lo);
        out.hi = minB(out.hi, s.hi);
        out.ext = s.ext;
      }
      if (s.size)
        out.size = out.size
          ? { lo: maxB(out.size.lo, s.size.lo), hi: minB(out.size.hi, s.size.hi), ext: s.size.ext }
          : s.size;
      if (s.alpha) out.alpha = out.alpha ? new Set([...out.alpha].filter((ch) => s.alpha!.has(ch))) : s.alpha;
      if (s.inner) out.inner = s.inner;
    }
    return out;
  }

  #constraint(c: Constraint, ctx: Ctx): Sum {
    const s = this.#elem(c.root, ctx);
    if (c.extensible) {
      // an extensible constraint makes each dimension it constrains extensible
      if (s.hasRange) s.ext = true;
      if (s.size) s.size.ext = true;
      if (s.alpha) s.alpha = undefined; // X.691: an extensible permitted alphabet is not PER-visible
    }
    return s;
  }

  #elem(e: Elem, ctx: Ctx): Sum {
    switch (e.e) {
      case 'value': {
        if (e.value.v === 'str') return { hasRange: false, ext: false, alpha: new Set(e.value.s) };
        const n = this.#value(e.value, ctx);
        return { hasRange: true, lo: n, hi: n, ext: false };
      }
      case 'range': {
        if (e.lo.v === 'str' && e.hi.v === 'str') {
          const set = new Set<string>();
          for (let c = e.lo.s.codePointAt(0)!; c <= e.hi.s.codePointAt(0)!; c++) set.add(String.fromCodePoint(c));
          return { hasRange: false, ext: false, alpha: set };
        }
        return { hasRange: true, lo: this.#value(e.lo, ctx), hi: this.#value(e.hi, ctx), ext: false };
      }
      case 'size': {
        const s = this.#constraint(e.c, ctx);
        return { hasRange: false, ext: false, size: { lo: s.lo, hi: s.hi, ext: s.ext } };
      }
      case 'from': {
        const s = this.#constraint(e.c, ctx);
        return s.alpha ? { hasRange: false, ext: false, alpha: s.alpha } : { hasRange: false, ext: false };
      }
      case 'nested':
        return this.#constraint(e.c, ctx);
      case 'type':
        return { hasRange: false, ext: false, inner: { type: e.type, ctx } };
      case 'ignored':
        return { hasRange: false, ext: false };
      case 'inter': {
        const parts = e.items.map((x) => this.#elem(x, ctx));
        return this.#summarizeSums(parts, 'inter');
      }
      case 'union': {
        const parts = e.items.map((x) => this.#elem(x, ctx));
        return this.#summarizeSums(parts, 'union');
      }
    }
  }

  #summarizeSums(parts: Sum[], how: 'inter' | 'union'): Sum {
    const out: Sum = { hasRange: false, ext: parts.some((p) => p.ext) };
    if (how === 'inter') {
      for (const p of parts) {
        if (p.hasRange) {
          out.lo = out.hasRange ? maxB(out.lo, p.lo) : p.lo;
          out.hi = out.hasRange ? minB(out.hi, p.hi) : p.hi;
          out.hasRange = true;
        }
        if (p.size)
          out.size = out.size
            ? { lo: maxB(out.size.lo, p.size.lo), hi: minB(out.size.hi, p.size.hi), ext: out.size.ext && p.size.ext }
            : p.size;
        if (p.alpha) out.alpha = out.alpha ? new Set([...out.alpha].filter((c) => p.alpha!.has(c))) : p.alpha;
        if (p.inner) out.inner = p.inner;
      }
      return out;
    }
    // union: the bounding range; a dimension constrained in only some parts is unconstrained
    if (parts.every((p) => p.hasRange)) {
      out.hasRange = true;
      out.lo = parts.map((p) => p.lo).reduce((a, b) => (a === undefined || b === undefined ? undefined : minB(a, b)));
      out.hi = parts.map((p) => p.hi).reduce((a, b) => (a === undefined || b === undefined ? undefined : maxB(a, b)));
    }
    if (parts.every((p) => p.size)) {
      out.size = {
        lo: parts
          .map((p) => p.size!.lo)
          .reduce((a, b) => (a === undefined || b === undefined ? undefined : minB(a, b))),
        hi: parts
          .map((p) => p.size!.hi)
          .reduce((a, b) => (a === undefined || b === undefined ? undefined : maxB(a, b))),
        ext: parts.some((p) => p.size!.ext),
      };
    }
    if (parts.every((p) => p.alpha)) out.alpha = new Set(parts.flatMap((p) => [...p.alpha!]));
    return out;
  }

  // ───────────────────────────── TypeScript declarations ─────────────────────────────

  #emitTypes(): string {
    const lines: string[] = [];
    for (const [mname, m] of this.#mods) {
      lines.push(`// ── ${mname}`);
      for (const a of m.assignments) {
        if (!a.type) continue;
        const ts = this.tsName(mname, a.name);
        const params = a.params ? `<${a.params.map((p) => p.replace(/-/g, '_')).join(', ')}>` : '';
        lines.push(`/** ASN.1 \`${mname}.${a.name}\`. */`);
        lines.push(`export type ${ts}${params} = ${this.#tsType(a.type, mname, new Set(a.params ?? []), '')};`);
      }
    }
    return lines.join('\n');
  }

  #tsType(t: TypeNode, module: string, params: Set<string>, indent: string): string {
    const ind = `${indent}  `;
    switch (t.t) {
      case 'BOOLEAN':
        return 'boolean';
      case 'NULL':
        return 'null';
      case 'OBJECT IDENTIFIER':
        return 'string';
      case 'INTEGER': {
        const cs = t.constraints?.length
          ? this.#summarize(t.constraints.map((c) => ({ c, ctx: { module } })))
          : undefined;
        return cs?.lo !== undefined && cs.hi !== undefined && !cs.ext ? 'number' : 'number | bigint';
      }
      case 'ENUMERATED':
        return [...t.root, ...t.additions].map((r) => `'${r.name}'`).join(' | ') + (t.extensible ? ' | number' : '');
      case 'BIT STRING':
        return 'BitString';
      case 'OCTET STRING':
        return 'Uint8Array';
      case 'string':
        return 'string';
      case 'SEQUENCE OF':
        return `Array<${this.#tsType(t.item, module, params, indent)}>`;
      case 'open': {
        const inner = t.constraints?.map((c) => c.root).find((e) => e.e === 'type');
        return inner && inner.e === 'type' ? this.#tsType(inner.type, module, params, indent) : 'Uint8Array';
      }
      case 'ref': {
        if (!t.module && params.has(t.name)) return t.name.replace(/-/g, '_');
        const { module: m, a } = this.#lookup(t.module ?? module, t.name);
        const args = t.args ? `<${t.args.map((x) => this.#tsType(x, module, params, indent)).join(', ')}>` : '';
        return `${this.tsName(m, a.name)}${args}`;
      }
      case 'SEQUENCE':
      case 'SET': {
        const cl = t.components;
        const comps = [...cl.root, ...cl.root2];
        const adds = cl.additions.flatMap((a) =>
          'group' in a ? a.group.map((c) => ({ ...c, optional: true })) : [{ ...a, optional: true }],
        );
        const body = [...comps, ...adds].map(
          (c) => `${ind}${key(c.name)}${c.optional ? '?' : ''}: ${this.#tsType(c.type, module, params, ind)};`,
        );
        if (cl.extensible) body.push(`${ind}$unknown?: UnknownExtension[];`, `${ind}$extBits?: number;`);
        return body.length ? `{\n${body.join('\n')}\n${indent}}` : 'Record<string, never>';
      }
      case 'CHOICE': {
        const alts = [...t.root, ...t.additions.flatMap((a) => ('group' in a ? a.group : [a]))];
        const body = alts.map(
          (c) => `${ind}| { choice: '${c.name}'; value: ${this.#tsType(c.type, module, params, ind)} }`,
        );
        if (t.extensible) body.push(`${ind}| UnknownAlternative`);
        return `\n${body.join('\n')}`;
      }
    }
  }
}

function key(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : `'${name}'`;
}

function num(b: bigint): number {
  if (b > BigInt(Number.MAX_SAFE_INTEGER) || b < BigInt(Number.MIN_SAFE_INTEGER))
    throw new Error(`bound ${b} beyond 2^53`);
  return Number(b);
}

function maxB(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

function minB(a: bigint | undefined, b: bigint | undefined): bigint | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a < b ? a : b;
}

function applySize(n: { lb: number; ub?: number; x?: 1 }, s: Sum): void {
  if (!s.size) return;
  n.lb = s.size.lo === undefined ? 0 : num(s.size.lo);
  if (s.size.hi !== undefined) n.ub = num(s.size.hi);
  if (s.size.ext) n.x = 1;
}
