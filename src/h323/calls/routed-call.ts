import { randomInt } from 'node:crypto';
import { type AliasText, aliasToText, fromH225Address, H225_PROTOCOL_ID, h225Address, type IpPort } from '../api.ts';
import type { H323Route } from '../gatekeeper/gatekeeper.ts';
import type {
  H225_TransportAddress,
  MultimediaSystemControlMessage,
  OpenLogicalChannel,
  OpenLogicalChannelAck,
  ReleaseCompleteReason,
  TerminalCapabilitySet,
} from '../per/generated/types.ts';
import { h245Codec, openLogicalChannelCodec } from '../per/schema.ts';
import { type CallSignallingMessage, decodeCallSignalling, encodeCallSignalling } from '../q931/call-signalling.ts';
import { encodeCause, IE, Q931_MESSAGE_TYPES, q931MessageName } from '../q931/q931.ts';
import { calledAfterRouting } from './called-alias.ts';
import { type CodecPolicy, dataTypeAllowed, dataTypeCodec, filterCapabilities } from './capabilities.ts';
import { H245Session, type MsdResult } from './h245-session.ts';
import { type RelaySessionPorts, sessionOf } from './media-anchor.ts';

/**
 * One gatekeeper-routed call (H.323 §8.1.3, routed model): the node terminates the caller's call signalling leg
 * (`a`) and opens its own to the callee (`b`), then relays Q.931/H.225.0 messages between them with each leg's
 * own call reference. Sans-I/O: PDUs in (`fromA`/`fromB`), effects out through `CallIo`; the server owns sockets.
 */

/** The states of a routed call; transitions only through `#to`. */
export type RoutedCallState = 'setup-received' | 'routing' | 'proceeding' | 'alerting' | 'connected' | 'released';

const EDGES: Record<RoutedCallState, readonly RoutedCallState[]> = {
  'setup-received': ['routing', 'released'],
  routing: ['proceeding', 'alerting', 'connected', 'released'],
  proceeding: ['alerting', 'connected', 'released'],
  alerting: ['connected', 'released'],
  connected: ['released'],
  released: [],
};

export type Leg = 'a' | 'b';

/** What a call asks its server to do. */
export interface CallIo {
  /** Resolves the called aliases: the gatekeeper's registrations, or the search rules (neighbor zones: async). */
  resolve(destination: AliasText[], source: AliasText[]): H323Route | undefined | Promise<H323Route | undefined>;
  /** Opens leg B to `to`; the server answers with `bConnected()` or `bFailed()`. */
  connectB(to: IpPort): void;
  send(leg: Leg, pdu: Uint8Array): void;
  /** Closes a leg's TCP connection (after the last PDU written). */
  close(leg: Leg): void;
  /**
   * Media anchoring (optional): fast-start OLCs from a leg rewritten onto the node's relay. Without it fast start
   * passes through unchanged.
   */
  anchorFastStart?: (from: Leg, olcs: readonly Uint8Array[]) => Promise<Uint8Array[]>;
  /** Media anchoring of an H.245 OpenLogicalChannel from a leg (tunnelled or on a separate connection). */
  anchorOlc?: (from: Leg, olc: OpenLogicalChannel) => Promise<OpenLogicalChannel>;
  /** Media anchoring of an H.245 OpenLogicalChannelAck from a leg, for RTP session `session`. */
  anchorOlcAck?: (from: Leg, ack: OpenLogicalChannelAck, session: number) => Promise<OpenLogicalChannelAck>;
  /**
   * Logical channel `channel` that leg `from` opened is closed (its CloseLogicalChannel relayed, or its OLC
   * refused): the relay ports of its RTP session may go back to the pool.
   */
  closeChannel?: (from: Leg, channel: number) => Promise<unknown>;
  /**
   * The node's own H.245 per leg (H.323 §8.2): without it H.245 passes through untouched (tunnelled messages
   * relayed, h245Address given end to end). With it the node takes every H.245 PDU out of the tunnel or off
   * the leg's connection and places it on the other leg's transport.
   */
  h245?: {
    /** Opens a listener for leg `leg`'s H.245 connection; its connection is told with `h245Up`. */
    listen(leg: Leg): Promise<IpPort>;
    /** Connects to the H.245 address a leg gave; told with `h245Up` or `h245Closed`. */
    connect(leg: Leg, to: IpPort): void;
    send(leg: Leg, pdu: Uint8Array): void;
    /** Closes a leg's H.245 connection and listener (call end). */
    close(leg: Leg): void;
  };
  /** The node's own call signalling address (put in Setup.sourceCallSignalAddress toward B). */
  readonly localAddress: IpPort;
  /** The relay's port pairs of this call, per RTP session, when its media is anchored (status). */
  relayPorts?: () => RelaySessionPorts[];
  /**
   * Calls `fn` once after `ms` unless cancelled (the node's H.245 response timers, cancelled when the call ends);
   * without it the node's requests never time out.
   */
  setTimer?: (ms: number, fn: () => void) => { cancel(): void };
}

