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
  /** The active calls with what the relay carried for each so far (SIP service); without it, the registry's. */
  activeCalls?(limit: number): CallInfo[];
  proxy?: { counters: object; readonly contexts: number; readonly branchesInFlight: number };
  /** Traversal client zones (core). */
  zones(): readonly unknown[];
}

/** What the status reads from an H.323 gatekeeper (its registrations sit in the same listing as SIP bindings). */
export interface H323RegistrationSource {
  readonly size: number;
  list(): readonly {
    endpointIdentifier: string;
    aliases: readonly { kind: string; value: string }[];
    callSignalAddresses: readonly { ip: string; port: number }[];
    rasAddress: { ip: string; port: number };
    timeToLive: number;
    refreshedAt: number;
    authUser?: string;
  }[];
}

/** One H.323 registration as the status lists it. */
export interface H323RegistrationStatus {
  endpointIdentifier: string;
  aliases: string[];
  callSignalAddress: string;
  rasAddress: string;
  timeToLive: number;
  /** Seconds until the registration expires without a keep-alive (timeToLive from the last refresh). */
  expiresIn: number;
  authUser?: string;
}

/** H.323 registrations as the listings show them (at most `limit`). */
export function h323Registrations(
  src: H323RegistrationSource,
  wallNow: number,
  limit: number,
): H323RegistrationStatus[] {
  const out: H323RegistrationStatus[] = [];
  for (const r of src.list()) {
    if (out.length >= limit) break;
    const csa = r.callSignalAddresses[0];
    out.push({
      endpointIdentifier: r.endpointIdentifier,
      aliases: r.aliases.map((a) => `${a.kind}:${a.value}`),
      callSignalAddress: csa ? `${csa.ip}:${csa.port}` : '',
      rasAddress: `${r.rasAddress.ip}:${r.rasAddress.port}`,
      timeToLive: r.timeToLive,
      expiresIn: Math.max(0, Math.round((r.refreshedAt + r.timeToLive * 1000 - wallNow) / 1000)),
      ...(r.authUser !== undefined ? { authUser: r.authUser } : {}),
    });
  }
  return out;
}

export interface NodeStatus {
  node: string;
  registrations: {
    aors: number;
    bindings: number;
    list: { aor: string; contacts: { contact: string; expiresIn: number; via: string }[] }[];
    /** H.323 endpoints registered with the node's gatekeeper (0 and [] when it runs none). */
    h323: number;
    h323List: H323RegistrationStatus[];
  };
  calls: { active: CallInfo[]; recent: CallRecord[]; counters: CallRegistry['counters'] | undefined };
  zones: { name: string; type: string; peer?: string; state?: unknown }[];
  traversalZones: readonly unknown[];
  searches: readonly unknown[];
  proxy: { counters: object; contexts: number; branchesInFlight: number } | undefined;
}

/** The status of one node kind, with at most `limit` entries per list (`h323`: the node's gatekeeper, if any). */
export function nodeStatus(
  src: StatusSource,
  limit = 20,
  h323?: { gatekeeper: H323RegistrationSource; wallNow: number },
): NodeStatus {
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
      h323: h323?.gatekeeper.size ?? 0,
      h323List: h323 ? h323Registrations(h323.gatekeeper, h323.wallNow, limit) : [],
    },
    calls: {
      active: src.activeCalls?.(limit) ?? (src.calls?.active() ?? []).slice(0, limit),
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
