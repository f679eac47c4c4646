import { z } from 'zod';

/**
 * The `media` section of the node's configuration (docs/configuration.md, docs/media.md): the media relay's ports
 * (from the port plan), latching, ICE handling and timers.
 */

const port = z.number().int().min(1).max(65535);
const portRange = z
  .object({ from: port, to: port })
  .strict()
  .refine((r) => r.from <= r.to, { message: 'from must not be greater than to' });

export const latchingSchema = z
  .object({
    /** Latch only to sources whose IP is the one signalled in the SDP (port may differ: NAT). Off by default. */
    restrictToSignalledIp: z.boolean().default(false),
    /** After the latched source has been silent this long, the next packet from a new source re-latches (ms). */
    relatchSilenceMs: z.number().int().min(0).max(600_000).default(2000),
    /** Or after this many packets in a row from one new source carrying the latched SSRC. */
    relatchPackets: z.number().int().min(1).max(10_000).default(5),
  })
  .strict();

export const mediaConfigSchema = z
  .object({
    /**
     * Traversal-media demultiplexing ports of a small/medium edge: `default-36000` (36000/36001, taken out of the
     * media pool) or `legacy-2776` (2776/2777). A large edge always uses 36000–36011.
     */
    muxPorts: z.enum(['default-36000', 'legacy-2776']).default('default-36000'),
    /** Overrides the media (RTP/RTCP) port range (seed: 36000–59999). */
    range: portRange.optional(),
    /** ICE in SDP passing through the relay: `remove` the candidates (media is anchored) or `pass` them. */
    ice: z.enum(['remove', 'pass']).default('remove'),
    latching: latchingSchema.prefault({}),
    /** A call with no media received on any stream for this long is released and reported (s). */
    timeoutSeconds: z.number().int().min(1).max(86_400).default(60),
    /** The same while a stream is on hold (sendonly/recvonly/inactive or c=0.0.0.0) (s). */
    holdTimeoutSeconds: z.number().int().min(1).max(86_400).default(3600),
    /** Core: a mux-framed keepalive to the edge when nothing was sent for this long, keeping the pinhole open (s). */
    muxKeepaliveSeconds: z.number().int().min(1).max(3600).default(15),
    /** Bind attempts on other pairs when a port of the pool is taken by another process. */
    bindAttempts: z.number().int().min(1).max(100).default(8),
  })
  .strict();

export type MediaConfig = z.infer<typeof mediaConfigSchema>;
export type LatchingConfig = z.infer<typeof latchingSchema>;
