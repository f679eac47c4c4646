/**
 * Framing of multiplexed traversal media between core and edge (docs/media.md). The core sends every RTP and RTCP
 * packet of a call from its own port to the edge's demux port with a 4-byte prefix: the mux id, an unsigned 32-bit
 * big-endian number the edge chose and signalled in its SDP (`a=x-crossway-mux:<id>`). This is the framing of
 * ITU-T H.460.19 multiplexed media (multiplexID before the RTP header), so SIP and H.323 traversal share the edge's
 * demux ports. Id 0 is never allocated. A packet of exactly 4 bytes (the id alone) is a keepalive: it opens and
 * holds the inside firewall's pinhole and tells the edge where the core's media comes from; it is not forwarded.
 * Packets from the edge to the core carry no prefix: the core demultiplexes by its own port.
 */

export const MUX_HEADER_BYTES = 4;

/** The SDP attribute carrying the mux id between the two nodes. */
export const MUX_ATTRIBUTE = 'x-crossway-mux';

/** A 4-byte prefix for `id` (allocated once per stream side, reused for every packet). */
export function muxPrefix(id: number): Buffer {
  const b = Buffer.allocUnsafe(MUX_HEADER_BYTES);
  b.writeUInt32BE(id >>> 0, 0);
  return b;
}

/** The mux id of a framed packet, or -1 when it is too short or carries the reserved id 0. */
export function readMuxId(packet: Uint8Array): number {
  if (packet.length < MUX_HEADER_BYTES) return -1;
  const id = ((packet[0]! << 24) | (packet[1]! << 16) | (packet[2]! << 8) | packet[3]!) >>> 0;
  return id === 0 ? -1 : id;
}

/** Whether a framed packet is a keepalive (the id alone). */
export function isMuxKeepalive(packet: Uint8Array): boolean {
  return packet.length === MUX_HEADER_BYTES;
}

/** Parses the value of `a=x-crossway-mux:<id>`; undefined when malformed or 0. */
export function parseMuxAttribute(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value)) return undefined;
  const id = Number(value);
  return id >= 1 && id <= 0xffffffff ? id : undefined;
}
