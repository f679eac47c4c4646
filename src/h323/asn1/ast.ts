/** Abstract syntax of the ASN.1 subset the H.323 modules use (X.680), as produced by `parser.ts`. */

export type Value =
  | { v: 'num'; n: bigint }
  | { v: 'str'; s: string }
  | { v: 'ref'; name: string }
  | { v: 'min' }
  | { v: 'max' }
  | { v: 'bool'; b: boolean }
  | { v: 'oid'; text: string };

/** One element of a constraint's element set. */
export type Elem =
  | { e: 'value'; value: Value }
  | { e: 'range'; lo: Value; hi: Value }
  | { e: 'size'; c: Constraint }
  | { e: 'from'; c: Constraint }
  | { e: 'type'; type: TypeNode }
  | { e: 'union'; items: Elem[] }
  | { e: 'inter'; items: Elem[] }
  | { e: 'nested'; c: Constraint }
  | { e: 'ignored'; what: string };

/** `( root [, ... [, additions]] )`; `extensible` when the `...` marker is present. */
export interface Constraint {
  root: Elem;
  extensible: boolean;
  additions?: Elem;
}

export interface Component {
  name: string;
  type: TypeNode;
  optional: boolean;
  defaultValue?: Value;
}

/** A SEQUENCE/SET component list split at the extension markers; `additions` holds single components and `[[ ]]` groups. */
export interface ComponentList {
  root: Component[];
  extensible: boolean;
  additions: Array<Component | { group: Component[] }>;
  /** Components after a second `...` marker (root again). */
  root2: Component[];
}

export interface NamedNumber {
  name: string;
  value?: bigint;
}

/** An ASN.1 tag written in the module (`[APPLICATION 1]`, `[0]`); only its order matters to PER (SET, CHOICE). */
export interface Tag {
  cls: 'UNIVERSAL' | 'APPLICATION' | 'CONTEXT' | 'PRIVATE';
  num: number;
}

export type TypeNode = (
  | { t: 'BOOLEAN' }
  | { t: 'NULL' }
  | { t: 'INTEGER'; named?: NamedNumber[] }
  | { t: 'ENUMERATED'; root: NamedNumber[]; extensible: boolean; additions: NamedNumber[] }
  | { t: 'BIT STRING'; named?: NamedNumber[] }
  | { t: 'OCTET STRING' }
  | { t: 'OBJECT IDENTIFIER' }
  | { t: 'string'; kind: string }
  | { t: 'SEQUENCE'; components: ComponentList }
  | { t: 'SET'; components: ComponentList }
  | { t: 'SEQUENCE OF'; item: TypeNode; size?: Constraint }
  | { t: 'CHOICE'; root: Component[]; extensible: boolean; additions: Array<Component | { group: Component[] }> }
  | { t: 'open'; what: string }
  | { t: 'ref'; name: string; module?: string; args?: TypeNode[] }
) & { constraints?: Constraint[]; tag?: Tag };

export interface Assignment {
  name: string;
  params?: string[];
  type?: TypeNode;
  /** Value assignments: `name Type ::= value`. */
  valueType?: TypeNode;
  value?: Value;
}

export interface Module {
  name: string;
  /** The module's tag default: AUTOMATIC, or EXPLICIT/IMPLICIT (then components keep the tags written). */
  tagDefault: 'AUTOMATIC' | 'EXPLICIT' | 'IMPLICIT';
  imports: Array<{ from: string; symbols: string[] }>;
  assignments: Assignment[];
}
