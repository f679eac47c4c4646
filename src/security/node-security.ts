/**
 * The authentication and intrusion protection of one node kind, as the composition root wires them: the guard fed by
 * the authenticator's failures and the transport's malformed messages, and the control commands the `crossway blocks`
 * CLI calls on a running node.
 */
import type { Logger } from '../common/log.ts';
import type { Clock } from '../common/timers.ts';
import type { CrosswayConfig } from '../config/schema.ts';
import type { NodeKind, NodePlan } from '../ports/index.ts';
import type { ControlServer } from '../roles/control.ts';
import { AuthService } from '../sip/auth/service.ts';
import type { PortRange } from '../sip/transport/outbound-ports.ts';
import type { NodeStore } from '../store/database.ts';
import type { IntrusionGuard } from './intrusion.ts';
import { createIntrusionProtection, viewBlocks } from './service.ts';

/** Authentication and intrusion protection of one node kind. */
export interface NodeSecurity {
  readonly auth: AuthService;
  readonly guard: IntrusionGuard;
  close(): Promise<void>;
}

export interface NodeSecurityOptions {
  config: Readonly<CrosswayConfig>;
  plan: NodePlan;
  store: NodeStore;
  clock: Clock;
  log: Logger;
  /** Address LDAP connections leave from (the node's private address). */
  localAddress?: string;
}

/** Builds a node's guard (restoring persisted blocks) and its authentication services. */
export function createNodeSecurity(o: NodeSecurityOptions): NodeSecurity {
  const { guard } = createIntrusionProtection({
    config: o.config.security,
    store: o.store,
    clock: o.clock,
    log: o.log,
  });
  let ldapSourcePorts: PortRange | undefined;
  if (o.plan.pools.some((p) => p.id === 'ldap-outbound')) ldapSourcePorts = o.plan.range('ldap-outbound');
  const auth = new AuthService({
    config: o.config,
    store: o.store,
    clock: o.clock,
    log: o.log,
    ...(ldapSourcePorts ? { ldapSourcePorts } : {}),
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    onFailure: (source, kind) => {
      if (kind === 'malformed') guard.onMalformed(source.address);
      else guard.onAuthFailure(source.address);
    },
  });
  return { auth, guard, close: () => auth.close() };
}

function pick(map: ReadonlyMap<NodeKind, NodeSecurity>, node: unknown): [NodeKind, NodeSecurity][] {
  if (node === undefined || node === null || node === '') return [...map];
  const s = map.get(node as NodeKind);
  if (!s) throw new Error(`no ${String(node)} node in this process (have: ${[...map.keys()].join(', ')})`);
  return [[node as NodeKind, s]];
}

/**
 * Control commands: `security.blocks.list {node?}`, `security.blocks.clear {node?, address? | all: true}`,
 * `security.status {node?}` (guard and authenticator counters).
 */
export function registerSecurityControl(
  control: ControlServer,
  map: ReadonlyMap<NodeKind, NodeSecurity>,
  clock: Clock,
): void {
  control.register('security.blocks.list', (args) =>
    pick(map, args['node']).map(([node, s]) => ({ node, blocks: viewBlocks(s.guard.blocks(), clock.wallNow()) })),
  );
  control.register('security.blocks.clear', (args) => {
    const address = typeof args['address'] === 'string' ? args['address'] : undefined;
    if (!address && args['all'] !== true) throw new Error('give an address, or all: true');
    return pick(map, args['node']).map(([node, s]) => ({
      node,
      cleared: address ? (s.guard.clear(address) ? 1 : 0) : s.guard.clearAll(),
    }));
  });
  control.register('security.status', (args) =>
    pick(map, args['node']).map(([node, s]) => ({
      node,
      intrusion: { ...s.guard.counters, blocks: s.guard.blocks().length, trackedSources: s.guard.trackedSources },
      auth: {
        source: s.auth.credentials.name,
        algorithms: s.auth.authenticator.algorithms,
        ...s.auth.authenticator.counters,
      },
    })),
  );
}
