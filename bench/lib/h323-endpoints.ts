import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  buildReleaseComplete,
  buildSetup,
  fromH225Address,
  H225_PROTOCOL_ID,
  h225Address,
  h245Address,
  type IpPort,
  olcAddresses,
} from '../../src/h323/api.ts';
import type {
  AdmissionRequest,
  AliasAddress,
  EndpointType,
  OpenLogicalChannel,
  RasMessage,
} from '../../src/h323/per/generated/types.ts';
import { openLogicalChannelCodec, rasCodec } from '../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  decodeFastStart,
  encodeCallSignalling,
} from '../../src/h323/q931/call-signalling.ts';
import { Q931_MESSAGE_TYPES, q931MessageName } from '../../src/h323/q931/q931.ts';
import { encodeTpkt, TpktFramer } from '../../src/h323/transport/tpkt.ts';

/**
 * Simulated H.323 endpoints for call-setup load (no H.323 call generator exists in Debian), on Crossway's own
 * codec. Each endpoint has its own loopback address, a RAS socket and a call signalling listener, registers with
 * an RRQ and places or answers gatekeeper-routed calls:
 *
 *   caller: ARQ → ACF; Setup (fast start: a G.711 transmit OLC with its RTCP address and a receive OLC with its
 *           RTP/RTCP addresses; H.245 tunnelling) to the ACF's destCallSignalAddress
 *   callee: the Setup from the gatekeeper; ARQ (answerCall) → ACF; CallProceeding, Alerting, Connect carrying the
 *           fast-start answer (its RTP/RTCP addresses)
 *   caller: Connect → ReleaseComplete; callee: ReleaseComplete from the gatekeeper; both DRQ → DCF.
 *
 * A call succeeds only when every step happened in time AND the media was anchored: the callee's Setup and the
 * caller's Connect must carry media addresses that are not the other endpoint's (the gatekeeper's relay). Anything
 * else is a failure with its reason, never dropped silently.
 */

const VENDOR = { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 21_324 } };
const TERMINAL: EndpointType = { terminal: {}, mc: false, undefinedNode: false, vendor: VENDOR };

export class CallFailure extends Error {}

/** TPKT PDUs of a socket, one at a time, each within the call's deadline. */
class PduReader {
  readonly #framer = new TpktFramer();
  readonly #queue: Uint8Array[] = [];
  #waiting: ((p: Uint8Array | undefined) => void) | undefined;
  #ended = false;

  constructor(s: net.Socket) {
    s.on('data', (chunk) => {
      const r = this.#framer.push(chunk);
      if (!r.ok) return this.#end();
      for (const p of r.value) {
        const w = this.#waiting;
        this.#waiting = undefined;
        if (w) w(p);
        else this.#queue.push(p);
      }
    });
    s.on('close', () => this.#end());
  }

  #end(): void {
    this.#ended = true;
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.(undefined);
  }

