import { randomInt } from 'node:crypto';
import type { Logger } from '../common/log.ts';
import { RateLimitedLog, silentLogger } from '../common/log.ts';
import { fail, ok, type Result } from '../common/result.ts';
import type { Clock, TimerHandle } from '../common/timers.ts';
import { sdpCodecs } from '../sdp/codecs.ts';
import { type MediaTarget, rewriteSdp } from '../sdp/rewrite.ts';
import {
  attribute,
  directionOf,
  effectiveConnection,
  hasAttribute,
  isUnspecified,
  parseSdp,
  rtcpAttribute,
  type SdpMedia,
  type SessionDescription,
  serializeSdp,
} from '../sdp/session-description.ts';
import type { MediaConfig } from './config.ts';
import { isRtcp, type LatchState, latchPacket, newLatchState, packetSsrc, resetLatch } from './latch.ts';
import { MUX_ATTRIBUTE, MUX_HEADER_BYTES, muxPrefix, parseMuxAttribute, readMuxId } from './mux.ts';
import type { PortAllocator } from './port-allocator.ts';

/** What a call leg faces: an endpoint (latched, plain port pair) or the other Crossway node (traversal media). */
export type LegKind = 'endpoint' | 'traversal';

/**
 * How one side of a stream moves packets:
 * - `plain`: its own RTP/RTCP pair, latched toward an endpoint;
 * - `mux-server` (edge, facing the core): the shared demux ports, packets told apart by the mux id;
 * - `mux-client` (core, facing the edge): its own pair, sending framed packets to the edge's demux port.
 */
export type SideMode = 'plain' | 'mux-server' | 'mux-client';

/** The I/O a relay core needs; the dgram adapter (`udp-io.ts`) implements it, tests use fakes. */
export interface MediaIo {
  /** Binds RTP on `rtpPort` and RTCP on `rtpPort + 1`; undefined when a port is taken. */
  openPair(bindAddress: string, rtpPort: number): Promise<{ rtp: number; rtcp: number } | undefined>;
  closeSocket(handle: number): void;
  /** Sends `prefix` (or nothing) followed by `data` from `offset`, from the socket `handle`. */
  send(handle: number, prefix: Buffer | null, data: Buffer, offset: number, address: string, port: number): void;
}

/** A refusal the proxy maps to a SIP response. */
export interface MediaReject {
  status: number;
  code: string;
  message: string;
}

/** Per side of a stream: what was received from the party it faces and sent to it. */
export interface SideStats {
  packetsIn: number;
  bytesIn: number;
  /** Clock ms of the last packet received (0: none). */
  lastInAt: number;
  packetsOut: number;
  bytesOut: number;
  lastOutAt: number;
  /** Packets from a source the latching rules refused. */
  dropped: number;
  /** Packets with nowhere to go yet (the other party's address unknown). */
  unroutable: number;
  keepalivesIn: number;
  keepalivesOut: number;
}

/** The addresses of the relay toward each kind of leg: where sockets bind and what SDP advertises. */
export interface LegAddresses {
  bind: string;
  advertise: string;
}

/** A demux socket pair of the edge (from the plan's `mux-rtp` / `mux-rtcp` listeners). */
export interface MuxPair {
  rtpHandle: number;
  rtcpHandle: number;
  rtpPort: number;
  rtcpPort: number;
}

/** The media-timeout report: the node raises an alarm and asks the proxy to tear the call down. */
export interface MediaTimeout {
  callId: string;
  idleMs: number;
  stats: CallStats;
}

export interface RelayCoreOptions {
  /** Which node this relay runs on: decides how traversal legs move media. */
  node: 'edge' | 'core';
  config: Pick<
    MediaConfig,
    'ice' | 'latching' | 'timeoutSeconds' | 'holdTimeoutSeconds' | 'muxKeepaliveSeconds' | 'bindAttempts'
  >;
  allocator: PortAllocator;
  addresses: Readonly<Record<LegKind, LegAddresses>>;
  io: MediaIo;
  clock: Clock;
  log?: Logger;
  onTimeout?: (t: MediaTimeout) => void;
}

/** `offer`: an SDP offer from the party `fromTag` identifies, to be passed to the other party. */
export interface OfferRequest {
  callId: string;
  fromTag: string;
  sdp: string;
  /** Leg kinds of the offerer and of the party the offer goes to (first offer only; later ones keep the call's). */
  from: LegKind;
  to: LegKind;
  /**
   * False for an offer inside a call the relay already anchors (re-INVITE, UPDATE, an offer in a 2xx after the first):
   * refused with 481 when the call is gone (released by a BYE that crossed it) instead of anchoring a new call whose
   * ports nothing would release before the media timeout. Default true.
   */
  create?: boolean;
}

