import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * The `turn` section of the node's configuration (docs/configuration.md, docs/turn.md). Ports are not here:
 * listening ports and the relay range come from the port plan and are passed to `startTurnServer`.
 */

const cidr = z.string().refine(
  (s) => {
    const [ip, bits, extra] = s.split('/');
    if (extra !== undefined || !ip) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return Number.isInteger(n) && n >= 0 && n <= (family === 4 ? 32 : 128);
  },
  { message: 'expected an address or CIDR range (10.0.0.0/8, fc00::/7)' },
);

/** Ranges no peer may be in unless allowed: private, shared, link-local, unspecified, multicast, reserved. */
export const DEFAULT_DENIED_PEERS: readonly string[] = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '64:ff9b::/96',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
];

const port = z.number().int().min(1).max(65535);
const portRange = z
  .object({ from: port, to: port })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'from must not be greater than to' });

const userSchema = z
  .object({
    username: z.string().min(1).max(513),
    /** Plain password (both MD5 and SHA-256 keys can be derived). */
    password: z.string().min(1).optional(),
    /** Or the MD5 key, hex: MD5(username ":" realm ":" password) — then only MD5 is offered to this user. */
    ha1: z
      .string()
      .regex(/^[0-9a-fA-F]{32}$/, 'expected 32 hex digits')
      .optional(),
  })
  .strict()
  .refine((u) => (u.password === undefined) !== (u.ha1 === undefined), {
    message: 'give exactly one of password, ha1',
  });

export const turnConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** Overrides the TURN relay port range (seed: 24000–29999); read by the port plan. */
    relayRange: portRange.optional(),
    /** REALM of the long-term credential mechanism. */
    realm: z.string().min(1).max(763).default('crossway'),
    /**
     * Long-term users from the edge's credential store (`crossway users add --node edge --realm REALM`, or the
     * LDAP directory when that is the source), under the realm `realm`; consulted before `users` and the secret.
     */
    credentialStore: z.boolean().default(true),
    /** Static long-term users, after the credential store. */
    users: z.array(userSchema).default([]),
    /** TURN REST shared secret: username `expiry:user`, password base64(HMAC-SHA1(secret, username)). */
    sharedSecret: z.string().min(8).optional(),
    /** Separator between expiry and user name in REST usernames. */
    restSeparator: z.string().length(1).default(':'),
    /** Answer STUN Binding requests without credentials (off: the edge answers none). */
    allowUnauthenticatedBinding: z.boolean().default(false),
    /** SOFTWARE attribute sent in responses (empty: none). */
    software: z.string().max(128).default('Crossway'),
    /** RFC 8489 §9.2.1 password algorithms offered, in order of preference. */
    passwordAlgorithms: z
      .array(z.enum(['md5', 'sha256']))
      .min(1)
      .default(['md5', 'sha256']),
    lifetimes: z
      .object({
        /** RFC 8656 default allocation lifetime (s). */
        allocationDefaultSeconds: z.number().int().min(1).max(86_400).default(600),
        /** Longest allocation lifetime granted (s). */
        allocationMaxSeconds: z.number().int().min(1).max(86_400).default(3600),
        permissionSeconds: z.number().int().min(1).max(86_400).default(300),
        channelSeconds: z.number().int().min(1).max(86_400).default(600),
        /** How long a nonce stays valid before 438 Stale Nonce (s). */
        nonceSeconds: z.number().int().min(10).max(86_400).default(3600),
        /** How long an EVEN-PORT reservation is held (s). */
        reservationSeconds: z.number().int().min(1).max(600).default(30),
      })
      .strict()
      .default({
        allocationDefaultSeconds: 600,
        allocationMaxSeconds: 3600,
        permissionSeconds: 300,
        channelSeconds: 600,
        nonceSeconds: 3600,
        reservationSeconds: 30,
      }),
    quotas: z
      .object({
        /** Simultaneous allocations per user (0: no limit). */
        allocationsPerUser: z.number().int().min(0).max(1_000_000).default(100),
        /** Simultaneous allocations in total. */
        allocationsTotal: z.number().int().min(1).max(1_000_000).default(10_000),
        /** Relayed bytes per second per allocation, both directions together (0: no limit). */
        bandwidthBytesPerSecond: z.number().int().min(0).default(0),
        /** Permissions per allocation. */
        permissionsPerAllocation: z.number().int().min(1).max(10_000).default(100),
        /** Channels per allocation. */
        channelsPerAllocation: z.number().int().min(1).max(4096).default(100),
      })
      .strict()
      .default({
        allocationsPerUser: 100,
        allocationsTotal: 10_000,
        bandwidthBytesPerSecond: 0,
        permissionsPerAllocation: 100,
        channelsPerAllocation: 100,
      }),
    peers: z
      .object({
        /** Peer ranges refused (403) besides loopback and the node's own addresses. */
        denied: z.array(cidr).default([...DEFAULT_DENIED_PEERS]),
        /** Peer ranges allowed even when denied above, loopback or the node's own addresses. */
        allowed: z.array(cidr).default([]),
      })
      .strict()
      .default({ denied: [...DEFAULT_DENIED_PEERS], allowed: [] }),
    /**
     * DONT-FRAGMENT: Node cannot set DF on relayed datagrams, so by default a request carrying it gets 420 as
     * RFC 8656 §7.2 requires; `ignore` relays anyway without DF.
     */
    dontFragment: z.enum(['reject', 'ignore']).default('reject'),
    /** RFC 6062 TCP relaying (REQUESTED-TRANSPORT TCP, Connect, ConnectionBind) for clients on TCP. */
    tcpRelay: z.boolean().default(true),
    /** RFC 6062: how long a peer connection waits for the client's ConnectionBind (s). */
    connectionBindSeconds: z.number().int().min(1).max(600).default(30),
    /** ALTERNATE-SERVER load spreading: Allocate requests are sent on, round robin, to these servers. */
    alternateServers: z
      .array(
        z
          .object({
            address: z.string().refine((s) => isIP(s) !== 0, { message: 'expected an IP address' }),
            port,
          })
          .strict(),
      )
      .default([]),
    /**
     * Listener ports whose Allocates are redirected (the front ports, e.g. 3478 of a large node listing its own
     * 3479–3483 as alternates). Empty: every listener that is not itself listed in `alternateServers`. A request
     * that arrives on a listed alternate is never redirected.
     */
    redirectFrom: z.array(port).default([]),
    /** Redirect an Allocate only when the listener it arrived on holds this many allocations (0: always). */
    alternateAboveAllocations: z.number().int().min(0).default(0),
    /**
     * A relay address of the other family than the edge's public address (typically IPv6 beside an IPv4 edge):
     * REQUESTED-ADDRESS-FAMILY of that family and dual allocations (ADDITIONAL-ADDRESS-FAMILY) are served from it.
     */
    additionalRelayAddress: z
      .string()
      .refine((s) => isIP(s) !== 0, { message: 'expected an IP address' })
      .optional(),
  })
  .strict();

export type TurnConfig = z.infer<typeof turnConfigSchema>;
export type TurnConfigInput = z.input<typeof turnConfigSchema>;

/** The validated defaults (what `turn: {}` means). */
export function defaultTurnConfig(input: TurnConfigInput = {}): TurnConfig {
  return turnConfigSchema.parse(input);
}
