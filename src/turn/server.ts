import dgram from 'node:dgram';
import net from 'node:net';
import { networkInterfaces } from 'node:os';
import { category, type Logger, silentLogger } from '../common/log.ts';
import { type Clock, systemClock, type TimerHandle } from '../common/timers.ts';
import { connectFromRange, OutboundPortCursor } from '../sip/transport/outbound-ports.ts';
import { canonicalIp, type TransportAddress } from '../stun/address.ts';
import type { TurnConfig } from './config.ts';
import { ConfigCredentials, type LongTermCredentials } from './credentials.ts';
import { TurnEngine } from './engine.ts';
import { PeerPolicy } from './peer-policy.ts';
import { TcpFramer } from './tcp-framer.ts';
import type {
  AllocationInfo,
  ClientTransport,
  PeerConnection,
  RelayHandle,
  RelaySink,
  TurnCounters,
  TurnIo,
} from './types.ts';

/** The sockets behind the engine's RFC 6062 peer connections. */
const peerSockets = new WeakMap<PeerConnection, net.Socket>();

function wrapPeer(sock: net.Socket): PeerConnection {
  const peer: PeerConnection = {
    remoteAddress: canonicalIp(sock.remoteAddress ?? ''),
    remotePort: sock.remotePort ?? 0,
    pause: () => sock.pause(),
    close: () => sock.destroy(),
    onClose: (fn) => sock.once('close', fn),
  };
  sock.on('error', () => sock.destroy());
  peerSockets.set(peer, sock);
  return peer;
}

/** Options of `startTurnServer`; ports come from the port plan (the role wires them). */
export interface TurnServerOptions {
  config: TurnConfig;
  /** Control listeners (3478, or 3478–3483 on a large node). Port 0 picks an ephemeral port. */
  listen: readonly { address: string; port: number; protocols?: readonly ('udp' | 'tcp')[] }[];
  /** Addresses relay sockets bind to, per family (a family left out is not offered). */
  relayAddresses: { ipv4?: string; ipv6?: string };
  /** Addresses advertised in XOR-RELAYED-ADDRESS when they differ (static NAT in front of the edge). */
  advertisedRelayAddresses?: { ipv4?: string; ipv6?: string };
  /** Relay port range, from the port plan (seed: 24000–29999). */
  relayRange: { from: number; to: number };
  /** Long-term credential source; defaults to the configuration's users and shared secret. */
  credentials?: LongTermCredentials;
  clock?: Clock;
  log?: Logger;
  /** Cap on simultaneous TCP control connections. */
  maxTcpConnections?: number;
  /** A TCP connection that carries no allocation (and is not an RFC 6062 data connection) is closed after this long idle (s). */
  tcpIdleSeconds?: number;
  /** Socket buffer sizes for the UDP listeners (bytes). */
  udpBufferBytes?: number;
  /** Socket buffer sizes for each relay socket (bytes; kernel default when absent). */
  relayBufferBytes?: number;
}

/** A running TURN server. */
export interface TurnServerHandle {
  /** Where it listens (with the ports actually bound). */
  readonly listening: readonly { protocol: 'udp' | 'tcp'; address: string; port: number }[];
  readonly counters: TurnCounters;
  readonly engine: TurnEngine;
  allocations(): AllocationInfo[];
  readonly closed: boolean;
  close(): Promise<void>;
}

function familyOf(address: string): 4 | 6 {
  return address.includes(':') ? 6 : 4;
}

/**
 * Starts a TURN server: UDP and TCP control listeners feeding a `TurnEngine`, and one UDP socket per relayed
 * transport address. The node's composition root calls this with ports from the port plan.
 */
