import { isIP, type Socket } from 'node:net';
import {
  checkServerIdentity,
  createSecureContext,
  createServer as createTlsServer,
  type PeerCertificate,
  type SecureContext,
  type TLSSocket,
  type Server as TlsServer,
  connect as tlsConnect,
} from 'node:tls';
import { OperationalError } from '../../common/errors.ts';
import type { TransportTlsOptions } from './types.ts';

const VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;

/** The minimum TLS version to use: the configured one, never lower than TLSv1.2. */
export function effectiveMinVersion(v: string | undefined): 'TLSv1.2' | 'TLSv1.3' {
  return v === 'TLSv1.3' ? 'TLSv1.3' : VERSIONS[0];
}

/** What the server side tells the layer about one upgraded socket. */
export interface TlsAcceptEvents {
  secure(tlsSocket: TLSSocket, authorized: boolean, peer: PeerCertificate | undefined): void;
  failed(err: Error): void;
}

/**
 * The server side of TLS and MTLS for one listener. Raw sockets accepted (and admitted) by the layer are handed
 * to a non-listening `tls.Server` ("connection" injected), which does the handshake; for MTLS it demands a client
 * certificate and refuses one that does not chain to the configured CA (`requestCert`, `rejectUnauthorized`).
 */
export class TlsServerSide {
  readonly mutual: boolean;
  readonly #server: TlsServer;
  readonly #pending = new Map<string, TlsAcceptEvents>();

  constructor(tls: TransportTlsOptions, mutual: boolean, requestCertificate = false) {
    if (!tls.certificate || !tls.privateKey) {
      throw new OperationalError('ERR_SIP_TRANSPORT_TLS_CONFIG', 'TLS listener needs a certificate and a private key');
    }
    if (mutual && !tls.caCertificates) {
      throw new OperationalError(
        'ERR_SIP_TRANSPORT_TLS_CONFIG',
        'MTLS listener needs CA certificates to verify clients',
      );
    }
    this.mutual = mutual;
    this.#server = createTlsServer({
      cert: tls.certificate,
      key: tls.privateKey,
      ...(tls.caCertificates ? { ca: tls.caCertificates } : {}),
      minVersion: effectiveMinVersion(tls.minVersion),
      // MTLS: a client certificate is required and must chain to our CA; plain TLS does not ask for one unless told
      // to (then an unverified or absent one is left for the layer above to refuse, with a reason it can report).
      requestCert: mutual || requestCertificate,
      rejectUnauthorized: mutual,
      // Our own clock-driven setup timer bounds handshakes; this is only a backstop.
      handshakeTimeout: 120_000,
    });
    this.#server.on('secureConnection', (s: TLSSocket) => {
      const ev = this.#take(s);
      if (!ev) {
        s.destroy();
        return;
      }
      try {
        const peer = s.getPeerCertificate();
        const hasPeer = peer && Object.keys(peer).length > 0;
        ev.secure(s, s.authorized, hasPeer ? peer : undefined);
      } catch (err) {
        // Never let an exception escape a socket event: end this connection only.
        s.destroy();
        ev.failed(err instanceof Error ? err : new Error(String(err)));
      }
    });
    this.#server.on('tlsClientError', (err: Error, s: TLSSocket) => {
      try {
        this.#take(s)?.failed(err);
      } finally {
        s.destroy();
      }
    });
  }

  static #key(s: Socket): string {
    return `${s.remoteAddress}|${s.remotePort}|${s.localAddress}|${s.localPort}`;
  }

  #take(s: Socket): TlsAcceptEvents | undefined {
    const k = TlsServerSide.#key(s);
    const ev = this.#pending.get(k);
    this.#pending.delete(k);
    return ev;
  }

  /** Starts the server handshake on an accepted raw socket. */
  accept(raw: Socket, events: TlsAcceptEvents): void {
    this.#pending.set(TlsServerSide.#key(raw), events);
    this.#server.emit('connection', raw);
  }

  /** Forgets a socket whose handshake will not finish (closed by the layer). */
  forget(raw: Socket): void {
    this.#pending.delete(TlsServerSide.#key(raw));
  }
}

/** The client side: a secure context built once, used for every outbound TLS connection. */
export class TlsClientSide {
  readonly #context: SecureContext;
  readonly #verify: boolean;

  constructor(tls: TransportTlsOptions) {
    this.#verify = tls.verifyPeer !== false;
    this.#context = createSecureContext({
      // Presented when the server asks for a client certificate (MTLS to a peer).
      ...(tls.certificate && tls.privateKey ? { cert: tls.certificate, key: tls.privateKey } : {}),
      ...(tls.caCertificates ? { ca: tls.caCertificates } : {}),
      minVersion: effectiveMinVersion(tls.minVersion),
    });
  }

  /**
   * Runs the client handshake over a connected TCP socket. With `verifyPeer` (the default) the server certificate
   * must chain to the CA bundle and match `serverName` (or the address dialled).
   */
  upgrade(raw: Socket, serverName: string): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const s = tlsConnect({
        socket: raw,
        secureContext: this.#context,
        rejectUnauthorized: this.#verify,
        // RFC 6066 §3: SNI carries host names only, never literal addresses.
        ...(isIP(serverName) === 0 ? { servername: serverName } : {}),
        checkServerIdentity: (_host, cert) => checkServerIdentity(serverName, cert),
      });
      const onError = (err: Error) => {
        s.removeListener('secureConnect', onSecure);
        s.destroy();
        reject(
          new OperationalError('ERR_SIP_TRANSPORT_TLS_HANDSHAKE', `TLS handshake with ${serverName}: ${err.message}`, {
            cause: err,
          }),
        );
      };
      const onSecure = () => {
        s.removeListener('error', onError);
        resolve(s);
      };
      s.once('error', onError);
      s.once('secureConnect', onSecure);
    });
  }
}

/**
 * RFC 5923 §5: an alias is only honoured for a TLS peer whose certificate was verified and names the sent-by host.
 */
export function certificateNames(cert: PeerCertificate | undefined, host: string): boolean {
  if (!cert) return false;
  return checkServerIdentity(host, cert) === undefined;
}
