import type { EventBus } from './events.ts';

export type AlarmSeverity = 'critical' | 'major' | 'minor' | 'warning';

/** A raised alarm. */
export interface Alarm {
  /** Stable id, e.g. `zone:to-edge`: raising it again updates it, lowering it clears it. */
  readonly id: string;
  readonly severity: AlarmSeverity;
  readonly message: string;
  /** Wall-clock ms when first raised. */
  readonly raisedAt: number;
}

/**
 * The node's current alarms. Raising and lowering emit `alarm-raised` / `alarm-lowered` on the bus (only on a change,
 * so a condition re-checked every keepalive does not flood the subscribers).
 */
export class AlarmTable {
  readonly #bus: EventBus;
  readonly #wallNow: () => number;
  readonly #alarms = new Map<string, Alarm>();
  /** Alarms raised since start (an SNMP counter). */
  raisedTotal = 0;

  constructor(bus: EventBus, wallNow: () => number) {
    this.#bus = bus;
    this.#wallNow = wallNow;
  }

  raise(id: string, severity: AlarmSeverity, message: string): void {
    const old = this.#alarms.get(id);
    if (old && old.severity === severity && old.message === message) return;
    const alarm: Alarm = { id, severity, message, raisedAt: old?.raisedAt ?? this.#wallNow() };
    this.#alarms.set(id, alarm);
    if (!old) this.raisedTotal++;
    this.#bus.emit('alarm-raised', { ...alarm });
  }

  lower(id: string): void {
    const old = this.#alarms.get(id);
    if (!old) return;
    this.#alarms.delete(id);
    this.#bus.emit('alarm-lowered', { id, severity: old.severity, message: old.message });
  }

  list(): Alarm[] {
    return [...this.#alarms.values()];
  }
}
