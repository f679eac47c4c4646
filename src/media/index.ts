/**
 * The media relay shared by SIP and H.323: RTP/RTCP port pairs from the port plan, latching, multiplexed traversal
 * media between core and edge, statistics and media timeouts, with an offer/answer/delete API like rtpengine's ng
 * protocol. See docs/media.md.
 */
export * from './call-media.ts';
export * from './config.ts';
export * from './latch.ts';
export * from './mux.ts';
export * from './port-allocator.ts';
export * from './relay-core.ts';
export * from './start-relay.ts';
export * from './udp-io.ts';
