import type { RelayCore } from '../../media/relay-core.ts';
import { type AddressMapper, rewriteOlcAckAddresses, rewriteOlcAddresses } from '../api.ts';
import type { OpenLogicalChannel, OpenLogicalChannelAck } from '../per/generated/types.ts';
import { openLogicalChannelCodec } from '../per/schema.ts';
import type { Leg } from './routed-call.ts';

type Stream = { index: number; address: string; ports: [{ rtp: number; rtcp: number }, { rtp: number; rtcp: number }] };

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

  constructor(relay: RelayCore, callId: string) {
    this.#relay = relay;
    this.#callId = callId;
  }

  #stream(session: number): Promise<Stream | undefined> {
    let s = this.#streams.get(session);
    if (!s) {
      // H.245 gives each receive address; ooh323c and others send from other ports, so no latching (no NAT yet)
      s = this.#relay.openStream(this.#callId, { latching: false }).then((r) => (r.ok ? r.value : undefined));
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
  async rewriteOlc(from: Leg, olc: OpenLogicalChannel): Promise<OpenLogicalChannel> {
    const s = await this.#stream(sessionOf(olc));
    return s ? rewriteOlcAddresses(olc, this.#mapper(from, s)) : olc;
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
      out.push(d.ok ? openLogicalChannelCodec.encode(await this.rewriteOlc(from, d.value)) : bytes);
    }
    return out;
  }

  /** Relay port pairs in use by this call, per session. */
  async describe(): Promise<Array<{ session: number; stream: Stream | undefined }>> {
    return Promise.all([...this.#streams].map(async ([session, s]) => ({ session, stream: await s })));
  }

  close(): void {
    this.#relay.delete(this.#callId);
  }
}