export async function startTurnServer(options: TurnServerOptions): Promise<TurnServerHandle> {
  const clock = options.clock ?? systemClock;
  const log = category(options.log ?? silentLogger, 'turn.server');
  const cfg = options.config;
  const relayBind: Partial<Record<4 | 6, string>> = {};
  if (options.relayAddresses.ipv4) relayBind[4] = options.relayAddresses.ipv4;
  if (options.relayAddresses.ipv6) relayBind[6] = options.relayAddresses.ipv6;
  const advertised: Partial<Record<4 | 6, string>> = {
    4: options.advertisedRelayAddresses?.ipv4 ?? relayBind[4],
    6: options.advertisedRelayAddresses?.ipv6 ?? relayBind[6],
  };
  const relaySockets = new Set<dgram.Socket>();
  const io: TurnIo = {
    relayFamilies: new Set(([4, 6] as const).filter((f) => relayBind[f] !== undefined)),
    openRelay(family: 4 | 6, port: number, sink: RelaySink): Promise<RelayHandle | undefined> {
      const bindAddress = relayBind[family];
      if (bindAddress === undefined) return Promise.resolve(undefined);
      return new Promise((resolve) => {
        const sock = family === 4 ? dgram.createSocket('udp4') : dgram.createSocket({ type: 'udp6', ipv6Only: true });
        const onError = () => {
          sock.close();
          resolve(undefined);
        };
        sock.once('error', onError);
        sock.bind({ address: bindAddress, port, exclusive: true }, () => {
          sock.off('error', onError);
          if (options.relayBufferBytes) {
            sock.setRecvBufferSize(options.relayBufferBytes);
            sock.setSendBufferSize(options.relayBufferBytes);
          }
          sock.on('error', (err) => log.debug({ err, port }, 'relay socket error => ignored'));
          sock.on('message', (data, rinfo) => sink(rinfo.address, rinfo.port, data));
          relaySockets.add(sock);
          const address: TransportAddress = { family, address: canonicalIp(advertised[family]!), port };
          resolve({
            address,
            send(ip, peerPort, data) {
              sock.send(data as Buffer | Buffer[], peerPort, ip);
            },
            close() {
              if (relaySockets.delete(sock)) sock.close();
            },
          });
        });
      });
    },
  };

  const tcpRelayServers = new Set<net.Server>();
  io.openTcpRelay = (family, port, onPeer) => {
    const bindAddress = relayBind[family];
    if (bindAddress === undefined) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const srv = net.createServer({ noDelay: true, pauseOnConnect: true }, (sock) => onPeer(wrapPeer(sock)));
      srv.once('error', () => resolve(undefined));
      srv.listen({ host: bindAddress, port, exclusive: true }, () => {
        srv.on('error', (err) => log.debug({ err, port }, 'TCP relay listener error => ignored'));
        tcpRelayServers.add(srv);
        resolve({
          address: { family, address: canonicalIp(advertised[family]!), port },
          send() {},
          close() {
            if (tcpRelayServers.delete(srv)) srv.close();
          },
        });
      });
    });
  };
  // RFC 6062 §5.2 wants the relayed transport address as the local end; its port is taken by the relay's
  // listener, so the connection leaves from the relay address with another port of the relay range (the port plan's
  // turn-relay flow), skipping ports in use.
  const connectCursor = new OutboundPortCursor(options.relayRange);
  io.connectTcp = async (family, ip, port, timeoutMs) => {
    const localAddress = relayBind[family];
    try {
      const sock = await connectFromRange({
        host: ip,
        port,
        ...(localAddress ? { localAddress } : {}),
        cursor: connectCursor,
        clock,
        timeoutMs,
      });
      sock.setNoDelay(true);
      return wrapPeer(sock);
    } catch {
      return undefined;
    }
  };

  const own = new Set<string>();
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) own.add(i.address);
  for (const a of [...Object.values(relayBind), ...Object.values(advertised)]) if (a) own.add(a);
  for (const l of options.listen) own.add(l.address);
  const peerPolicy = new PeerPolicy({
    denied: cfg.peers.denied,
    allowed: cfg.peers.allowed,
    ownAddresses: [...own].filter((a) => a !== '0.0.0.0' && a !== '::'),
  });
  const engine = new TurnEngine({
    config: cfg,
    clock,
    io,
    credentials: options.credentials ?? new ConfigCredentials(cfg, clock),
    peerPolicy,
    relayRange: options.relayRange,
    ...(options.log ? { log: options.log } : {}),
  });

  const udpSockets: dgram.Socket[] = [];
  const tcpServers: net.Server[] = [];
  const tcpConnections = new Set<net.Socket>();
  const listening: { protocol: 'udp' | 'tcp'; address: string; port: number }[] = [];
  const maxTcp = options.maxTcpConnections ?? 10_000;
  let closed = false;

  try {
    for (const l of options.listen) {
      const protocols = l.protocols ?? ['udp', 'tcp'];
      // port 0 (tests, ephemeral): UDP picks the port and TCP must get the same one; when another program holds it
      // for TCP, both are tried again on a new port (a few times), so an ephemeral start does not fail at random
      for (let attempt = 1; ; attempt++) {
        let port = l.port;
        let sock: dgram.Socket | undefined;
        if (protocols.includes('udp')) {
          sock = await bindUdp(l.address, port, options.udpBufferBytes);
          port = sock.address().port;
        }
        let srv: net.Server | undefined;
        if (protocols.includes('tcp')) {
          srv = net.createServer({ noDelay: true }, (conn) => {
            if (tcpConnections.size >= maxTcp || closed) {
              conn.destroy();
              return;
            }
            tcpConnections.add(conn);
            conn.on('close', () => tcpConnections.delete(conn));
            attachTcp(conn, engine, log, (options.tcpIdleSeconds ?? 60) * 1000, clock);
          });
          const server = srv;
          try {
            await new Promise<void>((resolve, reject) => {
              server.once('error', reject);
              server.listen({ host: l.address, port, exclusive: true }, () => {
                server.off('error', reject);
                resolve();
              });
            });
          } catch (err) {
            sock?.close();
            const taken = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
            if (l.port === 0 && sock && taken && attempt < 8) continue;
            throw err;
          }
        }
        if (sock) {
          udpSockets.push(sock);
          listening.push({ protocol: 'udp', address: l.address, port });
          attachUdp(sock, engine, log);
        }
        if (srv) {
          tcpServers.push(srv);
          listening.push({ protocol: 'tcp', address: l.address, port: (srv.address() as net.AddressInfo).port });
        }
        break;
      }
    }
  } catch (err) {
    for (const s of udpSockets) s.close();
    for (const s of tcpServers) s.close();
    engine.close();
    throw err;
  }
  log.info({ listening, relayRange: options.relayRange }, 'TURN server started');

  return {
    listening,
    engine,
    get counters() {
      return engine.counters;
    },
    allocations: () => engine.allocations(),
    get closed() {
      return closed;
    },
    async close() {
      if (closed) return;
      closed = true;
      engine.close();
      for (const s of relaySockets) s.close();
      relaySockets.clear();
      for (const s of tcpRelayServers) s.close();
      tcpRelayServers.clear();
      for (const c of tcpConnections) c.destroy();
      await Promise.all([
        ...udpSockets.map((s) => new Promise<void>((r) => s.close(() => r()))),
        ...tcpServers.map((s) => new Promise<void>((r) => s.close(() => r()))),
      ]);
    },
  };
}

