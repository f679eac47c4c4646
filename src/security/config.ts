import { isIP } from 'node:net';
import { z } from 'zod';

const cidr = z.string().refine(
  (s) => {
    const [a, len, extra] = s.split('/');
    const fam = isIP(a ?? '');
    if (fam === 0 || extra !== undefined) return false;
    if (len === undefined) return true;
    return /^\d+$/.test(len) && Number(len) <= (fam === 6 ? 128 : 32);
  },
  { message: 'expected an IP address or CIDR (10.0.0.0/8, 2001:db8::/32)' },
);

const category = (threshold: number, windowSeconds: number, blockSeconds: number) =>
  z
    .object({
      /** Events from one source within `windowSeconds` that block it (0: never). */
      threshold: z.number().int().min(0).max(100_000).default(threshold),
      windowSeconds: z.number().int().min(1).max(86_400).default(windowSeconds),
      /** How long the source stays blocked (s). */
      blockSeconds: z
        .number()
        .int()
        .min(1)
        .max(30 * 86_400)
        .default(blockSeconds),
    })
    .strict()
    .prefault({});

/**
 * Intrusion protection (src/security): per-source counters of failed authentications and malformed requests in a
 * sliding window; a source over a threshold is blocked (its packets dropped before parsing). See
 * docs/authentication.md.
 */
export const securityConfigSchema = z
  .object({
    intrusion: z
      .object({
        enabled: z.boolean().default(true),
        /** Failed authentications (wrong credentials, forged nonces). */
        authFailures: category(10, 60, 600),
        /** Malformed SIP messages and malformed credentials. */
        malformed: category(50, 60, 300),
        /** Requests over a per-source rate limit (H.323: `h323.gatekeeper.floodLimits`). */
        flood: category(200, 10, 300),
        /**
         * Networks never blocked (CIDRs or addresses): management stations, trusted peers. Default: loopback (local
         * tools, and a lab's two halves talking to each other); set `[]` to protect loopback too.
         */
        exempt: z.array(cidr).default(['127.0.0.0/8', '::1/128']),
        /** Sources tracked at once (memory bound); the least recent is forgotten first. */
        maxTrackedSources: z.number().int().min(100).max(10_000_000).default(100_000),
      })
      .strict()
      .prefault({}),
  })
  .strict();
export type SecurityConfig = z.infer<typeof securityConfigSchema>;
