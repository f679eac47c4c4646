import { createSocket, type Socket } from 'node:dgram';
import { isIP } from 'node:net';
import type { MediaIo } from './relay-core.ts';

/** Receive buffer asked of the kernel for each media socket (bytes): bursts of video survive a slow event loop. */
const RECV_BUFFER = 256 * 1024;

/**
 * The relay's dgram I/O: sockets are numbered handles so the engine never holds a socket object; every datagram is
 * handed to `receive(handle, data, address, port)`. Only this file and `start-relay.ts` touch `node:dgram`.
 */
export class UdpMediaIo implements MediaIo {
  readonly #sockets: (Socket | undefined)[] = [];
  readonly #free: number[] = [];
  #receive: (handle: number, data: Buffer, address: string, port: number) => void = () => {};
  #open = 0;

  /** Where datagrams go (the engine's `receive`). */
  setReceiver(fn: (handle: number, data: Buffer, address: string, port: number) => void): void {
    this.#receive = fn;
  }

  /** Sockets open now (for leak checks and status). */
  get openSockets(): number {
    return this.#open;
  }

  /** Binds one UDP socket; resolves to its handle, or undefined when the port is taken. */
  bind(address: string, port: number): Promise<number | undefined> {
    return new Promise((resolve) => {
      const s = createSocket({ type: isIP(address) === 6 ? 'udp6' : 'udp4', recvBufferSize: RECV_BUFFER });
      const onError = () => {
        s.close();
        resolve(undefined);
      };
      s.once('error', onError);
      s.bind({ address, port, exclusive: true }, () => {
        s.off('error', onError);
        const h = this.#free.pop() ?? this.#sockets.length;
        this.#sockets[h] = s;
        this.#open++;
        // A send error (ICMP unreachable reported on the socket) must not take the node down.
        s.on('error', () => {});
        s.on('message', (msg, rinfo) => this.#receive(h, msg, rinfo.address, rinfo.port));
        resolve(h);
      });
    });
  }

  async openPair(bindAddress: string, rtpPort: number): Promise<{ rtp: number; rtcp: number } | undefined> {
    const rtp = await this.bind(bindAddress, rtpPort);
    if (rtp === undefined) return undefined;
    const rtcp = await this.bind(bindAddress, rtpPort + 1);
    if (rtcp === undefined) {
      this.closeSocket(rtp);
      return undefined;
    }
    return { rtp, rtcp };
  }

  closeSocket(handle: number): void {
    const s = this.#sockets[handle];
    if (!s) return;
    this.#sockets[handle] = undefined;
    this.#free.push(handle);
    this.#open--;
    s.close();
  }

  send(handle: number, prefix: Buffer | null, data: Buffer, offset: number, address: string, port: number): void {
    const s = this.#sockets[handle];
    if (!s) return;
    const body = offset === 0 ? data : data.subarray(offset);
    if (prefix) s.send([prefix, body], port, address);
    else s.send(body, port, address);
  }

  /** The local port of a socket (tests, status). */
  localPort(handle: number): number | undefined {
    return this.#sockets[handle]?.address().port;
  }

  closeAll(): void {
    for (let h = 0; h < this.#sockets.length; h++) this.closeSocket(h);
  }
}
