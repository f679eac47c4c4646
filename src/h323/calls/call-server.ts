import net from 'node:net';
import type { Logger } from '../../common/log.ts';
import type { Clock } from '../../common/timers.ts';
import type { RelayCore } from '../../media/relay-core.ts';
import type { AliasText, IpPort } from '../api.ts';
import type { Gatekeeper, H323Route, H323Target } from '../gatekeeper/gatekeeper.ts';
import type { OpenLogicalChannel, OpenLogicalChannelAck } from '../per/generated/types.ts';
import { encodeTpkt, TpktFramer } from '../transport/tpkt.ts';
import type { CodecPolicy } from './capabilities.ts';
import { MediaAnchor } from './media-anchor.ts';
import { type Leg, RoutedCall, type RoutedCallInfo } from './routed-call.ts';

export interface CallServerOptions {
  gatekeeper: Gatekeeper;
  /** Where the node listens for call signalling (the plan's `h323-q931` listener). */
  listen: IpPort;
  /** Source ports of the node's own call signalling connections (the plan's `h323-dynamic` pool). */
  outboundPorts: { from: number; to: number };
  clock: Clock;
  log: Logger;
  /** The node's media relay: fast-start media is anchored on it when given. */
  media?: RelayCore;
  /**
   * Routes a Setup through the search rules (neighbor zones, `gatekeeper/neighbours.ts`); without it the called
   * aliases are looked up in the gatekeeper's registrations only. `authUser`: who signed the caller's Setup
   * (H.235.1, `admitSetup`), when someone did: the call is then authenticated for call policy and search rules.
   */
  route?: (
    destination: AliasText[],
    source: AliasText[],
    from: IpPort,
    authUser: string | undefined,
  ) => Promise<H323Route | undefined>;
  /** Largest TPKT accepted on a leg (octets). */
  maxPduBytes?: number;
  /** Ended calls kept for the status listing. */
  keepEnded?: number;
  /** The node's own H.245 on each leg (codec policy, terminalType) and the answer timer (`h323.calls`). */
  calls?: { codecs?: CodecPolicy; terminalType?: number; answerTimeoutSeconds?: number };
}

/**
 * What `CallServer.admitSetup` answers for a caller's first PDU; `user`: who signed it (H.235.1), if anyone;
 * `endpoint`: the endpointIdentifier of the registration it signed for.
 */
export type SetupVerdict =
  | { kind: 'pass'; pdu: Uint8Array; user?: string; endpoint?: string }
  | { kind: 'deny'; reason: string; reply: Uint8Array };

/**
 * The call signalling side of the routed model: accepts the caller's leg on `h323-q931`, runs a `RoutedCall` per
 * connection and opens leg B from the `h323-dynamic` range. A malformed or oversize TPKT ends that call, never
 * the node.
 */
export class CallServer {
  readonly #o: CallServerOptions;
  readonly #server: net.Server;
  readonly #active = new Map<string, RoutedCall>();
  readonly ended: RoutedCallInfo[] = [];
  #seq = 0;
  #cursor = 0;
  #closed = false;
  readonly #sockets = new Set<net.Socket>();
  /** H.245 listeners open now. */
  readonly #servers = new Set<net.Server>();
  /** Ports of the outbound range our own sockets and listeners hold. */
  readonly #held = new Set<number>();
  /**
   * `h245Refused`: connections to a call's H.245 listener from another host than that leg's (or a second one);
   * `securityDenied`: callers whose first PDU the Setup check (`admitSetup`) refused; `securityReleased`: calls ended
   * because a later message of the caller, or a message of a signed callee, failed its check (`admitMessage`).
   */
  readonly counters = {
    accepted: 0,
    refused: 0,
    malformed: 0,
    connectFailures: 0,
    h245Refused: 0,
    securityDenied: 0,
    securityReleased: 0,
  };
  /** Told of every call's state changes (the node's call registry and records); must not throw. */
  onCallState: (info: Readonly<RoutedCallInfo>) => void = () => {};
  /** Asked for each new connection (intrusion protection: blocked or flooding sources are refused). */
  allowConnection: (address: string) => boolean = () => true;
  /**
   * Asked for the caller's first PDU before a call exists for it (H.235.1 on Setup, `security/call-security.ts`):
   * go on with `pdu` (it may differ from what came in), or refuse: `reply` is sent, the connection closed, no
   * call and no leg B.
   */
  admitSetup: (pdu: Uint8Array, from: IpPort) => SetupVerdict = (pdu) => ({ kind: 'pass', pdu });
  /**
   * Asked for each later PDU from a caller whose Setup `user` signed (H.235.1 on every call signalling message,
   * `security/call-security.ts`): go on with `pdu`, or end the call: `reply` (ReleaseComplete securityDenied) goes to
   * the caller, the callee's leg is released.
   */
  admitMessage: (pdu: Uint8Array, from: IpPort, user: string) => SetupVerdict = (pdu) => ({ kind: 'pass', pdu });
  /**
   * Asked for every call signalling PDU the node sends to an endpoint holding an H.235.1 key: a caller whose Setup
   * `user` signed (for the registration `endpoint`), or a callee that registered signed as `user`. Returns the PDU
   * to send (signed, `security/call-security.ts`).
   */
  signFor: (pdu: Uint8Array, user: string, endpoint: string | undefined) => Uint8Array = (pdu) => pdu;

