import { isIP } from 'node:net';
import { z } from 'zod';
import { h323ConfigSchema } from '../h323/config.ts';
import { mediaConfigSchema } from '../media/config.ts';
import { routingConfigSchema } from '../routing/config.ts';
import { securityConfigSchema } from '../security/config.ts';
import { authConfigSchema } from '../sip/auth/config.ts';
import { registrarConfigSchema } from '../sip/registrar/config.ts';
import { turnConfigSchema } from '../turn/config.ts';

/**
 * The node's configuration: one file (YAML or JSON), validated once at start. Every field has a safe default so
 * that an empty file is a working `lab` node on loopback. Ports are not here unless overridden: they come from the
 * port plan (`src/ports`), whose defaults are the seed's. See docs/configuration.md.
 */

const ipAddress = z.string().refine((s) => isIP(s) !== 0, { message: 'expected an IPv4 or IPv6 address' });
const port = z.number().int().min(1).max(65535);
const portRange = z
  .object({ from: port, to: port })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'from must not be greater than to' });

export const roleSchema = z.enum(['edge', 'core', 'lab']);
export type Role = z.infer<typeof roleSchema>;

export const sizeSchema = z.enum(['small', 'medium', 'large']);
export type DeploymentSize = z.infer<typeof sizeSchema>;

const transportToggle = z
  .object({
    enabled: z.boolean().optional(),
    /** Overrides the port plan's port for this transport. */
    port: port.optional(),
  })
  .strict();

export const tlsSchema = z
  .object({
    /** PEM certificate chain of this node. Absent in `lab`: a self-signed one is generated in the data directory. */
    certificate: z.string().optional(),
    /** PEM private key of this node. */
    privateKey: z.string().optional(),
    /** PEM bundle of CAs trusted for peers (client certificates on MTLS, servers we connect to). */
    caCertificates: z.string().optional(),
    /** Verify the certificates of servers we connect to (on by default; turn off only in a lab). */
    verifyPeer: z.boolean().default(true),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  })
  .strict();

export const sipTimersSchema = z
  .object({
    /** RFC 3261 T1, the RTT estimate (ms). */
    t1: z.number().int().min(1).max(60_000).default(500),
    /** RFC 3261 T2, the cap on non-INVITE request and INVITE response retransmit intervals (ms). */
    t2: z.number().int().min(1).max(600_000).default(4000),
    /** RFC 3261 T4, how long a message may stay in the network (ms). */
    t4: z.number().int().min(1).max(600_000).default(5000),
  })
  .strict()
  .refine((t) => t.t1 <= t.t2, { message: 't1 must not exceed t2', path: ['t1'] });

export const sipLimitsSchema = z
  .object({
    /** Largest SIP message accepted, start line to end of body (bytes). */
    maxMessageBytes: z.number().int().min(1024).max(1_048_576).default(65_535),
    maxHeaders: z.number().int().min(8).max(1000).default(128),
    /** Longest single header line after unfolding (bytes). */
    maxHeaderBytes: z.number().int().min(256).max(65_535).default(8192),
  })
  .strict();

export const sipTransportLimitsSchema = z
  .object({
    maxConnections: z.number().int().min(1).max(1_000_000).default(10_000),
    /** A connection with no traffic for this long is closed (s). */
    idleTimeoutSeconds: z.number().int().min(1).max(86_400).default(600),
    /** New inbound connections accepted per source address per second (0: no limit). */
    newConnectionsPerSecondPerSource: z.number().int().min(0).max(100_000).default(200),
  })
  .strict();

