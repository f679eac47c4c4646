/**
 * Descriptors: the compact, data-only form of an ASN.1 type that the generic PER engine (`codec.ts`)
 * interprets. The generator (`src/h323/asn1/compile.ts`) writes a table of `RawNode`s (children by index);
 * `link()` turns the table into an object graph with the numbers PER needs precomputed.
 */

/** Known-multiplier character string types (X.691 §30) and the others (§32, encoded as octets). */
export type StringKind =
  | 'IA5String'
  | 'PrintableString'
  | 'NumericString'
  | 'VisibleString'
  | 'BMPString'
  | 'UniversalString'
  | 'GeneralString'
  | 'UTF8String'
  | 'GraphicString';

/** A SEQUENCE component in the table: name, type index, 1 when OPTIONAL (or DEFAULT). */
export type RawField = [name: string, type: number, optional: 0 | 1];

export type RawNode =
  | { k: 'bool' }
  | { k: 'null' }
  | { k: 'oid' }
  | { k: 'int'; lb?: number; ub?: number; x?: 1 }
  | { k: 'enum'; r: string[]; x?: 1; e?: string[] }
  | { k: 'bits'; lb: number; ub?: number; x?: 1 }
  | { k: 'oct'; lb: number; ub?: number; x?: 1 }
  | { k: 'str'; s: StringKind; lb: number; ub?: number; x?: 1; a?: string }
  | { k: 'seq'; n?: string; f: RawField[]; x?: 1; e?: Array<RawField | RawField[]> }
  | { k: 'seqof'; t: number; lb: number; ub?: number; x?: 1 }
  | { k: 'choice'; n?: string; r: Array<[string, number]>; x?: 1; e?: Array<[string, number]> }
  | { k: 'open'; t?: number };

/** A size constraint after linking; `ub` undefined when there is none (or it is ≥ 64K: then the length is unconstrained). */
export interface SizeC {
  lb: number;
  ub: number | undefined;
  ext: boolean;
}

export interface FieldD {
  name: string;
  type: Desc;
  optional: boolean;
}

export interface AdditionD {
  /** One component, or a `[[ ]]` version bracket group encoded as a SEQUENCE. */
  fields: FieldD[];
  group: boolean;
  /** For a group: the SEQUENCE its components are encoded as. */
  seq: Desc | undefined;
}

export type Desc =
  | { k: 'bool'; id: number }
  | { k: 'null'; id: number }
  | { k: 'oid'; id: number }
  | { k: 'int'; id: number; lb: number | undefined; ub: number | undefined; ext: boolean }
  | { k: 'enum'; id: number; root: string[]; ext: string[] | undefined; index: Map<string, number> }
  | ({ k: 'bits'; id: number } & SizeC)
  | ({ k: 'oct'; id: number } & SizeC)
  | ({
      k: 'str';
      id: number;
      kind: StringKind;
      /** Bits per character in the ALIGNED variant (0 for octet-encoded kinds). */
      b: number;
      /** Sorted permitted alphabet when characters are encoded as indexes into it, else undefined. */
      alphabet: Uint32Array | undefined;
      /** Highest permitted code point (for validation when `alphabet` is undefined). */
      maxCode: number;
      /** Permitted set for validation (undefined: any code ≤ maxCode). */
      permitted: Set<number> | undefined;
    } & SizeC)
  | {
      k: 'seq';
      id: number;
      name: string;
      fields: FieldD[];
      optCount: number;
      ext: boolean;
      additions: AdditionD[];
    }
  | ({ k: 'seqof'; id: number; item: Desc } & SizeC)
  | {
      k: 'choice';
      id: number;
      name: string;
      root: FieldD[];
      ext: FieldD[] | undefined;
      byName: Map<string, { index: number; ext: boolean; type: Desc }>;
    }
  | { k: 'open'; id: number; inner: Desc | undefined };

/** 64K: the bound above which lengths are encoded unconstrained (X.691 §11.9.3.3). */
export const K64 = 65536;

const KNOWN_MULTIPLIER: Record<string, { max: number; alphabet?: string }> = {
  IA5String: { max: 127 },
  VisibleString: { max: 126 },
  PrintableString: { max: 122, alphabet: " '()+,-./0123456789:=?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" },
  NumericString: { max: 57, alphabet: ' 0123456789' },
  BMPString: { max: 0xffff },
  UniversalString: { max: 0xffffffff },
};

function sizeOf(n: { lb: number; ub?: number; x?: 1 }): SizeC {
  return { lb: n.lb, ub: n.ub !== undefined && n.ub < K64 ? n.ub : undefined, ext: n.x === 1 };
}

