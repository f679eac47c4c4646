import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { Gatekeeper, GatekeeperSend } from './gatekeeper.ts';

export { MAX_RAS_DATAGRAM } from './gatekeeper.ts';

/**
 * The UDP side of the gatekeeper: one socket on the plan's `h323-ras` listener. Datagrams go to the sans-I/O
 * `Gatekeeper`; its answers and its own requests (URQ) go out of the same socket.
 */
export class RasServer {
  readonly #socket: dgram.Socket;
  readonly #gk: Gatekeeper;
  #closed = false;

  private constructor(socket: dgram.Socket, gk: Gatekeeper) {
    this.#socket = socket;
    this.#gk = gk;
    gk.onSend = (s) => this.#send(s);
    socket.on('message', (msg, rinfo) => {
      // oversize datagrams, blocked and flooding sources are dropped and counted by the gatekeeper
      const reply = gk.handleDatagram(msg, { ip: rinfo.address, port: rinfo.port });
      if (reply) this.#send(reply);
    });
    socket.on('error', () => {
      // ICMP errors from endpoints that went away must not end the node
    });
  }

  /** Binds `host:port` (0 for an ephemeral port in tests). */
  static async start(gk: Gatekeeper, host: string, port: number): Promise<RasServer> {
    const socket = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: false });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new RasServer(socket, gk);
  }

  #send(s: GatekeeperSend): void {
    if (this.#closed) return;
    this.#socket.send(s.bytes, s.to.port, s.to.ip);
  }

  address(): { ip: string; port: number } {
    const a = this.#socket.address();
    return { ip: a.address, port: a.port };
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#gk.close();
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
