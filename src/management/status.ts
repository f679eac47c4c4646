/** A function returning one section of the node's status (plain JSON data), called on every status request. */
export type StatusProvider = () => unknown;

/**
 * The node's status, one section per module: the composition root registers what each module exposes
 * (`status.register('registrations', () => registrar.list())`); the API, the UI and SNMP read it. A provider that
 * throws yields `{ error }` for its section instead of failing the whole status.
 */
export class StatusRegistry {
  readonly #providers = new Map<string, StatusProvider>();

  register(section: string, provider: StatusProvider): void {
    this.#providers.set(section, provider);
  }

  has(section: string): boolean {
    return this.#providers.has(section);
  }

  sections(): string[] {
    return [...this.#providers.keys()];
  }

  /** One section; `undefined` when no module provides it. */
  get(section: string): unknown {
    const p = this.#providers.get(section);
    if (!p) return undefined;
    try {
      return p();
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of this.#providers.keys()) out[s] = this.get(s);
    return out;
  }
}
