import { OperationalError } from '../common/errors.ts';
import type { Logger } from '../common/log.ts';
import type { Clock } from '../common/timers.ts';
import type { MediaPool } from '../ports/types.ts';
import type { MediaConfig } from './config.ts';
import { PortAllocator } from './port-allocator.ts';
import { type LegAddresses, type LegKind, type MediaTimeout, type MuxPair, RelayCore } from './relay-core.ts';
import { UdpMediaIo } from './udp-io.ts';

export interface StartRelayOptions {
  node: 'edge' | 'core';
  config: MediaConfig;
  /** The plan's media pool of this node (`plan.mediaPool(node)`). */
  pool: Pick<MediaPool, 'ranges'>;
  /** The plan's demux ports (`plan.muxPorts('edge')`): bound on an edge with traversal zones. */
  muxPorts?: { rtp: readonly number[]; rtcp: readonly number[] } | undefined;
  /** Where the demux ports bind (the edge's private address facing the core; `0.0.0.0` for both sides). */
  muxBindAddress?: string;
  /** Other addresses the demux ports also listen on (receive only): the public side of a two-interface edge. */
  muxAlsoOn?: readonly string[];
  addresses: Readonly<Record<LegKind, LegAddresses>>;
  clock: Clock;
  log?: Logger;
  onTimeout?: (t: MediaTimeout) => void;
}

/** A running media relay: the engine, its sockets, and `close()`. */
export interface MediaRelay {
  readonly core: RelayCore;
  readonly io: UdpMediaIo;
  /** The demux sockets bound (edge): listener id and port, for the port-plan inventory. */
  readonly muxSockets: readonly { listener: 'mux-rtp' | 'mux-rtcp'; address: string; port: number }[];
  close(): void;
  readonly closed: boolean;
}

/** Binds the demux ports (if any) and starts the relay engine on dgram sockets. */
export async function startMediaRelay(o: StartRelayOptions): Promise<MediaRelay> {
  const io = new UdpMediaIo();
  const core = new RelayCore({
    node: o.node,
    config: o.config,
    allocator: new PortAllocator(o.pool, { randomStart: true }),
    addresses: o.addresses,
    io,
    clock: o.clock,
    ...(o.log ? { log: o.log } : {}),
    ...(o.onTimeout ? { onTimeout: o.onTimeout } : {}),
  });
  io.setReceiver((h, d, a, p) => core.receive(h, d, a, p));
  const muxSockets: { listener: 'mux-rtp' | 'mux-rtcp'; address: string; port: number }[] = [];
  if (o.muxPorts && o.node === 'edge') {
    const address = o.muxBindAddress ?? o.addresses.traversal.bind;
    const others = [...new Set(o.muxAlsoOn ?? [])].filter((a) => a !== address);
    const pairs: MuxPair[] = [];
    const extra: MuxPair[] = [];
    for (let i = 0; i < o.muxPorts.rtp.length; i++) {
      for (const at of [address, ...others]) {
        const rtpPort = o.muxPorts.rtp[i]!;
        const rtcpPort = o.muxPorts.rtcp[i]!;
        const rtpHandle = await io.bind(at, rtpPort);
        const rtcpHandle = await io.bind(at, rtcpPort);
        if (rtpHandle === undefined || rtcpHandle === undefined) {
          io.closeAll();
          throw new OperationalError(
            'ERR_MEDIA_MUX_BIND',
            `cannot bind the traversal media demux ports ${rtpPort}/${rtcpPort} on ${at}`,
          );
        }
        // Port 0 (tests): the ports the kernel chose.
        const rtpBound = io.localPort(rtpHandle) ?? rtpPort;
        const rtcpBound = io.localPort(rtcpHandle) ?? rtcpPort;
        (at === address ? pairs : extra).push({ rtpHandle, rtcpHandle, rtpPort: rtpBound, rtcpPort: rtcpBound });
        muxSockets.push(
          { listener: 'mux-rtp', address: at, port: rtpBound },
          { listener: 'mux-rtcp', address: at, port: rtcpBound },
        );
      }
    }
    core.attachMuxPairs(pairs, extra);
  }
  let closed = false;
  return {
    core,
    io,
    muxSockets,
    close() {
      if (closed) return;
      closed = true;
      core.close();
      io.closeAll();
    },
    get closed() {
      return closed;
    },
  };
}
