import { DEFAULT_ZONE, LOCAL_ZONE, type RoutingConfig, type ZoneConfig } from './config.ts';
import { type CompiledPattern, compilePattern, isIpAlias, rewrite } from './patterns.ts';
import { SearchHistory, type SearchRecord, type SearchRuleTrace } from './search-history.ts';

/**
 * The node's one routing decision point, shared by SIP and H.323: aliases in, a decision out. Order of work, as in an
 * Expressway-class dial plan: (1) the first matching pre-search transform rewrites the alias, (2) call policy allows or
 * rejects, (3) search rules are tried by priority, rules of equal priority in parallel, each searching its target
 * zone. Knows nothing of SIP messages: zones are searched through a {@link ZoneSearcher} the protocol layer supplies.
 */

/** A zone as the router and the searchers see it. */
export type Zone =
  | { name: typeof LOCAL_ZONE; type: 'local' }
  | (ZoneConfig & { type: 'neighbor' | 'dns' | 'traversal' });

/** One routing question. */
export interface SearchRequest {
  protocol: 'sip' | 'h323';
  /** Destination alias: `user@host`, a bare host, an E.164 number, an H.323 ID. */
  alias: string;
  /** Caller's alias (for call policy); empty when unknown. */
  sourceAlias?: string;
  /** `LocalZone` (registered endpoint), `DefaultZone` (unknown source) or a configured zone's name. */
  sourceZone: string;
  /** Digest-authenticated, or from a trusted zone. */
  authenticated: boolean;
  /** Free text shown in the history (the request method and Call-ID, for instance). */
  label?: string;
}

/** Searches one zone for an alias; an empty array means not found there. Must not throw (a throw counts as not found). */
export interface ZoneSearcher<T> {
  search(zone: Zone, alias: string): T[] | Promise<T[]>;
}

/** One place the request may go: found in `zone` by `rule`, under `alias`. */
export interface RouteTarget<T> {
  zone: string;
  rule: string;
  alias: string;
  target: T;
}

export type RouteDecision<T> =
  | { kind: 'found'; searchId: number; alias: string; targets: RouteTarget<T>[] }
  | { kind: 'not-found'; searchId: number; alias: string }
  | { kind: 'rejected'; searchId: number; alias: string; reason: string };

type WithoutId<D> = D extends unknown ? Omit<D, 'searchId'> : never;

interface CompiledTransform {
  name: string;
  pattern: CompiledPattern;
  action: 'strip' | 'replace' | 'addPrefix' | 'addSuffix';
  value: string;
}

interface CompiledRule {
  name: string;
  priority: number;
  source: 'any' | 'localZone' | 'zone';
  sourceZone?: string;
  requireAuthenticated: boolean;
  kind: 'pattern' | 'anyAlias' | 'anyIp';
  pattern?: CompiledPattern;
  onMatch: 'leave' | 'strip' | 'replace';
  replace: string;
  onSuccess: 'continue' | 'stop';
  targetZone: string;
}

interface CompiledPolicy {
  source: RegExp;
  destination: RegExp;
  action: 'allow' | 'reject';
}

/** Sort by priority, keeping configuration order among equals. */
const byPriority = <X extends { priority: number }>(items: X[]) =>
  items
    .map((x, i) => ({ x, i }))
    .sort((a, b) => a.x.priority - b.x.priority || a.i - b.i)
    .map((e) => e.x);

export interface RouterOptions<T> {
  config: Readonly<RoutingConfig>;
  /** Domains the node serves (`sip.domains`), for `%localdomains%`. */
  domains: readonly string[];
  searcher: ZoneSearcher<T>;
  /** Wall-clock ms, for history timestamps. */
  wallNow: () => number;
}

/** The routing engine: compiled once from the validated configuration. */
export class Router<T> {
  readonly history: SearchHistory;
  readonly #zones = new Map<string, Zone>();
  readonly #transforms: CompiledTransform[] = [];
  readonly #policy: CompiledPolicy[] = [];
  /** Enabled rules grouped by priority, groups in ascending priority. */
  readonly #groups: CompiledRule[][] = [];
  readonly #searcher: ZoneSearcher<T>;
  readonly #wallNow: () => number;

