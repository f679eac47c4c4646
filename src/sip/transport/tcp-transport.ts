import { createServer, isIPv6, type Server, type Socket } from 'node:net';
import { OperationalError } from '../../common/errors.ts';
import type { ListenerInfo, ListenProtocol } from './types.ts';

/** Receives every accepted socket (TCP; for TLS/MTLS still raw, to be upgraded); must not throw. */
export type AcceptHandler = (socket: Socket, listener: StreamListener) => void;

/**
 * A bound TCP listening socket for SIP over TCP, TLS or MTLS. It accepts raw TCP sockets only: connection limits are
 * applied by the layer before any TLS work is spent on a connection, and the TLS upgrade happens in
 * `tls-transport.ts`.
 */
export class StreamListener {
  readonly protocol: ListenProtocol;
  readonly #server: Server;
  #info: ListenerInfo | undefined;
  #closed = false;

  private constructor(protocol: ListenProtocol, server: Server) {
    this.protocol = protocol;
    this.#server = server;
  }

  /** Listens on `address:port` (port 0: any) for `protocol` (tcp, tls or mtls). */
  static async bind(
    protocol: ListenProtocol,
    address: string,
    port: number,
    onAccept: AcceptHandler,
    onError: (err: Error) => void,
    backlog = 511,
  ): Promise<StreamListener> {
    if (protocol === 'udp') throw new OperationalError('ERR_SIP_TRANSPORT_PROTOCOL', 'udp is not a stream protocol');
    const server = createServer({ pauseOnConnect: false, noDelay: true, keepAlive: true });
    const l = new StreamListener(protocol, server);
    const ipv6 = isIPv6(address);
    await new Promise<void>((resolve, reject) => {
      const onListenError = (err: Error) =>
        reject(
          new OperationalError('ERR_SIP_TRANSPORT_LISTEN', `${protocol} ${address}:${port}: ${err.message}`, {
            cause: err,
          }),
        );
      server.once('error', onListenError);
      server.listen({ host: address, port, ipv6Only: ipv6, exclusive: true, backlog }, () => {
        server.removeListener('error', onListenError);
        resolve();
      });
    });
    const a = server.address();
    if (!a || typeof a === 'string') throw new OperationalError('ERR_SIP_TRANSPORT_LISTEN', 'no address after listen');
    l.#info = { protocol, address: a.address, port: a.port, family: ipv6 ? 'IPv6' : 'IPv4' };
    server.on('connection', (socket: Socket) => {
      if (l.#closed) {
        socket.destroy();
        return;
      }
      onAccept(socket, l);
    });
    server.on('error', onError);
    return l;
  }

  get info(): ListenerInfo {
    if (!this.#info) throw new OperationalError('ERR_SIP_TRANSPORT_NOT_BOUND', 'stream listener not bound');
    return this.#info;
  }

  /** Stops accepting; open connections are the layer's to close. */
  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