function bindUdp(address: string, port: number, bufferBytes: number | undefined): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock =
      familyOf(address) === 4 ? dgram.createSocket('udp4') : dgram.createSocket({ type: 'udp6', ipv6Only: true });
    sock.once('error', reject);
    sock.bind({ address, port, exclusive: true }, () => {
      sock.off('error', reject);
      if (bufferBytes) {
        sock.setRecvBufferSize(bufferBytes);
        sock.setSendBufferSize(bufferBytes);
      }
      resolve(sock);
    });
  });
}

/** Clients seen recently on one UDP listener; bounded, rebuilt on overflow (the engine keys on `key` only). */
function attachUdp(sock: dgram.Socket, engine: TurnEngine, log: Logger): void {
  const a = sock.address();
  const local: TransportAddress = { family: familyOf(a.address), address: a.address, port: a.port };
  const clients = new Map<string, ClientTransport>();
  sock.on('error', (err) => log.warn({ err }, 'UDP listener error => continuing'));
  sock.on('message', (data, rinfo) => {
    const key = `udp|${local.port}|${rinfo.address}|${rinfo.port}`;
    let client = clients.get(key);
    if (!client) {
      if (clients.size >= 65_536) clients.clear();
      const remote: TransportAddress = { family: familyOf(rinfo.address), address: rinfo.address, port: rinfo.port };
      client = {
        protocol: 'udp',
        remote,
        local,
        key,
        send: (bytes) => sock.send(bytes as Buffer | Buffer[], remote.port, remote.address),
      };
      clients.set(key, client);
    }
    engine.handleClientData(client, data);
  });
}

