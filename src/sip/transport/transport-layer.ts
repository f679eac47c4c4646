import { isIP, isIPv6, type Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { OperationalError } from '../../common/errors.ts';
import { category, type Logger, RateLimitedLog, silentLogger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import { encodeAddress } from '../../stun/attributes.ts';
import { StunBuilder } from '../../stun/builder.ts';
import { Attr, Method, StunClass } from '../../stun/constants.ts';
import { decodeStun, looksLikeStun } from '../../stun/message.ts';
import { getParam } from '../message/params.ts';
import type { MessageLimits, ParseFailure, SipMessage } from '../message/types.ts';
import { decode, encode, errorResponse, type Framer, newFramer, setViaParams, topVia } from './message-codec.ts';
import { CONNECT_ERRORS, connectFromRange, OutboundPortCursor, type PortRange } from './outbound-ports.ts';
import { defaultPort } from './response-target.ts';
import { fmt, plainAddress, StreamConnection, type StreamConnectionHost } from './stream-connection.ts';
import { StreamListener } from './tcp-transport.ts';
import { certificateNames, TlsClientSide, TlsServerSide } from './tls-transport.ts';
import type {
  ConnectionInfo,
  ConnectionLimits,
  HostPort,
  InboundInfo,
  KeepaliveEvent,
  ListenerInfo,
  ListenSpec,
  MessageHandler,
  SendTarget,
  SipTransportName,
  TransportCounters,
  TransportTlsOptions,
} from './types.ts';
import { UdpListener } from './udp-transport.ts';

/** RFC 5923 alias policy: `verified-tls` (the RFC's rule) honours `alias` only on TLS with a verified certificate. */
export type AliasPolicy = 'never' | 'verified-tls' | 'always';

export interface SipTransportLayerOptions {
  clock: Clock;
  log?: Logger;
  limits: MessageLimits;
  connections: ConnectionLimits;
  /** Source ports for outbound TCP/TLS connections (the port plan's outbound range). */
  outboundPorts: PortRange;
  /** Needed for TLS/MTLS listeners and outbound TLS. */
  tls?: TransportTlsOptions;
  onMessage?: MessageHandler;
  /** Told when a TCP/TLS connection opens or closes (a traversal zone watches its flow with it). Must not throw. */
  onConnectionEvent?: (event: ConnectionEvent) => void;
  /** Told of every RFC 5626 keepalive (STUN on UDP, CRLF ping on streams): the registrar's flow liveness. Must not throw. */
  onKeepalive?: (event: KeepaliveEvent) => void;
  /** Default `verified-tls`. */
  aliasPolicy?: AliasPolicy;
  /** Local address to bind outbound connections to, per family; default: the address of a listener of that family. */
  outboundAddress?: { ipv4?: string; ipv6?: string };
  /** SO_RCVBUF of UDP listeners (bytes; the kernel caps it at net.core.rmem_max). Default: the kernel's. */
  udpReceiveBufferBytes?: number;
}

/**
 * Who may talk to this node, asked before any parsing (intrusion protection, `src/security/`): a source it refuses has
 * its datagrams dropped, its new connections refused and its open connections closed. Methods must not throw.
 */
export interface SourcePolicy {
  /** Per packet: false drops it. Must be O(1). */
  allows(address: string): boolean;
  /** Per new inbound connection (default: `allows`). */
  allowsConnection?(address: string): boolean;
  /** A malformed message came from `address`. */
  onMalformed?(address: string): void;
}

/** A connection opened (handshake done), closed (with why), or an outbound one failed to open (why: the error). */
export interface ConnectionEvent {
  type: 'opened' | 'closed' | 'failed';
  connection: ConnectionInfo;
  reason?: string;
}

const CRLF = Buffer.from('\r\n');
const MAX_ALIASES_PER_CONNECTION = 8;
const MAX_DATAGRAM = 65_507;
const RATE_TABLE_PRUNE_AT = 10_000;
/** How long a gracefully closed socket may take to drain before it is destroyed (ms). */
const LINGER_MS = 2000;

function emptyCounters(): TransportCounters {
  return {
    received: { UDP: 0, TCP: 0, TLS: 0 },
    sent: { UDP: 0, TCP: 0, TLS: 0 },
    drops: {},
    errorResponses: 0,
    connections: { opened: 0, closed: 0, refused: 0, failed: 0 },
    keepalives: { stun: 0, crlf: 0 },
  };
}

function normHost(address: string): string {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  return plainAddress(a.toLowerCase());
}

function key(transport: SipTransportName, address: string, port: number): string {
  return `${transport} ${normHost(address)}:${port}`;
}

/** True when an address written in a Via (`sent-by` host) is the same IP as the packet source. */
function sameAddress(viaHost: string, source: string): boolean {
  const a = normHost(viaHost);
  if (isIP(a) === 0) return false;
  if (a === source) return true;
  if (isIPv6(a) && isIPv6(source)) {
    // Compare canonical forms (`::1` vs `0:0:0:0:0:0:0:1`).
    try {
      return new URL(`http://[${a}]/`).hostname === new URL(`http://[${source}]/`).hostname;
    } catch {
      return false;
    }
  }
  return false;
}

/**
 * SIP transports (RFC 3261 §18): UDP, TCP, TLS and MTLS listeners on IPv4 and IPv6, one inbound callback, `send`
 * with connection reuse (including RFC 5923 aliases) and outbound connections from the configured source-port range,
 * connection limits and idle timeout on the injected clock, RFC 5626 CRLF keepalive answers, stateless 400/413/505
 * answers to malformed requests, an inventory of sockets, and counters. `close()` frees every socket and timer.
 */
export class SipTransportLayer {
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #badInput: RateLimitedLog;
  readonly #limits: MessageLimits;
  readonly #conn: Required<ConnectionLimits>;
  readonly #cursor: OutboundPortCursor;
  readonly #tls: TransportTlsOptions | undefined;
  readonly #aliasPolicy: AliasPolicy;
  readonly #outboundAddress: { ipv4?: string; ipv6?: string };
  readonly #udpReceiveBufferBytes: number | undefined;
  #onMessage: MessageHandler | undefined;
  #sourcePolicy: SourcePolicy | undefined;
  readonly #onConnectionEvent: ((event: ConnectionEvent) => void) | undefined;
  readonly #onKeepalive: ((event: KeepaliveEvent) => void) | undefined;

  readonly #udp: UdpListener[] = [];
  readonly #streams: StreamListener[] = [];
  readonly #tlsServers = new Map<StreamListener, TlsServerSide>();
  #tlsClient: TlsClientSide | undefined;
  readonly #conns = new Map<string, StreamConnection>();
  readonly #byKey = new Map<string, StreamConnection>();
  readonly #lingering = new Map<Socket, TimerHandle>();
  readonly #rate = new Map<string, { start: number; n: number }>();
  readonly #abort = new AbortController();
  #nextId = 1;
  #closed = false;
  #counters = emptyCounters();
  readonly #host: StreamConnectionHost;

  constructor(o: SipTransportLayerOptions) {
    this.#clock = o.clock;
    this.#udpReceiveBufferBytes = o.udpReceiveBufferBytes;
    this.#log = category(o.log ?? silentLogger, 'sip.transport');
    this.#badInput = new RateLimitedLog(this.#log, () => o.clock.now());
    this.#limits = o.limits;
    this.#conn = {
      maxConnections: o.connections.maxConnections,
      idleTimeoutSeconds: o.connections.idleTimeoutSeconds,
      newConnectionsPerSecondPerSource: o.connections.newConnectionsPerSecondPerSource,
      connectTimeoutMs: o.connections.connectTimeoutMs ?? 10_000,
      maxQueuedBytes: o.connections.maxQueuedBytes ?? 1_048_576,
    };
    this.#cursor = new OutboundPortCursor(o.outboundPorts);
    this.#tls = o.tls;
    this.#aliasPolicy = o.aliasPolicy ?? 'verified-tls';
    this.#outboundAddress = o.outboundAddress ?? {};
    this.#onMessage = o.onMessage;
    this.#onConnectionEvent = o.onConnectionEvent;
    this.#onKeepalive = o.onKeepalive;
    this.#host = {
      onData: (c, chunk) => this.#onStreamData(c, chunk),
      onClosed: (c, why) => this.#onConnectionClosed(c, why),
      linger: (s) => this.#linger(s),
    };
  }

  /** Sets the receiver of inbound messages (the transaction layer). */
  set onMessage(handler: MessageHandler | undefined) {
    this.#onMessage = handler;
  }

  /** Sets (or removes) the source policy asked before parsing anything from a source. */
  setSourcePolicy(policy: SourcePolicy | undefined): void {
    this.#sourcePolicy = policy;
  }

  /** Counts and drops what a refused source sent. */
  #blocked(address: string): boolean {
    const p = this.#sourcePolicy;
    if (!p || p.allows(address)) return false;
    this.#counters.drops['blocked-source'] = (this.#counters.drops['blocked-source'] ?? 0) + 1;
    return true;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Binds one listener and returns what was bound (the real port when 0 was asked). */
  async listen(spec: ListenSpec): Promise<ListenerInfo> {
    if (this.#closed) throw new OperationalError('ERR_SIP_TRANSPORT_CLOSED', 'transport layer closed');
    if (isIP(spec.address) === 0) {
      throw new OperationalError('ERR_SIP_TRANSPORT_LISTEN', `listen address must be an IP address: ${spec.address}`);
    }
    if (spec.protocol === 'udp') {
      const l = await UdpListener.bind(
        spec.address,
        spec.port,
        (bytes, source, listener) => this.#onDatagram(bytes, source, listener),
        (err) => this.#log.warn({ err: err.message }, 'udp socket error => ignored'),
        this.#udpReceiveBufferBytes,
      );
      this.#udp.push(l);
      this.#log.info({ ...l.info, receiveBufferBytes: l.receiveBufferBytes }, 'listening');
      return { ...l.info };
    }
    let tlsSide: TlsServerSide | undefined;
    if (spec.protocol === 'tls' || spec.protocol === 'mtls') {
      if (!this.#tls) throw new OperationalError('ERR_SIP_TRANSPORT_TLS_CONFIG', `${spec.protocol} needs TLS options`);
      tlsSide = new TlsServerSide(this.#tls, spec.protocol === 'mtls', spec.requestClientCertificate === true);
    }
    const l = await StreamListener.bind(
      spec.protocol,
      spec.address,
      spec.port,
      (socket, listener) => this.#onAccept(socket, listener),
      (err) => this.#log.warn({ err: err.message, protocol: spec.protocol }, 'listener error => ignored'),
    );
    this.#streams.push(l);
    if (tlsSide) this.#tlsServers.set(l, tlsSide);
    this.#log.info(l.info, 'listening');
    return { ...l.info };
  }

  /** Every bound socket. */
  listeners(): ListenerInfo[] {
    return [...this.#udp.map((l) => ({ ...l.info })), ...this.#streams.map((l) => ({ ...l.info }))];
  }

  /**
   * The bound sockets as the port plan's inventory check sees them (`compareInventory` in `src/ports`): TLS and MTLS
   * listen on TCP.
   */
  sockets(): Array<{ transport: 'udp' | 'tcp'; address: string; port: number }> {
    return this.listeners().map((l) => ({
      transport: l.protocol === 'udp' ? 'udp' : 'tcp',
      address: l.address,
      port: l.port,
    }));
  }

  /** Every TCP/TLS connection not yet closed (opening ones included, with their state). */
  connections(): ConnectionInfo[] {
    return [...this.#conns.values()].map((c) => c.info());
  }

  /** A snapshot of the counters. */
  counters(): TransportCounters {
    return structuredClone(this.#counters);
  }

  // ───────────────────────────── inbound: datagrams ─────────────────────────────

  #drop(reason: string, what: string, fields: Record<string, unknown> = {}): void {
    this.#counters.drops[reason] = (this.#counters.drops[reason] ?? 0) + 1;
    this.#badInput.warn(reason, `${what} => dropped`, { reason, ...fields });
  }

  #onDatagram(bytes: Buffer, source: HostPort, listener: UdpListener): void {
    try {
      if (this.#blocked(source.address)) return;
      if (bytes.length > this.#limits.maxMessageBytes) {
        this.#drop('oversize-datagram', 'oversize UDP datagram', { bytes: bytes.length, source: fmt(source) });
        return;
      }
      if (looksLikeStun(bytes)) {
        this.#stunDatagram(bytes, source, listener);
        return;
      }
      if (isKeepalive(bytes)) {
        // RFC 5626 §4.4.1 defines CRLF keepalives for streams only (STUN on UDP); a bare CRLF datagram is not
        // answered, but many phones send them: the flow it came on is still alive.
        this.#counters.drops['keepalive-datagram'] = (this.#counters.drops['keepalive-datagram'] ?? 0) + 1;
        this.#keepalive({
          transport: 'UDP',
          source,
          local: { address: listener.info.address, port: listener.info.port },
        });
        return;
      }
      const local = { address: listener.info.address, port: listener.info.port };
      const info: InboundInfo = { transport: 'UDP', secure: false, reliable: false, source, local };
      const r = decode(bytes, this.#limits, false);
      if (!r.ok) {
        this.#malformed(r.reason, info, (b) => listener.send(b, source.address, source.port));
        return;
      }
      this.#deliver(r.value, info, undefined);
    } catch (err) {
      this.#internal(err, 'udp datagram');
    }
  }

  /**
   * RFC 5626 §4.4.2 / §8: a STUN Binding request on a SIP UDP port is a keepalive; it is answered with a Binding
   * success carrying the XOR-MAPPED-ADDRESS it came from (RFC 8489 §14.2, FINGERPRINT when the request had one), and
   * the flow is reported alive. Any other STUN message is dropped and counted.
   */
  #stunDatagram(bytes: Buffer, source: HostPort, listener: UdpListener): void {
    const m = decodeStun(bytes);
    if (!m.ok) {
      this.#drop('stun-malformed', 'malformed STUN datagram', { source: fmt(source), why: m.reason });
      return;
    }
    const msg = m.value;
    if (msg.method !== Method.binding || msg.cls !== StunClass.request) {
      this.#drop('stun-not-binding-request', 'STUN message other than a Binding request', { source: fmt(source) });
      return;
    }
    this.#counters.keepalives.stun++;
    const txid = Buffer.from(msg.transactionId);
    const family = isIPv6(source.address) ? 6 : 4;
    const answer = new StunBuilder(Method.binding, StunClass.success, txid)
      .add(Attr.XOR_MAPPED_ADDRESS, encodeAddress({ family, address: source.address, port: source.port }, true, txid))
      .finish({ fingerprint: msg.fingerprintOffset >= 0 });
    listener.sendCb(answer, source.address, source.port, (err) => {
      if (err) this.#counters.drops['stun-answer-failed'] = (this.#counters.drops['stun-answer-failed'] ?? 0) + 1;
    });
    this.#keepalive({ transport: 'UDP', source, local: { address: listener.info.address, port: listener.info.port } });
  }

  #keepalive(event: KeepaliveEvent): void {
    if (!this.#onKeepalive) return;
    try {
      this.#onKeepalive(event);
    } catch (err) {
      this.#internal(err, 'keepalive listener');
    }
  }

  #internal(err: unknown, where: string): void {
    this.#counters.drops['internal-error'] = (this.#counters.drops['internal-error'] ?? 0) + 1;
    this.#log.error({ err: err instanceof Error ? err.stack : String(err), where }, 'internal error => dropped');
  }

  /**
   * A message that did not parse. RFC 3261 §21.4.1 / §21.5.6 / §21.4.13: a request whose start line and enough
   * headers were read gets 400 (505 for a bad version, 413 for an oversize one) with the fault as reason phrase,
   * sent statelessly back to the packet source; anything else, and every ACK (RFC 3261 §17.2.1: no response to
   * ACK), is dropped. Every case is counted and logged rate-limited.
   */
  #malformed(failure: ParseFailure, info: InboundInfo, reply: (bytes: Buffer) => Promise<void>): void {
    const reason = `parse:${failure.code}`;
    const partial = failure.partial;
    this.#sourcePolicy?.onMalformed?.(info.source.address);
    const src = fmt(info.source);
    if (partial && partial.kind === 'request' && partial.method !== 'ACK') {
      this.#counters.drops[reason] = (this.#counters.drops[reason] ?? 0) + 1;
      this.#badInput.warn(reason, `malformed ${info.transport} request => ${failure.status}`, {
        source: src,
        why: failure.reason,
      });
      let bytes: Buffer;
      try {
        bytes = encode(errorResponse(partial, failure.status, failure.reason));
      } catch (err) {
        this.#internal(err, 'error response');
        return;
      }
      this.#counters.errorResponses++;
      reply(bytes).then(
        () => {
          this.#counters.sent[info.transport]++;
        },
        () => {},
      );
      return;
    }
    this.#drop(reason, `malformed ${info.transport} message`, { source: src, why: failure.reason });
  }

  /**
   * Stamps the top Via of a request and hands the message up. RFC 3261 §18.2.1: "If the host portion of the
   * sent-by parameter contains a domain name, or if it contains an IP address that differs from the packet source
   * address, the server MUST add a received parameter to that Via header field value." RFC 3581 §4: with an empty
   * `rport`, "it MUST set the value of the parameter to the source port of the request" and add `received` "even if
   * it is identical to the value of the sent-by component".
   */
  #deliver(msg: SipMessage, info: InboundInfo, conn: StreamConnection | undefined): void {
    if (msg.kind === 'request') {
      const via = topVia(msg);
      if (!via) {
        this.#drop('no-via', `${info.transport} request without a usable Via`, { source: fmt(info.source) });
        return;
      }
      const set: { received?: string; rport?: number } = {};
      const rport = getParam(via.params, 'rport');
      if (rport === null) set.rport = info.source.port;
      if (rport === null || !sameAddress(via.host, info.source.address)) set.received = info.source.address;
      if ((set.rport !== undefined || set.received !== undefined) && !setViaParams(msg, set)) {
        this.#drop('bad-via', `${info.transport} request with an unusable Via`, { source: fmt(info.source) });
        return;
      }
      if (conn && getParam(via.params, 'alias') !== undefined) this.#alias(conn, via.host, via.port);
    }
    this.#counters.received[info.transport]++;
    const handler = this.#onMessage;
    if (!handler) {
      this.#drop('no-handler', 'message with no receiver');
      return;
    }
    try {
      handler(msg, info);
    } catch (err) {
      this.#counters.drops['handler-error'] = (this.#counters.drops['handler-error'] ?? 0) + 1;
      this.#log.error({ err: err instanceof Error ? err.stack : String(err) }, 'message handler threw => ignored');
    }
  }

  /** RFC 5923 §5: the connection becomes usable for requests to the sent-by host:port of the Via carrying `alias`. */
  #alias(conn: StreamConnection, host: string, port: number | undefined): void {
    const policy = this.#aliasPolicy;
    if (policy === 'never') return;
    if (policy === 'verified-tls') {
      // RFC 5923 §5: reuse is predicated on the TLS peer being authenticated for the name it aliases.
      if (conn.transport !== 'TLS' || !conn.peerCertificate || !certificateNames(conn.peerCertificate, host)) {
        this.#counters.drops['alias-refused'] = (this.#counters.drops['alias-refused'] ?? 0) + 1;
        return;
      }
    }
    const k = key(conn.transport, host, port ?? defaultPort(conn.transport));
    if (conn.aliases.has(k)) return;
    if (conn.aliases.size >= MAX_ALIASES_PER_CONNECTION) return;
    conn.aliases.add(k);
    this.#byKey.set(k, conn);
  }

  // ───────────────────────────── inbound: streams ─────────────────────────────

  #refuse(socket: Socket, reason: string): void {
    this.#counters.connections.refused++;
    this.#drop(reason, 'connection refused', { source: `${socket.remoteAddress}:${socket.remotePort}` });
    socket.on('error', () => {});
    socket.destroy();
  }

  /** Local policy (no RFC): at most N new inbound connections per source address per second (0: no limit). */
  #rateAllows(address: string): boolean {
    const limit = this.#conn.newConnectionsPerSecondPerSource;
    if (limit <= 0) return true;
    const now = this.#clock.now();
    if (this.#rate.size >= RATE_TABLE_PRUNE_AT) {
      for (const [a, e] of this.#rate) if (now - e.start >= 1000) this.#rate.delete(a);
    }
    let e = this.#rate.get(address);
    if (!e || now - e.start >= 1000) {
      e = { start: now, n: 0 };
      this.#rate.set(address, e);
    }
    if (e.n >= limit) return false;
    e.n++;
    return true;
  }

  #onAccept(socket: Socket, listener: StreamListener): void {
    try {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      const remote = { address: plainAddress(socket.remoteAddress), port: socket.remotePort ?? 0 };
      const policy = this.#sourcePolicy;
      if (
        policy &&
        !(policy.allowsConnection ? policy.allowsConnection(remote.address) : policy.allows(remote.address))
      ) {
        this.#refuse(socket, 'blocked-source');
        return;
      }
      if (this.#conns.size >= this.#conn.maxConnections) {
        this.#refuse(socket, 'connection-limit');
        return;
      }
      if (!this.#rateAllows(remote.address)) {
        this.#refuse(socket, 'connection-rate');
        return;
      }
      const tlsSide = this.#tlsServers.get(listener);
      const conn = this.#newConnection('inbound', tlsSide ? 'TLS' : 'TCP', remote, listener);
      conn.local = { address: plainAddress(socket.localAddress), port: socket.localPort ?? 0 };
      if (!tlsSide) {
        conn.attach(socket, 'open');
        this.#opened(conn);
        return;
      }
      conn.attach(socket, 'handshaking');
      tlsSide.accept(socket, {
        secure: (tlsSocket: TLSSocket, authorized: boolean, peer: PeerCertificate | undefined) => {
          if (conn.closed) {
            tlsSocket.destroy();
            return;
          }
          // MTLS: `rejectUnauthorized` already ended an unverified peer; this is a second fence.
          if (tlsSide.mutual && !authorized) {
            conn.close('tls-unauthorized');
            tlsSocket.destroy();
            return;
          }
          if (peer && authorized) conn.peerCertificate = peer;
          conn.attach(tlsSocket, 'open');
          this.#opened(conn);
        },
        failed: (err: Error) => {
          // Counted as refused when the connection closes (see #onConnectionClosed).
          conn.close(`tls-handshake:${(err as NodeJS.ErrnoException).code ?? 'unknown'}`);
        },
      });
      socket.once('close', () => tlsSide.forget(socket));
    } catch (err) {
      socket.destroy();
      this.#internal(err, 'accept');
    }
  }

  #newConnection(
    direction: 'inbound' | 'outbound',
    transport: 'TCP' | 'TLS',
    remote: HostPort,
    listener?: StreamListener,
  ): StreamConnection {
    const id = `${transport.toLowerCase()}-${this.#nextId++}`;
    const conn = new StreamConnection({
      id,
      transport,
      direction,
      remote,
      ...(listener ? { listener: listener.protocol } : {}),
      clock: this.#clock,
      idleTimeoutMs: this.#conn.idleTimeoutSeconds * 1000,
      setupTimeoutMs: this.#conn.connectTimeoutMs,
      maxQueuedBytes: this.#conn.maxQueuedBytes,
      host: this.#host,
    });
    conn.framer = newFramer(this.#limits);
    this.#conns.set(id, conn);
    this.#byKey.set(key(transport, remote.address, remote.port), conn);
    return conn;
  }

  #onStreamData(conn: StreamConnection, chunk: Buffer): void {
    try {
      if (this.#blocked(conn.remote.address)) {
        conn.close('blocked-source');
        return;
      }
      const framer = conn.framer as Framer;
      framer.push(chunk);
      for (let frame = framer.pull(); frame && !conn.closed; frame = framer.pull()) {
        switch (frame.type) {
          case 'ping':
            // RFC 5626 §4.4.1: a double CRLF ping is answered with a single CRLF pong.
            conn.sendNoWait(CRLF);
            this.#counters.keepalives.crlf++;
            if (this.#onKeepalive) {
              const i = conn.info();
              this.#keepalive({ transport: i.transport, source: i.remote, local: i.local, connectionId: i.id });
            }
            break;
          case 'pong':
            conn.pong();
            break;
          case 'error':
            this.#framingError(conn, frame.failure);
            return;
          case 'message':
            this.#onStreamMessage(conn, frame.bytes);
            break;
        }
      }
    } catch (err) {
      this.#internal(err, 'stream data');
      conn.close('internal-error');
    }
  }

  #streamInfo(conn: StreamConnection): InboundInfo {
    const info: InboundInfo = {
      transport: conn.transport,
      secure: conn.transport === 'TLS',
      reliable: true,
      source: { ...conn.remote },
      local: { ...conn.local },
      connectionId: conn.id,
    };
    if (conn.listener) info.listener = conn.listener;
    if (conn.peerCertificate) info.tlsPeerCertificate = conn.peerCertificate;
    return info;
  }

  #onStreamMessage(conn: StreamConnection, bytes: Buffer): void {
    const info = this.#streamInfo(conn);
    const r = decode(bytes, this.#limits, true);
    if (!r.ok) {
      // The frame boundary is known (Content-Length was read), so the stream stays in sync: answer and go on.
      this.#malformed(r.reason, info, (b) => conn.send(b));
      return;
    }
    this.#deliver(r.value, info, conn);
  }

  /** A framing error: the stream is out of sync. Answer 400 when possible, then close the connection. */
  #framingError(conn: StreamConnection, failure: ParseFailure): void {
    this.#malformed(failure, this.#streamInfo(conn), (b) => conn.send(b));
    conn.close(`framing:${failure.code}`, undefined, true);
  }

  #onConnectionClosed(conn: StreamConnection, why: string): void {
    if (this.#conns.get(conn.id) === conn) this.#conns.delete(conn.id);
    const own = key(conn.transport, conn.remote.address, conn.remote.port);
    if (this.#byKey.get(own) === conn) this.#byKey.delete(own);
    for (const k of conn.aliases) if (this.#byKey.get(k) === conn) this.#byKey.delete(k);
    if (conn.wasOpen) {
      this.#counters.connections.closed++;
      this.#emitConnection({ type: 'closed', connection: conn.info(), reason: why });
    } else if (conn.direction === 'inbound' && !this.#closed) {
      // An inbound TLS connection that never completed its handshake: a bad or missing client certificate (MTLS),
      // an old protocol version, a setup timeout, or a peer that went away.
      this.#counters.connections.refused++;
      this.#drop('tls-handshake', 'TLS handshake failed', { source: fmt(conn.remote), why });
    }
    this.#log.debug({ id: conn.id, remote: fmt(conn.remote), why }, 'connection closed');
  }

  #opened(conn: StreamConnection): void {
    this.#counters.connections.opened++;
    this.#emitConnection({ type: 'opened', connection: conn.info() });
  }

  #emitConnection(event: ConnectionEvent): void {
    if (!this.#onConnectionEvent) return;
    try {
      this.#onConnectionEvent(event);
    } catch (err) {
      this.#log.error(
        { err: err instanceof Error ? err.stack : String(err) },
        'connection event handler threw => ignored',
      );
    }
  }

  #linger(socket: Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    const timer = this.#clock.setTimer(LINGER_MS, () => {
      this.#lingering.delete(socket);
      socket.destroy();
    });
    this.#lingering.set(socket, timer);
    socket.once('close', () => {
      timer.cancel();
      this.#lingering.delete(socket);
    });
  }

  // ───────────────────────────── outbound ─────────────────────────────

  /**
   * Sends a message. UDP: from the listening socket of the target's family. TCP/TLS: on the connection named by
   * `connectionId` if still open, else on an open connection to (transport, address, port) — including ones the
   * peer opened and RFC 5923 aliases — else on a new connection from the outbound port range. Rejects with an
   * `OperationalError` when the message cannot be handed to the network (the transaction layer's transport error).
   */
  async send(msg: SipMessage, target: SendTarget): Promise<void> {
    const bytes = encode(msg);
    await this.sendBytes(bytes, target);
  }

  /** Like `send`, for already serialized bytes (retransmissions). */
  async sendBytes(bytes: Buffer, target: SendTarget): Promise<void> {
    if (this.#closed) throw new OperationalError('ERR_SIP_TRANSPORT_CLOSED', 'transport layer closed');
    if (target.transport === 'UDP') {
      if (bytes.length > MAX_DATAGRAM) {
        throw new OperationalError('ERR_SIP_TRANSPORT_TOO_LARGE', `${bytes.length} B does not fit in a UDP datagram`);
      }
      const l = this.#udpFor(target.address, target.local);
      await l.send(bytes, normHost(target.address), target.port);
      this.#counters.sent.UDP++;
      return;
    }
    const conn = this.#connectionFor(target);
    await conn.send(bytes);
    this.#counters.sent[target.transport]++;
  }

  /**
   * Like `sendBytes` without a promise (one per datagram adds up under load): UDP goes straight to the socket;
   * `onError` is called at most once, asynchronously, when the bytes could not be handed to the network.
   */
  sendBytesNoWait(bytes: Buffer, target: SendTarget, onError: (err: Error) => void): void {
    if (this.#closed || target.transport !== 'UDP' || bytes.length > MAX_DATAGRAM) {
      this.sendBytes(bytes, target).catch(onError);
      return;
    }
    let l: UdpListener;
    try {
      l = this.#udpFor(target.address, target.local);
    } catch (err) {
      queueMicrotask(() => onError(err as Error));
      return;
    }
    const address = normHost(target.address);
    l.sendCb(bytes, address, target.port, (err) => {
      if (!err) {
        this.#counters.sent.UDP++;
        return;
      }
      onError(
        new OperationalError('ERR_SIP_TRANSPORT_SEND', `udp send to ${address}:${target.port} failed: ${err.message}`, {
          cause: err,
        }),
      );
    });
  }

  #udpFor(address: string, local: SendTarget['local']): UdpListener {
    if (local) {
      const a = normHost(local.address);
      const exact = this.#udp.find(
        (u) => u.info.address === a && (local.port === undefined || u.info.port === local.port),
      );
      if (exact) return exact;
    }
    const want = isIPv6(normHost(address)) ? 'IPv6' : 'IPv4';
    const l = this.#udp.find((u) => u.family === want);
    if (!l) throw new OperationalError('ERR_SIP_TRANSPORT_NO_LISTENER', `no ${want} UDP listener to send from`);
    return l;
  }

  #connectionFor(target: SendTarget): StreamConnection {
    if (target.connectionId) {
      const c = this.#conns.get(target.connectionId);
      if (c && !c.closed) return c;
    }
    const k = key(target.transport, target.address, target.port);
    const existing = this.#byKey.get(k);
    if (existing && !existing.closed) return existing;
    if (this.#conns.size >= this.#conn.maxConnections) {
      this.#counters.connections.refused++;
      throw new OperationalError(
        'ERR_SIP_TRANSPORT_CONNECTION_LIMIT',
        `connection limit ${this.#conn.maxConnections} reached, not connecting to ${k}`,
      );
    }
    if (target.transport === 'TLS' && !this.#tls) {
      throw new OperationalError('ERR_SIP_TRANSPORT_TLS_CONFIG', 'outbound TLS needs TLS options');
    }
    const transport = target.transport as 'TCP' | 'TLS';
    const remote = { address: normHost(target.address), port: target.port };
    const conn = this.#newConnection('outbound', transport, remote);
    void this.#dial(conn, target);
    return conn;
  }

  #localAddressFor(address: string): string | undefined {
    const v6 = isIPv6(address);
    const configured = v6 ? this.#outboundAddress.ipv6 : this.#outboundAddress.ipv4;
    if (configured) return configured;
    const l = this.#streams.find((s) => s.info.family === (v6 ? 'IPv6' : 'IPv4'));
    if (!l) return undefined;
    const a = l.info.address;
    return a === '0.0.0.0' || a === '::' ? undefined : a;
  }

  async #dial(conn: StreamConnection, target: SendTarget): Promise<void> {
    try {
      const localAddress = target.local?.address ?? this.#localAddressFor(conn.remote.address);
      const raw = await connectFromRange({
        host: conn.remote.address,
        port: conn.remote.port,
        ...(localAddress ? { localAddress } : {}),
        cursor: this.#cursor,
        clock: this.#clock,
        timeoutMs: this.#conn.connectTimeoutMs,
        signal: this.#abort.signal,
      });
      if (conn.closed) {
        raw.destroy();
        return;
      }
      if (conn.transport === 'TCP') {
        conn.attach(raw, 'open');
        this.#opened(conn);
        return;
      }
      conn.attach(raw, 'handshaking');
      this.#tlsClient ??= new TlsClientSide(this.#tls!);
      const s = await this.#tlsClient.upgrade(raw, target.serverName ?? conn.remote.address);
      if (conn.closed) {
        s.destroy();
        return;
      }
      conn.attach(s, 'open');
      this.#opened(conn);
    } catch (err) {
      this.#counters.connections.failed++;
      const e = err instanceof Error ? err : new Error(String(err));
      const code = (err as { code?: string }).code ?? 'unknown';
      this.#log.warn({ remote: fmt(conn.remote), code, err: e.message }, 'outbound connection failed');
      this.#emitConnection({ type: 'failed', connection: conn.info(), reason: e.message });
      conn.close(code === CONNECT_ERRORS.exhausted ? 'ports-exhausted' : `connect-failed:${code}`, e);
    }
  }

  /**
   * RFC 5626 §4.4.1: sends a CRLF keepalive ping on an open connection and resolves with the round-trip time (ms)
   * when the pong comes back; rejects after `timeoutMs` or when the connection is gone.
   */
  ping(connectionId: string, timeoutMs = 10_000): Promise<number> {
    const c = this.#conns.get(connectionId);
    if (!c || c.closed) {
      return Promise.reject(new OperationalError('ERR_SIP_TRANSPORT_CLOSED', `no open connection ${connectionId}`));
    }
    return c.ping(timeoutMs);
  }

  /** Closes one connection (e.g. a flow the upper layer gave up on). Returns false when it is not open. */
  closeConnection(connectionId: string): boolean {
    const c = this.#conns.get(connectionId);
    if (!c || c.closed) return false;
    c.close('closed-by-user', undefined, true);
    return true;
  }

  /** Closes every listener, connection and timer. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    for (const c of [...this.#conns.values()]) c.close('closing');
    for (const [s, timer] of this.#lingering) {
      timer.cancel();
      s.destroy();
    }
    this.#lingering.clear();
    this.#rate.clear();
    await Promise.all([...this.#udp.map((l) => l.close()), ...this.#streams.map((l) => l.close())]);
    this.#udp.length = 0;
    this.#streams.length = 0;
    this.#tlsServers.clear();
    this.#log.info('transport layer closed');
  }
}

/** A datagram of nothing but CR/LF (a keepalive some phones send over UDP). */
function isKeepalive(bytes: Buffer): boolean {
  if (bytes.length > 4) return false;
  for (const b of bytes) if (b !== 0x0d && b !== 0x0a) return false;
  return true;
}