/**
 * `answer`: the SDP answer from the party `toTag` identifies, to be passed back to the offerer (`fromTag`). For an
 * offer in a 2xx answered in the ACK, the proxy names the 2xx's sender as `fromTag` of the offer, as with rtpengine.
 */
export interface AnswerRequest {
  callId: string;
  fromTag: string;
  toTag: string;
  sdp: string;
}

export interface StreamSideStats extends SideStats {
  /** Index of the party this side faces: 0 the caller (first offerer), 1 the callee. */
  party: 0 | 1;
  mode: SideMode;
  localRtpPort: number;
  localRtcpPort: number;
  muxId: number;
  /** Where RTP is sent now (latched or signalled); '' when unknown. */
  remote: string;
  latched: boolean;
  /** The relay's address this side advertises to its party. */
  localAddress: string;
  /** Codecs of the party's latest SDP for this stream (`audio:PCMU`…; SDP calls only, empty for H.323 streams). */
  codecs: readonly string[];
}

export interface CallStats {
  callId: string;
  tags: [string, string | undefined];
  createdAt: number;
  streams: { index: number; media: string; sides: [StreamSideStats, StreamSideStats] }[];
}

/** One call of `RelayCore.list`: its statistics, when an offer/answer last touched it (clock ms), its legs' kinds. */
export interface CallListing extends CallStats {
  touchedAt: number;
  /** The party whose offer awaits (or last got) an answer. */
  offerer: 0 | 1;
  kinds: [LegKind, LegKind];
}

/** How long a pair found bound by another socket stays out of the pool (that socket is often short-lived: DNS). */
const QUARANTINE_MS = 60_000;

const REJECTS = {
  badSdp: (m: string): MediaReject => ({ status: 488, code: 'ERR_MEDIA_SDP', message: m }),
  exhausted: (): MediaReject => ({
    status: 503,
    code: 'ERR_MEDIA_PORTS_EXHAUSTED',
    message: 'no free media port pair in the media range',
  }),
  noCall: (id: string): MediaReject => ({ status: 481, code: 'ERR_MEDIA_NO_CALL', message: `no media session ${id}` }),
  unknownTag: (t: string): MediaReject => ({ status: 481, code: 'ERR_MEDIA_TAG', message: `unknown tag ${t}` }),
  noMux: (): MediaReject => ({
    status: 503,
    code: 'ERR_MEDIA_NO_MUX',
    message: 'traversal media needs the demux ports, which this relay does not have',
  }),
  closed: (): MediaReject => ({ status: 503, code: 'ERR_MEDIA_CLOSED', message: 'media relay closed' }),
};

function newStats(): SideStats {
  return {
    packetsIn: 0,
    bytesIn: 0,
    lastInAt: 0,
    packetsOut: 0,
    bytesOut: 0,
    lastOutAt: 0,
    dropped: 0,
    unroutable: 0,
    keepalivesIn: 0,
    keepalivesOut: 0,
  };
}

/** One side of a stream: the relay's socket(s) facing one party. */
class Side {
  mode: SideMode;
  readonly leg: LegKind;
  readonly party: 0 | 1;
  rtpPort = 0;
  rtcpPort = 0;
  /** Socket handles (plain, mux-client); -1 when none. */
  rtpHandle = -1;
  rtcpHandle = -1;
  /** Index of the demux pair (mux-server). */
  muxPair = -1;
  /** mux-server: the id we demux on; mux-client: the id we prefix. 0: none. */
  muxId = 0;
  prefix: Buffer | null = null;
  /** The party this side faces multiplexes RTCP on the RTP port (RFC 5761), as negotiated. */
  rtcpMux = false;
  offeredRtcpMux = false;
  hold = false;
  /** Send only to the signalled address, never latch (H.323: H.245 names the receive port; senders use another). */
  fixed = false;
  /** Codecs the party's latest SDP lists for this stream. */
  codecs: readonly string[] = [];
  readonly latch: [LatchState, LatchState] = [newLatchState(), newLatchState()];
  readonly stats: SideStats = newStats();
  peer!: Side;
  keepalive: TimerHandle | undefined;

  constructor(mode: SideMode, leg: LegKind, party: 0 | 1) {
    this.mode = mode;
    this.leg = leg;
    this.party = party;
  }
}

