/**
 * A small JSON Schema (2020-12) checker for tests: the keywords the management OpenAPI document uses (type, enum,
 * const, properties, required, additionalProperties, propertyNames, items, oneOf, anyOf, minimum, maximum, minLength, maxLength,
 * minItems, maxItems, pattern, $ref within the document). An unknown keyword is an error, so a schema using more
 * than this checker knows cannot pass unchecked. Returns the problems found (empty: valid).
 */
type Schema = Record<string, unknown> | boolean;

const KNOWN = new Set([
  'type',
  'enum',
  'const',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'items',
  'oneOf',
  'anyOf',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'pattern',
  '$ref',
  // Annotations: no effect on validity.
  'description',
  'default',
  'format',
  'title',
  'examples',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export function checkJsonSchema(schema: Schema, value: unknown, root: unknown = schema, path = '$'): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${path}: no value allowed`];
  const out: string[] = [];
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) out.push(`${path}: schema keyword ${k} not supported`);
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce<unknown>((o, p) => (o as Record<string, unknown> | undefined)?.[p], root);
    if (target === undefined) return [...out, `${path}: unresolved ${schema.$ref}`];
    out.push(...checkJsonSchema(target as Schema, value, root, path));
  }
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((x) => x === t || (x === 'number' && t === 'integer'))) {
      return [...out, `${path}: ${t} is not ${types.join('|')}`];
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    out.push(`${path}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  }
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    out.push(`${path}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  }
  if (t === 'integer' || t === 'number') {
    const n = value as number;
    if (typeof schema.minimum === 'number' && n < schema.minimum) out.push(`${path}: ${n} < ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && n > schema.maximum) out.push(`${path}: ${n} > ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && n <= schema.exclusiveMinimum)
      out.push(`${path}: ${n} too small`);
    if (typeof schema.exclusiveMaximum === 'number' && n >= schema.exclusiveMaximum) out.push(`${path}: ${n} too big`);
  }
  if (t === 'string') {
    const s = value as string;
    if (typeof schema.minLength === 'number' && s.length < schema.minLength) out.push(`${path}: too short`);
    if (typeof schema.maxLength === 'number' && s.length > schema.maxLength) out.push(`${path}: too long`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(s)) {
      out.push(`${path}: ${JSON.stringify(s)} does not match ${schema.pattern}`);
    }
  }
  if (t === 'array') {
    const a = value as unknown[];
    if (typeof schema.minItems === 'number' && a.length < schema.minItems) out.push(`${path}: too few items`);
    if (typeof schema.maxItems === 'number' && a.length > schema.maxItems) out.push(`${path}: too many items`);
    if (schema.items !== undefined) {
      a.forEach((x, i) => {
        out.push(...checkJsonSchema(schema.items as Schema, x, root, `${path}[${i}]`));
      });
    }
  }
  if (t === 'object') {
    const o = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required as string[] | undefined) ?? []) {
      if (!(r in o)) out.push(`${path}: ${r} missing`);
    }
    for (const [k, v] of Object.entries(o)) {
      if (schema.propertyNames !== undefined) {
        out.push(...checkJsonSchema(schema.propertyNames as Schema, k, root, `${path}[key ${JSON.stringify(k)}]`));
      }
      if (k in props) out.push(...checkJsonSchema(props[k]!, v, root, `${path}.${k}`));
      else if (schema.additionalProperties !== undefined) {
        out.push(...checkJsonSchema(schema.additionalProperties as Schema, v, root, `${path}.${k}`));
      }
    }
  }
  if (Array.isArray(schema.anyOf)) {
    const results = (schema.anyOf as Schema[]).map((s) => checkJsonSchema(s, value, root, path));
    if (!results.some((r) => r.length === 0)) out.push(`${path}: matches none of anyOf (${results.flat().join('; ')})`);
  }
  if (Array.isArray(schema.oneOf)) {
    const results = (schema.oneOf as Schema[]).map((s) => checkJsonSchema(s, value, root, path));
    const n = results.filter((r) => r.length === 0).length;
    if (n !== 1) out.push(`${path}: matches ${n} of oneOf (${results.flat().join('; ')})`);
  }
  return out;
}