/** A call's summary for status and records. */
export interface RoutedCallInfo {
  id: string;
  state: RoutedCallState;
  source: AliasText[];
  destination: AliasText[];
  target: IpPort | undefined;
  startedAt: number;
  connectedAt: number | undefined;
  endedAt: number | undefined;
  endReason: string | undefined;
  /** The routing zone the call came from (`LocalZone`, a neighbor zone), once routing has said. */
  sourceZone?: string;
  /** The routing zone the call went to (`LocalZone` for a registration here, a neighbor zone), once found. */
  targetZone?: string;
  /** How each leg carries H.245: tunnelled in H.225.0, on a separate connection, or not known yet. */
  h245?: Record<Leg, H245Transport>;
  /**
   * Codecs each leg sends on the logical channels open now (`audio:g711Ulaw`…): fast-start channels the callee
   * accepted and H.245 OpenLogicalChannels, until CloseLogicalChannel or a reject.
   */
  codecs: Record<Leg, string[]>;
  /** The relay's port pair facing each leg, per RTP session (empty when media is not anchored). */
  relay: RelaySessionPorts[];
  /** The node's role in each leg's H.245 master/slave determination (the node's own H.245 only). */
  masterSlave?: Record<Leg, MsdResult>;
}

/** How the node runs its own end of each leg's H.245. */
export interface RoutedCallOptions {
  /** terminalType of the node's MasterSlaveDetermination (`h323.calls.terminalType`, default 190). */
  terminalType?: number;
  /** Codecs an administrator allows (`h323.calls.codecs`); undefined: all the relay can anchor. */
  codecs?: CodecPolicy;
  /** statusDeterminationNumber source (tests); default a CSPRNG draw. */
  random?: () => number;
}

/** The node's default terminalType: above terminals (50) and gateways (60), so endpoints are the slaves. */
export const DEFAULT_TERMINAL_TYPE = 190;

/** How long a leg has to answer the node's own H.245 requests (H.245 T101/T106; ooh323c also waits 30 s). */
export const H245_RESPONSE_TIMEOUT_MS = 30_000;

export type H245Transport = 'tunnelled' | 'separate' | 'unknown';

/** Q.931 cause values used when the node itself clears a leg (Q.850). */
export const CAUSE = {
  unallocatedNumber: 1,
  noRoute: 3,
  normalClearing: 16,
  callRejected: 21,
  temporaryFailure: 41,
  recoveryOnTimerExpiry: 102,
} as const;

/** A ReleaseComplete the node sends on a leg, with a Q.850 cause and an H.225.0 reason. */
export function releaseComplete(
  callReference: number,
  fromDestination: boolean,
  callIdentifier: Uint8Array | undefined,
  cause: number,
  reason: ReleaseCompleteReason['choice'],
): Uint8Array {
  const m: CallSignallingMessage = {
    q931: {
      callReference,
      fromDestination,
      callReferenceLength: 2,
      messageType: 0x5a,
      ies: [{ id: IE.cause, data: encodeCause({ codingStandard: 0, location: 0, value: cause }) }],
    },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': {
          choice: 'releaseComplete',
          value: {
            protocolIdentifier: '0.0.8.2250.0.7',
            reason: { choice: reason, value: null } as ReleaseCompleteReason,
            ...(callIdentifier ? { callIdentifier: { guid: callIdentifier } } : {}),
          },
        },
        h245Tunnelling: false,
      },
    },
  };
  return encodeCallSignalling(m);
}

/** A leg's H.245 transport as the node sees it. */
interface H245Leg {
  /** Tunnelled in H.225.0 (`h245Control`); undefined until the leg has said (leg B before its first answer). */
  tunnelling: boolean | undefined;
  /** The separate H.245 connection: none, our listener given to the leg, our connection opening, up, gone. */
  channel: 'none' | 'listening' | 'connecting' | 'up' | 'closed';
  /** H.245 PDUs waiting for this leg's transport (tunnel or connection). */
  queue: Uint8Array[];
  /** This leg's OpenLogicalChannel forward channel numbers → RTP session (to place the other leg's Ack). */
  olcSessions: Map<number, number>;
  /** This leg's own latest TerminalCapabilitySet, as it sent it (capability intersection). */
  tcs: TerminalCapabilitySet | undefined;
  /** Capability table entry numbers of this leg that the other leg was not told of. */
  removedCapabilities: Set<number>;
}

/** EndSessionCommand disconnect (H.245 §8.? / H.323 §8.5 step 3): the node ends a leg's H.245 session itself. */
const END_SESSION: MultimediaSystemControlMessage = {
  choice: 'command',
  value: { choice: 'endSessionCommand', value: { choice: 'disconnect', value: null } },
};

/** Q.931 messages that may carry an `h245Address` toward the caller (H.225.0 §7.3–7.4, 7.9). */
const CARRIES_H245_ADDRESS = new Set(['callProceeding', 'alerting', 'connect', 'progress', 'facility']);

type UuBody = { h245Address?: H225_TransportAddress; fastStart?: Uint8Array[] };

const otherLeg = (leg: Leg): Leg => (leg === 'a' ? 'b' : 'a');

/** H.245 statistics of a call (status and tests). */
export interface H245Counters {
  /** H.245 PDUs passed from one leg to the other. */
  relayed: number;
  /** OLC/OLCAck whose media addresses were moved onto the relay. */
  anchored: number;
  /** H.245 PDUs that arrived after the call ended or could not be placed. */
  dropped: number;
  /** Capability table entries removed from relayed TerminalCapabilitySets (policy, intersection). */
  capabilitiesRemoved: number;
  /** Logical channels closed (CloseLogicalChannel relayed, OLC refused). */
  channelsClosed: number;
  /** EndSessionCommands the node sent itself (aborting a call). */
  endSessionsSent: number;
  /** H.245 PDUs the node answered itself (master/slave determination, capabilities, round-trip delay). */
  terminated: number;
}

const newH245Leg = (): H245Leg => ({
  tunnelling: undefined,
  channel: 'none',
  queue: [],
  olcSessions: new Map(),
  tcs: undefined,
  removedCapabilities: new Set(),
});

