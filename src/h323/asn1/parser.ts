import type {
  Assignment,
  Component,
  ComponentList,
  Constraint,
  Elem,
  Module,
  NamedNumber,
  TypeNode,
  Value,
} from './ast.ts';
import { type Token, tokenize } from './lexer.ts';

const STRING_TYPES = new Set([
  'IA5String',
  'BMPString',
  'NumericString',
  'PrintableString',
  'VisibleString',
  'GeneralString',
  'UTF8String',
  'UniversalString',
  'GraphicString',
  'TeletexString',
  'T61String',
  'VideotexString',
  'ISO646String',
]);

/**
 * A recursive-descent parser for the X.680 subset used by the H.323 modules: module header, IMPORTS, type and
 * value assignments, parameterised type assignments (`SIGNED{ToBeSigned} ::= …`), extension markers, version
 * brackets and the subtype constraints PER can see. `WITH COMPONENTS` and `CONSTRAINED BY` are parsed and ignored.
 */
export class Parser {
  readonly #toks: Token[];
  #i = 0;

  constructor(text: string) {
    this.#toks = tokenize(text);
  }

  /** Parses every module in the text. */
  parseModules(): Module[] {
    const mods: Module[] = [];
    while (this.#i < this.#toks.length) mods.push(this.#module());
    return mods;
  }

  #peek(k = 0): Token | undefined {
    return this.#toks[this.#i + k];
  }
  #is(text: string, k = 0): boolean {
    const t = this.#peek(k);
    return t !== undefined && t.text === text && t.kind !== 'str';
  }
  #next(): Token {
    const t = this.#toks[this.#i++];
    if (!t) throw new Error('unexpected end of module');
    return t;
  }
  #expect(text: string): Token {
    const t = this.#next();
    if (t.text !== text || t.kind === 'str') throw new Error(`line ${t.line}: expected "${text}", found "${t.text}"`);
    return t;
  }
  #accept(text: string): boolean {
    if (this.#is(text)) {
      this.#i++;
      return true;
    }
    return false;
  }
  #ident(): string {
    const t = this.#next();
    if (t.kind !== 'id') throw new Error(`line ${t.line}: expected an identifier, found "${t.text}"`);
    return t.text;
  }
  /** Skips a balanced `{ … }` or `( … )` block starting at the current token. */
  #skipBalanced(): void {
    const open = this.#next().text;
    const close = open === '{' ? '}' : ')';
    let depth = 1;
    while (depth > 0) {
      const t = this.#next();
      if (t.kind === 'str') continue;
      if (t.text === open) depth++;
      else if (t.text === close) depth--;
    }
  }

  #module(): Module {
    const name = this.#ident();
    if (this.#is('{')) this.#skipBalanced();
    this.#expect('DEFINITIONS');
    let tagDefault: Module['tagDefault'] = 'EXPLICIT';
    while (!this.#is('::=')) {
      const w = this.#next().text; // AUTOMATIC TAGS, EXTENSIBILITY IMPLIED …
      if (w === 'AUTOMATIC' || w === 'IMPLICIT' || w === 'EXPLICIT') tagDefault = w;
    }
    this.#expect('::=');
    this.#expect('BEGIN');
    const mod: Module = { name, tagDefault, imports: [], assignments: [] };
    if (this.#accept('EXPORTS')) while (!this.#accept(';')) this.#next();
    if (this.#accept('IMPORTS')) {
      let symbols: string[] = [];
      while (!this.#accept(';')) {
        if (this.#accept('FROM')) {
          const from = this.#ident();
          if (this.#is('{')) this.#skipBalanced();
          mod.imports.push({ from, symbols });
          symbols = [];
          continue;
        }
        if (this.#accept(',')) continue;
        symbols.push(this.#ident());
        if (this.#is('{') && this.#is('}', 1)) this.#i += 2; // SIGNED{}
      }
    }
    while (!this.#accept('END')) mod.assignments.push(this.#assignment());
    return mod;
  }

  #assignment(): Assignment {
    const name = this.#ident();
    if (/^[a-z]/.test(name)) {
      const valueType = this.#type();
      this.#expect('::=');
      return { name, valueType, value: this.#value() };
    }
    let params: string[] | undefined;
    if (this.#accept('{')) {
      params = [];
      while (!this.#accept('}')) {
        if (this.#accept(',')) continue;
        params.push(this.#ident());
      }
    }
    this.#expect('::=');
    const type = this.#type();
    return params ? { name, params, type } : { name, type };
  }

  #type(): TypeNode {
    let tag: TypeNode['tag'];
    if (this.#accept('[')) {
      // X.680 §31: [class number] IMPLICIT|EXPLICIT Type
      let cls: NonNullable<TypeNode['tag']>['cls'] = 'CONTEXT';
      const c = this.#peek()?.text;
      if (c === 'UNIVERSAL' || c === 'APPLICATION' || c === 'PRIVATE') {
        cls = c;
        this.#next();
      }
      tag = { cls, num: Number(this.#next().text) };
      this.#expect(']');
      if (!this.#accept('IMPLICIT')) this.#accept('EXPLICIT');
    }
    const t = this.#baseType();
    if (tag) t.tag = tag;
    const constraints: Constraint[] = [];
    while (this.#is('(')) constraints.push(this.#constraint());
    if (constraints.length) t.constraints = [...(t.constraints ?? []), ...constraints];
    return t;
  }

  #baseType(): TypeNode {
    const tok = this.#next();
    const w = tok.text;
    switch (w) {
      case 'BOOLEAN':
        return { t: 'BOOLEAN' };
      case 'NULL':
        return { t: 'NULL' };
      case 'INTEGER':
        return this.#is('{') ? { t: 'INTEGER', named: this.#namedNumbers() } : { t: 'INTEGER' };
      case 'BIT':
        this.#expect('STRING');
        return this.#is('{') ? { t: 'BIT STRING', named: this.#namedNumbers() } : { t: 'BIT STRING' };
      case 'OCTET':
        this.#expect('STRING');
        return { t: 'OCTET STRING' };
      case 'OBJECT':
        this.#expect('IDENTIFIER');
        return { t: 'OBJECT IDENTIFIER' };
      case 'ENUMERATED':
        return this.#enumerated();
      case 'CHOICE': {
        const list = this.#components(true);
        return { t: 'CHOICE', root: list.root, extensible: list.extensible, additions: list.additions };
      }
      case 'SEQUENCE':
      case 'SET': {
        let size: Constraint | undefined;
        if (this.#is('SIZE')) {
          this.#next();
          size = this.#constraint();
        } else if (this.#is('(')) {
          const c = this.#constraint();
          size = c.root.e === 'size' ? c.root.c : c;
        }
        if (this.#accept('OF')) {
          if (this.#peek()?.kind === 'id' && /^[a-z]/.test(this.#peek()!.text) && !this.#is('(', 1)) this.#next();
          const item = this.#type();
          return size ? { t: 'SEQUENCE OF', item, size } : { t: 'SEQUENCE OF', item };
        }
        const components = this.#components(false);
        return w === 'SEQUENCE' ? { t: 'SEQUENCE', components } : { t: 'SET', components };
      }
      case 'TYPE-IDENTIFIER':
        this.#expect('.');
        this.#expect('&');
        return { t: 'open', what: `TYPE-IDENTIFIER.&${this.#ident()}` };
      default:
        break;
    }
    if (tok.kind !== 'id') throw new Error(`line ${tok.line}: expected a type, found "${w}"`);
    if (STRING_TYPES.has(w)) return { t: 'string', kind: w };
    let module: string | undefined;
    let name = w;
    if (this.#is('.') && this.#peek(1)?.kind === 'id') {
      this.#next();
      module = name;
      name = this.#ident();
    }
    const ref: TypeNode = module ? { t: 'ref', name, module } : { t: 'ref', name };
    if (this.#is('{') && ref.t === 'ref') {
      this.#next();
      const args: TypeNode[] = [];
      while (!this.#accept('}')) {
        if (this.#accept(',')) continue;
        args.push(this.#type());
      }
      ref.args = args;
    }
    return ref;
  }

  #namedNumbers(): NamedNumber[] {
    this.#expect('{');
    const out: NamedNumber[] = [];
    while (!this.#accept('}')) {
      if (this.#accept(',')) continue;
      const name = this.#ident();
      if (this.#accept('(')) {
        const neg = this.#accept('-');
        const n = BigInt(this.#next().text);
        this.#expect(')');
        out.push({ name, value: neg ? -n : n });
      } else out.push({ name });
    }
    return out;
  }

  #enumerated(): TypeNode {
    this.#expect('{');
    const root: NamedNumber[] = [];
    const additions: NamedNumber[] = [];
    let extensible = false;
    while (!this.#accept('}')) {
      if (this.#accept(',')) continue;
      if (this.#accept('...')) {
        extensible = true;
        continue;
      }
      const name = this.#ident();
      let value: bigint | undefined;
      if (this.#accept('(')) {
        const neg = this.#accept('-');
        value = BigInt(this.#next().text) * (neg ? -1n : 1n);
        this.#expect(')');
      }
      (extensible ? additions : root).push(value === undefined ? { name } : { name, value });
    }
    return { t: 'ENUMERATED', root, extensible, additions };
  }

  #component(): Component {
    const name = this.#ident();
    const type = this.#type();
    const c: Component = { name, type, optional: false };
    if (this.#accept('OPTIONAL')) c.optional = true;
    else if (this.#accept('DEFAULT')) {
      c.optional = true;
      c.defaultValue = this.#value();
    }
    return c;
  }

  #components(isChoice: boolean): ComponentList {
    this.#expect('{');
    const list: ComponentList = { root: [], extensible: false, additions: [], root2: [] };
    let markers = 0;
    while (!this.#accept('}')) {
      if (this.#accept(',')) continue;
      if (this.#accept('...')) {
        markers++;
        list.extensible = true;
        // An exception spec `! …` after the marker is not PER-visible.
        if (this.#accept('!')) this.#next();
        continue;
      }
      if (this.#accept('[[')) {
        if (this.#peek()?.kind === 'num' && this.#is(':', 1)) this.#i += 2;
        const group: Component[] = [];
        while (!this.#accept(']]')) {
          if (this.#accept(',')) continue;
          group.push(this.#component());
        }
        list.additions.push({ group });
        continue;
      }
      if (this.#is('COMPONENTS') && this.#is('OF', 1)) throw new Error('COMPONENTS OF is not supported');
      const c = this.#component();
      if (markers === 0) list.root.push(c);
      else if (markers === 1) list.additions.push(c);
      else list.root2.push(c);
    }
    if (isChoice && list.root2.length) throw new Error('CHOICE with a second extension marker');
    return list;
  }

  #value(): Value {
    const t = this.#next();
    if (t.kind === 'num') return { v: 'num', n: BigInt(t.text) };
    if (t.kind === 'str') return { v: 'str', s: t.text };
    if (t.text === '-') return { v: 'num', n: -BigInt(this.#next().text) };
    if (t.text === 'MIN') return { v: 'min' };
    if (t.text === 'MAX') return { v: 'max' };
    if (t.text === 'TRUE' || t.text === 'FALSE') return { v: 'bool', b: t.text === 'TRUE' };
    if (t.text === '{') {
      this.#i--;
      const start = this.#i;
      this.#skipBalanced();
      return {
        v: 'oid',
        text: this.#toks
          .slice(start, this.#i)
          .map((x) => x.text)
          .join(' '),
      };
    }
    if (t.kind === 'id') return { v: 'ref', name: t.text };
    throw new Error(`line ${t.line}: expected a value, found "${t.text}"`);
  }

  /** `( ElementSetSpecs )`. */
  #constraint(): Constraint {
    this.#expect('(');
    if (this.#is('CONSTRAINED') && this.#is('BY', 1)) {
      this.#i += 2;
      this.#skipBalanced();
      this.#expect(')');
      return { root: { e: 'ignored', what: 'CONSTRAINED BY' }, extensible: false };
    }
    const root = this.#elementSet();
    const c: Constraint = { root, extensible: false };
    if (this.#accept(',')) {
      this.#expect('...');
      c.extensible = true;
      if (this.#accept(',')) c.additions = this.#elementSet();
    }
    this.#expect(')');
    return c;
  }

  #elementSet(): Elem {
    const items: Elem[] = [this.#intersection()];
    while (this.#accept('|') || this.#accept('UNION')) items.push(this.#intersection());
    return items.length === 1 ? items[0]! : { e: 'union', items };
  }

  #intersection(): Elem {
    const items: Elem[] = [this.#element()];
    while (this.#accept('^') || this.#accept('INTERSECTION')) items.push(this.#element());
    return items.length === 1 ? items[0]! : { e: 'inter', items };
  }

  #element(): Elem {
    if (this.#accept('SIZE')) return { e: 'size', c: this.#constraint() };
    if (this.#accept('FROM')) return { e: 'from', c: this.#constraint() };
    if (this.#is('WITH')) {
      this.#next();
      if (this.#accept('COMPONENTS')) this.#skipBalanced();
      else {
        this.#expect('COMPONENT');
        this.#skipBalanced();
      }
      return { e: 'ignored', what: 'WITH COMPONENTS' };
    }
    if (this.#is('(')) return { e: 'nested', c: this.#constraint() };
    const t = this.#peek();
    if (t?.kind === 'id' && /^[A-Z]/.test(t.text) && t.text !== 'MIN' && t.text !== 'MAX') {
      return { e: 'type', type: this.#type() };
    }
    const lo = this.#value();
    if (this.#accept('..')) return { e: 'range', lo, hi: this.#value() };
    return { e: 'value', value: lo };
  }
}

/** Parses the text of one or more ASN.1 modules. */
export function parseModules(text: string): Module[] {
  return new Parser(text).parseModules();
}
