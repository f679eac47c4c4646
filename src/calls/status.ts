import type { CallInfo, CallRecord, CallRegistry } from './call-registry.ts';

/**
 * The `calls.status` snapshot of one node kind, as `crossway status` shows it: registrations, active calls, recent
 * calls, zones and recent searches. Built from structural views so that this module depends on neither SIP nor the
 * composition root.
 */

export interface StatusSource {
  kind: string;
  location?: {
    readonly aorCount: number;
    readonly bindingCount: number;
    aors(): IterableIterator<string>;
    lookup(aor: string): readonly {
      contact: string;
      expiresIn: number;
      flow: { transport: string; source: { address: string; port: number } };
    }[];
  };
  router?: {
    zones(): readonly { name: string; type: string; address?: string; port?: number; transport?: string }[];
    history: { recent(limit?: number): readonly unknown[] };
  };
  calls?: CallRegistry;
  proxy?: { counters: object; readonly contexts: number; readonly branchesInFlight: number };
  /** Traversal client zones (core). */
  zones(): readonly unknown[];
}

export interface NodeStatus {
  node: string;
  registrations: {
    aors: number;
    bindings: number;
    list: { aor: string; contacts: { contact: string; expiresIn: number; via: string }[] }[];
  };
  calls: { active: CallInfo[]; recent: CallRecord[]; counters: CallRegistry['counters'] | undefined };
  zones: { name: string; type: string; peer?: string; state?: unknown }[];
  traversalZones: readonly unknown[];
  searches: readonly unknown[];
  proxy: { counters: object; contexts: number; branchesInFlight: number } | undefined;
}

/** The status of one node kind, with at most `limit` entries per list. */
export function nodeStatus(src: StatusSource, limit = 20): NodeStatus {
  const list: NodeStatus['registrations']['list'] = [];
  if (src.location) {
    for (const aor of src.location.aors()) {
      if (list.length >= limit) break;
      list.push({
        aor,
        contacts: src.location.lookup(aor).map((b) => ({
          contact: b.contact,
          expiresIn: b.expiresIn,
          via: `${b.flow.transport} ${b.flow.source.address}:${b.flow.source.port}`,
        })),
      });
    }
  }
  return {
    node: src.kind,
    registrations: {
      aors: src.location?.aorCount ?? 0,
      bindings: src.location?.bindingCount ?? 0,
      list,
    },
    calls: {
      active: (src.calls?.active() ?? []).slice(0, limit),
      recent: src.calls?.history(limit) ?? [],
      counters: src.calls?.counters,
    },
    zones: (src.router?.zones() ?? []).map((z) => ({
      name: z.name,
      type: z.type,
      ...(z.address ? { peer: `${z.transport ?? 'udp'}:${z.address}${z.port ? `:${z.port}` : ''}` } : {}),
    })),
    traversalZones: src.zones(),
    searches: src.router?.history.recent(limit) ?? [],
    proxy: src.proxy
      ? { counters: src.proxy.counters, contexts: src.proxy.contexts, branchesInFlight: src.proxy.branchesInFlight }
      : undefined,
  };
}
