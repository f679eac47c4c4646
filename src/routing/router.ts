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
  /** Passed as is to the zone searcher (e.g. an H.323 LRQ's remaining hop count); opaque to the router. */
  context?: unknown;
}

/** Searches one zone for an alias; an empty array means not found there. Must not throw (a throw counts as not found). */
export interface ZoneSearcher<T> {
  search(zone: Zone, alias: string, context?: unknown): T[] | Promise<T[]>;
}

/** One place the request may go: found in `zone` by `rule`, under `alias`. */
export interface RouteTarget<T> {
  zone: string;
  rule: string;
  alias: string;
  target: T;
}

/**
 * Where a search that found targets may go on: the next priority levels. Given with a `found` decision when no rule that
 * matched said `stop` and lower-priority rules remain; the protocol layer hands it back to {@link Router.resume} when
 * every target it was given failed (a neighbor's 404, say), and the search goes on from there.
 */
export interface SearchContinuation {
  readonly searchId: number;
  /** Index of the next priority level to try. */
  readonly next: number;
  /** The alias after transforms. */
  readonly alias: string;
  readonly request: Readonly<SearchRequest>;
}

/** How one target of a resumed search ended: the zone's final answer. */
export interface TargetOutcome {
  zone: string;
  status: number;
}

export type RouteDecision<T> =
  | {
      kind: 'found';
      searchId: number;
      alias: string;
      targets: RouteTarget<T>[];
      /** Present when the search may go on should every target fail. */
      continuation?: SearchContinuation;
    }
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
  /** Undefined: the rule applies whether or not the request was authenticated. */
  authenticated: boolean | undefined;
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
        authenticated: p.authenticated,
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

  /**
   * The call-policy step alone: the first rule matching source, destination and (when the rule names it) whether the
   * request was authenticated decides; none matching allows.
   */
  policy(sourceAlias: string, alias: string, authenticated = false): { action: 'allow' | 'reject'; rule?: number } {
    for (let i = 0; i < this.#policy.length; i++) {
      const p = this.#policy[i]!;
      if (p.authenticated !== undefined && p.authenticated !== authenticated) continue;
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

    const pol = this.policy(req.sourceAlias ?? '', t.alias, req.authenticated);
    record.policy = pol.rule === undefined ? 'allow (no rule)' : `${pol.action} (rule ${pol.rule})`;
    if (pol.action === 'reject') {
      return this.#finish(record, started, {
        kind: 'rejected',
        alias: t.alias,
        reason: `call policy rule ${pol.rule}`,
      });
    }
    return this.#search(req, t.alias, 0, record, started);
  }

  /**
   * Goes on with a search whose targets all failed: their answers are written into the search history record (on the
   * rules that found them), then the priority levels after the one that found them are tried, as `route` would have.
   * The same record is updated (same search id); `durationMs` then spans both steps.
   */
  async resume(cont: SearchContinuation, outcomes: readonly TargetOutcome[]): Promise<RouteDecision<T>> {
    const record = this.history.get(cont.searchId);
    const started = record?.at ?? this.#wallNow();
    const rec: SearchRecord = record ?? {
      id: 0,
      at: started,
      protocol: cont.request.protocol,
      label: cont.request.label ?? '',
      sourceZone: cont.request.sourceZone,
      sourceAlias: cont.request.sourceAlias ?? '',
      authenticated: cont.request.authenticated,
      alias: cont.request.alias,
      searchedAlias: cont.alias,
      rules: [],
      result: 'not-found',
      targets: [],
      durationMs: 0,
    };
    for (const trace of rec.rules) {
      if (trace.result !== 'found' || trace.answer !== undefined) continue;
      const answers = outcomes.filter((o) => o.zone === trace.zone).map((o) => o.status);
      if (answers.length > 0) trace.answer = answers.join(',');
    }
    rec.continued = (rec.continued ?? 0) + 1;
    return this.#search(cont.request, cont.alias, cont.next, rec, started);
  }

  #finish(record: SearchRecord, started: number, d: WithoutId<RouteDecision<T>>): RouteDecision<T> {
    record.result = d.kind;
    record.durationMs = this.#wallNow() - started;
    // A resumed search updates the record it already has in the ring.
    const id = record.id !== 0 ? record.id : this.history.add(record);
    return { ...d, searchId: id } as RouteDecision<T>;
  }

  /** Search rules from priority level `from` on. */
  async #search(
    req: SearchRequest,
    alias: string,
    from: number,
    record: SearchRecord,
    started: number,
  ): Promise<RouteDecision<T>> {
    for (let g = from; g < this.#groups.length; g++) {
      const group = this.#groups[g]!;
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
        const matched = this.#match(rule, alias);
        if (matched === undefined) continue;
        trace.alias = matched;
        if (rule.onSuccess === 'stop') stop = true;
        tries.push({ rule, alias: matched, trace });
      }
      if (tries.length === 0) continue;
      // Rules of equal priority: searched in parallel.
      const results = await Promise.all(
        tries.map(async ({ rule, alias: a, trace }) => {
          const zone = this.#zones.get(rule.targetZone);
          if (!zone) {
            trace.result = 'no-zone';
            return [];
          }
          try {
            const hits = await this.#searcher.search(zone, a, req.context);
            trace.result = hits.length > 0 ? 'found' : 'not-found';
            return hits.map((target) => ({ zone: zone.name, rule: rule.name, alias: a, target }));
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
        const found: WithoutId<RouteDecision<T>> = { kind: 'found', alias, targets };
        const d = this.#finish(record, started, found);
        if (!stop && g + 1 < this.#groups.length && d.kind === 'found') {
          d.continuation = { searchId: d.searchId, next: g + 1, alias, request: req };
        }
        return d;
      }
      if (stop) break;
    }
    record.targets = [];
    return this.#finish(record, started, { kind: 'not-found', alias });
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
