import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { SipService } from '../roles/sip-service.ts';
import type { AlarmTable } from './alarms.ts';
import type { FeedbackDeliverer } from './feedback/deliverer.ts';
import type { SessionTable } from './sessions.ts';

export interface MetricsSources {
  sip?: SipService;
  alarms: AlarmTable;
  deliverer: FeedbackDeliverer;
  sessions: SessionTable;
  /** Counts of other modules' status (registrations, calls, TURN allocations), read at scrape time. */
  counts?: () => Record<string, number>;
}

/**
 * Prometheus metrics of one node, in its own registry (a lab process has two). Label values come from fixed sets
 * (transport names, states, severities, route patterns, results): never a user, an address or a URL.
 */
export class ManagementMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly logins: Counter<'result' | 'via'>;
  readonly events: Counter<'event'>;

  constructor(sources: MetricsSources, node: string) {
    const registry = this.registry;
    registry.setDefaultLabels({ node });
    collectDefaultMetrics({ register: registry, prefix: 'crossway_' });
    this.httpRequests = new Counter({
      name: 'crossway_mgmt_http_requests_total',
      help: 'Management HTTP requests by route pattern, method and status class',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    });
    this.logins = new Counter({
      name: 'crossway_mgmt_logins_total',
      help: 'Administrator login attempts by result and authentication source',
      labelNames: ['result', 'via'],
      registers: [registry],
    });
    this.events = new Counter({
      name: 'crossway_events_total',
      help: 'Management events emitted, by event name',
      labelNames: ['event'],
      registers: [registry],
    });
    const sip = sources.sip;
    new Gauge({
      name: 'crossway_sip_messages_received',
      help: 'SIP messages received since start, by transport',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.reset();
        if (!sip) return;
        for (const [t, n] of Object.entries(sip.transport.counters().received)) this.set({ transport: t }, n);
      },
    });
    new Gauge({
      name: 'crossway_sip_messages_sent',
      help: 'SIP messages sent since start, by transport',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.reset();
        if (!sip) return;
        for (const [t, n] of Object.entries(sip.transport.counters().sent)) this.set({ transport: t }, n);
      },
    });
    new Gauge({
      name: 'crossway_sip_transactions',
      help: 'SIP transactions in the table, by side',
      labelNames: ['side'],
      registers: [registry],
      collect() {
        if (!sip) return;
        const s = sip.transactions.size;
        this.set({ side: 'client' }, s.client);
        this.set({ side: 'server' }, s.server);
      },
    });
    new Gauge({
      name: 'crossway_traversal_zones',
      help: 'Traversal client zones by state',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const st of ['checking', 'active', 'failed', 'stopped']) this.set({ state: st }, 0);
        for (const z of sip?.zones() ?? []) this.inc({ state: z.state });
      },
    });
    new Gauge({
      name: 'crossway_alarms',
      help: 'Raised alarms by severity',
      labelNames: ['severity'],
      registers: [registry],
      collect() {
        this.reset();
        for (const sev of ['critical', 'major', 'minor', 'warning']) this.set({ severity: sev }, 0);
        for (const a of sources.alarms.list()) this.inc({ severity: a.severity });
      },
    });
    new Gauge({
      name: 'crossway_feedback_events',
      help: 'Feedback events over all subscribers by outcome (delivered, dropped, rejected, queued)',
      labelNames: ['outcome'],
      registers: [registry],
      collect() {
        const t = { delivered: 0, dropped: 0, rejected: 0, queued: 0 };
        for (const s of sources.deliverer.status()) {
          t.delivered += s.delivered;
          t.dropped += s.dropped;
          t.rejected += s.rejected;
          t.queued += s.queued;
        }
        for (const [k, v] of Object.entries(t)) this.set({ outcome: k }, v);
      },
    });
    new Gauge({
      name: 'crossway_mgmt_sessions',
      help: 'Open administrator sessions',
      registers: [registry],
      collect() {
        this.set(sources.sessions.size);
      },
    });
    new Gauge({
      name: 'crossway_module_count',
      help: 'Counts reported by modules (registrations: SIP and H.323; h323-registrations; calls; turn-allocations; media-port-pairs), by what',
      labelNames: ['what'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [k, v] of Object.entries(sources.counts?.() ?? {})) this.set({ what: k }, v);
      },
    });
  }
}
