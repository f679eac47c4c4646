import type { LatchingConfig } from './config.ts';

/**
 * Latching (symmetric RTP, RFC 4961's "send to where it comes from"): toward an endpoint the relay sends media to the
 * address media actually arrives from, which behind a NAT is not the one in the SDP. The rules, per stream side and
 * per component (RTP, RTCP):
 * 1. Before anything arrives, media is sent to the signalled address (if any).
 * 2. The first packet latches its source — with `restrictToSignalledIp`, only a source on the signalled IP (any
 *    port: the NAT may change it).
 * 3. Once latched, packets from another source are dropped (no hijacking of a call by an injected packet) until
 *    either (a) the latched source has been silent for `relatchSilenceMs` — then the new source latches at once —
 *    or (b) `relatchPackets` packets in a row came from one new source carrying the latched SSRC (a NAT rebinding
 *    mid-call: same stream, new port).
 * 4. A new SDP from the endpoint (re-INVITE, UPDATE, another forked answer) resets the latch to rule 1.
 */
export interface LatchState {
  /** Where media is sent: the latched source, else the signalled address ('' when none). */
  address: string;
  port: number;
  latched: boolean;
  /** SSRC seen when latching (-1: unknown, e.g. latched by a keepalive). */
  ssrc: number;
  /** Last time a packet was accepted from the latched source (clock ms). */
  lastAt: number;
  candidateAddress: string;
  candidatePort: number;
  candidateCount: number;
  /** The signalled address (from SDP): '' when none or on hold. */
  signalledAddress: string;
  signalledPort: number;
}

export function newLatchState(): LatchState {
  return {
    address: '',
    port: 0,
    latched: false,
    ssrc: -1,
    lastAt: 0,
    candidateAddress: '',
    candidatePort: 0,
    candidateCount: 0,
    signalledAddress: '',
    signalledPort: 0,
  };
}

/** Rule 4: a new SDP from the endpoint. */
export function resetLatch(s: LatchState, signalledAddress: string, signalledPort: number): void {
  s.signalledAddress = signalledAddress;
  s.signalledPort = signalledPort;
  s.address = signalledAddress;
  s.port = signalledAddress === '' ? 0 : signalledPort;
  s.latched = false;
  s.ssrc = -1;
  s.candidateCount = 0;
  s.candidateAddress = '';
  s.candidatePort = 0;
}

export type LatchVerdict = 'accept' | 'latched' | 'relatched' | 'drop';

/**
 * Applies the rules to a packet from `address:port` carrying `ssrc` (-1 when it has none) at `now`. Mutates `s`;
 * allocates nothing.
 */
export function latchPacket(
  s: LatchState,
  address: string,
  port: number,
  ssrc: number,
  now: number,
  cfg: LatchingConfig,
): LatchVerdict {
  if (s.latched && port === s.port && address === s.address) {
    s.lastAt = now;
    if (s.ssrc === -1 && ssrc !== -1) s.ssrc = ssrc;
    return 'accept';
  }
  if (cfg.restrictToSignalledIp && s.signalledAddress !== '' && address !== s.signalledAddress) return 'drop';
  if (!s.latched) {
    take(s, address, port, ssrc, now);
    return 'latched';
  }
  if (now - s.lastAt >= cfg.relatchSilenceMs) {
    take(s, address, port, ssrc, now);
    return 'relatched';
  }
  if (ssrc !== -1 && ssrc === s.ssrc) {
    if (port === s.candidatePort && address === s.candidateAddress) s.candidateCount++;
    else {
      s.candidateAddress = address;
      s.candidatePort = port;
      s.candidateCount = 1;
    }
    if (s.candidateCount >= cfg.relatchPackets) {
      take(s, address, port, ssrc, now);
      return 'relatched';
    }
  }
  return 'drop';
}

function take(s: LatchState, address: string, port: number, ssrc: number, now: number): void {
  s.address = address;
  s.port = port;
  s.latched = true;
  s.ssrc = ssrc;
  s.lastAt = now;
  s.candidateCount = 0;
  s.candidateAddress = '';
  s.candidatePort = 0;
}

/**
 * The SSRC of an RTP packet (bytes 8–11) or of an RTCP packet (sender SSRC, bytes 4–7), from `offset`; -1 when the
 * packet is too short or not version 2.
 */
export function packetSsrc(p: Uint8Array, offset: number): number {
  const n = p.length - offset;
  if (n < 8 || (p[offset]! & 0xc0) !== 0x80) return -1;
  const at = isRtcp(p, offset) ? offset + 4 : offset + 8;
  if (at + 4 > p.length) return -1;
  return ((p[at]! << 24) | (p[at + 1]! << 16) | (p[at + 2]! << 8) | p[at + 3]!) >>> 0;
}

/** RFC 5761 §4: on a muxed port, a second byte of 192–223 (RTCP packet types 192–223) means RTCP. */
export function isRtcp(p: Uint8Array, offset: number): boolean {
  const b = p[offset + 1];
  return b !== undefined && b >= 192 && b <= 223;
}
