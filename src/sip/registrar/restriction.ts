import type { AliasPattern } from './config.ts';

/** Decides whether an alias (`user@domain`) may register: `none` allows all, `allow`/`deny` lists of patterns. */
export class RestrictionPolicy {
  readonly #policy: 'none' | 'allow' | 'deny';
  readonly #tests: ((alias: string) => boolean)[];

  constructor(policy: 'none' | 'allow' | 'deny', patterns: readonly AliasPattern[]) {
    this.#policy = policy;
    this.#tests = patterns.map(compile);
  }

  /** True when the alias may register. */
  allows(alias: string): boolean {
    if (this.#policy === 'none') return true;
    const a = alias.toLowerCase();
    const hit = this.#tests.some((t) => t(a));
    return this.#policy === 'allow' ? hit : !hit;
  }
}

function compile(p: AliasPattern): (alias: string) => boolean {
  const v = p.value.toLowerCase();
  switch (p.type) {
    case 'exact':
      return (a) => a === v;
    case 'prefix':
      return (a) => a.startsWith(v);
    case 'suffix':
      return (a) => a.endsWith(v);
    case 'regex': {
      // Anchored on both ends and case-insensitive, so `alice@.*` cannot match `malice@…` by accident.
      const re = new RegExp(`^(?:${p.value})$`, 'i');
      return (a) => re.test(a);
    }
  }
}
