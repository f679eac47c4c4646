import type { RelayCore } from '../../media/relay-core.ts';
import { type AddressMapper, rewriteOlcAckAddresses, rewriteOlcAddresses } from '../api.ts';
import type { OpenLogicalChannel, OpenLogicalChannelAck } from '../per/generated/types.ts';
import { openLogicalChannelCodec } from '../per/schema.ts';
import type { Leg } from './routed-call.ts';

type Stream = { index: number; address: string; ports: [{ rtp: number; rtcp: number }, { rtp: number; rtcp: number }] };

/** One RTP session on the relay: the port pair each leg sends its media to (and receives it from). */
export interface RelaySessionPorts {
  session: number;
  address: string;
  a: { rtp: number; rtcp: number };
  b: { rtp: number; rtcp: number };
}

/** The RTP session (H.225.0 sessionID) an OLC opens; 0 when it names none. */
export function sessionOf(olc: OpenLogicalChannel): number {
  const f = olc.forwardLogicalChannelParameters.multiplexParameters;
  if (f.choice === 'h2250LogicalChannelParameters') return (f.value as { sessionID: number }).sessionID;
  const r = olc.reverseLogicalChannelParameters?.multiplexParameters;
  if (r?.choice === 'h2250LogicalChannelParameters') return (r.value as { sessionID: number }).sessionID;
  return 0;
}

/**
 * Anchors a routed call's media on the node's relay: one relay stream per RTP session (H.225.0 sessionID), party 0
 * facing the caller (leg a), party 1 the callee. Every H.245 address in a PDU from a leg is where that leg
 * receives: it becomes the relay's destination toward that leg, and is replaced by the relay's port pair facing
 * the other leg.
 */
export class MediaAnchor {
  readonly #relay: RelayCore;
  readonly #callId: string;
  readonly #streams = new Map<number, Promise<Stream | undefined>>();
  /** The streams opened so far, by session (what `ports` shows). */
  readonly #open = new Map<number, Stream>();
  /**
   * Logical channels opened by H.245 OpenLogicalChannel per RTP session, as `<leg>:<channel number>` (each leg
   * numbers its own channels). A session opened by fast start is not in here: it keeps its ports until the call
   * ends (its proposals that were never taken are never closed, so counting them could never reach zero).
   */
  readonly #channels = new Map<number, Set<string>>();
  /** Sessions anchored from fast start: never closed before the call ends. */
  readonly #pinned = new Set<number>();
  /** Streams closed before the call's end (CloseLogicalChannel of their last channel). */
  closedStreams = 0;

  constructor(relay: RelayCore, callId: string) {
    this.#relay = relay;
    this.#callId = callId;
  }

  #stream(session: number): Promise<Stream | undefined> {
    let s = this.#streams.get(session);
    if (!s) {
      // H.245 gives each receive address; ooh323c and others send from other ports, so no latching (no NAT yet)
      s = this.#relay.openStream(this.#callId, { latching: false }).then((r) => {
        if (!r.ok) return undefined;
        if (this.#streams.has(session)) this.#open.set(session, r.value);
        return r.value;
      });
      this.#streams.set(session, s);
    }
    return s;
  }

  /** Maps every address from leg `from` onto stream `s`: the relay sends there, the other leg is given the relay. */
  #mapper(from: Leg, s: Stream): AddressMapper {
    const party = from === 'a' ? 0 : 1;
    const p = s.ports[1 - party]!;
    return (addr, where) => {
      const component = where.role === 'media' ? 'rtp' : 'rtcp';
      this.#relay.setStreamRemote(this.#callId, s.index, party, component, addr.ip, addr.port);
      return { ip: s.address, port: component === 'rtp' ? p.rtp : p.rtcp };
    };
  }

  /** An OpenLogicalChannel from leg `from` (fast start or H.245) with its media addresses moved onto the relay. */
  async rewriteOlc(from: Leg, olc: OpenLogicalChannel, fastStart = false): Promise<OpenLogicalChannel> {
    const session = sessionOf(olc);
    if (fastStart) this.#pinned.add(session);
    else {
      const set = this.#channels.get(session) ?? new Set<string>();
      this.#channels.set(session, set);
      set.add(`${from}:${olc.forwardLogicalChannelNumber}`);
    }
    const s = await this.#stream(session);
    return s ? rewriteOlcAddresses(olc, this.#mapper(from, s)) : olc;
  }

  /**
   * Logical channel `channel` opened by leg `from` is closed (H.245 CloseLogicalChannel from its opener, or its
   * OLC refused): when it was the last open channel of its RTP session, the session's relay ports go back to the
   * pool at once (a later OLC for that session gets a new port pair). Returns whether ports were freed.
   */
  async closeChannel(from: Leg, channel: number): Promise<boolean> {
    const key = `${from}:${channel}`;
    for (const [session, set] of this.#channels) {
      if (!set.delete(key)) continue;
      if (set.size > 0 || this.#pinned.has(session)) return false;
      this.#channels.delete(session);
      const s = await this.#streams.get(session);
      this.#streams.delete(session);
      this.#open.delete(session);
      if (!s || !this.#relay.closeStream(this.#callId, s.index)) return false;
      this.closedStreams++;
      return true;
    }
    return false;
  }

  /** An OpenLogicalChannelAck from leg `from` for RTP session `session`, its addresses moved onto the relay. */
  async rewriteOlcAck(from: Leg, ack: OpenLogicalChannelAck, session: number): Promise<OpenLogicalChannelAck> {
    const s = await this.#stream(session);
    return s ? rewriteOlcAckAddresses(ack, this.#mapper(from, s)) : ack;
  }

  /** Fast-start OLCs (encoded) from leg `from`, with their media addresses moved onto the relay. */
  async rewriteFastStart(from: Leg, olcs: readonly Uint8Array[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = [];
    for (const bytes of olcs) {
      const d = openLogicalChannelCodec.decode(bytes);
      out.push(d.ok ? openLogicalChannelCodec.encode(await this.rewriteOlc(from, d.value, true)) : bytes);
    }
    return out;
  }

  /** The relay's port pair facing each leg (party 0: leg a, party 1: leg b), per RTP session open now. */
  ports(): RelaySessionPorts[] {
    return [...this.#open]
      .sort(([x], [y]) => x - y)
      .map(([session, s]) => ({ session, address: s.address, a: { ...s.ports[0] }, b: { ...s.ports[1] } }));
  }

  /** Relay port pairs in use by this call, per session. */
  async describe(): Promise<Array<{ session: number; stream: Stream | undefined }>> {
    return Promise.all([...this.#streams].map(async ([session, s]) => ({ session, stream: await s })));
  }

  close(): void {
    this.#relay.delete(this.#callId);
  }
}
