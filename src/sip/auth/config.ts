import { z } from 'zod';

/** Per-zone authentication policy (zone names come with the routing work; `default` is the default zone). */
export const authPolicySchema = z.enum(['check', 'treat-as-authenticated', 'do-not-check']);
export type AuthPolicy = z.infer<typeof authPolicySchema>;

export const digestAlgorithmSchema = z.enum(['SHA-256', 'MD5', 'SHA-512-256']);

/**
 * Credentials in an LDAP directory (servers: the top-level `ldap.servers`, tried in order). A service account binds,
 * the user is searched under `baseDn` with `(&(<usernameAttribute>=<name>)<filter>)`, and `secretAttribute` holds the
 * password (`secretFormat: password`) or an HA1 (`ha1-md5`, `ha1-sha256`). H.350.4 SIP identity:
 * `usernameAttribute: SIPIdentityUserName`, `secretAttribute: SIPIdentityPassword`.
 */
export const ldapCredentialsSchema = z
  .object({
    bindDn: z.string().min(1).optional(),
    /** The service account's password, inline … */
    bindPassword: z.string().optional(),
    /** … or in a file (first line), preferred. */
    bindPasswordFile: z.string().optional(),
    baseDn: z.string().min(1),
    usernameAttribute: z.string().min(1).default('uid'),
    secretAttribute: z.string().min(1).default('userPassword'),
    secretFormat: z.enum(['password', 'ha1-md5', 'ha1-sha256']).default('password'),
    /** Extra filter ANDed with the user match, e.g. `(objectClass=inetOrgPerson)`. */
    filter: z.string().optional(),
    /** Only users whose realm attribute equals the request's realm (optional, e.g. `SIPIdentityRealm`). */
    realmAttribute: z.string().min(1).optional(),
    /** PEM file of the CAs trusted for the directory's certificate (default: tls.caCertificates, then the system). */
    caCertificates: z.string().optional(),
    /** Verify the directory's certificate (StartTLS and ldaps). */
    verifyCertificate: z.boolean().default(true),
    timeoutMs: z.number().int().min(100).max(60_000).default(3000),
    /** Positive lookups are kept this long (s; 0: no cache). */
    cacheSeconds: z.number().int().min(0).max(3600).default(30),
    /** Entries kept in the cache at most. */
    cacheEntries: z.number().int().min(1).max(1_000_000).default(10_000),
  })
  .strict()
  .refine((l) => !(l.bindPassword !== undefined && l.bindPasswordFile !== undefined), {
    message: 'bindPassword and bindPasswordFile exclude each other',
    path: ['bindPasswordFile'],
  });
export type LdapCredentialsConfig = z.infer<typeof ldapCredentialsSchema>;

/** SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760). See docs/authentication.md. */
export const authConfigSchema = z
  .object({
    /** Offered in this order (RFC 8760 §2.4: most preferred first). */
    algorithms: z.array(digestAlgorithmSchema).min(1).default(['SHA-256', 'MD5']),
    /** Realm per SIP domain; a domain not listed uses its own name as realm. */
    realms: z.record(z.string().min(1), z.string().min(1).max(128)).default({}),
    /** How long a nonce is accepted before stale=true (s). */
    nonceLifetimeSeconds: z.number().int().min(5).max(86_400).default(300),
    /** Nonces whose counts are tracked for replay protection (memory bound). */
    nonceTrackerEntries: z.number().int().min(100).max(10_000_000).default(100_000),
    /** Offer RFC 7616 userhash (local credentials only). */
    userhash: z.boolean().default(false),
    /** Retry-After of the 503 answered when the credential source is unavailable (s). */
    retryAfterSeconds: z.number().int().min(1).max(3600).default(30),
    /** Where credentials come from. */
    credentials: z
      .object({
        source: z.enum(['local', 'ldap']).default('local'),
        ldap: ldapCredentialsSchema.optional(),
      })
      .strict()
      .prefault({})
      .refine((c) => c.source !== 'ldap' || c.ldap !== undefined, {
        message: 'source ldap needs the ldap section',
        path: ['ldap'],
      }),
    /** Authentication policy per zone name; `default` applies to the default zone and to zones not listed. */
    zones: z.record(z.string().min(1), authPolicySchema).default({ default: 'check' }),
    /** Zones toward which an authenticated identity is asserted (P-Asserted-Identity, RFC 3325). */
    trustedZones: z.array(z.string().min(1)).default([]),
  })
  .strict();
export type AuthConfig = z.infer<typeof authConfigSchema>;
