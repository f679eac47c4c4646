import type { PortRange } from './port-range.ts';
import type { Flow, Listener, NodeKind, NotOpened, PortPlan, PortPool } from './types.ts';

/** The plan as plain data: what `crossway ports --format json` prints and the management API serves. */
export interface PortPlanDocument {
  version: 1;
  role: PortPlan['role'];
  size: PortPlan['size'];
  portOffset: number;
  remapped: { from: number; to: number }[];
  nodes: {
    node: NodeKind;
    listeners: Listener[];
    pools: PortPool[];
    mux: { rtp: number[]; rtcp: number[] } | null;
    mediaPool: { ranges: PortRange[]; pairs: number };
  }[];
  flows: Flow[];
  /** Listed by the seed for this configuration, not opened by any node yet (each with `notOpened`: why). */
  notOpened: { listeners: NotOpened<Listener>[]; flows: NotOpened<Flow>[] };
}

/** Converts a plan to a JSON-safe document (no functions, no frozen objects). */
export function planToDocument(plan: PortPlan): PortPlanDocument {
  const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;
  return {
    version: 1,
    role: plan.role,
    size: plan.size,
    portOffset: plan.portOffset,
    remapped: clone(plan.remapped) as { from: number; to: number }[],
    nodes: plan.nodes.map((n) => {
      const mux = n.muxPorts();
      const pool = n.mediaPool();
      return {
        node: n.node,
        listeners: clone(n.listeners) as Listener[],
        pools: clone(n.pools) as PortPool[],
        mux: mux ? { rtp: [...mux.rtp], rtcp: [...mux.rtcp] } : null,
        mediaPool: { ranges: clone(pool.ranges) as PortRange[], pairs: pool.pairs },
      };
    }),
    flows: clone(plan.flows) as Flow[],
    notOpened: clone(plan.notOpened) as PortPlanDocument['notOpened'],
  };
}

export function renderJson(plan: PortPlan): string {
  return `${JSON.stringify(planToDocument(plan), null, 2)}\n`;
}
