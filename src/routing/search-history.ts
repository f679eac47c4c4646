/** Why one search rule led where it did. */
export interface SearchRuleTrace {
  rule: string;
  priority: number;
  zone: string;
  /** The alias sent to the zone, when the rule matched. */
  alias?: string;
  result: 'no-match' | 'skipped-source' | 'skipped-unauthenticated' | 'found' | 'not-found' | 'no-zone' | 'error';
  error?: string;
  /**
   * Found, but the request forwarded there failed and the search went on: the zone's final answers (`404`, or
   * `404,480` for several targets).
   */
  answer?: string;
}

/** One routed request: what came in, what the transforms, policy and rules did, and where it went. */
export interface SearchRecord {
  id: number;
  /** Wall-clock ms. */
  at: number;
  protocol: 'sip' | 'h323';
  label: string;
  sourceZone: string;
  sourceAlias: string;
  authenticated: boolean;
  alias: string;
  /** Name of the pre-search transform applied, if one matched. */
  transform?: string;
  /** The alias after transforms (what call policy and search rules saw). */
  searchedAlias: string;
  policy?: string;
  rules: SearchRuleTrace[];
  result: 'found' | 'not-found' | 'rejected';
  /** Where the request went last (a resumed search: the targets of its last step). */
  targets: { zone: string; alias: string }[];
  /** Times the search went on after every target it had found failed. */
  continued?: number;
  durationMs: number;
}

/** A bounded ring of the most recent searches (oldest dropped first). */
export class SearchHistory {
  readonly #ring: (SearchRecord | undefined)[];
  #next = 0;
  #count = 0;
  #id = 0;

  constructor(size: number) {
    this.#ring = new Array(Math.max(1, size));
  }

  get size(): number {
    return this.#count;
  }

  get capacity(): number {
    return this.#ring.length;
  }

  /** Stores a record (its id is assigned here) and returns the id. */
  add(record: SearchRecord): number {
    record.id = ++this.#id;
    this.#ring[this.#next] = record;
    this.#next = (this.#next + 1) % this.#ring.length;
    if (this.#count < this.#ring.length) this.#count++;
    return record.id;
  }

  /** The most recent records, newest first. */
  recent(limit = this.#ring.length): SearchRecord[] {
    const out: SearchRecord[] = [];
    for (let i = 1; i <= Math.min(limit, this.#count); i++) {
      const r = this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length];
      if (r) out.push(r);
    }
    return out;
  }

  /** A record still in the ring, by id (ids are sequential: its slot is known). */
  get(id: number): SearchRecord | undefined {
    if (id <= this.#id - this.#count || id > this.#id) return undefined;
    const r = this.#ring[(id - 1) % this.#ring.length];
    return r?.id === id ? r : undefined;
  }
}
