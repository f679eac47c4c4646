import { describeIssues } from '../config/load.ts';
import { type CrosswayConfig, configSchema } from '../config/schema.ts';

/** Keys whose values are secrets: shown as `REDACTED` by the API, kept as they were when written back unchanged. */
const SECRET_KEYS = new Set([
  'password',
  'bindPassword',
  'authPassword',
  'privPassword',
  'sharedSecret',
  'ha1',
  'snmpCommunity',
]);
export const REDACTED = '********';

/** Configuration fields a running node applies at once; any other change takes effect at the next start. */
const LIVE_PREFIXES = ['log.level', 'feedback.subscribers', 'management.sessionIdleMinutes'];

export type ConfigCheck =
  | { ok: true; config: CrosswayConfig; changed: string[]; live: string[]; restartRequired: string[] }
  | { ok: false; issues: { path: string; message: string }[] };

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Sets an own property even for `__proto__` (plain assignment would replace the prototype instead). */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** A copy with every secret value replaced by `REDACTED`. */
export function redactSecrets(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(redactSecrets);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    out[k] = SECRET_KEYS.has(k) && typeof x === 'string' ? REDACTED : redactSecrets(x);
  return out;
}

/** Puts back the secrets the administrator left as `REDACTED`, from the same place in the current configuration. */
function restoreSecrets(next: unknown, current: unknown): unknown {
  if (Array.isArray(next))
    return next.map((x, i) => restoreSecrets(x, Array.isArray(current) ? current[i] : undefined));
  if (!isObject(next)) return next;
  const cur = isObject(current) ? current : {};
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(next)) {
    setOwn(
      out,
      k,
      SECRET_KEYS.has(k) && x === REDACTED ? cur[k] : restoreSecrets(x, Object.hasOwn(cur, k) ? cur[k] : undefined),
    );
  }
  return out;
}

/** RFC 7396 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = {};
  if (isObject(target)) for (const [k, v] of Object.entries(target)) setOwn(out, k, v);
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else setOwn(out, k, mergePatch(Object.hasOwn(out, k) ? out[k] : undefined, v));
  }
  return out;
}

/** Dotted paths of the leaves that differ (arrays compared whole). */
export function diffPaths(a: unknown, b: unknown, prefix = ''): string[] {
  if (isObject(a) && isObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    const own = (o: Record<string, unknown>, k: string) => (Object.hasOwn(o, k) ? o[k] : undefined);
    return [...keys].flatMap((k) => diffPaths(own(a, k), own(b, k), prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(root)'];
}

/**
 * Configuration changes through the API: the same zod schema as the file (same messages, field paths), the list of
 * changed fields, and which of them apply live.
 */
export class ConfigAdmin {
  #current: CrosswayConfig;

  constructor(current: CrosswayConfig) {
    this.#current = current;
  }

  get current(): CrosswayConfig {
    return this.#current;
  }

  /** The configuration as the API shows it (secrets redacted). */
  view(): unknown {
    return redactSecrets(this.#current);
  }

  /** Validates a whole document (`mode: 'replace'`) or a merge patch on the current one. */
  check(input: unknown, mode: 'replace' | 'patch'): ConfigCheck {
    const base = JSON.parse(JSON.stringify(this.#current)) as unknown;
    const doc = restoreSecrets(mode === 'patch' ? mergePatch(base, input) : input, base);
    const parsed = configSchema.safeParse(doc ?? {});
    if (!parsed.success) return { ok: false, issues: describeIssues(parsed.error) };
    const changed = diffPaths(base, JSON.parse(JSON.stringify(parsed.data)));
    const isLive = (p: string) => LIVE_PREFIXES.some((l) => p === l || p.startsWith(`${l}.`) || p.startsWith(`${l}[`));
    return {
      ok: true,
      config: parsed.data,
      changed,
      live: changed.filter(isLive),
      restartRequired: changed.filter((p) => !isLive(p)),
    };
  }

  /** Makes a checked configuration the current one. */
  commit(config: CrosswayConfig): void {
    this.#current = config;
  }
}

/**
 * The RFC 7396 merge patch turning `base` into `next` (what the store keeps: the API's changes relative to the file,
 * so later edits of other fields in the file still apply).
 */
export function makePatch(base: unknown, next: unknown): unknown {
  if (!isObject(base) || !isObject(next)) return JSON.parse(JSON.stringify(next ?? null));
  const out: Record<string, unknown> = {};
  for (const k of new Set([...Object.keys(base), ...Object.keys(next)])) {
    if (!Object.hasOwn(next, k)) setOwn(out, k, null);
    else if (!Object.hasOwn(base, k)) setOwn(out, k, makePatch(undefined, next[k]));
    else if (JSON.stringify(base[k]) !== JSON.stringify(next[k])) setOwn(out, k, makePatch(base[k], next[k]));
  }
  return out;
}
