import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP, isIPv6 } from 'node:net';
import { OperationalError } from '../../common/errors.ts';
import { plainAddress } from './stream-connection.ts';
import type { HostPort, ListenerInfo } from './types.ts';

/**
 * dgram resolves every destination with `dns.lookup`, which for an IP literal still costs a `process.nextTick` and
 * an async scope per datagram; an IP is answered at once here (names still go to `dns.lookup`).
 */
function ipLookup(
  address: string,
  family: number | LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const f = isIP(address);
  if (f !== 0) {
    callback(null, address, f);
    return;
  }
  dnsLookup(address, typeof family === 'number' ? { family } : family, callback);
}

/** Receives every datagram; must not throw. */
export type DatagramHandler = (bytes: Buffer, source: HostPort, listener: UdpListener) => void;

/**
 * One bound UDP socket. Datagrams larger than `maxDatagramBytes` are truncated by the kernel to the receive buffer
 * we give it, so the layer sees the true length and drops oversize ones itself.
 */
export class UdpListener {
  readonly #socket: Socket;
  readonly #onDatagram: DatagramHandler;
  #info: ListenerInfo | undefined;
  #closed = false;

  private constructor(socket: Socket, onDatagram: DatagramHandler) {
    this.#socket = socket;
    this.#onDatagram = onDatagram;
  }

  /** Binds `address:port` (port 0: any) and starts delivering datagrams. */
  static async bind(
    address: string,
    port: number,
    onDatagram: DatagramHandler,
    onError: (err: Error) => void,
    receiveBufferBytes?: number,
  ): Promise<UdpListener> {
    const ipv6 = isIPv6(address);
    const socket = createSocket({ type: ipv6 ? 'udp6' : 'udp4', ipv6Only: ipv6, reuseAddr: false, lookup: ipLookup });
    const l = new UdpListener(socket, onDatagram);
    await new Promise<void>((resolve, reject) => {
      const onBindError = (err: Error) =>
        reject(
          new OperationalError('ERR_SIP_TRANSPORT_LISTEN', `udp ${address}:${port}: ${err.message}`, { cause: err }),
        );
      socket.once('error', onBindError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.removeListener('error', onBindError);
        resolve();
      });
    });
    if (receiveBufferBytes) {
      try {
        socket.setRecvBufferSize(receiveBufferBytes);
      } catch {
        // refused by the kernel: keep its default size
      }
    }
    const a = socket.address();
    l.#info = { protocol: 'udp', address: a.address, port: a.port, family: ipv6 ? 'IPv6' : 'IPv4' };
    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (l.#closed) return;
      l.#onDatagram(msg, { address: plainAddress(rinfo.address), port: rinfo.port }, l);
    });
    // Errors after bind (ICMP unreachable surfaced on some systems) never end the listener.
    socket.on('error', onError);
    return l;
  }

  /** The receive buffer the kernel granted (bytes; Linux reports twice the requested size). */
  get receiveBufferBytes(): number {
    return this.#socket.getRecvBufferSize();
  }

  get info(): ListenerInfo {
    if (!this.#info) throw new OperationalError('ERR_SIP_TRANSPORT_NOT_BOUND', 'udp listener not bound');
    return this.#info;
  }

  get family(): 'IPv4' | 'IPv6' {
    return this.info.family;
  }

  /** Sends one datagram; resolves when handed to the kernel. */
  send(bytes: Buffer, address: string, port: number): Promise<void> {
    if (this.#closed) return Promise.reject(new OperationalError('ERR_SIP_TRANSPORT_CLOSED', 'udp listener closed'));
    return new Promise((resolve, reject) => {
      this.#socket.send(bytes, port, address, (err) => {
        if (err) {
          reject(
            new OperationalError('ERR_SIP_TRANSPORT_SEND', `udp send to ${address}:${port} failed: ${err.message}`, {
              cause: err,
            }),
          );
        } else resolve();
      });
    });
  }

  /**
   * Sends one datagram without a promise: `done` is called once the kernel took it (or with the error). The cheap
   * path for answers and retransmissions.
   */
  sendCb(bytes: Buffer, address: string, port: number, done: (err: Error | null) => void): void {
    if (this.#closed) {
      process.nextTick(done, new OperationalError('ERR_SIP_TRANSPORT_CLOSED', 'udp listener closed'));
      return;
    }
    this.#socket.send(bytes, port, address, done);
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => {
      try {
        this.#socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
  }
}
