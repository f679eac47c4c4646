import { z } from 'zod';

/** One alias pattern of the registration restriction policy, matched against `user@domain` of the AOR. */
export const aliasPatternSchema = z
  .object({
    type: z.enum(['exact', 'prefix', 'suffix', 'regex']),
    value: z.string().min(1).max(1024),
  })
  .strict()
  .refine(
    (p) => {
      if (p.type !== 'regex') return true;
      try {
        new RegExp(p.value);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'invalid regular expression', path: ['value'] },
  );
export type AliasPattern = z.infer<typeof aliasPatternSchema>;

/**
 * The registrar of a node (RFC 3261 §10): expiry bounds, limits, the restriction policy, what to do with REGISTER
 * for domains the node is not registrar for, and the write-behind of its store. See docs/registrar.md.
 */
export const registrarConfigSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Shortest registration accepted (s); shorter non-zero requests get 423 with Min-Expires (RFC 3261 §10.3 step 7). */
    minExpires: z.number().int().min(1).max(86_400).default(60),
    /** Longest registration granted (s); longer requests are shortened. */
    maxExpires: z.number().int().min(1).max(604_800).default(3600),
    /** Lifetime when the REGISTER says nothing (s). */
    defaultExpires: z.number().int().min(1).max(604_800).default(3600),
    /** Bindings one AOR may hold; a REGISTER that would exceed it gets 403. */
    maxContactsPerAor: z.number().int().min(1).max(1000).default(16),
    /** Authenticate REGISTER when the node has an authenticator (digest). */
    authenticate: z.boolean().default(true),
    /**
     * REGISTER for a domain this node is not registrar for: `refuse` answers 403. (An edge proxies REGISTERs for the
     * domains of its traversal zones to the core before they reach the registrar: docs/traversal.md.)
     */
    otherDomains: z.enum(['refuse']).default('refuse'),
    /** Registration restriction policy: which AORs may register. */
    restriction: z
      .object({
        policy: z.enum(['none', 'allow', 'deny']).default('none'),
        patterns: z.array(aliasPatternSchema).default([]),
      })
      .strict()
      .prefault({}),
    /**
     * Answer 401 challenges statelessly (RFC 3261 §8.2.7): no server transaction is kept for them, which saves CPU and
     * memory per registration and under floods of unauthenticated REGISTERs. A retransmitted REGISTER then gets a new
     * 401 (new nonce and To tag); UAs match it to their finished client transaction and drop it, but sipp counts it as
     * an unexpected message and fails the call. Off by default.
     */
    statelessChallenges: z.boolean().default(false),
    /** RFC 5626 §4.4.1 Flow-Timer sent in a 200 for an outbound registration (s): the UA's keepalive interval. */
    flowTimerSeconds: z.number().int().min(10).max(3600).default(120),
    /**
     * An outbound (RFC 5626) UDP flow is failed when nothing (STUN keepalive, CRLF, SIP message) came on it for
     * Flow-Timer plus this many seconds; its outbound bindings are then removed. 0 turns UDP flow failure off.
     */
    flowFailureGraceSeconds: z.number().int().min(0).max(3600).default(20),
    /** Write-behind of the bindings store. */
    store: z
      .object({
        /** Queued binding writes are committed at most this long after the first (ms). */
        flushIntervalMs: z.number().int().min(1).max(60_000).default(200),
        /** A batch this large is committed at once. */
        maxBatch: z.number().int().min(1).max(100_000).default(2000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .refine((r) => r.minExpires <= r.maxExpires, {
    message: 'minExpires must not exceed maxExpires',
    path: ['minExpires'],
  })
  .refine((r) => r.defaultExpires >= r.minExpires && r.defaultExpires <= r.maxExpires, {
    message: 'defaultExpires must lie between minExpires and maxExpires',
    path: ['defaultExpires'],
  });
export type RegistrarConfig = z.infer<typeof registrarConfigSchema>;