export const sipSchema = z
  .object({
    transports: z
      .object({
        udp: transportToggle.default({}),
        tcp: transportToggle.default({}),
        tls: transportToggle.default({}),
        mtls: transportToggle.default({}),
      })
      .strict()
      .default({ udp: {}, tcp: {}, tls: {}, mtls: {} }),
    timers: sipTimersSchema.default({ t1: 500, t2: 4000, t4: 5000 }),
    limits: sipLimitsSchema.default({ maxMessageBytes: 65_535, maxHeaders: 128, maxHeaderBytes: 8192 }),
    connections: sipTransportLimitsSchema.default({
      maxConnections: 10_000,
      idleTimeoutSeconds: 600,
      newConnectionsPerSecondPerSource: 200,
    }),
    /** Domains this node is authoritative for (registrar, routing patterns). */
    domains: z.array(z.string().min(1)).default([]),
    /**
     * Receive buffer of each SIP UDP socket (bytes). A burst arriving during a garbage-collection pause must wait in
     * the kernel, not be dropped into a retransmission storm. The kernel caps it at net.core.rmem_max.
     */
    udpReceiveBufferBytes: z.number().int().min(65_536).max(268_435_456).default(4_194_304),
    /** Transaction table caps (src/sip/transaction/transaction-layer.ts). */
    transactions: z
      .object({
        /** Live transactions (client plus server); beyond it a new request gets a stateless 503. */
        maxTransactions: z.number().int().min(100).max(10_000_000).default(100_000),
        /** Compact records of non-INVITE server transactions completed over UDP (Timer J); the oldest ends early. */
        maxCompletedTransactions: z.number().int().min(1000).max(50_000_000).default(1_000_000),
      })
      .strict()
      .default({ maxTransactions: 100_000, maxCompletedTransactions: 1_000_000 }),
  })
  .strict();

/**
 * Where the node lives on the network. An edge has either two interfaces (public and private address) or one
 * interface plus the external address a static NAT maps to it.
 */
export const networkSchema = z
  .object({
    /** Address the node listens on (one-interface deployments) — also the private address of a two-interface edge. */
    address: ipAddress.optional(),
    /** Public (outside) interface address of a two-interface edge. */
    publicAddress: ipAddress.optional(),
    /** The static-NAT external address advertised for a one-interface edge behind NAT. */
    externalAddress: ipAddress.optional(),
  })
  .strict();

export const traversalZoneSchema = z
  .object({
    name: z.string().min(1),
    /** On a core: the edge to connect to. On an edge: ignored. */
    peerAddress: z.string().optional(),
    /** Overrides the port plan's 7001, 7002, … for this zone. */
    port: port.optional(),
    h323: z.boolean().default(true),
    /**
     * Signalling transport of the zone (TLS unless the administrator allows TCP). Core: its outbound connection. Edge:
     * what the zone's listener speaks. Both nodes must agree.
     */
    transport: z.enum(['tls', 'tcp']).default('tls'),
    /** Core: OPTIONS keepalive interval on the zone's connection (s); keeps NAT and firewall state alive. */
    keepaliveSeconds: z.number().int().min(1).max(3600).default(30),
    /** Core: first reconnect delay after a failure (s); doubles up to `retryMaxSeconds`. */
    retryMinSeconds: z.number().min(0.05).max(3600).default(1),
    retryMaxSeconds: z.number().min(0.05).max(3600).default(60),
    /**
     * Core: the zone's username, answered to the edge's digest challenge. Edge: the username the core must authenticate
     * as (checked against the edge's credential store); setting it turns the zone's authentication on (docs/traversal.md).
     */
    username: z.string().min(1).max(256).optional(),
    /** Core: the zone's password (never logged). */
    password: z.string().min(1).max(1024).optional(),
    /** Edge: realm of the zone's digest challenge; the edge's credential store holds the zone's user in it. */
    realm: z.string().min(1).max(256).default('traversal'),
    /**
     * Edge: the flow must authenticate before it carries anything. Default: on when `username` is set; off (logged as a
     * warning at start) when not.
     */
    authenticate: z.boolean().optional(),
    /** Edge: domains served by the core behind this zone — REGISTERs for them are proxied down the zone with Path. */
    domains: z.array(z.string().min(1).max(253)).default([]),
    /**
     * TLS verify subject name. Edge: the core's client certificate (verified against `tls.caCertificates`) must carry
     * this name, else the flow is refused. Core: the edge's server certificate must carry it (default: `peerAddress`).
     */
    tlsVerifySubjectName: z.string().min(1).max(253).optional(),
    /**
     * Edge: delegated credential checking (docs/traversal.md). Callers from the zone's `domains` are not challenged by
     * the edge: their requests go down the zone, marked, and the core challenges them. The core needs no setting.
     */
    delegatedCredentialChecking: z.boolean().default(false),
  })
  .strict()
  .refine((z) => z.retryMinSeconds <= z.retryMaxSeconds, {
    message: 'retryMinSeconds must not exceed retryMaxSeconds',
    path: ['retryMinSeconds'],
  })
  .refine((z) => z.tlsVerifySubjectName === undefined || z.transport === 'tls', {
    message: 'tlsVerifySubjectName needs transport: tls (a TCP zone carries no certificate)',
    path: ['tlsVerifySubjectName'],
  });