  private constructor(o: CallServerOptions, server: net.Server) {
    this.#o = o;
    this.#server = server;
    server.on('connection', (s) => this.#accept(s));
  }

  static async start(o: CallServerOptions): Promise<CallServer> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.listen.port, o.listen.ip, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new CallServer(o, server);
  }

  address(): IpPort {
    const a = this.#server.address() as net.AddressInfo;
    return { ip: a.address, port: a.port };
  }

  /** Calls in progress. */
  active(): RoutedCallInfo[] {
    return [...this.#active.values()].map((c) => ({ ...c.info }));
  }

  #framed(socket: net.Socket, onPdu: (pdu: Uint8Array) => void, onBroken: (why: string) => void): void {
    const framer = new TpktFramer(this.#o.maxPduBytes ? { maxPacketBytes: this.#o.maxPduBytes } : {});
    socket.on('data', (chunk) => {
      const r = framer.push(chunk);
      if (!r.ok) {
        this.counters.malformed++;
        onBroken(r.reason);
        return;
      }
      for (const pdu of r.value) onPdu(pdu);
    });
  }

  #accept(a: net.Socket): void {
    if (this.#closed || !this.allowConnection(a.remoteAddress ?? '')) {
      if (!this.#closed) this.counters.refused++;
      a.destroy();
      return;
    }
    this.counters.accepted++;
    this.#sockets.add(a);
    a.once('close', () => this.#sockets.delete(a));
    const id = `h323-${++this.#seq}`;
    const caller: IpPort = { ip: a.remoteAddress ?? '', port: a.remotePort ?? 0 };
    let b: net.Socket | undefined;
    const sockets: Record<Leg, () => net.Socket | undefined> = { a: () => a, b: () => b };
    const local = a.address() as net.AddressInfo;
    const anchor = this.#o.media ? new MediaAnchor(this.#o.media, id) : undefined;
    // separate H.245 connections (H.245 not tunnelled), per leg: ours to the leg or the leg's to our listener
    const h245: Record<Leg, net.Socket | undefined> = { a: undefined, b: undefined };
    const h245Servers: Record<Leg, net.Server | undefined> = { a: undefined, b: undefined };
    const attachH245 = (leg: Leg, s: net.Socket) => {
      h245[leg] = s;
      this.#framed(
        s,
        (pdu) => call.fromH245(leg, pdu),
        (why) => call.broken(leg, `H.245: ${why}`),
      );
      s.on('close', () => call.h245Closed(leg));
      s.on('error', () => {});
    };
    // who signed the caller's Setup: set by `admitSetup` before the call sees the Setup, so before it routes it
    let signedBy: string | undefined;
    let callerEndpoint: string | undefined;
    // the callee's registration when it registered with an H.235.1 token (known once the call is routed)
    let callee: { user: string; endpoint: string } | undefined;
    let refusedB = false;
    const noteCallee = <T extends H323Route | H323Target | undefined>(r: T): T => {
      // each routing decides anew: a later route to an endpoint without a key is neither signed toward nor checked
      callee =
        r?.kind === 'endpoint' && r.registration.authUser !== undefined
          ? { user: r.registration.authUser, endpoint: r.registration.endpointIdentifier }
          : undefined;
      return r;
    };
    // H.235.1: what the node sends an endpoint that holds a key is signed with it (after RoutedCall built the PDU)
    const signed = (leg: Leg, pdu: Uint8Array): Uint8Array => {
      if (leg === 'a') return signedBy !== undefined ? this.signFor(pdu, signedBy, callerEndpoint) : pdu;
      return callee ? this.signFor(pdu, callee.user, callee.endpoint) : pdu;
    };
    /**
     * A message of a signed leg failed its H.235.1 check: that leg hears securityDenied, and the call ends as for a
     * broken leg (the other leg is released).
     */
    const release = (leg: Leg, socket: net.Socket, from: IpPort, v: { reason: string; reply: Uint8Array }) => {
      this.counters.securityReleased++;
      this.#o.log.info(
        { call: id, from: from.ip, reason: v.reason },
        `H.323 ${leg === 'a' ? 'call' : 'callee'} message => securityDenied`,
      );
      socket.end(encodeTpkt(signed(leg, v.reply)));
      call.broken(leg, `H.235.1: ${v.reason}`);
    };
    const call = new RoutedCall(
      id,
      {
        resolve: async (dest, src) =>
          noteCallee(
            this.#o.route ? await this.#o.route(dest, src, caller, signedBy) : this.#o.gatekeeper.resolve(dest),
          ),
        connectB: (to) => {
          b = this.#connect(to, local.address, (ok, why) => (ok ? call.bConnected() : call.bFailed(why)));
          const bSocket = b;
          this.#framed(
            bSocket,
            (pdu) => {
              if (refusedB) return;
              if (callee) {
                const from = { ip: bSocket.remoteAddress ?? '', port: bSocket.remotePort ?? 0 };
                const v = this.admitMessage(pdu, from, callee.user);
                if (v.kind === 'deny') {
                  refusedB = true;
                  release('b', bSocket, from, v);
                  return;
                }
                pdu = v.pdu;
              }
              call.fromB(pdu);
            },
            (why) => (refusedB ? bSocket.destroy() : call.broken('b', why)),
          );
          bSocket.on('close', () => {
            if (!refusedB) call.closed('b');
          });
          bSocket.on('error', () => {});
        },
        send: (leg, pdu) => {
          const s = sockets[leg]();
          if (s && !s.destroyed && s.writable) s.write(encodeTpkt(signed(leg, pdu)));
        },
        close: (leg) => sockets[leg]()?.end(),
        localAddress: { ip: local.address, port: this.#o.listen.port || local.port },
        setTimer: (ms, fn) => this.#o.clock.setTimer(ms, fn),
        ...(anchor ? { relayPorts: () => anchor.ports() } : {}),
        ...(anchor
          ? {
              anchorFastStart: (from: Leg, olcs: readonly Uint8Array[]) => anchor.rewriteFastStart(from, olcs),
              anchorOlc: (from: Leg, olc: OpenLogicalChannel) => anchor.rewriteOlc(from, olc),
              anchorOlcAck: (from: Leg, ack: OpenLogicalChannelAck, session: number) =>
                anchor.rewriteOlcAck(from, ack, session),
              closeChannel: (from: Leg, channel: number) => anchor.closeChannel(from, channel),
            }
          : {}),
        h245: {
          listen: async (leg) => {
            const server = await this.#listenH245(local.address);
            h245Servers[leg] = server;
            // the leg's own host only: its H.245 comes from the address its call signalling comes from
            const expected = leg === 'a' ? a.remoteAddress : b?.remoteAddress;
            server.on('connection', (s) => {
              if (this.#closed || h245[leg] || s.remoteAddress !== expected) {
                this.counters.h245Refused++;
                s.destroy();
                return;
              }
              // one H.245 connection per leg: the listener closes once the leg has connected
              server.close();
              this.#sockets.add(s);
              s.once('close', () => this.#sockets.delete(s));
              attachH245(leg, s);
              call.h245Up(leg);
            });
            return { ip: local.address, port: (server.address() as net.AddressInfo).port };
          },
          connect: (leg, to) => {
            const s = this.#connect(to, local.address, (ok) => (ok ? call.h245Up(leg) : call.h245Closed(leg)));
            attachH245(leg, s);
          },
          send: (leg, pdu) => {
            const s = h245[leg];
            if (s && !s.destroyed && s.writable) s.write(encodeTpkt(pdu));
          },
          close: (leg) => {
            h245[leg]?.end();
            h245Servers[leg]?.close();
          },
        },
      },
      this.#seq & 0x7fff,
      () => this.#o.clock.wallNow(),
      {
        ...(this.#o.calls?.codecs ? { codecs: this.#o.calls.codecs } : {}),
        ...(this.#o.calls?.terminalType !== undefined ? { terminalType: this.#o.calls.terminalType } : {}),
      },
    );
    const answerTimeout = this.#o.calls?.answerTimeoutSeconds ?? 180;
    const noAnswer = this.#o.clock.setTimer(answerTimeout * 1000, () => call.noAnswer(answerTimeout));
    call.onState = (info) => {
      if (info.state === 'connected' || info.state === 'released') noAnswer.cancel();
      this.onCallState(info);
    };
    call.onEnd = (info) => {
      anchor?.close();
      this.#active.delete(id);
      this.ended.push({ ...info });
      if (this.ended.length > (this.#o.keepEnded ?? 100)) this.ended.shift();
      this.#o.log.info({ call: info }, 'H.323 call ended');
    };
    this.#active.set(id, call);
    let first = true;
    let refused = false;
    this.#framed(
      a,
      (pdu) => {
        if (refused) return;
        if (first) {
          first = false;
          const v = this.admitSetup(pdu, caller);
          if (v.kind === 'deny') {
            refused = true;
            this.counters.securityDenied++;
            this.#active.delete(id);
            noAnswer.cancel();
            anchor?.close();
            this.#o.log.info({ call: id, from: a.remoteAddress, reason: v.reason }, 'H.323 Setup => securityDenied');
            a.end(encodeTpkt(v.reply));
            return;
          }
          pdu = v.pdu;
          signedBy = v.user;
          callerEndpoint = v.endpoint;
        } else if (signedBy !== undefined) {
          const v = this.admitMessage(pdu, caller, signedBy);
          if (v.kind === 'deny') {
            refused = true;
            release('a', a, caller, v);
            return;
          }
          pdu = v.pdu;
        }
        call.fromA(pdu);
      },
      (why) => (refused ? a.destroy() : call.broken('a', why)),
    );
    a.on('close', () => {
      if (!refused) call.closed('a');
    });
    a.on('error', () => {});
  }

  /** The next port of the outbound range that none of our own connections or H.245 listeners holds. */
  #nextPort(): number {
    const { from, to: last } = this.#o.outboundPorts;
    const span = last - from + 1;
    for (let i = 0; i < span; i++) {
      const port = from + (this.#cursor++ % span);
      if (!this.#held.has(port)) return port;
    }
    return from + (this.#cursor++ % span);
  }

  #hold(port: number, on: net.Socket | net.Server): void {
    this.#held.add(port);
    on.once('close', () => this.#held.delete(port));
  }

  /** An H.245 listener (H.323 §8.2) on a port of the outbound range; a port taken by another program is skipped. */
  async #listenH245(ip: string): Promise<net.Server> {
    let last: Error | undefined;
    for (let attempt = 0; attempt < 16; attempt++) {
      const port = this.#nextPort();
      const server = net.createServer();
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, ip, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (e) {
        last = e as Error;
        continue;
      }
      this.#hold(port, server);
      this.#servers.add(server);
      server.once('close', () => this.#servers.delete(server));
      server.on('error', () => {});
      return server;
    }
    throw last ?? new Error('no free port for H.245');
  }

  /** Opens a TCP connection to `to` from the next free port of the outbound range. */
  #connect(to: IpPort, localAddress: string, done: (ok: boolean, why: string) => void): net.Socket {
    const localPort = this.#nextPort();
    const s = net.connect({ host: to.ip, port: to.port, localAddress, localPort });
    this.#hold(localPort, s);
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
    let settled = false;
    s.once('connect', () => {
      settled = true;
      done(true, '');
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      this.counters.connectFailures++;
      done(false, e.message);
    });
    return s;
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    for (const s of this.#sockets) s.destroy();
    for (const s of this.#servers) s.close();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