  constructor(opts: RouterOptions<T>) {
    const { config, domains } = opts;
    this.#searcher = opts.searcher;
    this.#wallNow = opts.wallNow;
    this.history = new SearchHistory(config.searchHistorySize);
    this.#zones.set(LOCAL_ZONE, { name: LOCAL_ZONE, type: 'local' });
    for (const z of config.zones) this.#zones.set(z.name, z as Zone);
    byPriority(config.transforms.filter((t) => t.enabled)).forEach((t, i) => {
      const pattern = compilePattern(t.pattern.type, t.pattern.value, domains);
      if (pattern)
        this.#transforms.push({ name: t.name ?? `transform-${i + 1}`, pattern, action: t.action, value: t.value });
    });
    for (const p of config.callPolicy) {
      this.#policy.push({
        source: new RegExp(`^(?:${p.source})$`, 'i'),
        destination: new RegExp(`^(?:${p.destination})$`, 'i'),
        action: p.action,
      });
    }
    let group: CompiledRule[] = [];
    for (const r of byPriority(config.searchRules.filter((x) => x.enabled))) {
      const kind = r.pattern.type === 'anyAlias' || r.pattern.type === 'anyIp' ? r.pattern.type : 'pattern';
      const rule: CompiledRule = {
        name: r.name,
        priority: r.priority,
        source: r.source,
        requireAuthenticated: r.requireAuthenticated,
        kind,
        onMatch: r.onMatch,
        replace: r.replace,
        onSuccess: r.onSuccess,
        targetZone: r.targetZone,
      };
      if (r.sourceZone !== undefined) rule.sourceZone = r.sourceZone;
      if (kind === 'pattern') {
        const p = compilePattern(r.pattern.type as 'exact', r.pattern.value ?? '', domains);
        if (!p) continue;
        rule.pattern = p;
      }
      if (group.length > 0 && group[0]!.priority !== rule.priority) {
        this.#groups.push(group);
        group = [];
      }
      group.push(rule);
    }
    if (group.length > 0) this.#groups.push(group);
  }

  /** Zones known to the router (the local zone first). */
  zones(): Zone[] {
    return [...this.#zones.values()];
  }

  zone(name: string): Zone | undefined {
    return this.#zones.get(name);
  }

  /** The pre-search transform step alone: the alias after the first matching transform, and that transform. */
  transform(alias: string): { alias: string; applied?: string } {
    for (const t of this.#transforms) {
      let out: string | undefined;
      if (t.action === 'strip' || t.action === 'replace') out = rewrite(t.pattern, alias, t.action, t.value);
      else if (t.pattern.re.test(alias)) out = t.action === 'addPrefix' ? t.value + alias : alias + t.value;
      if (out !== undefined) return { alias: out, applied: t.name };
    }
    return { alias };
  }

  /** The call-policy step alone: the first rule matching source and destination decides; none matching allows. */
  policy(sourceAlias: string, alias: string): { action: 'allow' | 'reject'; rule?: number } {
    for (let i = 0; i < this.#policy.length; i++) {
      const p = this.#policy[i]!;
      if (p.source.test(sourceAlias) && p.destination.test(alias)) return { action: p.action, rule: i + 1 };
    }
    return { action: 'allow' };
  }

  /** Routes one request: transforms, call policy, then search rules. Recorded in the search history. */
  async route(req: SearchRequest): Promise<RouteDecision<T>> {
    const started = this.#wallNow();
    const record: SearchRecord = {
      id: 0,
      at: started,
      protocol: req.protocol,
      label: req.label ?? '',
      sourceZone: req.sourceZone,
      sourceAlias: req.sourceAlias ?? '',
      authenticated: req.authenticated,
      alias: req.alias,
      searchedAlias: req.alias,
      rules: [],
      result: 'not-found',
      targets: [],
      durationMs: 0,
    };
    const t = this.transform(req.alias);
    if (t.applied !== undefined) record.transform = t.applied;
    record.searchedAlias = t.alias;
    const finish = (d: WithoutId<RouteDecision<T>>): RouteDecision<T> => {
      record.result = d.kind;
      record.durationMs = this.#wallNow() - started;
      const id = this.history.add(record);
      return { ...d, searchId: id } as RouteDecision<T>;
    };

    const pol = this.policy(req.sourceAlias ?? '', t.alias);
    record.policy = pol.rule === undefined ? 'allow (no rule)' : `${pol.action} (rule ${pol.rule})`;
    if (pol.action === 'reject') {
      return finish({ kind: 'rejected', alias: t.alias, reason: `call policy rule ${pol.rule}` });
    }

    for (const group of this.#groups) {
      const tries: { rule: CompiledRule; alias: string; trace: SearchRuleTrace }[] = [];
      let stop = false;
      for (const rule of group) {
        const trace: SearchRuleTrace = {
          rule: rule.name,
          priority: rule.priority,
          zone: rule.targetZone,
          result: 'no-match',
        };
        record.rules.push(trace);
        if (!this.#sourceOk(rule, req.sourceZone)) {
          trace.result = 'skipped-source';
          continue;
        }
        if (rule.requireAuthenticated && !req.authenticated) {
          trace.result = 'skipped-unauthenticated';
          continue;
        }
        const alias = this.#match(rule, t.alias);
        if (alias === undefined) continue;
        trace.alias = alias;
        if (rule.onSuccess === 'stop') stop = true;
        tries.push({ rule, alias, trace });
      }
      if (tries.length === 0) continue;
      // Rules of equal priority: searched in parallel.
      const results = await Promise.all(
        tries.map(async ({ rule, alias, trace }) => {
          const zone = this.#zones.get(rule.targetZone);
          if (!zone) {
            trace.result = 'no-zone';
            return [];
          }
          try {
            const hits = await this.#searcher.search(zone, alias);
            trace.result = hits.length > 0 ? 'found' : 'not-found';
            return hits.map((target) => ({ zone: zone.name, rule: rule.name, alias, target }));
          } catch (err) {
            trace.result = 'error';
            trace.error = (err as Error)?.message ?? String(err);
            return [];
          }
        }),
      );
      const targets = results.flat();
      if (targets.length > 0) {
        record.targets = targets.map((x) => ({ zone: x.zone, alias: x.alias }));
        return finish({ kind: 'found', alias: t.alias, targets });
      }
      if (stop) break;
    }
    return finish({ kind: 'not-found', alias: t.alias });
  }

  #sourceOk(rule: CompiledRule, sourceZone: string): boolean {
    if (rule.source === 'any') return true;
    if (rule.source === 'localZone') return sourceZone === LOCAL_ZONE;
    return sourceZone === rule.sourceZone;
  }

  /** The alias sent to the target zone when the rule matches, else undefined. */
  #match(rule: CompiledRule, alias: string): string | undefined {
    if (rule.kind === 'anyAlias') return alias;
    if (rule.kind === 'anyIp') return isIpAlias(alias) ? alias : undefined;
    const p = rule.pattern!;
    if (!p.re.test(alias)) return undefined;
    if (rule.onMatch === 'leave') return alias;
    return rewrite(p, alias, rule.onMatch, rule.replace);
  }
}

export { DEFAULT_ZONE, LOCAL_ZONE };
