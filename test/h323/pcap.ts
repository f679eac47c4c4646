import { readFileSync } from 'node:fs';

/** A few lines of libpcap reading for the tests: Ethernet/Linux-cooked/raw IPv4 + UDP/TCP payloads. */
export interface Packet {
  frame: number;
  proto: 'udp' | 'tcp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  /** TCP sequence number of the first payload octet (0 for UDP). */
  seq: number;
  payload: Buffer;
}

/** Reads the link-layer frames of a pcap or pcapng file. */
function frames(b: Buffer): Array<{ linktype: number; data: Buffer }> {
  const out: Array<{ linktype: number; data: Buffer }> = [];
  if (b.readUInt32LE(0) === 0x0a0d0d0a) {
    // pcapng: blocks of (type, length, body, length); we read IDB (1) and EPB (6)
    const le = b.readUInt32LE(8) === 0x1a2b3c4d;
    const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u16 = (o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const links: number[] = [];
    let off = 0;
    while (off + 12 <= b.length) {
      const type = u32(off);
      const len = u32(off + 4);
      if (len < 12) break;
      if (type === 1) links.push(u16(off + 8));
      else if (type === 6) {
        const cap = u32(off + 20);
        out.push({ linktype: links[u32(off + 8)] ?? 1, data: b.subarray(off + 28, off + 28 + cap) });
      }
      off += len;
    }
    return out;
  }
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && b.readUInt32BE(0) !== 0xa1b2c3d4 && b.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const linktype = u32(20);
  let off = 24;
  while (off + 16 <= b.length) {
    const incl = u32(off + 8);
    out.push({ linktype, data: b.subarray(off + 16, off + 16 + incl) });
    off += 16 + incl;
  }
  return out;
}

/** UDP and TCP payloads of every IPv4 packet in a capture, with 1-based frame numbers as Wireshark counts them. */
export function readPcap(path: string): Packet[] {
  const out: Packet[] = [];
  let frame = 0;
  for (const { linktype, data } of frames(readFileSync(path))) {
    frame++;
    let ip = 0;
    if (linktype === 1) {
      let type = data.readUInt16BE(12);
      ip = 14;
      if (type === 0x8100) {
        type = data.readUInt16BE(16);
        ip = 18;
      }
      if (type !== 0x0800) continue;
    } else if (linktype === 113) ip = 16;
    else if (linktype === 0 || linktype === 108) ip = 4;
    else if (linktype === 101 || linktype === 228) ip = 0;
    else throw new Error(`unsupported link type ${linktype}`);
    if (data[ip]! >> 4 !== 4) continue;
    const ihl = (data[ip]! & 15) * 4;
    const total = data.readUInt16BE(ip + 2);
    const proto = data[ip + 9];
    const src = [...data.subarray(ip + 12, ip + 16)].join('.');
    const dst = [...data.subarray(ip + 16, ip + 20)].join('.');
    const l4 = ip + ihl;
    const end = Math.min(data.length, ip + total);
    if (proto === 17) {
      out.push({
        frame,
        proto: 'udp',
        src,
        dst,
        sport: data.readUInt16BE(l4),
        dport: data.readUInt16BE(l4 + 2),
        seq: 0,
        payload: data.subarray(l4 + 8, end),
      });
    } else if (proto === 6) {
      const doff = (data[l4 + 12]! >> 4) * 4;
      out.push({
        frame,
        proto: 'tcp',
        src,
        dst,
        sport: data.readUInt16BE(l4),
        dport: data.readUInt16BE(l4 + 2),
        seq: data.readUInt32BE(l4 + 4),
        payload: data.subarray(l4 + doff, end),
      });
    }
  }
  return out;
}

/** One direction of a TCP connection, reassembled in sequence order; duplicates and keep-alive probes dropped. */
export interface TcpStream {
  key: string;
  /** Segments as they add new bytes, with their frame numbers. */
  segments: Array<{ frame: number; data: Buffer }>;
}

export function tcpStreams(packets: Packet[]): TcpStream[] {
  const streams = new Map<string, TcpStream & { next?: number }>();
  for (const p of packets) {
    if (p.proto !== 'tcp' || p.payload.length === 0) continue;
    const key = `${p.src}:${p.sport}>${p.dst}:${p.dport}`;
    let s = streams.get(key);
    if (!s) {
      s = { key, segments: [] };
      streams.set(key, s);
    }
    let data = p.payload;
    if (s.next !== undefined) {
      const behind = (s.next - p.seq) >>> 0;
      if (behind > 0 && behind < 0x80000000) {
        // retransmission, duplicate capture or keep-alive probe: keep only new bytes
        if (behind >= data.length) continue;
        data = data.subarray(behind);
      }
    }
    s.next = (p.seq + p.payload.length) >>> 0;
    s.segments.push({ frame: p.frame, data });
  }
  return [...streams.values()];
}

/** A packet to write: IPv4 + UDP or TCP (PSH/ACK, the caller keeps `seq` running). */
export interface OutPacket {
  proto: 'udp' | 'tcp';
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq?: number;
  payload: Uint8Array;
}

function ipChecksum(h: Buffer): number {
  let sum = 0;
  for (let i = 0; i < h.length; i += 2) sum += h.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Writes a libpcap file with raw-IPv4 link type (101). */
export function writePcap(packets: OutPacket[]): Buffer {
  const parts: Buffer[] = [];
  const gh = Buffer.alloc(24);
  gh.writeUInt32LE(0xa1b2c3d4, 0);
  gh.writeUInt16LE(2, 4);
  gh.writeUInt16LE(4, 6);
  gh.writeUInt32LE(65535, 16);
  gh.writeUInt32LE(101, 20);
  parts.push(gh);
  packets.forEach((p, i) => {
    const l4 = Buffer.alloc(p.proto === 'udp' ? 8 : 20);
    l4.writeUInt16BE(p.sport, 0);
    l4.writeUInt16BE(p.dport, 2);
    if (p.proto === 'udp') l4.writeUInt16BE(8 + p.payload.length, 4);
    else {
      l4.writeUInt32BE(p.seq ?? 1, 4);
      l4.writeUInt32BE(1, 8);
      l4[12] = 5 << 4;
      l4[13] = 0x18;
      l4.writeUInt16BE(65535, 14);
    }
    const ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + l4.length + p.payload.length, 2);
    ip.writeUInt16BE(i & 0xffff, 4);
    ip[8] = 64;
    ip[9] = p.proto === 'udp' ? 17 : 6;
    Buffer.from(p.src.split('.').map(Number)).copy(ip, 12);
    Buffer.from(p.dst.split('.').map(Number)).copy(ip, 16);
    ip.writeUInt16BE(ipChecksum(ip), 10);
    const data = Buffer.concat([ip, l4, Buffer.from(p.payload)]);
    const rh = Buffer.alloc(16);
    rh.writeUInt32LE(1_700_000_000 + i, 0);
    rh.writeUInt32LE(data.length, 8);
    rh.writeUInt32LE(data.length, 12);
    parts.push(rh, data);
  });
  return Buffer.concat(parts);
}