  /** The next message, undefined once the connection is closed. */
  async next(): Promise<CallSignallingMessage | undefined> {
    let p = this.#queue.shift();
    if (!p && !this.#ended) p = await new Promise<Uint8Array | undefined>((r) => (this.#waiting = r));
    if (!p) return undefined;
    const d = decodeCallSignalling(p);
    if (!d.ok) throw new CallFailure(`undecodable call signalling: ${d.reason.message}`);
    return d.value;
  }
}

const bodyOf = (m: CallSignallingMessage) => m.uu?.['h323-uu-pdu']['h323-message-body'];
const nameOf = (m: CallSignallingMessage) => q931MessageName(m.q931.messageType) ?? `0x${m.q931.messageType}`;

function q931(type: keyof typeof Q931_MESSAGE_TYPES, callReference: number, body: unknown): Uint8Array {
  return encodeTpkt(
    encodeCallSignalling({
      q931: {
        callReference,
        fromDestination: true,
        callReferenceLength: 2,
        messageType: Q931_MESSAGE_TYPES[type],
        ies: [],
      },
      uu: {
        'h323-uu-pdu': {
          'h323-message-body': { choice: type, value: body } as never,
          h245Tunnelling: true,
        },
      },
    }),
  );
}

const g711 = { choice: 'audioData', value: { choice: 'g711Ulaw64k', value: 20 } } as const;

/**
 * Fast start (H.323 §8.1.7) for one G.711 session: channel 1 from the caller to the callee, channel 2 the reverse.
 * Each side names its RTCP address on both and its RTP (receive) address on the channel it receives: the caller
 * proposes with `receives: 'reverse'`, the callee answers with `receives: 'forward'`.
 */
function fastStart(rtp: IpPort, receives: 'forward' | 'reverse'): OpenLogicalChannel[] {
  const h2250 = (withMedia: boolean) =>
    ({
      choice: 'h2250LogicalChannelParameters',
      value: {
        sessionID: 1,
        ...(withMedia ? { mediaChannel: h245Address(rtp.ip, rtp.port) } : {}),
        mediaControlChannel: h245Address(rtp.ip, rtp.port + 1),
      },
    }) as const;
  return [
    {
      forwardLogicalChannelNumber: 1,
      forwardLogicalChannelParameters: { dataType: g711, multiplexParameters: h2250(receives === 'forward') },
    },
    {
      forwardLogicalChannelNumber: 2,
      forwardLogicalChannelParameters: {
        dataType: { choice: 'nullData', value: null },
        multiplexParameters: { choice: 'none', value: null },
      },
      reverseLogicalChannelParameters: { dataType: g711, multiplexParameters: h2250(receives === 'reverse') },
    },
  ];
}

/**
 * Checks that fast-start OLCs name a media (RTP) address and none of `peerIp`'s: the gatekeeper put its relay in
 * place of the other endpoint's addresses. Returns the RTP address given.
 */
function anchoredMedia(m: CallSignallingMessage, peerIp: string, where: string): IpPort {
  const olcs = m.uu ? decodeFastStart(m.uu) : [];
  if (olcs.length === 0) throw new CallFailure(`no fast start in ${where}`);
  const addresses = olcs.flatMap((o) => {
    if (!o.ok) throw new CallFailure(`undecodable fast-start OLC in ${where}: ${o.reason.message}`);
    return olcAddresses(o.value);
  });
  const leaked = addresses.find((a) => a.address.ip === peerIp);
  if (leaked) throw new CallFailure(`media not anchored: ${where} carries the other endpoint's ${leaked.role}`);
  const rtp = addresses.find((a) => a.role === 'media');
  if (!rtp) throw new CallFailure(`no media address in ${where}`);
  return rtp.address;
}

interface Expected {
  caller: H323Endpoint;
  resolve: () => void;
  reject: (e: Error) => void;
}

/** Calls the callees are waiting for, by callIdentifier (hex), over every endpoint of the process. */
const expected = new Map<string, Expected>();
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export interface EndpointCounters {
  /** Setups that arrived for no call this generator placed. */
  straySetups: number;
  /** RAS messages that answered nothing pending (late answers, duplicates) or requests from the gatekeeper. */
  strayRas: number;
  rasRetransmissions: number;
  /** The media addresses the last call's endpoints were given (the gatekeeper's relay when anchored). */
  lastMedia: { caller?: IpPort; callee?: IpPort };
}

export const counters: EndpointCounters = { straySetups: 0, strayRas: 0, rasRetransmissions: 0, lastMedia: {} };

export class H323Endpoint {
  readonly ip: string;
  readonly alias: string;
  readonly #gk: IpPort;
  readonly #udp: dgram.Socket;
  readonly #tcp: net.Server;
  readonly #pending = new Map<number, (m: RasMessage) => void>();
  #seq = 1;
  #crv = 1;
  #endpointIdentifier = '';
  /** RTP port this endpoint names in its OLCs (no RTP is sent: the bench measures call setup). */
  readonly #rtp: IpPort;
  readonly #sockets = new Set<net.Socket>();

