import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../common/errors.ts';
import { type CrosswayConfig, configSchema } from './schema.ts';

/** Deep-freezes a validated configuration so no layer can change what another one reads. */
function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** The issues of a failed validation, each with the dotted path of the field and what was expected. */
export function describeIssues(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
}

/** Validates an already-parsed object; throws `ConfigError` naming every bad field. */
export function validateConfig(input: unknown, source?: string): Readonly<CrosswayConfig> {
  const parsed = configSchema.safeParse(input ?? {});
  if (!parsed.success) throw new ConfigError(describeIssues(parsed.error), source);
  return deepFreeze(parsed.data);
}

/**
 * Reads a YAML or JSON file (JSON is YAML) and validates it. `overrides` (top-level fields, e.g. from command-line
 * options) replace the file's values before validation.
 */
export function loadConfigFile(path: string, overrides: Record<string, unknown> = {}): Readonly<CrosswayConfig> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read ${path}: ${(err as Error).message}` }], path);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new ConfigError([{ path: '', message: `not valid YAML/JSON: ${(err as Error).message}` }], path);
  }
  if (Object.keys(overrides).length > 0 && (doc === null || doc === undefined || isPlainObject(doc))) {
    doc = { ...(doc ?? {}), ...overrides };
  }
  return validateConfig(doc, path);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The embedded defaults: a `lab` node on loopback. */
export function defaultConfig(overrides: unknown = {}): Readonly<CrosswayConfig> {
  return validateConfig(overrides);
}
