import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * The `routing` section of the node's configuration: zones, pre-search transforms, call policy and search rules
 * (docs/routing.md, docs/configuration.md). Protocol-neutral: SIP and H.323 route through the same rules.
 */

/** The zone every node has: the endpoints registered to it. */
export const LOCAL_ZONE = 'LocalZone';
/** Where requests from sources that are neither registered nor a configured zone come from. */
export const DEFAULT_ZONE = 'DefaultZone';

const port = z.number().int().min(1).max(65535);

/** How an alias is compared with a pattern. */
export const patternTypeSchema = z.enum(['exact', 'prefix', 'suffix', 'regex']);

const checkRegex = (s: string) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
};

/** RFC 1123 §2.1 host name: dot-separated labels of letters, digits and inner hyphens, at most 253 characters. */
const HOST_NAME =
  /^(?=.{1,253}\.?$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?$/i;

/** An IP address, or a host name a resolver can be asked about (not a URI, not a `host:port`). */
export function isAddressOrHostName(s: string): boolean {
  // a dotted number that is no IP address (999.1.1.1) is a mistyped address, not a name
  return isIP(s) !== 0 || (HOST_NAME.test(s) && !/^[\d.]+$/.test(s));
}

const regexString = z.string().max(1024).refine(checkRegex, { message: 'not a valid regular expression' });

export const zoneSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .refine((n) => n !== LOCAL_ZONE && n !== DEFAULT_ZONE, { message: 'LocalZone and DefaultZone are built in' }),
    /**
     * `neighbor`: a peer SIP server at `address`; `dns`: the destination's domain resolved by RFC 3263; `traversal`: the
     * traversal zone of the same name in `traversalZones` (the edge sends down the core's flow, the core up to the edge).
     */
    type: z.enum(['neighbor', 'dns', 'traversal']),
    /** Neighbor: host name or IP address of the peer. */
    address: z.string().min(1).optional(),
    /** Neighbor: port of the peer (default 5060, 5061 for TLS; 1719 for an H.323 neighbor gatekeeper's RAS). */
    port: port.optional(),
    /** Neighbor: a SIP server (`sip`, the default) or an H.323 neighbor gatekeeper asked with LRQ (`h323`). */
    protocol: z.enum(['sip', 'h323']).optional(),
    /** H.323 neighbor: its gatekeeperIdentifier (LRQs naming it identify the neighbor, with its address). */
    gatekeeperIdentifier: z.string().min(1).max(128).optional(),
    /** H.323 neighbor: hopCount put in the LRQs sent to it (default 2; 1: it must not forward them further). */
    hopCount: z.number().int().min(1).max(255).optional(),
    /** H.323 neighbor: how long an LRQ waits for LCF/LRJ (ms, default 2000); a RIP from the neighbor extends it. */
    lrqTimeoutMs: z.number().int().min(100).max(30_000).optional(),
    transport: z.enum(['udp', 'tcp', 'tls']).default('udp'),
    /** Requests arriving from this zone's peer count as authenticated (a trusted neighbor). */
    trusted: z.boolean().default(false),
    /**
     * SIP: credentials the proxy answers this zone's 401/407 challenges with: the request goes again, once, with
     * Authorization / Proxy-Authorization (digest MD5, SHA-256 or SHA-512-256, qop=auth) and CSeq + 1.
     * H.323 neighbor: a password shared with the neighbor gatekeeper (GnuGk's `Password` and `SendPassword`): our
     * LRQs and answers to it are signed as `username` (H.235.1 procedure I, and GnuGk's MD5 pwdHash on LRQs), its
     * LRQs must carry a good token (else LRJ securityDenial), a bad token on its answers drops them.
     */
    authentication: z
      .object({ username: z.string().min(1), password: z.string().min(1) })
      .strict()
      .optional(),
  })
  .strict()
  .refine((zn) => zn.type !== 'neighbor' || zn.address !== undefined, {
    message: 'a neighbor zone needs an address',
    path: ['address'],
  })
  .refine((zn) => zn.protocol !== 'h323' || (zn.type === 'neighbor' && isAddressOrHostName(zn.address ?? '')), {
    message: 'an h323 zone is a neighbor gatekeeper named by its IP address or host name',
    path: ['address'],
  });

export const transformSchema = z
  .object({
    name: z.string().min(1).max(64).optional(),
    /** 1 (first) to 65534. Only the first matching transform is applied. */
    priority: z.number().int().min(1).max(65534).default(100),
    pattern: z.object({ type: patternTypeSchema, value: z.string().min(1).max(1024) }).strict(),
    /** `strip` removes what matched; `replace` puts `value` in its place (regex: `\1`…`\9` back-references). */
    action: z.enum(['strip', 'replace', 'addPrefix', 'addSuffix']),
    value: z.string().max(1024).default(''),
    enabled: z.boolean().default(true),
  })
  .strict()
  .refine((t) => t.pattern.type !== 'regex' || checkRegex(t.pattern.value), {
    message: 'not a valid regular expression',
    path: ['pattern', 'value'],
  });