  private constructor(ip: string, alias: string, gk: IpPort, udp: dgram.Socket, tcp: net.Server, rtpPort: number) {
    this.ip = ip;
    this.alias = alias;
    this.#gk = gk;
    this.#udp = udp;
    this.#tcp = tcp;
    this.#rtp = { ip, port: rtpPort };
    udp.on('message', (msg) => {
      const d = rasCodec.decode(msg);
      const seq = d.ok ? (d.value.value as { requestSeqNum?: number }).requestSeqNum : undefined;
      const w = seq === undefined ? undefined : this.#pending.get(seq);
      if (!d.ok || !w || d.value.choice.endsWith('Request')) {
        counters.strayRas++;
        return;
      }
      this.#pending.delete(seq!);
      w(d.value);
    });
    tcp.on('connection', (s) => this.#answer(s));
  }

  static async open(ip: string, alias: string, gk: IpPort, rtpPort: number): Promise<H323Endpoint> {
    const udp = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(0, ip, () => resolve());
    });
    const tcp = net.createServer();
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, ip, 511, () => resolve());
    });
    return new H323Endpoint(ip, alias, gk, udp, tcp, rtpPort);
  }

  get callSignalAddress(): IpPort {
    return { ip: this.ip, port: (this.#tcp.address() as net.AddressInfo).port };
  }

  get #aliases(): AliasAddress[] {
    return [{ choice: 'h323-ID', value: this.alias }];
  }

  /**
   * A RAS request and its answer (same requestSeqNum), sent again every `retryMs` until `tries` are spent, as an
   * endpoint does (H.225.0 §7.?: RAS is retransmitted, not relied on).
   */
  async ras(build: (seq: number) => RasMessage, what: string, retryMs = 2000, tries = 3): Promise<RasMessage> {
    const seq = this.#seq;
    this.#seq = (this.#seq % 65_535) + 1;
    const bytes = rasCodec.encode(build(seq));
    return new Promise((resolve, reject) => {
      let sent = 0;
      let timer: NodeJS.Timeout;
      const send = () => {
        if (sent++ >= tries) {
          this.#pending.delete(seq);
          reject(new CallFailure(`${what}: no answer after ${tries} tries`));
          return;
        }
        if (sent > 1) counters.rasRetransmissions++;
        this.#udp.send(bytes, this.#gk.port, this.#gk.ip);
        timer = setTimeout(send, retryMs);
      };
      this.#pending.set(seq, (m) => {
        clearTimeout(timer);
        resolve(m);
      });
      send();
    });
  }

  /** RRQ → RCF (full registration, H.323-ID alias, RAS and call signalling addresses on this endpoint's IP). */
  async register(timeToLive = 600): Promise<void> {
    const a = this.#udp.address();
    const m = await this.ras(
      (requestSeqNum) => ({
        choice: 'registrationRequest',
        value: {
          requestSeqNum,
          protocolIdentifier: H225_PROTOCOL_ID,
          discoveryComplete: false,
          callSignalAddress: [h225Address(this.ip, this.callSignalAddress.port)],
          rasAddress: [h225Address(a.address, a.port)],
          terminalType: TERMINAL,
          terminalAlias: this.#aliases,
          endpointVendor: VENDOR,
          timeToLive,
          keepAlive: false,
          willSupplyUUIEs: false,
          maintainConnection: false,
        },
      }),
      'RRQ',
    );
    if (m.choice !== 'registrationConfirm')
      throw new Error(
        `RRQ of ${this.alias}: ${m.choice} ${JSON.stringify((m.value as { rejectReason?: unknown }).rejectReason)}`,
      );
    this.#endpointIdentifier = m.value.endpointIdentifier;
  }

  async #admit(o: {
    answerCall: boolean;
    callReference: number;
    source: AliasAddress[];
    destination: AliasAddress[];
    callIdentifier: Uint8Array;
    conferenceID: Uint8Array;
  }): Promise<IpPort | undefined> {
    const arq = (requestSeqNum: number): RasMessage => {
      const v: AdmissionRequest = {
        requestSeqNum,
        callType: { choice: 'pointToPoint', value: null },
        callModel: { choice: 'gatekeeperRouted', value: null },
        endpointIdentifier: this.#endpointIdentifier,
        destinationInfo: o.destination,
        srcInfo: o.source,
        srcCallSignalAddress: h225Address(this.ip, this.callSignalAddress.port),
        bandWidth: 1280,
        callReferenceValue: o.callReference,
        conferenceID: o.conferenceID,
        activeMC: false,
        answerCall: o.answerCall,
        canMapAlias: false,
        callIdentifier: { guid: o.callIdentifier },
        willSupplyUUIEs: false,
      };
      return { choice: 'admissionRequest', value: v };
    };
    const m = await this.ras(arq, o.answerCall ? "callee's ARQ" : "caller's ARQ");
    if (m.choice !== 'admissionConfirm')
      throw new CallFailure(
        `${o.answerCall ? "callee's" : "caller's"} ARQ: ${m.choice} ${(m.value as { rejectReason?: { choice: string } }).rejectReason?.choice ?? ''}`,
      );
    return fromH225Address(m.value.destCallSignalAddress);
  }

  async #disengage(callReference: number, callIdentifier: Uint8Array, conferenceID: Uint8Array, answered: boolean) {
    const m = await this.ras(
      (requestSeqNum) => ({
        choice: 'disengageRequest',
        value: {
          requestSeqNum,
          endpointIdentifier: this.#endpointIdentifier,
          conferenceID,
          callReferenceValue: callReference,
          disengageReason: { choice: 'normalDrop', value: null },
          callIdentifier: { guid: callIdentifier },
          answeredCall: answered,
        },
      }),
      answered ? "callee's DRQ" : "caller's DRQ",
    );
    if (m.choice !== 'disengageConfirm') throw new CallFailure(`DRQ: ${m.choice}`);
  }

  #track(s: net.Socket): net.Socket {
    this.#sockets.add(s);
    s.once('close', () => this.#sockets.delete(s));
    s.on('error', () => {});
    return s;
  }

  /**
   * One call to `callee` as described above; resolves with the setup latency (ms, ARQ sent → Connect received)
   * once both sides have disengaged, rejects with the first failure. `deadlineMs` bounds the whole call.
   */
  async call(callee: H323Endpoint, deadlineMs: number): Promise<number> {
    const callIdentifier = randomBytes(16);
    const conferenceID = randomBytes(16);
    const callReference = this.#crv;
    this.#crv = (this.#crv % 32_767) + 1;
    let stage = 'ARQ';
    let socket: net.Socket | undefined;
    let timer: NodeJS.Timeout | undefined;
    const key = hex(callIdentifier);
    const calleeDone = new Promise<void>((resolve, reject) => expected.set(key, { caller: this, resolve, reject }));
    calleeDone.catch(() => {});
    const run = async (): Promise<number> => {
      const t0 = performance.now();
      const dest = await this.#admit({
        answerCall: false,
        callReference,
        source: this.#aliases,
        destination: callee.#aliases,
        callIdentifier,
        conferenceID,
      });
      if (!dest) throw new CallFailure('ACF without an IP destCallSignalAddress');
      stage = 'TCP connect';
      socket = this.#track(net.connect({ host: dest.ip, port: dest.port, localAddress: this.ip }));
      const reader = new PduReader(socket);
      await new Promise<void>((resolve, reject) => {
        socket!.once('connect', resolve);
        socket!.once('error', reject);
      });
      stage = 'Setup → Connect';
      socket.write(
        encodeTpkt(
          encodeCallSignalling(
            buildSetup({
              callReference,
              callIdentifier,
              conferenceID,
              source: this.#aliases,
              destination: callee.#aliases,
              sourceCallSignalAddress: this.callSignalAddress,
              fastStart: fastStart(this.#rtp, 'reverse'),
              h245Tunnelling: true,
            }),
          ),
        ),
      );
      for (;;) {
        const m = await reader.next();
        if (!m) throw new CallFailure('connection closed before Connect');
        const name = nameOf(m);
        if (name === 'releaseComplete') {
          const reason = (bodyOf(m)?.value as { reason?: { choice: string } } | undefined)?.reason?.choice;
          throw new CallFailure(`ReleaseComplete before Connect (${reason ?? 'no reason'})`);
        }
        if (name === 'connect') {
          counters.lastMedia.caller = anchoredMedia(m, callee.ip, "the caller's Connect");
          break;
        }
      }
      const latency = performance.now() - t0;
      stage = 'ReleaseComplete';
      socket.end(encodeTpkt(encodeCallSignalling(buildReleaseComplete(callReference, false, callIdentifier))));
      stage = 'DRQ';
      await this.#disengage(callReference, callIdentifier, conferenceID, false);
      stage = "callee's release";
      await calleeDone;
      return latency;
    };
    try {
      return await Promise.race([
        run(),
        calleeDone.then(() => new Promise<never>(() => {})),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CallFailure(`timeout at ${stage}`)), deadlineMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      expected.delete(key);
      socket?.destroy();
    }
  }

  /** The callee's side of a call: a Setup from the gatekeeper on this endpoint's call signalling listener. */
  async #answer(s: net.Socket): Promise<void> {
    this.#track(s);
    const reader = new PduReader(s);
    let exp: Expected | undefined;
    try {
      const setup = await reader.next();
      const body = setup && bodyOf(setup);
      if (!setup || body?.choice !== 'setup') throw new CallFailure(`callee got ${setup ? nameOf(setup) : 'nothing'}`);
      exp = expected.get(hex(body.value.callIdentifier?.guid ?? new Uint8Array()));
      if (!exp) {
        counters.straySetups++;
        s.destroy();
        return;
      }
      counters.lastMedia.callee = anchoredMedia(setup, exp.caller.ip, "the callee's Setup");
      const callReference = setup.q931.callReference;
      const callIdentifier = body.value.callIdentifier!.guid;
      const conferenceID = body.value.conferenceID;
      await this.#admit({
        answerCall: true,
        callReference,
        source: body.value.sourceAddress ?? [],
        destination: this.#aliases,
        callIdentifier,
        conferenceID,
      });
      const common = {
        protocolIdentifier: H225_PROTOCOL_ID,
        destinationInfo: TERMINAL,
        callIdentifier: { guid: callIdentifier },
      };
      s.write(q931('callProceeding', callReference, common));
      s.write(q931('alerting', callReference, common));
      s.write(
        q931('connect', callReference, {
          ...common,
          conferenceID,
          fastStart: fastStart(this.#rtp, 'forward').map((o) => openLogicalChannelCodec.encode(o)),
        }),
      );
      for (;;) {
        const m = await reader.next();
        if (!m) throw new CallFailure('callee: connection closed before ReleaseComplete');
        if (nameOf(m) === 'releaseComplete') break;
      }
      s.end();
      await this.#disengage(callReference, callIdentifier, conferenceID, true);
      exp.resolve();
    } catch (e) {
      s.destroy();
      if (exp) exp.reject(e instanceof CallFailure ? e : new CallFailure(`callee: ${(e as Error).message}`));
    }
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#tcp.close();
    this.#udp.close();
  }
}