interface Stream {
  index: number;
  media: string;
  sides: [Side, Side];
  /** Closed on its own (`closeStream`, H.245 CloseLogicalChannel): its ports are back in the pool. */
  closed?: boolean;
}

interface Call {
  id: string;
  tags: [string, string | undefined];
  kinds: [LegKind, LegKind];
  streams: Stream[];
  /** The party whose offer awaits an answer. */
  offerer: 0 | 1;
  createdAt: number;
  /** Last offer/answer: a call is not idle while it is being set up. */
  touchedAt: number;
  timer: TimerHandle | undefined;
  released: boolean;
}

/** Demux socket registration: `side` null for a mux-server socket. */
interface Endpoint {
  side: Side | null;
  component: 0 | 1;
}

/**
 * The media relay's engine: the call table (offer/answer/delete as a proxy uses rtpengine's ng protocol), SDP
 * rewriting, port-pair allocation, latching, traversal multiplexing, statistics and media timeouts. It owns no
 * socket and reads no clock of its own: sockets come from `MediaIo`, time from `Clock`. The packet path
 * (`receive`) allocates nothing.
 */
export class RelayCore {
  readonly #o: RelayCoreOptions;
  readonly #log: Logger;
  readonly #warn: RateLimitedLog;
  readonly #calls = new Map<string, Call>();
  /** New calls whose first offer is still allocating: a `delete` meanwhile releases them too. */
  readonly #creating = new Map<string, Call>();
  readonly #endpoints: (Endpoint | undefined)[] = [];
  readonly #muxIds = new Map<number, Side>();
  #muxPairs: MuxPair[] = [];
  #nextMuxPair = 0;
  /** Pairs found bound by another socket, out of the pool until their hold ends (counted in `portsInUse`). */
  #quarantined = 0;
  readonly #busy = new Map<string, Promise<unknown>>();
  #closed = false;
  /**
   * Relay-wide counters: calls anchored since start (`callsTotal`), packets forwarded by any call (`packetsRelayed`),
   * and packets that reach no call.
   */
  readonly counters = {
    callsTotal: 0,
    packetsRelayed: 0,
    muxMalformed: 0,
    muxUnknownId: 0,
    strayPackets: 0,
    bindFailures: 0,
    timeouts: 0,
  };

  constructor(options: RelayCoreOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
    this.#warn = new RateLimitedLog(this.#log, () => options.clock.now());
  }

  /**
   * Registers the edge's demux sockets (one RTP/RTCP pair, or six on a large edge) on the side facing the core, and
   * sockets on the same ports of other addresses (a two-interface edge's public side) that only receive.
   */
  attachMuxPairs(pairs: readonly MuxPair[], receiveOnly: readonly MuxPair[] = []): void {
    this.#muxPairs = [...pairs];
    for (const p of [...pairs, ...receiveOnly]) {
      this.#endpoints[p.rtpHandle] = { side: null, component: 0 };
      this.#endpoints[p.rtcpHandle] = { side: null, component: 1 };
    }
  }

