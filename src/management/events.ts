import type { z } from 'zod';
import type { feedbackEventSchema } from '../config/schema.ts';

/** Names of the events a node reports to management systems (feedback) and its own listeners. */
export type ManagementEventName = z.infer<typeof feedbackEventSchema>;

/** One event as it leaves the node (the feedback POST body; schema in docs/management.md). */
export interface ManagementEvent {
  /** Node-unique, increasing: a subscriber sees them in this order. */
  readonly seq: number;
  readonly event: ManagementEventName;
  /** Which node kind of the process emitted it (`edge` or `core`). */
  readonly node: string;
  /** ISO-8601 wall-clock time. */
  readonly time: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export type EventListener = (event: ManagementEvent) => void;

/**
 * The node's event bus: modules call `emit('registration', {...})`; management (feedback delivery, alarms, metrics)
 * listens. A throwing listener never breaks `emit` or the other listeners.
 */
export class EventBus {
  readonly #node: string;
  readonly #wallNow: () => number;
  readonly #listeners = new Set<EventListener>();
  #seq = 0;
  /** Listener exceptions swallowed so far (a bug somewhere; counted for the status page). */
  listenerErrors = 0;

  constructor(node: string, wallNow: () => number) {
    this.#node = node;
    this.#wallNow = wallNow;
  }

  emit(event: ManagementEventName, data: Record<string, unknown> = {}): ManagementEvent {
    const e: ManagementEvent = Object.freeze({
      seq: ++this.#seq,
      event,
      node: this.#node,
      time: new Date(this.#wallNow()).toISOString(),
      data: Object.freeze({ ...data }),
    });
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch {
        this.listenerErrors++;
      }
    }
    return e;
  }

  /** Adds a listener; returns its removal. */
  on(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