export class RoutedCall {
  readonly #io: CallIo;
  readonly #now: () => number;
  #state: RoutedCallState = 'setup-received';
  #crA = 0;
  readonly #crB: number;
  #callIdentifier: Uint8Array | undefined;
  #pendingSetup: CallSignallingMessage | undefined;
  #bUp = false;
  readonly #queued: CallSignallingMessage[] = [];
  readonly #h245: Record<Leg, H245Leg> = { a: newH245Leg(), b: newH245Leg() };
  readonly h245Counters: H245Counters = {
    relayed: 0,
    anchored: 0,
    dropped: 0,
    capabilitiesRemoved: 0,
    channelsClosed: 0,
    endSessionsSent: 0,
    terminated: 0,
  };
  readonly #sessions: Record<Leg, H245Session>;
  /** The node's H.245 response timers still running. */
  readonly #timers = new Set<{ cancel(): void }>();
  readonly #codecs: CodecPolicy;
  readonly info: RoutedCallInfo;
  /** Told once when the call ends. */
  onEnd: (info: RoutedCallInfo) => void = () => {};
  /** Told of every state change, the end included (call records, status); must not throw. */
  onState: (info: RoutedCallInfo) => void = () => {};

  constructor(id: string, io: CallIo, callReferenceB: number, now: () => number, options: RoutedCallOptions = {}) {
    this.#io = io;
    this.#now = now;
    this.#crB = callReferenceB;
    this.#codecs = options.codecs;
    const session = () =>
      new H245Session({
        terminalType: options.terminalType ?? DEFAULT_TERMINAL_TYPE,
        random: options.random ?? (() => randomInt(0x1000000)),
      });
    this.#sessions = { a: session(), b: session() };
    this.info = {
      id,
      state: 'setup-received',
      source: [],
      destination: [],
      target: undefined,
      startedAt: now(),
      connectedAt: undefined,
      endedAt: undefined,
      endReason: undefined,
      codecs: { a: [], b: [] },
      relay: [],
    };
  }

  /** Channels each leg sends on, with their codec (`fs:<n>:<dir>` fast start, `h245:<n>` OpenLogicalChannel). */
  readonly #sending: Record<Leg, Map<string, string>> = { a: new Map(), b: new Map() };

  /** Codecs or relay ports changed: the status is updated, and listeners told once the call is routed. */
  #mediaChanged(): void {
    const unique = (m: Map<string, string>) => [...new Set(m.values())];
    this.info.codecs = { a: unique(this.#sending.a), b: unique(this.#sending.b) };
    this.info.relay = this.#io.relayPorts?.() ?? [];
    if (this.#state === 'setup-received' || this.#state === 'routing' || this.#state === 'released') return;
    this.#tell();
  }

  /**
   * Fast-start channels accepted in an answer (any message but the Setup). As the answering endpoints send them
   * (ooh323c echoes the caller's proposals), each OLC is seen from the caller: forward parameters are what the
   * caller (leg a) sends, reverse parameters what the callee (leg b) sends.
   */
  #fastStartAccepted(fs: readonly Uint8Array[]): void {
    for (const bytes of fs) {
      const d = openLogicalChannelCodec.decode(bytes);
      if (!d.ok) continue;
      const n = d.value.forwardLogicalChannelNumber;
      const fwd = dataTypeCodec(d.value.forwardLogicalChannelParameters.dataType);
      const rev = dataTypeCodec(d.value.reverseLogicalChannelParameters?.dataType);
      if (fwd) this.#sending.a.set(`fs:${n}:f`, fwd);
      if (rev) this.#sending.b.set(`fs:${n}:r`, rev);
    }
  }

  /** Tells `onState` the call's summary as it is now; a listener's fault is its own. */
  #tell(): void {
    try {
      this.onState(this.info);
    } catch {
      // nothing: status and records must not end a call
    }
  }