export const searchRuleSchema = z
  .object({
    name: z.string().min(1).max(64),
    /** 1 (first) to 65534; rules of equal priority are searched in parallel. */
    priority: z.number().int().min(1).max(65534).default(100),
    /** Which requests the rule applies to: any source, only the local zone (registered endpoints), or one zone. */
    source: z.enum(['any', 'localZone', 'zone']).default('any'),
    /** With `source: zone`: the zone's name. */
    sourceZone: z.string().min(1).optional(),
    /** Apply only to requests that were authenticated (digest, or from a trusted zone). */
    requireAuthenticated: z.boolean().default(false),
    pattern: z
      .object({
        type: z.enum(['exact', 'prefix', 'suffix', 'regex', 'anyAlias', 'anyIp']),
        value: z.string().max(1024).optional(),
      })
      .strict(),
    /** What the rule does to the alias it sends to the target zone. */
    onMatch: z.enum(['leave', 'strip', 'replace']).default('leave'),
    replace: z.string().max(1024).default(''),
    /** `stop`: no lower-priority rule is tried once this rule matched, found or not. `continue`: go on if not found. */
    onSuccess: z.enum(['continue', 'stop']).default('continue'),
    /** `LocalZone` or the name of a configured zone. */
    targetZone: z.string().min(1),
    enabled: z.boolean().default(true),
  })
  .strict()
  .refine((r) => r.source !== 'zone' || r.sourceZone !== undefined, {
    message: 'source "zone" needs sourceZone',
    path: ['sourceZone'],
  })
  .refine(
    (r) => ['anyAlias', 'anyIp'].includes(r.pattern.type) || (r.pattern.value !== undefined && r.pattern.value !== ''),
    { message: 'this pattern type needs a value', path: ['pattern', 'value'] },
  )
  .refine((r) => r.pattern.type !== 'regex' || checkRegex(r.pattern.value ?? ''), {
    message: 'not a valid regular expression',
    path: ['pattern', 'value'],
  });

export const callPolicyRuleSchema = z
  .object({
    /** Regex on the caller's alias (`user@host`), whole-string; default any. */
    source: regexString.default('.*'),
    /** Regex on the destination alias after transforms, whole-string; default any. */
    destination: regexString.default('.*'),
    /**
     * When given, the rule applies only to requests that were (`true`) or were not (`false`) authenticated: SIP digest
     * or a trusted zone as for `requireAuthenticated`; H.323 an H.235.1-signed ARQ or Setup, or a trusted zone.
     * Absent: either.
     */
    authenticated: z.boolean().optional(),
    action: z.enum(['allow', 'reject']),
  })
  .strict();

export const proxySettingsSchema = z
  .object({
    /** RFC 3261 §16.6 step 11: Timer C "MUST be set for each client transaction ... greater than 3 minutes" (s). */
    timerCSeconds: z.number().int().min(1).max(3600).default(181),
    /** 3xx from a branch: `forward` it upstream (default) or `recurse` on its Contacts. */
    redirects: z.enum(['forward', 'recurse']).default('forward'),
    /** Record-Route dialog-creating requests (needed for traversal; on by default). */
    recordRoute: z.boolean().default(true),
    /** Most branches one request may fork to. */
    maxBranches: z.number().int().min(1).max(64).default(16),
    /** Challenge out-of-dialog requests with 407 (needs the authenticator); trusted zones are never challenged. */
    authenticateCalls: z.boolean().default(false),
    /**
     * Final answers from a searched zone (not LocalZone) after which the search goes on with the next priority level,
     * when every target failed so and no matching rule said `stop`.
     */
    searchContinueOn: z
      .array(z.number().int().min(300).max(699))
      .max(64)
      .default([404, 408, 410, 480, 484, 500, 502, 503, 504]),
  })
  .strict();

const DEFAULT_RULES = [
  {
    name: 'LocalZoneMatch',
    priority: 50,
    source: 'any' as const,
    requireAuthenticated: false,
    pattern: { type: 'anyAlias' as const },
    onMatch: 'leave' as const,
    replace: '',
    onSuccess: 'continue' as const,
    targetZone: LOCAL_ZONE,
    enabled: true,
  },
];

export const routingConfigSchema = z
  .object({
    zones: z.array(zoneSchema).default([]),
    transforms: z.array(transformSchema).default([]),
    /** Ordered: the first rule whose source and destination match decides; none matching allows. */
    callPolicy: z.array(callPolicyRuleSchema).default([]),
    /** Default: one rule sending any alias to the local zone. */
    searchRules: z.array(searchRuleSchema).default(DEFAULT_RULES),
    /** Entries kept in the search history ring. */
    searchHistorySize: z.number().int().min(1).max(100_000).default(256),
    /** Finished calls kept in memory (records stay in the store). */
    callHistorySize: z.number().int().min(1).max(100_000).default(1000),
    proxy: proxySettingsSchema.prefault({}),
  })
  .strict()
  .superRefine((r, ctx) => {
    const names = new Set<string>([LOCAL_ZONE]);
    r.zones.forEach((zn, i) => {
      if (names.has(zn.name)) ctx.addIssue({ code: 'custom', path: ['zones', i, 'name'], message: 'duplicate zone' });
      names.add(zn.name);
    });
    r.searchRules.forEach((rule, i) => {
      if (!names.has(rule.targetZone)) {
        ctx.addIssue({ code: 'custom', path: ['searchRules', i, 'targetZone'], message: 'no such zone' });
      }
      if (rule.sourceZone !== undefined && !names.has(rule.sourceZone) && rule.sourceZone !== DEFAULT_ZONE) {
        ctx.addIssue({ code: 'custom', path: ['searchRules', i, 'sourceZone'], message: 'no such zone' });
      }
    });
  });

export type RoutingConfig = z.infer<typeof routingConfigSchema>;
export type ZoneConfig = z.infer<typeof zoneSchema>;
export type TransformConfig = z.infer<typeof transformSchema>;
export type SearchRuleConfig = z.infer<typeof searchRuleSchema>;
export type CallPolicyRuleConfig = z.infer<typeof callPolicyRuleSchema>;
export type ProxySettings = z.infer<typeof proxySettingsSchema>;