export const ldapServerSchema = z
  .object({
    url: z.string().regex(/^ldaps?:\/\//, 'expected ldap:// or ldaps://'),
    startTls: z.boolean().default(true),
  })
  .strict();

/** Feedback event names (docs/management.md has the JSON body of each). */
export const feedbackEventSchema = z.enum([
  'registration',
  'unregistration',
  'call-attempt',
  'call-connected',
  'call-disconnected',
  'alarm-raised',
  'alarm-lowered',
  'config-change',
  'zone-state',
]);

export const feedbackSubscriberSchema = z
  .object({
    url: z.string().regex(/^https?:\/\//, 'expected http:// or https://'),
    /** Events sent to this subscriber; empty: all of them. */
    events: z.array(feedbackEventSchema).default([]),
    /** HTTP basic credentials sent with each POST. */
    username: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
  })
  .strict();

/** Access levels of administrators. */
export const accessLevelSchema = z.enum(['read-write', 'read-only', 'auditor']);
export type AccessLevel = z.infer<typeof accessLevelSchema>;

/** SNMPv3 user of the agent (USM, SHA authentication, AES privacy). */
export const snmpUserSchema = z
  .object({
    name: z.string().min(1).max(32),
    /** Authentication passphrase (SHA), at least 8 characters (RFC 3414 §11.2). */
    authPassword: z.string().min(8),
    /** Privacy passphrase (AES-128); absent: authNoPriv. */
    privPassword: z.string().min(8).optional(),
  })
  .strict();

/** Administrator login against an LDAP directory (servers: the top-level `ldap.servers`). */
export const managementLdapSchema = z
  .object({
    /** Service account bound before the user search. */
    bindDn: z.string().min(1).optional(),
    bindPassword: z.string().optional(),
    /** Where users are searched. */
    baseDn: z.string().min(1),
    /** Attribute matched with the login name (e.g. uid, sAMAccountName). */
    userAttribute: z.string().min(1).default('uid'),
    /** Extra filter ANDed with the user match, e.g. `(objectClass=inetOrgPerson)`. */
    userFilter: z.string().optional(),
    /** Group DNs giving each access level (membership: groupOfNames `member` holding the user's DN). */
    groups: z
      .object({
        readWrite: z.array(z.string().min(1)).default([]),
        readOnly: z.array(z.string().min(1)).default([]),
        auditor: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    /** PEM file of the CAs trusted for the directory's certificate (default: tls.caCertificates, then the system). */
    caCertificates: z.string().optional(),
    /** Verify the directory's certificate (StartTLS and ldaps); turn off only in a lab. */
    verifyCertificate: z.boolean().default(true),
    timeoutMs: z.number().int().min(100).max(60_000).default(5000),
  })
  .strict();

export const managementSchema = z
  .object({
    /** HTTPS API and web UI. */
    https: z.boolean().default(true),
    /** Plain HTTP: off means port 80 only redirects to HTTPS. */
    plainHttp: z.boolean().default(false),
    snmp: z.boolean().default(false),
    /** Expose management on the public side of an edge (off by default). */
    exposePublic: z.boolean().default(false),
    /** An administrator session with no request for this long is closed (minutes). */
    sessionIdleMinutes: z.number().int().min(1).max(1440).default(15),
    /** Where administrators are authenticated: local accounts, the LDAP directory, or both (local first). */
    authSource: z.enum(['local', 'remote', 'both']).default('local'),
    /** With `remote`: when the directory is unreachable, let local accounts in (logged). */
    fallbackToLocal: z.boolean().default(false),
    ldap: managementLdapSchema.optional(),
    /** SNMPv2c read community; absent: no v2c access. */
    snmpCommunity: z.string().min(1).max(64).optional(),
    snmpUsers: z.array(snmpUserSchema).default([]),
    sysContact: z.string().max(255).default(''),
    sysLocation: z.string().max(255).default(''),
    /** Feedback delivery: queued events per subscriber before the oldest are dropped (and counted). */
    feedbackQueueLimit: z.number().int().min(1).max(100_000).default(1000),
    /** Feedback delivery retry: first delay, doubled up to the max (ms). */
    feedbackRetryMinMs: z.number().int().min(10).max(600_000).default(1000),
    feedbackRetryMaxMs: z.number().int().min(10).max(3_600_000).default(60_000),
  })
  .strict()
  .refine((m) => m.authSource === 'local' || m.ldap !== undefined, {
    message: 'remote or both authentication needs management.ldap',
    path: ['ldap'],
  });

export const configSchema = z
  .object({
    role: roleSchema.default('lab'),
    size: sizeSchema.default('small'),
    /** Node name, shown in logs, SNMP sysName and the UI. */
    name: z.string().min(1).max(64).optional(),
    /** Where the node keeps its store, generated certificates and state. */
    dataDir: z.string().min(1).default('./data'),
    /** Added to every port of the plan: lets tests run several nodes side by side without privileges. */
    portOffset: z.number().int().min(-1023).max(50_000).default(0),
    network: networkSchema.default({}),
    tls: tlsSchema.default({ verifyPeer: true, minVersion: 'TLSv1.2' }),
    sip: sipSchema.default({
      transports: { udp: {}, tcp: {}, tls: {}, mtls: {} },
      timers: { t1: 500, t2: 4000, t4: 5000 },
      limits: { maxMessageBytes: 65_535, maxHeaders: 128, maxHeaderBytes: 8192 },
      connections: { maxConnections: 10_000, idleTimeoutSeconds: 600, newConnectionsPerSecondPerSource: 200 },
      domains: [],
      udpReceiveBufferBytes: 4_194_304,
      transactions: { maxTransactions: 100_000, maxCompletedTransactions: 1_000_000 },
    }),
    /** Outbound TCP/TLS source-port range for SIP (seed: 25000–29999). */
    outboundPorts: portRange.optional(),
    traversalZones: z.array(traversalZoneSchema).default([]),
    /** H.323 gatekeeper and call signalling — see src/h323/config.ts, docs/h323.md. */
    h323: h323ConfigSchema.prefault({}),
    /** TURN server (edge): credentials, lifetimes, quotas, peer policy — see src/turn/config.ts. */
    /** Zones, pre-search transforms, call policy, search rules and proxy settings — see docs/routing.md. */
    routing: routingConfigSchema.prefault({}),
    turn: turnConfigSchema.prefault({}),
    /** The registrar and its location store (RFC 3261 §10) — see src/sip/registrar/config.ts, docs/registrar.md. */
    registrar: registrarConfigSchema.prefault({}),
    /** SIP digest authentication, credential sources, zone policies — see src/sip/auth/config.ts, docs/authentication.md. */
    auth: authConfigSchema.prefault({}),
    /** Intrusion protection — see src/security/config.ts, docs/authentication.md. */
    security: securityConfigSchema.prefault({}),
    /** Media relay: demux ports, media range, ICE, latching, timeouts — see src/media/config.ts, docs/media.md. */
    media: mediaConfigSchema.prefault({}),
    /** Management: HTTPS API and web UI, SNMP agent, administrator login (see managementSchema, docs/management.md). */
    management: managementSchema.prefault({}),
    ldap: z
      .object({ servers: z.array(ldapServerSchema).default([]) })
      .strict()
      .default({ servers: [] }),
    feedback: z
      .object({ subscribers: z.array(feedbackSubscriberSchema).default([]) })
      .strict()
      .default({ subscribers: [] }),
    log: z
      .object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

/** The validated configuration, as every layer receives it (frozen). */
export type CrosswayConfig = z.infer<typeof configSchema>;
/** What an administrator may write in the file (every field optional). */
export type CrosswayConfigInput = z.input<typeof configSchema>;