/** X.691 §30.5.2–30.5.4 (ALIGNED): bits per character and whether characters are sent as alphabet indexes. */
function stringParams(kind: StringKind, alphabetText: string | undefined) {
  const km = KNOWN_MULTIPLIER[kind];
  if (!km) return { b: 0, alphabet: undefined, maxCode: 0xff, permitted: undefined };
  let codes: number[] | undefined;
  const text = alphabetText ?? km.alphabet;
  if (text !== undefined) codes = [...new Set([...text].map((c) => c.codePointAt(0)!))].sort((a, b) => a - b);
  const n = codes ? codes.length : km.max + (kind === 'VisibleString' ? -31 : 1);
  const maxCode = codes ? codes[codes.length - 1]! : km.max;
  let ubBits = 0;
  while (2 ** ubBits < n) ubBits++;
  let b = 1;
  while (b < ubBits) b *= 2;
  if (kind === 'BMPString' && !codes) b = 16;
  if (kind === 'UniversalString' && !codes) b = 32;
  // X.691 §30.5.4: characters are sent as their own value when the largest fits in b bits, else as indexes.
  const useIndex = codes !== undefined && maxCode >= 2 ** b;
  return {
    b,
    alphabet: useIndex ? Uint32Array.from(codes!) : undefined,
    maxCode,
    permitted: codes ? new Set(codes) : undefined,
  };
}

/** X.691 §19.9: a version bracket's components are encoded as one SEQUENCE (no extension marker). */
function groupOf(fields: FieldD[]): AdditionD {
  const seq: Desc = {
    k: 'seq',
    id: -1,
    name: '',
    fields,
    optCount: fields.filter((f) => f.optional).length,
    ext: false,
    additions: [],
  };
  return { fields, group: true, seq };
}

/** Turns a generated table into linked descriptors (same indexes). */
export function link(table: readonly RawNode[]): Desc[] {
  const out: Desc[] = new Array(table.length);
  // First pass: create shells so references can be cyclic.
  table.forEach((raw, id) => {
    out[id] = { k: raw.k, id } as Desc;
  });
  const get = (i: number): Desc => {
    const d = out[i];
    if (!d) throw new Error(`descriptor table: bad index ${i}`);
    return d;
  };
  const field = (f: RawField): FieldD => ({ name: f[0], type: get(f[1]), optional: f[2] === 1 });
  table.forEach((raw, id) => {
    const d = out[id] as unknown as Record<string, unknown>;
    switch (raw.k) {
      case 'bool':
      case 'null':
      case 'oid':
        break;
      case 'int':
        Object.assign(d, { lb: raw.lb, ub: raw.ub, ext: raw.x === 1 });
        break;
      case 'enum':
        Object.assign(d, {
          root: raw.r,
          ext: raw.x === 1 ? (raw.e ?? []) : undefined,
          index: new Map([...raw.r.map((n, i) => [n, i] as const), ...(raw.e ?? []).map((n, i) => [n, i] as const)]),
        });
        break;
      case 'bits':
      case 'oct':
        Object.assign(d, sizeOf(raw));
        break;
      case 'str':
        Object.assign(d, { kind: raw.s, ...sizeOf(raw), ...stringParams(raw.s, raw.a) });
        break;
      case 'seq': {
        const fields = raw.f.map(field);
        Object.assign(d, {
          name: raw.n ?? '',
          fields,
          optCount: fields.filter((f) => f.optional).length,
          ext: raw.x === 1,
          additions: (raw.e ?? []).map((a) =>
            Array.isArray(a[0])
              ? groupOf((a as RawField[]).map(field))
              : { fields: [field(a as RawField)], group: false, seq: undefined },
          ),
        });
        break;
      }
      case 'seqof':
        Object.assign(d, { item: get(raw.t), ...sizeOf(raw) });
        break;
      case 'choice': {
        const root = raw.r.map(([name, t]) => ({ name, type: get(t), optional: false }));
        const ext =
          raw.x === 1 ? (raw.e ?? []).map(([name, t]) => ({ name, type: get(t), optional: false })) : undefined;
        const byName = new Map<string, { index: number; ext: boolean; type: Desc }>();
        for (const [index, f] of root.entries()) byName.set(f.name, { index, ext: false, type: f.type });
        for (const [index, f] of (ext ?? []).entries()) byName.set(f.name, { index, ext: true, type: f.type });
        Object.assign(d, { name: raw.n ?? '', root, ext, byName });
        break;
      }
      case 'open':
        Object.assign(d, { inner: raw.t === undefined ? undefined : get(raw.t) });
        break;
    }
  });
  return out;
}