function attachTcp(conn: net.Socket, engine: TurnEngine, log: Logger, idleMs: number, clock: Clock): void {
  const remoteAddress = conn.remoteAddress ?? '';
  const localAddress = conn.localAddress ?? '';
  const client: ClientTransport = {
    protocol: 'tcp',
    remote: { family: familyOf(remoteAddress), address: canonicalIp(remoteAddress), port: conn.remotePort ?? 0 },
    local: { family: familyOf(localAddress), address: canonicalIp(localAddress), port: conn.localPort ?? 0 },
    key: `tcp|${localAddress}|${conn.localPort}|${remoteAddress}|${conn.remotePort}`,
    send(bytes) {
      if (conn.destroyed) return;
      if (Buffer.isBuffer(bytes)) conn.write(bytes);
      else {
        conn.cork();
        for (const b of bytes) conn.write(b);
        conn.uncork();
      }
    },
  };
  const framer = new TcpFramer();
  let piped = false;
  const onData = (chunk: Buffer) => {
    const r = framer.push(chunk, (frame) => {
      if (!piped) engine.handleClientData(client, frame);
    });
    if (!r.ok && !piped) {
      log.debug({ from: remoteAddress, reason: r.reason }, 'TCP framing error => connection closed');
      engine.counters.malformedDropped++;
      conn.destroy();
    }
  };
  conn.on('data', onData);
  conn.setTimeout(idleMs, () => {
    if (!piped && !engine.hasAllocation(client.key)) conn.destroy();
  });
  // RFC 6062 §5.4: after ConnectionBind succeeds the connection is a byte pipe to the peer, metered by the engine.
  client.attachPeer = (peer, meter) => {
    const peerSock = peerSockets.get(peer);
    if (!peerSock || peerSock.destroyed) {
      conn.destroy();
      return;
    }
    piped = true;
    conn.setTimeout(0);
    conn.off('data', onData);
    const up = pump(conn, peerSock, (n) => meter.take('toPeer', n), clock);
    const down = pump(peerSock, conn, (n) => meter.take('fromPeer', n), clock);
    // The peer is gone: the client still gets what the quota held back, then its data connection closes.
    peerSock.once('close', () => {
      up.cancel();
      down.closeAfterFlush(idleMs);
    });
    conn.once('close', () => {
      up.cancel();
      down.cancel();
      peerSock.destroy();
    });
    peerSock.resume();
  };
  conn.on('error', () => conn.destroy());
  conn.on('close', () => engine.clientClosed(client));
}

/** One direction of an RFC 6062 pipe. */
interface Pump {
  /** Drops what is held and stops the timers (the connection is gone). */
  cancel(): void;
  /** The reading side closed: write what is held, end the writing side, then close it (within `limitMs`). */
  closeAfterFlush(limitMs: number): void;
}

/**
 * One direction of an RFC 6062 pipe, as `stream.pipe` would do it plus the engine's meter: what `from` reads is
 * written to `to` as far as the meter grants; the rest is held and `from` paused until the meter's retry time (the
 * bandwidth quota) and until `to` drains (the receiver's own pace). At most one read chunk is held per direction.
 */
function pump(
  from: net.Socket,
  to: net.Socket,
  take: (wanted: number) => { granted: number; retryInMs: number } | undefined,
  clock: Clock,
): Pump {
  let held: Buffer | undefined;
  let timer: TimerHandle | undefined;
  let draining = false;
  let ended = false;
  let closing = false;
  let finished = false;
  const settle = (): void => {
    if (held || timer || finished || to.destroyed) return;
    if (closing) {
      finished = true;
      to.end(() => to.destroy());
    } else if (ended) {
      finished = true;
      to.end();
    } else if (!draining && !from.destroyed) from.resume();
  };
  const send = (bytes: Buffer): void => {
    const r = take(bytes.length);
    if (!r) {
      held = undefined;
      return;
    }
    const out = r.granted === bytes.length ? bytes : bytes.subarray(0, r.granted);
    if (r.granted > 0 && !to.destroyed && !to.write(out)) {
      draining = true;
      to.once('drain', () => {
        draining = false;
        settle();
      });
    }
    held = r.granted < bytes.length ? bytes.subarray(r.granted) : undefined;
    if (held) {
      timer = clock.setTimer(r.retryInMs, () => {
        timer = undefined;
        const rest = held;
        held = undefined;
        if (rest) send(rest);
        settle();
      });
    }
  };
  from.on('data', (chunk: Buffer) => {
    if (held) {
      // a paused socket emits no more chunks while one is held; should one come, it keeps its order
      held = Buffer.concat([held, chunk]);
      return;
    }
    send(chunk);
    if (held || draining) from.pause();
  });
  from.once('end', () => {
    ended = true;
    settle();
  });
  return {
    cancel() {
      timer?.cancel();
      timer = undefined;
      held = undefined;
      finished = true;
    },
    closeAfterFlush(limitMs) {
      closing = true;
      clock.setTimer(limitMs, () => to.destroy());
      if (!finished) return settle();
      // already ended after the reading side's end: close once the end has gone out
      if (to.writableFinished) to.destroy();
      else to.once('finish', () => to.destroy());
    },
  };
}
