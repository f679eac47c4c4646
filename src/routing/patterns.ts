import { isIP } from 'node:net';

/**
 * Alias patterns of transforms and search rules, compiled once to anchored, case-insensitive regular expressions.
 * `%localdomains%` in any pattern stands for the domains the node serves (`sip.domains`), any of them.
 */

export type PatternType = 'exact' | 'prefix' | 'suffix' | 'regex';

/** A compiled pattern: `re` matches the whole alias; `part` is the capture group that `strip`/`replace` act on. */
export interface CompiledPattern {
  type: PatternType;
  re: RegExp;
  /** 0: the whole alias (exact, regex); 1: the prefix; 2: the suffix. */
  part: 0 | 1 | 2;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function domainsAlternation(domains: readonly string[]): string {
  // No domain configured: the placeholder matches nothing.
  return domains.length === 0 ? '(?!)' : `(?:${domains.map(escapeRe).join('|')})`;
}

/** Literal text with `%localdomains%` expanded. */
function literal(value: string, domains: readonly string[]): string {
  return value
    .split(/%localdomains%/i)
    .map(escapeRe)
    .join(domainsAlternation(domains));
}

/** Compiles a pattern; a regex that does not compile yields undefined (the schema refuses those already). */
export function compilePattern(
  type: PatternType,
  value: string,
  domains: readonly string[],
): CompiledPattern | undefined {
  try {
    switch (type) {
      case 'exact':
        return { type, re: new RegExp(`^${literal(value, domains)}$`, 'i'), part: 0 };
      case 'prefix':
        return { type, re: new RegExp(`^(${literal(value, domains)})([\\s\\S]*)$`, 'i'), part: 1 };
      case 'suffix':
        return { type, re: new RegExp(`^([\\s\\S]*?)(${literal(value, domains)})$`, 'i'), part: 2 };
      case 'regex':
        return {
          type,
          re: new RegExp(`^(?:${value.replace(/%localdomains%/gi, domainsAlternation(domains))})$`, 'i'),
          part: 0,
        };
    }
  } catch {
    return undefined;
  }
}

/** Converts `\1`…`\9` back-references (the administrator's notation) to JavaScript's `$1`…`$9`. */
function jsReplacement(replacement: string): string {
  return replacement.replace(/\$/g, '$$$$').replace(/\\([1-9])/g, '$$$1');
}

/**
 * Applies `strip` or `replace` to an alias that matches `p`. Prefix/suffix act on the matched prefix/suffix; exact
 * replaces the whole alias; regex substitutes the whole match with back-references expanded.
 * Returns undefined when the alias does not match.
 */
export function rewrite(
  p: CompiledPattern,
  alias: string,
  action: 'strip' | 'replace',
  replacement = '',
): string | undefined {
  const m = p.re.exec(alias);
  if (!m) return undefined;
  const put = action === 'strip' ? '' : replacement;
  if (p.part === 1) return put + (m[2] ?? '');
  if (p.part === 2) return (m[1] ?? '') + put;
  if (p.type === 'regex') return action === 'strip' ? '' : alias.replace(p.re, jsReplacement(replacement));
  return put;
}

/** The host part of an alias (`user@host` or a bare host), IPv6 brackets and port removed. */
export function aliasHost(alias: string): string {
  const at = alias.lastIndexOf('@');
  let host = at >= 0 ? alias.slice(at + 1) : alias;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host;
  }
  const colon = host.indexOf(':');
  if (colon >= 0 && host.indexOf(':', colon + 1) < 0) host = host.slice(0, colon);
  return host;
}

/** True when the alias is addressed to an IP literal (the `anyIp` search-rule pattern). */
export function isIpAlias(alias: string): boolean {
  return isIP(aliasHost(alias)) !== 0;
}