  /** A method, not a field read: TypeScript must not narrow the state across an await. */
  #ended(): boolean {
    return this.#state === 'released';
  }

  get state(): RoutedCallState {
    return this.#state;
  }

  #transport(leg: Leg): H245Transport {
    const l = this.#h245[leg];
    if (l.tunnelling === true) return 'tunnelled';
    return l.tunnelling === false || l.channel !== 'none' ? 'separate' : 'unknown';
  }

  /** How each leg carries H.245 (status and tests). */
  h245Mode(leg: Leg): { tunnelling: boolean | undefined; channel: H245Leg['channel'] } {
    const l = this.#h245[leg];
    return { tunnelling: l.tunnelling, channel: l.channel };
  }

  #to(next: RoutedCallState): boolean {
    if (!EDGES[this.#state].includes(next)) return false;
    this.#state = next;
    this.info.state = next;
    if (next === 'connected') this.info.connectedAt = this.#now();
    if (next === 'released') this.info.endedAt = this.#now();
    this.#tell();
    if (next === 'released') {
      for (const t of this.#timers) t.cancel();
      this.#timers.clear();
      this.#io.h245?.close('a');
      this.#io.h245?.close('b');
      this.onEnd(this.info);
    }
    return true;
  }

  #chain: Promise<void> = Promise.resolve();

  /**
   * Runs every event (PDUs of both legs, on Q.931 and H.245, and the server's connection news) one after the
   * other in arrival order: one that waits (media anchoring, opening an H.245 listener) holds back the ones after.
   */
  #run(fn: () => void | Promise<void>): void {
    this.#chain = this.#chain
      .then(() => fn())
      .then(() => {
        this.#flushTunnels();
        this.info.h245 = { a: this.#transport('a'), b: this.#transport('b') };
        if (this.#io.h245) this.info.masterSlave = { a: this.#sessions.a.result, b: this.#sessions.b.result };
      })
      .catch((e: unknown) => this.#abort(`call handling failed: ${(e as Error).message}`));
  }

  /** Resolves once every event handed to the call so far has been handled (tests, orderly shutdown). */
  settled(): Promise<void> {
    return this.#chain;
  }

  /** A PDU from the caller's leg; a malformed one ends the call (ReleaseComplete undefinedReason both ways). */
  fromA(pdu: Uint8Array): void {
    this.#run(() => this.#fromA(pdu));
  }

  /** A PDU from the callee's leg. */
  fromB(pdu: Uint8Array): void {
    this.#run(() => this.#fromB(pdu));
  }

  /** An H.245 PDU that arrived on a leg's separate H.245 connection. */
  fromH245(leg: Leg, pdu: Uint8Array): void {
    this.#run(async () => {
      if (this.#ended()) {
        this.h245Counters.dropped++;
        return;
      }
      await this.#h245In(leg, pdu);
    });
  }

  /** A leg's separate H.245 connection is up (we connected to it, or it connected to our listener). */
  h245Up(leg: Leg): void {
    this.#run(() => {
      const l = this.#h245[leg];
      if (this.#ended()) return;
      l.channel = 'up';
      // the leg chose a separate connection: whatever it said before, H.245 is not tunnelled on it now
      l.tunnelling = false;
      for (const pdu of l.queue.splice(0)) this.#io.h245?.send(leg, pdu);
      this.#startSession(leg);
    });
  }

  /** A leg's separate H.245 connection closed (or could not be opened). */
  h245Closed(leg: Leg): void {
    this.#run(() => {
      this.#h245[leg].channel = 'closed';
    });
  }

  async #fastStart(message: CallSignallingMessage, from: Leg): Promise<CallSignallingMessage> {
    let m = message;
    const body = m.uu?.['h323-uu-pdu']['h323-message-body'];
    let fs = body && 'value' in body ? (body.value as UuBody | null)?.fastStart : undefined;
    const anchor = this.#io.anchorFastStart;
    if (!fs || fs.length === 0 || !body) return m;
    if (body.choice === 'setup' && this.#codecs) {
      // proposals of codecs the administrator does not allow are not offered to the callee
      const allowed = fs.filter((bytes) => {
        const d = openLogicalChannelCodec.decode(bytes);
        return (
          d.ok &&
          dataTypeAllowed(d.value.forwardLogicalChannelParameters.dataType, this.#codecs) &&
          dataTypeAllowed(d.value.reverseLogicalChannelParameters?.dataType, this.#codecs)
        );
      });
      if (allowed.length !== fs.length) {
        m = withBody(m, { fastStart: allowed.length > 0 ? allowed : undefined });
        if (allowed.length === 0) return m;
        fs = allowed;
      }
    }
    if (body.choice !== 'setup') this.#fastStartAccepted(fs);
    if (!anchor) {
      this.#mediaChanged();
      return m;
    }
    const olcs = await anchor(from, fs);
    this.#mediaChanged();
    return withBody(m, { fastStart: olcs });
  }

  async #fromA(pdu: Uint8Array): Promise<void> {
    const d = decodeCallSignalling(pdu);
    if (!d.ok) {
      this.#abort(`malformed PDU from the caller: ${d.reason.message}`);
      return;
    }
    const m = d.value;
    if (this.#state === 'setup-received') {
      if (
        q931MessageName(m.q931.messageType) !== 'setup' ||
        m.uu?.['h323-uu-pdu']['h323-message-body'].choice !== 'setup'
      ) {
        this.#abort('first PDU is not a Setup');
        return;
      }
      const x = await this.#h245FromQ931(await this.#fastStart(m, 'a'), 'a');
      if (this.#state === 'setup-received') await this.#setup(x);
      return;
    }
    if (this.#ended()) return;
    if (this.#state === 'routing' && !this.#bUp) {
      // leg B is being opened: what the caller sends meanwhile (tunnelled H.245, Information) waits for it
      if (this.#queued.length < 32) this.#queued.push(m);
      return;
    }
    await this.#forward(m, 'a');
  }

  async #fromB(pdu: Uint8Array): Promise<void> {
    if (this.#ended()) return;
    const d = decodeCallSignalling(pdu);
    if (!d.ok) {
      this.#abort(`malformed PDU from the callee: ${d.reason.message}`);
      return;
    }
    await this.#forward(d.value, 'b');
  }

  /** A Q.931 message from leg `from` to the other leg: fast start anchored, H.245 taken out and placed, relayed. */
  async #forward(m: CallSignallingMessage, from: Leg): Promise<void> {
    let x = await this.#fastStart(m, from);
    if (this.#ended()) return;
    x = await this.#h245FromQ931(x, from);
    if (this.#ended()) return;
    // at the Connect, the node opens its H.245 on the legs that tunnel: toward the caller it rides on the Connect
    if (from === 'b' && q931MessageName(x.q931.messageType) === 'connect')
      for (const leg of ['a', 'b'] as const) if (this.#h245[leg].tunnelling === true) this.#startSession(leg);
    x = await this.#h245ToQ931(x, otherLeg(from));
    if (this.#ended()) return;
    this.#relay(x, otherLeg(from));
    if (from === 'b' && this.#io.h245) await this.#maybeStartH245B(m);
  }

  /**
   * What a leg's Q.931 message says about its H.245 (H.323 §8.2.1, H.225.0 §7.?): whether it tunnels, where it
   * listens for a separate H.245 connection (we connect there), and the H.245 PDUs it tunnels (each handled as if
   * it came on a connection). The message is returned without them: the node places H.245 itself.
   */
  async #h245FromQ931(m: CallSignallingMessage, from: Leg): Promise<CallSignallingMessage> {
    if (!this.#io.h245 || !m.uu) return m;
    const l = this.#h245[from];
    const pdu = m.uu['h323-uu-pdu'];
    const body = pdu['h323-message-body'];
    const name = body.choice;
    const value = 'value' in body ? (body.value as UuBody | null) : null;
    const address = value?.h245Address ? fromH225Address(value.h245Address) : undefined;
    if (name !== 'releaseComplete') {
      // tunnelling is on only while every message says so; an h245Address in a Setup turns it off (H.323 §8.2.1)
      const says = pdu.h245Tunnelling === true && !(name === 'setup' && address);
      if (l.tunnelling === undefined) l.tunnelling = says && l.channel !== 'up';
      else if (!says) l.tunnelling = false;
    }
    // a leg that tunnels and also gives an address keeps tunnelling (H.323 §8.2.1: tunnelling preferred)
    if (address && l.channel === 'none' && l.tunnelling !== true) {
      l.channel = 'connecting';
      l.tunnelling = false;
      this.#io.h245.connect(from, address);
    }
    for (const h of pdu.h245Control ?? []) {
      await this.#h245In(from, h);
      if (this.#ended()) break;
    }
    const out = value?.h245Address ? withBody(m, { h245Address: undefined }) : m;
    const { h245Control: _dropped, ...rest } = out.uu!['h323-uu-pdu'];
    return { ...out, uu: { ...out.uu!, 'h323-uu-pdu': rest } };
  }

  /**
   * Places H.245 in a message toward leg `to`: tunnelling as that leg does (offered to B in the Setup), the H.245
   * waiting for a tunnelled leg piggybacked, and our own H.245 listener given to a leg that does not tunnel and
   * has no H.245 connection yet.
   */
  async #h245ToQ931(m: CallSignallingMessage, to: Leg): Promise<CallSignallingMessage> {
    if (!this.#io.h245 || !m.uu) return m;
    const l = this.#h245[to];
    const name = m.uu['h323-uu-pdu']['h323-message-body'].choice;
    const tunnel = name === 'setup' ? true : l.tunnelling !== false;
    let out: CallSignallingMessage = m;
    if (l.tunnelling === false && l.channel === 'none' && CARRIES_H245_ADDRESS.has(name)) {
      l.channel = 'listening';
      const at = await this.#io.h245.listen(to);
      out = withBody(out, { h245Address: h225Address(at.ip, at.port) });
    }
    const control = l.tunnelling === true && name !== 'releaseComplete' ? l.queue.splice(0) : [];
    return {
      ...out,
      uu: {
        ...out.uu!,
        'h323-uu-pdu': {
          ...out.uu!['h323-uu-pdu'],
          h245Tunnelling: tunnel,
          ...(control.length > 0 ? { h245Control: control } : {}),
        },
      },
    };
  }

  /**
   * Leg B connected without tunnelling and without telling where its H.245 listens: we ask it to open its own
   * connection to our listener (Facility startH245, H.225.0 §7.4).
   */
  async #maybeStartH245B(m: CallSignallingMessage): Promise<void> {
    const l = this.#h245.b;
    if (this.#state !== 'connected' || q931MessageName(m.q931.messageType) !== 'connect') return;
    if (l.tunnelling !== false || l.channel !== 'none') return;
    l.channel = 'listening';
    const at = await this.#io.h245!.listen('b');
    if (this.#ended()) return;
    this.#io.send(
      'b',
      encodeCallSignalling(
        facility(this.#crB, false, this.#callIdentifier, 'startH245', { h245Address: h225Address(at.ip, at.port) }),
      ),
    );
  }

  /** H.245 waiting for a tunnelled leg with nothing else to ride on goes in a Facility (transportedInformation). */
  #flushTunnels(): void {
    if (this.#state === 'released' || !this.#io.h245) return;
    for (const leg of ['a', 'b'] as const) {
      const l = this.#h245[leg];
      if (l.tunnelling !== true || l.queue.length === 0) continue;
      if (leg === 'b' && !this.#bUp) continue;
      // the caller hears tunnelled H.245 once the callee has answered (it rides on that answer when it can)
      if (leg === 'a' && (this.#state === 'setup-received' || this.#state === 'routing')) continue;
      const control = l.queue.splice(0);
      const cr = leg === 'a' ? this.#crA : this.#crB;
      this.#io.send(
        leg,
        encodeCallSignalling(facility(cr, leg === 'a', this.#callIdentifier, 'transportedInformation', {}, control)),
      );
    }
  }

  /**
   * One H.245 PDU from leg `from` (tunnelled or on its connection), passed to the other leg. Master/slave
   * determination, UserInputIndication, RequestMode, EndSessionCommand… pass through as they are (the two
   * endpoints negotiate end to end); a TerminalCapabilitySet loses what the relay cannot anchor (`capabilities.ts`);
   * OpenLogicalChannel and its Ack get the node's relay addresses; CloseLogicalChannel (and an OLC refused) lets
   * the relay free the channel's ports. A PDU that does not decode ends the call.
   */
  async #h245In(from: Leg, bytes: Uint8Array): Promise<void> {
    const to = otherLeg(from);
    const d = h245Codec.decode(bytes);
    if (!d.ok) {
      this.#abort(`malformed H.245 from leg ${from}: ${d.reason.message}`);
      return;
    }
    let out = bytes;
    const msg = d.value;
    if (this.#io.h245) {
      // the leg's session with the node: determination, capabilities and round-trip delay end here
      this.#startSession(from);
      const effect = this.#sessions[from].receive(msg);
      this.#sessionOut(from, effect.reply);
      if (effect.failed) {
        this.#abort(`leg ${from}: ${effect.failed}`);
        return;
      }
      if (effect.capabilities) {
        this.#h245[from].tcs = effect.capabilities;
        this.#syncCapabilities();
      }
      if (effect.terminated) {
        this.h245Counters.terminated++;
        return;
      }
    }
    if (msg.choice === 'request' && msg.value.choice === 'openLogicalChannel') {
      const olc = msg.value.value;
      this.#h245[from].olcSessions.set(olc.forwardLogicalChannelNumber, sessionOf(olc));
      const codec = dataTypeCodec(olc.forwardLogicalChannelParameters.dataType);
      if (codec) this.#sending[from].set(`h245:${olc.forwardLogicalChannelNumber}`, codec);
      if (this.#io.anchorOlc) {
        const value = await this.#io.anchorOlc(from, olc);
        out = h245Codec.encode({ choice: 'request', value: { choice: 'openLogicalChannel', value } });
        this.h245Counters.anchored++;
      }
      this.#mediaChanged();
    } else if (msg.choice === 'response' && msg.value.choice === 'openLogicalChannelAck') {
      const ack = msg.value.value;
      const p = ack.forwardMultiplexAckParameters;
      const session =
        (p?.choice === 'h2250LogicalChannelAckParameters' ? p.value.sessionID : undefined) ??
        this.#h245[to].olcSessions.get(ack.forwardLogicalChannelNumber) ??
        0;
      if (this.#io.anchorOlcAck) {
        const value = await this.#io.anchorOlcAck(from, ack, session);
        out = h245Codec.encode({ choice: 'response', value: { choice: 'openLogicalChannelAck', value } });
        this.h245Counters.anchored++;
        this.#mediaChanged();
      }
    } else if (msg.choice === 'request' && msg.value.choice === 'terminalCapabilitySet') {
      // without the node's own H.245 (no `io.h245`) the set is relayed, filtered
      const tcs = msg.value.value;
      const mine = this.#h245[from];
      mine.tcs = tcs;
      const f = filterCapabilities(tcs, this.#h245[to].tcs, mine.removedCapabilities, this.#codecs);
      if (f.tcs !== tcs) {
        out = h245Codec.encode({ choice: 'request', value: { choice: 'terminalCapabilitySet', value: f.tcs } });
        this.h245Counters.capabilitiesRemoved += f.removedByPolicy + f.removedByIntersection;
      }
    }
    if (this.#ended()) return;
    this.#h245Out(to, out);
    // the channel's media stops with its close: its relay ports are freed now, not at the call's end
    let closed: { opener: Leg; channel: number } | undefined;
    if (msg.choice === 'request' && msg.value.choice === 'closeLogicalChannel')
      closed = { opener: from, channel: msg.value.value.forwardLogicalChannelNumber };
    else if (msg.choice === 'response' && msg.value.choice === 'openLogicalChannelReject')
      closed = { opener: to, channel: msg.value.value.forwardLogicalChannelNumber };
    if (closed) {
      this.#h245[closed.opener].olcSessions.delete(closed.channel);
      this.#sending[closed.opener].delete(`h245:${closed.channel}`);
      this.h245Counters.channelsClosed++;
      await this.#io.closeChannel?.(closed.opener, closed.channel);
      this.#mediaChanged();
    }
  }

  /**
   * Opens the node's side of a leg's H.245 session once the leg has an H.245 transport (its connection is up, it
   * sent H.245, or it tunnels and the call is connected): the node's MasterSlaveDetermination, then its
   * capabilities as soon as the other leg's are known.
   */
  #startSession(leg: Leg): void {
    if (!this.#io.h245 || this.#ended()) return;
    const s = this.#sessions[leg];
    if (s.started) return;
    this.#sessionOut(leg, s.start());
    this.#syncCapabilities();
  }

  /**
   * PDUs of the node's own session with `leg`; a determination request or a capability set it sends starts its
   * response timer.
   */
  #sessionOut(leg: Leg, msgs: readonly MultimediaSystemControlMessage[]): void {
    for (const r of msgs) this.#h245Out(leg, h245Codec.encode(r), false);
    const setTimer = this.#io.setTimer;
    if (!setTimer || this.#ended()) return;
    // a timer runs once: it is forgotten when it fires, and whatever is left is cancelled when the call ends
    const timer = (ms: number, fn: () => void) => {
      const handle = setTimer(ms, () => {
        this.#timers.delete(handle);
        fn();
      });
      this.#timers.add(handle);
    };
    const asks = (name: string) => msgs.some((m) => m.choice === 'request' && m.value.choice === name);
    const pending = this.#sessions[leg].pending();
    if (asks('masterSlaveDetermination') && pending.msd !== undefined) {
      const generation = pending.msd;
      timer(H245_RESPONSE_TIMEOUT_MS, () =>
        this.#run(() => {
          if (this.#ended()) return;
          const t = this.#sessions[leg].msdTimedOut(generation);
          this.#sessionOut(leg, t.reply);
          if (t.failed) this.#abort(`leg ${leg}: ${t.failed}`);
        }),
      );
    }
    if (asks('terminalCapabilitySet') && pending.tcs !== undefined) {
      const sequence = pending.tcs;
      timer(H245_RESPONSE_TIMEOUT_MS, () =>
        this.#run(() => {
          if (!this.#ended()) this.#sessionOut(leg, this.#sessions[leg].tcsTimedOut(sequence));
        }),
      );
    }
  }

  /**
   * Each leg whose session is open is told what the other leg can do (its latest set, filtered by policy and by
   * what this leg can do), as the node's own TerminalCapabilitySet; a set is sent only when it changed, so a new
   * set from either leg is re-applied both ways.
   */
  #syncCapabilities(): void {
    for (const leg of ['a', 'b'] as const) {
      const other = this.#h245[otherLeg(leg)];
      const s = this.#sessions[leg];
      if (!s.started || !other.tcs) continue;
      const f = filterCapabilities(other.tcs, this.#h245[leg].tcs, other.removedCapabilities, this.#codecs);
      const { sequenceNumber: _theirs, ...content } = f.tcs;
      const sent = s.offerCapabilities(content);
      this.#sessionOut(leg, sent);
      if (sent.length > 0) this.h245Counters.capabilitiesRemoved += f.removedByPolicy + f.removedByIntersection;
    }
  }

  /**
   * The node itself ends leg `leg`'s H.245 session before its ReleaseComplete (H.323 §8.5): EndSessionCommand on
   * the leg's own H.245 connection when it is up, or tunnelled in a Facility when the leg tunnels (leg B: once it
   * has answered). H.245 still waiting for the leg is dropped. Nothing when the leg has no H.245 yet.
   */
  #endSession(leg: Leg): void {
    const h = this.#io.h245;
    if (!h) return;
    const l = this.#h245[leg];
    this.h245Counters.dropped += l.queue.length;
    l.queue.length = 0;
    const pdu = h245Codec.encode(END_SESSION);
    if (l.channel === 'up' && l.tunnelling === false) h.send(leg, pdu);
    else if (l.tunnelling === true && (leg === 'a' || this.#bUp)) {
      const cr = leg === 'a' ? this.#crA : this.#crB;
      this.#io.send(
        leg,
        encodeCallSignalling(facility(cr, leg === 'a', this.#callIdentifier, 'transportedInformation', {}, [pdu])),
      );
    } else return;
    this.h245Counters.endSessionsSent++;
  }

  #h245Out(to: Leg, pdu: Uint8Array, relayed = true): void {
    const l = this.#h245[to];
    if (relayed) this.h245Counters.relayed++;
    if (l.channel === 'up' && l.tunnelling === false) this.#io.h245!.send(to, pdu);
    else if (l.queue.length < 256) l.queue.push(pdu);
    else this.h245Counters.dropped++;
  }

  async #setup(m: CallSignallingMessage): Promise<void> {
    const body = m.uu!['h323-uu-pdu']['h323-message-body'];
    if (body.choice !== 'setup') return;
    const setup = body.value;
    this.#crA = m.q931.callReference;
    this.#callIdentifier = setup.callIdentifier?.guid;
    this.info.source = (setup.sourceAddress ?? []).map(aliasToText);
    this.info.destination = (setup.destinationAddress ?? []).map(aliasToText);
    this.#to('routing');
    // a neighbor zone may be asked (LRQ): later events of the call wait for the answer
    const target = await this.#io.resolve(this.info.destination, this.info.source);
    if ((this.#state as RoutedCallState) !== 'routing') return;
    if (target?.sourceZone !== undefined) this.info.sourceZone = target.sourceZone;
    if (!target || target.kind === 'not-found') {
      // H.225.0 §7.3.8 / Q.850: nobody by that alias — cause 1 (unallocated number), calledPartyNotRegistered
      this.#io.send(
        'a',
        releaseComplete(this.#crA, true, this.#callIdentifier, CAUSE.unallocatedNumber, 'calledPartyNotRegistered'),
      );
      this.info.endReason = 'calledPartyNotRegistered';
      this.#io.close('a');
      this.#to('released');
      return;
    }
    if (target.kind === 'rejected') {
      // refused by the node's call policy: Q.850 cause 21 (call rejected), H.225.0 securityDenied
      this.#io.send('a', releaseComplete(this.#crA, true, this.#callIdentifier, CAUSE.callRejected, 'securityDenied'));
      this.info.endReason = 'securityDenied';
      this.#io.close('a');
      this.#to('released');
      return;
    }
    const to = target.kind === 'endpoint' ? target.registration.callSignalAddresses[0]! : target.address;
    this.info.target = to;
    const targetZone = target.found?.zone ?? (target.kind === 'address' ? target.zone : undefined);
    if (targetZone !== undefined) this.info.targetZone = targetZone;
    // the alias the search rewrote (transform, rule) is what the callee's side is asked for
    const called = calledAfterRouting({ destinationAddress: setup.destinationAddress, ies: m.q931.ies }, target);
    const out: CallSignallingMessage = {
      q931: { ...m.q931, ies: called.ies, callReference: this.#crB, fromDestination: false },
      uu: {
        ...m.uu!,
        'h323-uu-pdu': {
          ...m.uu!['h323-uu-pdu'],
          // the node offers B tunnelling whatever A does; B's answer decides how leg B carries H.245
          ...(this.#io.h245 ? { h245Tunnelling: true } : {}),
          'h323-message-body': {
            choice: 'setup',
            value: {
              ...setup,
              ...(called.destinationAddress ? { destinationAddress: called.destinationAddress } : {}),
              destCallSignalAddress: h225Address(to.ip, to.port),
              sourceCallSignalAddress: h225Address(this.#io.localAddress.ip, this.#io.localAddress.port),
            },
          },
        },
      },
    };
    this.#pendingSetup = out;
    // the route is known (target, zones): listeners hear it before leg B is opened
    this.#tell();
    this.#io.connectB(to);
  }

  /** Leg B's TCP connection is up: the Setup goes out. */
  bConnected(): void {
    this.#run(async () => {
      if (this.#state !== 'routing' || !this.#pendingSetup) return;
      this.#io.send('b', encodeCallSignalling(this.#pendingSetup));
      this.#pendingSetup = undefined;
      this.#bUp = true;
      for (const m of this.#queued.splice(0)) {
        await this.#forward(m, 'a');
        if (this.#ended()) return;
      }
    });
  }

  /** Leg B could not be opened: the caller is told the destination is unreachable. */
  bFailed(why: string): void {
    this.#run(() => {
      if (this.#ended()) return;
      this.#io.send(
        'a',
        releaseComplete(this.#crA, true, this.#callIdentifier, CAUSE.noRoute, 'unreachableDestination'),
      );
      this.info.endReason = `unreachableDestination: ${why}`;
      this.#io.close('a');
      this.#to('released');
    });
  }

  /** A leg's byte stream is broken (bad or oversize TPKT): the call ends with ReleaseComplete undefinedReason. */
  broken(leg: Leg, why: string): void {
    this.#run(() => this.#abort(`leg ${leg}: ${why}`));
  }

  /** A leg's connection closed without a ReleaseComplete: the other leg is released. */
  closed(leg: Leg): void {
    this.#run(() => {
      if (this.#ended()) return;
      const other = otherLeg(leg);
      if (other === 'a' || this.#state !== 'routing') this.#endSession(other);
      if (other === 'a' || this.#state !== 'routing')
        this.#io.send(
          other,
          other === 'a'
            ? releaseComplete(this.#crA, true, this.#callIdentifier, CAUSE.normalClearing, 'undefinedReason')
            : releaseComplete(this.#crB, false, this.#callIdentifier, CAUSE.normalClearing, 'undefinedReason'),
        );
      this.info.endReason = `connection of leg ${leg} closed`;
      this.#io.close(other);
      this.#to('released');
    });
  }

  #relay(m: CallSignallingMessage, toward: Leg): void {
    const name = q931MessageName(m.q931.messageType);
    const out: CallSignallingMessage = {
      ...m,
      q931: {
        ...m.q931,
        callReference: toward === 'a' ? this.#crA : this.#crB,
        fromDestination: toward === 'a',
      },
    };
    this.#io.send(toward, encodeCallSignalling(out));
    if (toward === 'a') {
      if (name === 'callProceeding' && this.#state === 'routing') this.#to('proceeding');
      else if (name === 'alerting') this.#to('alerting');
      else if (name === 'connect') this.#to('connected');
    }
    if (name === 'releaseComplete') {
      this.info.endReason = `released by ${toward === 'a' ? 'callee' : 'caller'}`;
      this.#io.close('a');
      this.#io.close('b');
      this.#to('released');
    }
  }

  /**
   * The callee has not answered (Connect) within `seconds` of the Setup: both legs are released with Q.850 cause 102
   * (recovery on timer expiry). Nothing once the call is connected or over.
   */
  noAnswer(seconds: number): void {
    this.#run(() => {
      if (this.#ended() || this.#state === 'connected') return;
      this.#abort(`not answered within ${seconds} s`, CAUSE.recoveryOnTimerExpiry);
    });
  }

  #abort(why: string, cause: number = CAUSE.temporaryFailure): void {
    if (this.#ended()) return;
    this.info.endReason = why;
    // a leg that has H.245 hears EndSessionCommand first (H.323 §8.5), then the ReleaseComplete; the callee's leg
    // once its Setup went out
    if (this.#state !== 'setup-received') this.#endSession('a');
    if (this.#bUp) this.#endSession('b');
    this.#io.send('a', releaseComplete(this.#crA, true, this.#callIdentifier, cause, 'undefinedReason'));
    if (this.#bUp)
      this.#io.send('b', releaseComplete(this.#crB, false, this.#callIdentifier, cause, 'undefinedReason'));
    this.#io.close('a');
    this.#io.close('b');
    this.#to('released');
  }
}

/** The message with fields of its UUIE body replaced (undefined removes one). */
function withBody(m: CallSignallingMessage, fields: Partial<UuBody>): CallSignallingMessage {
  const uu = m.uu!;
  const body = uu['h323-uu-pdu']['h323-message-body'];
  const value: Record<string, unknown> = { ...(body.value as object) };
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) delete value[k];
    else value[k] = v;
  }
  return {
    ...m,
    uu: { ...uu, 'h323-uu-pdu': { ...uu['h323-uu-pdu'], 'h323-message-body': { ...body, value } as typeof body } },
  };
}

/** A Facility the node sends on a leg: tunnelled H.245 (transportedInformation) or startH245 with our address. */
export function facility(
  callReference: number,
  fromDestination: boolean,
  callIdentifier: Uint8Array | undefined,
  reason: 'transportedInformation' | 'startH245',
  extra: { h245Address?: H225_TransportAddress },
  h245Control: Uint8Array[] = [],
): CallSignallingMessage {
  return {
    q931: { callReference, fromDestination, callReferenceLength: 2, messageType: Q931_MESSAGE_TYPES.facility, ies: [] },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': {
          choice: 'facility',
          value: {
            protocolIdentifier: H225_PROTOCOL_ID,
            reason: { choice: reason, value: null },
            ...(callIdentifier ? { callIdentifier: { guid: callIdentifier } } : {}),
            ...extra,
          },
        },
        h245Tunnelling: reason === 'transportedInformation',
        ...(h245Control.length > 0 ? { h245Control } : {}),
      },
    },
  };
}