  get callCount(): number {
    return this.#calls.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Port pairs out of the media pool now: those of the calls, and those found bound by another socket
   * (`portsQuarantined`).
   */
  get portsInUse(): number {
    return this.#o.allocator.inUse;
  }

  /**
   * Port pairs another socket was found bound on, kept out of the pool for `QUARANTINE_MS` whatever the calls do: not
   * a call's, not a leak.
   */
  get portsQuarantined(): number {
    return this.#quarantined;
  }

  /** Mux ids in use (edge). */
  get muxIdCount(): number {
    return this.#muxIds.size;
  }

  has(callId: string): boolean {
    return this.#calls.has(callId);
  }

  /**
   * An SDP offer: allocates what the call's streams need (reusing what earlier offers of the same call allocated),
   * records where the offerer receives media, and returns the SDP to pass on, pointing at the relay.
   */
  offer(req: OfferRequest): Promise<Result<{ sdp: string }, MediaReject>> {
    return this.#serial(req.callId, () => this.#offer(req));
  }

  /** An SDP answer (provisional or final; with forking, the latest answer wins): returns the SDP for the offerer. */
  answer(req: AnswerRequest): Promise<Result<{ sdp: string }, MediaReject>> {
    return this.#serial(req.callId, async () => this.#answer(req));
  }

  /** Releases every port, socket and mux id of the call; false when there was no such call. */
  delete(callId: string): boolean {
    const call = this.#calls.get(callId) ?? this.#creating.get(callId);
    if (!call) return false;
    this.#release(call);
    return true;
  }

  /** Statistics of one call, or undefined. */
  stats(callId: string): CallStats | undefined {
    const call = this.#calls.get(callId);
    return call ? this.#statsOf(call) : undefined;
  }

  /**
   * The calls the relay holds now (at most `limit`, oldest first), each with its statistics, when an offer or answer
   * last touched it and whose offer awaits an answer: what an operator (or a test) reads to tell why a call is still
   * anchored.
   */
  list(limit = 100): CallListing[] {
    const out: CallListing[] = [];
    for (const call of this.#calls.values()) {
      if (out.length >= limit) break;
      out.push({ ...this.#statsOf(call), touchedAt: call.touchedAt, offerer: call.offerer, kinds: [...call.kinds] });
    }
    return out;
  }

  /** Releases every call. The I/O adapter closes the demux sockets. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of [...this.#calls.values()]) this.#release(call);
  }

  /**
   * A datagram arrived on socket `handle` from `address:port`. The hot path: demultiplex, apply the latching rules,
   * count, forward to the stream's other side.
   */
  receive(handle: number, data: Buffer, address: string, port: number): void {
    const ep = this.#endpoints[handle];
    if (ep === undefined) {
      this.counters.strayPackets++;
      return;
    }
    const now = this.#o.clock.now();
    let side = ep.side;
    let off = 0;
    const comp = ep.component;
    if (side === null) {
      const id = readMuxId(data);
      if (id < 0) {
        this.counters.muxMalformed++;
        return;
      }
      side = this.#muxIds.get(id) ?? null;
      if (side === null) {
        this.counters.muxUnknownId++;
        return;
      }
      off = MUX_HEADER_BYTES;
      if (data.length === MUX_HEADER_BYTES) {
        // A keepalive: it opens the pinhole and tells us where the core's media comes from.
        const l = side.latch[comp];
        if (!(l.latched && l.port === port && l.address === address)) {
          if (latchPacket(l, address, port, -1, now, this.#o.config.latching) === 'drop') {
            side.stats.dropped++;
            return;
          }
        } else l.lastAt = now;
        side.stats.keepalivesIn++;
        side.stats.lastInAt = now;
        return;
      }
    }
    const l = side.latch[comp];
    if (side.mode === 'mux-client') {
      if (port !== l.port || address !== l.address) {
        side.stats.dropped++;
        return;
      }
    } else if (side.fixed || (l.latched && port === l.port && address === l.address)) {
      l.lastAt = now;
    } else if (latchPacket(l, address, port, packetSsrc(data, off), now, this.#o.config.latching) === 'drop') {
      side.stats.dropped++;
      return;
    }
    const st = side.stats;
    st.packetsIn++;
    st.bytesIn += data.length - off;
    st.lastInAt = now;

    const peer = side.peer;
    const logical = comp === 0 && side.rtcpMux && isRtcp(data, off) ? 1 : comp;
    const out = peer.rtcpMux ? 0 : logical;
    const dst = peer.latch[out];
    if (dst.port === 0) {
      peer.stats.unroutable++;
      return;
    }
    let h: number;
    if (peer.mode === 'mux-server') {
      const pair = this.#muxPairs[peer.muxPair]!;
      h = out === 0 ? pair.rtpHandle : pair.rtcpHandle;
    } else h = out === 0 ? peer.rtpHandle : peer.rtcpHandle;
    this.#o.io.send(h, peer.mode === 'mux-client' ? peer.prefix : null, data, off, dst.address, dst.port);
    this.counters.packetsRelayed++;
    const ps = peer.stats;
    ps.packetsOut++;
    ps.bytesOut += data.length - off;
    ps.lastOutAt = now;
  }

  // ---- offer / answer --------------------------------------------------------------------------------------------

  async #offer(req: OfferRequest): Promise<Result<{ sdp: string }, MediaReject>> {
    if (this.#closed) return fail(REJECTS.closed());
    const parsed = parseSdp(req.sdp);
    if (!parsed.ok) return fail(REJECTS.badSdp(parsed.reason));
    const sd = parsed.value;
    let call = this.#calls.get(req.callId);
    const isNew = call === undefined;
    if (!call) {
      if (req.create === false) return fail(REJECTS.noCall(req.callId));
      const now = this.#o.clock.now();
      call = {
        id: req.callId,
        tags: [req.fromTag, undefined],
        kinds: [req.from, req.to],
        streams: [],
        offerer: 0,
        createdAt: now,
        touchedAt: now,
        timer: undefined,
        released: false,
      };
    }
    let offerer: 0 | 1;
    if (req.fromTag === call.tags[0]) offerer = 0;
    else if (req.fromTag === call.tags[1]) offerer = 1;
    else return fail(REJECTS.unknownTag(req.fromTag));

    // Allocate the streams this offer adds (a re-offer reuses what exists, RFC 3264 §8: m= lines never go away).
    const added: Stream[] = [];
    if (isNew) this.#creating.set(call.id, call);
    try {
      return await this.#allocateAndApply(call, isNew, offerer, sd, added);
    } finally {
      if (this.#creating.get(call.id) === call) this.#creating.delete(call.id);
    }
  }

  async #allocateAndApply(
    call: Call,
    isNew: boolean,
    offerer: 0 | 1,
    sd: SessionDescription,
    added: Stream[],
  ): Promise<Result<{ sdp: string }, MediaReject>> {
    for (let i = call.streams.length; i < sd.media.length; i++) {
      const m = sd.media[i]!;
      const a = await this.#allocateSide(call, 0);
      if (!a.ok) return this.#abort(call, isNew, added, a.reason);
      const b = await this.#allocateSide(call, 1);
      if (!b.ok) {
        this.#freeSide(a.value);
        return this.#abort(call, isNew, added, b.reason);
      }
      a.value.peer = b.value;
      b.value.peer = a.value;
      const s: Stream = { index: i, media: m.media, sides: [a.value, b.value] };
      added.push(s);
      call.streams.push(s);
    }
    if (this.#closed) return this.#abort(call, isNew, added, REJECTS.closed());
    // Deleted while its ports were being opened (a BYE or a failed INVITE crossed this offer): what it opened goes back.
    if (call.released) return this.#abort(call, isNew, added, REJECTS.noCall(call.id));
    if (isNew) {
      this.#calls.set(call.id, call);
      this.counters.callsTotal++;
      this.#armTimeout(call);
    }
    call.offerer = offerer;
    call.touchedAt = this.#o.clock.now();
    sd.media.forEach((m, i) => {
      const side = call.streams[i]!.sides[offerer];
      this.#applyRemote(side, sd, m);
      side.offeredRtcpMux = hasAttribute(m.lines, 'rtcp-mux');
    });
    return ok({ sdp: this.#rewriteToward(call, (1 - offerer) as 0 | 1, sd) });
  }

  #answer(req: AnswerRequest): Result<{ sdp: string }, MediaReject> {
    if (this.#closed) return fail(REJECTS.closed());
    const call = this.#calls.get(req.callId);
    if (!call) return fail(REJECTS.noCall(req.callId));
    const parsed = parseSdp(req.sdp);
    if (!parsed.ok) return fail(REJECTS.badSdp(parsed.reason));
    const sd = parsed.value;
    const answerer = (1 - call.offerer) as 0 | 1;
    // As in rtpengine's ng protocol, `fromTag` names the offerer and `toTag` the answerer (for a late offer in a 2xx,
    // the proxy swaps them). The answerer's tag of a first offer is learnt here; a forked call may answer with several
    // to-tags: the latest one wins (docs/media.md).
    const tag = req.toTag;
    if (answerer === 1) call.tags[1] = tag;
    else if (tag !== call.tags[0]) return fail(REJECTS.unknownTag(tag));
    call.touchedAt = this.#o.clock.now();
    call.streams.forEach((s, i) => {
      const m = sd.media[i];
      const side = s.sides[answerer];
      if (!m) {
        // RFC 3264 §6: an answer has as many m= lines as the offer; a missing one is treated as rejected.
        side.codecs = [];
        resetLatch(side.latch[0], '', 0);
        resetLatch(side.latch[1], '', 0);
        return;
      }
      this.#applyRemote(side, sd, m);
      // RFC 5761 §5.1.1: RTCP is multiplexed when the offer had a=rtcp-mux and the answer accepts it.
      const mux = s.sides[call.offerer].offeredRtcpMux && hasAttribute(m.lines, 'rtcp-mux');
      s.sides[0].rtcpMux = mux;
      s.sides[1].rtcpMux = mux;
    });
    return ok({ sdp: this.#rewriteToward(call, call.offerer, sd) });
  }

  // ---- leg-level entry points (H.323: media addresses come from H.245, not SDP) ---------------------------------

  /**
   * Opens one more stream of call `callId` (created when new, both legs `endpoint`): a port pair facing each party.
   * `latching: false` sends only to the addresses given by `setStreamRemote`, whatever the packets' sources.
   * Returns the stream's index, the relay's address and the RTP/RTCP ports facing party 0 and party 1.
   */
  openStream(
    callId: string,
    options: { latching?: boolean } = {},
  ): Promise<
    Result<
      { index: number; address: string; ports: [{ rtp: number; rtcp: number }, { rtp: number; rtcp: number }] },
      MediaReject
    >
  > {
    return this.#serial(callId, async () => {
      if (this.#closed) return fail(REJECTS.closed());
      let call = this.#calls.get(callId);
      const isNew = call === undefined;
      if (!call) {
        const now = this.#o.clock.now();
        call = {
          id: callId,
          tags: ['0', '1'],
          kinds: ['endpoint', 'endpoint'],
          streams: [],
          offerer: 0,
          createdAt: now,
          touchedAt: now,
          timer: undefined,
          released: false,
        };
      }
      const a = await this.#allocateSide(call, 0);
      if (!a.ok) return fail(a.reason);
      const b = await this.#allocateSide(call, 1);
      if (!b.ok) {
        this.#freeSide(a.value);
        return fail(b.reason);
      }
      a.value.peer = b.value;
      b.value.peer = a.value;
      a.value.fixed = b.value.fixed = options.latching === false;
      const index = call.streams.length;
      call.streams.push({ index, media: 'audio', sides: [a.value, b.value] });
      if (isNew) {
        this.#calls.set(callId, call);
        this.counters.callsTotal++;
        this.#armTimeout(call);
      }
      call.touchedAt = this.#o.clock.now();
      return ok({
        index,
        address: this.#o.addresses.endpoint.advertise,
        ports: [
          { rtp: a.value.rtpPort, rtcp: a.value.rtcpPort },
          { rtp: b.value.rtpPort, rtcp: b.value.rtcpPort },
        ],
      });
    });
  }

  /**
   * Where `party` of stream `index` receives RTP (`rtp`) or RTCP (`rtcp`), as its H.245 OLC/OLCAck said: the relay
   * sends there (latching may still move it to where that party's media really comes from). False when unknown.
   */
  setStreamRemote(
    callId: string,
    index: number,
    party: 0 | 1,
    component: 'rtp' | 'rtcp',
    ip: string,
    port: number,
  ): boolean {
    const stream = this.#calls.get(callId)?.streams[index];
    if (!stream || stream.closed) return false;
    const side = stream.sides[party];
    resetLatch(side.latch[component === 'rtp' ? 0 : 1], ip, port);
    return true;
  }

  /**
   * Closes stream `index` of call `callId` alone (H.323: the last logical channel of its RTP session was closed):
   * its sockets are closed and its ports go back to the pool; the call and its other streams stay, and a later
   * `openStream` gets a new index. False when there is no such stream or it is already closed.
   */
  closeStream(callId: string, index: number): boolean {
    const s = this.#calls.get(callId)?.streams[index];
    if (!s || s.closed) return false;
    s.closed = true;
    this.#freeSide(s.sides[0]);
    this.#freeSide(s.sides[1]);
    return true;
  }

  /** Records where the party `side` faces wants media, from its SDP's media description `m`. */
  #applyRemote(side: Side, sd: SessionDescription, m: SdpMedia): void {
    side.codecs = sdpCodecs(m);
    const c = effectiveConnection(sd, m);
    const dir = directionOf(sd, m);
    const unspecified = c !== undefined && isUnspecified(c.address);
    side.hold = unspecified || dir !== 'sendrecv';
    const addr = m.port === 0 || !c || unspecified ? '' : c.address;
    const rtcp = rtcpAttribute(m.lines);
    const rtcpAddr = addr === '' ? '' : (rtcp?.address ?? addr);
    const rtcpPort = rtcp ? rtcp.port : m.port + 1;
    if (side.mode === 'mux-server') {
      // The edge never sends toward the inside before the core's first (keepalive) packet: it latches to it.
      return;
    }
    if (side.leg === 'traversal' && this.#o.node === 'core') {
      const id = parseMuxAttribute(attribute(m.lines, MUX_ATTRIBUTE));
      if (id !== undefined && addr !== '') {
        const changed = side.muxId !== id || side.latch[0].signalledAddress !== addr || side.latch[0].port !== m.port;
        side.mode = 'mux-client';
        side.muxId = id;
        side.prefix = muxPrefix(id);
        resetLatch(side.latch[0], addr, m.port);
        resetLatch(side.latch[1], rtcpAddr, rtcpPort);
        if (changed) this.#startKeepalive(side);
        return;
      }
      side.mode = 'plain';
    }
    const l0 = side.latch[0];
    const l1 = side.latch[1];
    // Rule 4 of latching: a changed SDP address re-arms the latch; the same SDP again (a 200 after a 183) keeps it.
    if (l0.signalledAddress !== addr || l0.signalledPort !== m.port || !l0.latched) resetLatch(l0, addr, m.port);
    if (l1.signalledAddress !== rtcpAddr || l1.signalledPort !== rtcpPort || !l1.latched) {
      resetLatch(l1, rtcpAddr, rtcpPort);
    }
  }

  /** The SDP from the other party, rewritten for party `to`: the relay's sides facing `to`. */
  #rewriteToward(call: Call, to: 0 | 1, sd: SessionDescription): string {
    const targets: (MediaTarget | null)[] = sd.media.map((_m, i) => {
      const s = call.streams[i];
      if (!s) return null;
      const side = s.sides[to];
      const addr = this.#o.addresses[side.leg].advertise;
      if (side.mode === 'mux-server') {
        const pair = this.#muxPairs[side.muxPair]!;
        return {
          address: addr,
          rtpPort: pair.rtpPort,
          rtcpPort: pair.rtcpPort,
          forceRtcpAttribute: true,
          addAttributes: [{ type: 'a', value: `${MUX_ATTRIBUTE}:${side.muxId}` }],
        };
      }
      return { address: addr, rtpPort: side.rtpPort, rtcpPort: side.rtcpPort };
    });
    return serializeSdp(rewriteSdp(sd, targets, { ice: this.#o.config.ice, removeAttributes: MUX_ATTRIBUTES }));
  }

  // ---- allocation ------------------------------------------------------------------------------------------------

  async #allocateSide(call: Call, party: 0 | 1): Promise<Result<Side, MediaReject>> {
    const leg = call.kinds[party];
    if (leg === 'traversal' && this.#o.node === 'edge') {
      if (this.#muxPairs.length === 0) return fail(REJECTS.noMux());
      const side = new Side('mux-server', leg, party);
      let id = 0;
      for (let k = 0; k < 16 && (id === 0 || this.#muxIds.has(id)); k++) id = randomInt(1, 0xffffffff);
      if (id === 0 || this.#muxIds.has(id)) return fail(REJECTS.exhausted());
      side.muxId = id;
      // Large edges spread calls over their six demux pairs.
      side.muxPair = this.#nextMuxPair;
      this.#nextMuxPair = (this.#nextMuxPair + 1) % this.#muxPairs.length;
      this.#muxIds.set(id, side);
      return ok(side);
    }
    const side = new Side('plain', leg, party);
    const alloc = this.#o.allocator;
    const bind = this.#o.addresses[leg].bind;
    for (let attempt = 0; attempt < this.#o.config.bindAttempts; attempt++) {
      const port = alloc.allocate();
      if (port === undefined) {
        this.#warn.warn('media.exhausted', 'no free media port pair => 503', {
          inUse: alloc.inUse,
          capacity: alloc.capacity,
          callId: call.id,
        });
        return fail(REJECTS.exhausted());
      }
      const h = await this.#o.io.openPair(bind, port);
      if (!h) {
        // Taken by another process: keep the pair out of the pool for a while and try one elsewhere in the pool (the
        // other process may hold the pairs that follow too).
        this.counters.bindFailures++;
        this.#warn.warn('media.bind', 'media port pair taken by another socket => another pair', { port });
        this.#quarantined++;
        this.#o.clock.setTimer(QUARANTINE_MS, () => {
          this.#quarantined--;
          alloc.release(port);
        });
        alloc.jump();
        continue;
      }
      side.rtpPort = port;
      side.rtcpPort = port + 1;
      side.rtpHandle = h.rtp;
      side.rtcpHandle = h.rtcp;
      this.#endpoints[h.rtp] = { side, component: 0 };
      this.#endpoints[h.rtcp] = { side, component: 1 };
      return ok(side);
    }
    return fail(REJECTS.exhausted());
  }

  #freeSide(side: Side): void {
    side.keepalive?.cancel();
    side.keepalive = undefined;
    if (side.mode === 'mux-server') {
      if (this.#muxIds.get(side.muxId) === side) this.#muxIds.delete(side.muxId);
      return;
    }
    if (side.rtpHandle >= 0) {
      this.#endpoints[side.rtpHandle] = undefined;
      this.#endpoints[side.rtcpHandle] = undefined;
      this.#o.io.closeSocket(side.rtpHandle);
      this.#o.io.closeSocket(side.rtcpHandle);
      this.#o.allocator.release(side.rtpPort);
      side.rtpHandle = -1;
      side.rtcpHandle = -1;
    }
  }

  #abort(call: Call, isNew: boolean, added: Stream[], reason: MediaReject): Result<never, MediaReject> {
    for (const s of added) {
      this.#freeSide(s.sides[0]);
      this.#freeSide(s.sides[1]);
    }
    if (!isNew) call.streams.length -= added.length;
    return fail(reason);
  }

  #release(call: Call): void {
    if (call.released) return;
    call.released = true;
    call.timer?.cancel();
    for (const s of call.streams) {
      this.#freeSide(s.sides[0]);
      this.#freeSide(s.sides[1]);
    }
    this.#calls.delete(call.id);
  }

  // ---- timers ----------------------------------------------------------------------------------------------------

  /** One timer per call, re-armed lazily for the time left: no per-packet timer work. */
  #armTimeout(call: Call, delay = this.#limitMs(call)): void {
    call.timer = this.#o.clock.setTimer(delay, () => {
      if (call.released) return;
      const now = this.#o.clock.now();
      let last = call.touchedAt;
      for (const s of call.streams) for (const side of s.sides) last = Math.max(last, side.stats.lastInAt);
      const limit = this.#limitMs(call);
      const idle = now - last;
      if (idle < limit) {
        this.#armTimeout(call, limit - idle);
        return;
      }
      this.counters.timeouts++;
      const stats = this.#statsOf(call);
      this.#log.warn({ callId: call.id, idleMs: idle }, 'no media for the timeout => call released');
      this.#release(call);
      try {
        this.#o.onTimeout?.({ callId: call.id, idleMs: idle, stats });
      } catch (err) {
        this.#log.error({ err }, 'media timeout listener threw => ignored');
      }
    });
  }

  #limitMs(call: Call): number {
    const held = call.streams.some((s) => s.sides[0].hold || s.sides[1].hold);
    return (held ? this.#o.config.holdTimeoutSeconds : this.#o.config.timeoutSeconds) * 1000;
  }

  /** Core, toward the edge: a keepalive at once (the core sends first, opening the pinhole), then when idle. */
  #startKeepalive(side: Side): void {
    side.keepalive?.cancel();
    const every = this.#o.config.muxKeepaliveSeconds * 1000;
    const tick = () => {
      if (side.rtpHandle < 0 || side.mode !== 'mux-client' || !side.prefix) return;
      const now = this.#o.clock.now();
      if (now - side.stats.lastOutAt >= every || side.stats.keepalivesOut === 0) {
        for (const comp of [0, 1] as const) {
          const l = side.latch[comp];
          if (l.port === 0) continue;
          this.#o.io.send(comp === 0 ? side.rtpHandle : side.rtcpHandle, null, side.prefix, 0, l.address, l.port);
          side.stats.keepalivesOut++;
        }
      }
      side.keepalive = this.#o.clock.setTimer(every, tick);
    };
    tick();
  }

  #serial<T>(callId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#busy.get(callId) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.#busy.set(callId, next);
    void next.finally(() => {
      if (this.#busy.get(callId) === next) this.#busy.delete(callId);
    });
    return next;
  }

  #statsOf(call: Call): CallStats {
    const side = (x: Side): StreamSideStats => {
      const pair = x.mode === 'mux-server' ? this.#muxPairs[x.muxPair] : undefined;
      return {
        ...x.stats,
        party: x.party,
        mode: x.mode,
        localRtpPort: pair ? pair.rtpPort : x.rtpPort,
        localRtcpPort: pair ? pair.rtcpPort : x.rtcpPort,
        muxId: x.muxId,
        remote: x.latch[0].port === 0 ? '' : `${x.latch[0].address}:${x.latch[0].port}`,
        latched: x.latch[0].latched,
        localAddress: this.#o.addresses[x.leg].advertise,
        codecs: x.codecs,
      };
    };
    return {
      callId: call.id,
      tags: [call.tags[0], call.tags[1]],
      createdAt: call.createdAt,
      streams: call.streams.map((s) => ({
        index: s.index,
        media: s.media,
        sides: [side(s.sides[0]), side(s.sides[1])],
      })),
    };
  }
}

const MUX_ATTRIBUTES: ReadonlySet<string> = new Set([MUX_ATTRIBUTE]);
