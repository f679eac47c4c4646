import { z } from 'zod';
import { POLICY_CODEC_NAMES } from './calls/capabilities.ts';

/**
 * The `h323` section of the node's configuration (docs/configuration.md, docs/h323.md): whether the node runs the
 * H.323 gatekeeper and call signalling, and the gatekeeper's identity, lifetimes, limits and registration policy.
 * Ports come from the port plan (`h323-ras`, `h323-q931`, pool `h323-dynamic`).
 */
export const h323ConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    gatekeeper: z
      .object({
        /** The gatekeeperIdentifier sent in GCF/RCF (default: `crossway-<node kind>`). */
        identifier: z.string().min(1).max(128).optional(),
        /** Seconds granted in RCF.timeToLive (H.225.0); endpoints keep alive with lightweight RRQs before it ends. */
        timeToLive: z.number().int().min(1).max(86_400).default(1800),
        /** Seconds past timeToLive before an unrefreshed registration is dropped. */
        expiryGraceSeconds: z.number().int().min(0).max(3600).default(30),
        maxRegistrations: z.number().int().min(1).max(1_000_000).default(100_000),
        /** Who may register: every alias, only aliases matching `patterns` (allow-list), or all but those (deny-list). */
        policy: z
          .object({
            mode: z.enum(['allow-all', 'allow-list', 'deny-list']).default('allow-all'),
            /** Exact aliases, or with `*` as a wildcard (`2*`, `*@example.com`). */
            patterns: z.array(z.string().min(1).max(256)).max(10_000).default([]),
          })
          .strict()
          .prefault({}),
        /**
         * Answer multicast gatekeeper discovery (GRQ to 224.0.1.41:1718, H.225.0 §7.2.1) on the RAS side's address.
         * Off by default: 1718 is not in the seed's port table, and multicast reaches only the local network.
         */
        multicastDiscovery: z.boolean().default(false),
        /** Admit calls that name only an IP address (no alias). */
        allowDialledIp: z.boolean().default(false),
        /** Largest bandwidth granted per call in ACF/BCF, in units of 100 bit/s. */
        maxBandwidthPerCall: z.number().int().min(1).max(4_294_967_295).default(20_000),
        /** Admissions held at once (each side of a call counts; DRQ or unregistration frees it); beyond: ARJ resourceUnavailable. */
        maxAdmittedCalls: z.number().int().min(1).max(10_000_000).default(200_000),
        /**
         * H.235.1 (baseline security profile, procedure I: HMAC-SHA1-96 over the whole RAS message, key SHA-1 of the
         * password) checked against the local credential store (`crossway users`), on RAS and on the Setups endpoints
         * send to call signalling. `off`: tokens ignored; `optional`: a token present must be good, unsigned requests
         * go on; `required`: every request and Setup must carry one (Setups from an H.323 neighbour zone excepted).
         */
        security: z
          .object({
            mode: z.enum(['off', 'optional', 'required']).default('off'),
            /** The realm whose users sign RAS (default: the realm of the only SIP domain). */
            realm: z.string().min(1).max(128).optional(),
            /** Largest difference between a token's timeStamp and the node's clock (s). */
            timestampWindowSeconds: z.number().int().min(1).max(86_400).default(300),
            /**
             * `required` mode: every call signalling message a caller sends after its signed Setup must carry a token
             * too (H.235.1 §13.2). Off (the default): only the Setup must, a later token is checked when present, as
             * many stacks sign the Setup alone.
             */
            everyCallMessage: z.boolean().default(false),
          })
          .strict()
          .prefault({}),
        /**
         * Flood limits per source address (0: none). RAS requests and new call signalling connections over the
         * limit are dropped, counted, and each one counts against the source in intrusion protection (category
         * `flood`, `security.intrusion.flood`). The address of an H.323 neighbor zone has its own, higher limits
         * (`…PerNeighbour`): over them its RAS and connections are dropped and counted but never count as a flood, so
         * a busy neighbour (or a flood spoofing its address) cannot get the zone blocked.
         */
        floodLimits: z
          .object({
            rasPerSecondPerSource: z.number().int().min(0).max(1_000_000).default(50),
            setupsPerSecondPerSource: z.number().int().min(0).max(100_000).default(20),
            rasPerSecondPerNeighbour: z.number().int().min(0).max(1_000_000).default(1000),
            setupsPerSecondPerNeighbour: z.number().int().min(0).max(100_000).default(200),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Routed calls: what the node does on each call leg's H.245 and how long a call may wait for an answer. */
    calls: z
      .object({
        /**
         * Codecs the node lets through (capability sets and fast-start proposals; docs/h323.md). Absent: every codec
         * the relay can anchor.
         */
        codecs: z.array(z.enum(POLICY_CODEC_NAMES)).min(1).optional(),
        /** terminalType of the node's own master/slave determination on each leg (H.245; 190 outranks endpoints). */
        terminalType: z.number().int().min(0).max(255).default(190),
        /** Seconds a call may take from its Setup to the callee's Connect; then both legs are released (cause 102). */
        answerTimeoutSeconds: z.number().int().min(1).max(3600).default(180),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type H323Config = z.infer<typeof h323ConfigSchema>;
