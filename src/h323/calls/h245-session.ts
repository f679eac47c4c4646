import type { MultimediaSystemControlMessage, TerminalCapabilitySet } from '../per/generated/types.ts';

/**
 * The node's own end of one call leg's H.245 session (H.245 §8.2 master/slave determination, §8.4 capability
 * exchange, §8.8 round-trip delay): a routed call runs one per leg, so each endpoint negotiates with the node, not
 * with the endpoint on the other leg. Sans-I/O: `receive` takes a decoded PDU from the leg and returns what the
 * node answers on that same leg, whether the PDU was terminated here (else the call relays it to the other leg),
 * and what it learnt. Logical channels, user input, mode requests and commands are not terminated: they belong to
 * the media path between the two endpoints and the call relays them (anchoring media addresses on the way).
 */

/** Outcome of master/slave determination on a leg, from the node's side. */
export type MsdResult = 'master' | 'slave' | 'pending' | 'failed';

export interface H245SessionOptions {
  /** The node's terminalType in MasterSlaveDetermination (H.323 Table 1 values; 0–255). */
  terminalType: number;
  /** A uniformly random statusDeterminationNumber, 0 … 2^24 − 1. */
  random: () => number;
  /** MasterSlaveDeterminationReject answers tolerated before determination fails (H.245 N100). */
  maxMsdRetries?: number;
}

/** What a leg's PDU did to its session. */
export interface H245SessionEffect {
  /** PDUs the node answers on the same leg, in order. */
  reply: MultimediaSystemControlMessage[];
  /** The PDU was handled here and must not reach the other leg. */
  terminated: boolean;
  /** The leg's new TerminalCapabilitySet (already acknowledged). */
  capabilities?: TerminalCapabilitySet;
  /** Determination failed for good (retries used up): the call cannot go on. */
  failed?: string;
}

/** H.245 counters of one leg's session (status and tests). */
export interface H245SessionCounters {
  msdSent: number;
  tcsSent: number;
  tcsAcked: number;
  tcsRejected: number;
  roundTripAnswered: number;
  /** The node's own requests the leg left unanswered past the response timer (T106 determination, T101 sets). */
  msdTimeouts: number;
  tcsTimeouts: number;
}

const SDN_MODULUS = 0x1000000;
const HALF = 0x800000;

const msd = (terminalType: number, statusDeterminationNumber: number): MultimediaSystemControlMessage => ({
  choice: 'request',
  value: { choice: 'masterSlaveDetermination', value: { terminalType, statusDeterminationNumber } },
});

/** An Ack telling the leg its own role (H.245 B.1.2: `decision` is the receiving terminal's). */
const msdAck = (theirRole: 'master' | 'slave'): MultimediaSystemControlMessage => ({
  choice: 'response',
  value: { choice: 'masterSlaveDeterminationAck', value: { decision: { choice: theirRole, value: null } } },
});

const MSD_REJECT: MultimediaSystemControlMessage = {
  choice: 'response',
  value: { choice: 'masterSlaveDeterminationReject', value: { cause: { choice: 'identicalNumbers', value: null } } },
};

const opposite = (r: 'master' | 'slave'): 'master' | 'slave' => (r === 'master' ? 'slave' : 'master');

export class H245Session {
  readonly #o: Required<H245SessionOptions>;
  /** MSD state (H.245 §C.2): idle, our request out (outgoing), or our Ack out after theirs (incoming). */
  #msdState: 'idle' | 'outgoing' | 'incoming' = 'idle';
  #sdn = 0;
  #retries = 0;
  #result: MsdResult = 'pending';
  #started = false;
  /** Sequence number of our last TerminalCapabilitySet and its encoded content (to send only what changed). */
  #tcsSeq = -1;
  #tcsSent: string | undefined;
  #tcsOutstanding = false;
  /** The leg's own latest set. */
  #theirs: TerminalCapabilitySet | undefined;
  readonly counters: H245SessionCounters = {
    msdSent: 0,
    tcsSent: 0,
    tcsAcked: 0,
    tcsRejected: 0,
    roundTripAnswered: 0,
    msdTimeouts: 0,
    tcsTimeouts: 0,
  };
  /** Bumped with each determination request: a response timer names the one it guards. */
  #msdGeneration = 0;

  constructor(o: H245SessionOptions) {
    this.#o = { maxMsdRetries: 3, ...o };
  }

  /** Whether the node has opened its side of the session (sent its determination request). */
  get started(): boolean {
    return this.#started;
  }

  /** The node's role on this leg once determined. */
  get result(): MsdResult {
    return this.#result;
  }

  /** The leg's latest TerminalCapabilitySet, as it sent it. */
  get capabilities(): TerminalCapabilitySet | undefined {
    return this.#theirs;
  }

  /** Our last set is not acknowledged yet. */
  get capabilitiesOutstanding(): boolean {
    return this.#tcsOutstanding;
  }

  /** Opens the node's side: its MasterSlaveDetermination request. Idempotent. */
  start(): MultimediaSystemControlMessage[] {
    if (this.#started) return [];
    this.#started = true;
    // the leg asked first and is answered already: one determination per session is enough
    if (this.#result !== 'pending') return [];
    return this.#msdRequest();
  }

  #msdRequest(): MultimediaSystemControlMessage[] {
    if (this.#msdState !== 'idle') return [];
    this.#sdn = this.#o.random() % SDN_MODULUS;
    this.#msdState = 'outgoing';
    this.#msdGeneration++;
    this.counters.msdSent++;
    return [msd(this.#o.terminalType, this.#sdn)];
  }

  /**
   * The node's capabilities toward this leg (what the other leg can do, filtered): a new TerminalCapabilitySet
   * with the session's next sequence number, or nothing when the leg was already told exactly this.
   */
  offerCapabilities(tcs: Omit<TerminalCapabilitySet, 'sequenceNumber'>): MultimediaSystemControlMessage[] {
    const key = JSON.stringify(tcs, (_k, v: unknown) => (v instanceof Uint8Array ? Array.from(v) : v));
    if (key === this.#tcsSent) return [];
    this.#tcsSent = key;
    this.#tcsSeq = (this.#tcsSeq + 1) % 256;
    this.#tcsOutstanding = true;
    this.counters.tcsSent++;
    return [
      {
        choice: 'request',
        value: { choice: 'terminalCapabilitySet', value: { ...tcs, sequenceNumber: this.#tcsSeq } },
      },
    ];
  }

  /** Names the request a response timer guards: the current determination, or the set with `sequence`. */
  pending(): { msd: number | undefined; tcs: number | undefined } {
    return {
      msd: this.#msdState === 'idle' ? undefined : this.#msdGeneration,
      tcs: this.#tcsOutstanding ? this.#tcsSeq : undefined,
    };
  }

  /**
   * The response timer of determination `generation` ran out (H.245 T106): if it is still undecided the node
   * releases it (MasterSlaveDeterminationRelease) and determination has failed.
   */
  msdTimedOut(generation: number): { reply: MultimediaSystemControlMessage[]; failed?: string } {
    if (this.#msdState === 'idle' || generation !== this.#msdGeneration) return { reply: [] };
    this.#msdState = 'idle';
    this.#result = 'failed';
    this.counters.msdTimeouts++;
    return {
      reply: [{ choice: 'indication', value: { choice: 'masterSlaveDeterminationRelease', value: {} } }],
      failed: 'master/slave determination: no answer from the endpoint',
    };
  }

  /**
   * The response timer of the node's set `sequence` ran out (H.245 T101): released
   * (TerminalCapabilitySetRelease), and offered again the next time the capabilities are computed.
   */
  tcsTimedOut(sequence: number): MultimediaSystemControlMessage[] {
    if (!this.#tcsOutstanding || sequence !== this.#tcsSeq) return [];
    this.#tcsOutstanding = false;
    this.#tcsSent = undefined;
    this.counters.tcsTimeouts++;
    return [{ choice: 'indication', value: { choice: 'terminalCapabilitySetRelease', value: {} } }];
  }

  /** A PDU from the leg. */
  receive(m: MultimediaSystemControlMessage): H245SessionEffect {
    const none: H245SessionEffect = { reply: [], terminated: false };
    if (m.choice === '$unknown') return none;
    const v = m.value;
    if (m.choice === 'request') {
      if (v.choice === 'masterSlaveDetermination')
        return this.#onMsd(v.value.terminalType, v.value.statusDeterminationNumber);
      if (v.choice === 'terminalCapabilitySet') {
        this.#theirs = v.value;
        return {
          reply: [
            {
              choice: 'response',
              value: { choice: 'terminalCapabilitySetAck', value: { sequenceNumber: v.value.sequenceNumber } },
            },
          ],
          terminated: true,
          capabilities: v.value,
        };
      }
      if (v.choice === 'roundTripDelayRequest') {
        this.counters.roundTripAnswered++;
        return {
          reply: [
            {
              choice: 'response',
              value: { choice: 'roundTripDelayResponse', value: { sequenceNumber: v.value.sequenceNumber } },
            },
          ],
          terminated: true,
        };
      }
      return none;
    }
    if (m.choice === 'response') {
      if (v.choice === 'masterSlaveDeterminationAck') return this.#onMsdAck(v.value.decision.choice);
      if (v.choice === 'masterSlaveDeterminationReject') return this.#onMsdReject();
      if (v.choice === 'terminalCapabilitySetAck' || v.choice === 'terminalCapabilitySetReject') {
        if (v.value.sequenceNumber === this.#tcsSeq && this.#tcsOutstanding) {
          this.#tcsOutstanding = false;
          if (v.choice === 'terminalCapabilitySetAck') this.counters.tcsAcked++;
          else {
            this.counters.tcsRejected++;
            // offered again (same content) the next time the capabilities are computed
            this.#tcsSent = undefined;
          }
        }
        return { reply: [], terminated: true };
      }
      // ours are never sent: an answer to a request the node did not make goes nowhere
      if (v.choice === 'roundTripDelayResponse') return { reply: [], terminated: true };
      return none;
    }
    if (m.choice === 'indication') {
      if (v.choice === 'masterSlaveDeterminationRelease') {
        // the leg gave up waiting for our answer (its T106): determination starts over from idle
        this.#msdState = 'idle';
        this.#result = 'pending';
        return { reply: [], terminated: true };
      }
      if (v.choice === 'terminalCapabilitySetRelease') return { reply: [], terminated: true };
    }
    return none;
  }

  /** The leg asks for determination (H.245 §8.2, SDL in C.2): compare types, then status numbers. */
  #onMsd(terminalType: number, theirs: number): H245SessionEffect {
    let mine: 'master' | 'slave' | undefined;
    if (terminalType < this.#o.terminalType) mine = 'master';
    else if (terminalType > this.#o.terminalType) mine = 'slave';
    else {
      // our number: the one we sent while a request is out, else a fresh one (the leg asked first)
      const ours = this.#msdState === 'outgoing' ? this.#sdn : this.#o.random() % SDN_MODULUS;
      const diff = (theirs - ours + SDN_MODULUS) % SDN_MODULUS;
      if (diff === 0 || diff === HALF) {
        // indeterminate (H.245 C.2): with our request out we try again with a new number, else the leg is refused
        // and tries again itself
        if (this.#msdState !== 'outgoing') return { reply: [MSD_REJECT], terminated: true };
        return this.#retry();
      }
      mine = diff < HALF ? 'master' : 'slave';
    }
    this.#result = mine;
    this.#msdState = 'incoming';
    this.#started = true;
    return { reply: [msdAck(opposite(mine))], terminated: true };
  }

  #onMsdAck(ourRole: 'master' | 'slave'): H245SessionEffect {
    if (this.#msdState === 'outgoing') {
      // our request answered: we confirm with our own Ack (H.245 §8.2: the leg waits for it)
      this.#result = ourRole;
      this.#msdState = 'idle';
      return { reply: [msdAck(opposite(ourRole))], terminated: true };
    }
    if (this.#msdState === 'incoming') {
      // the leg confirms what we told it; a contradiction fails determination (H.245 C.2: inconsistent field)
      this.#msdState = 'idle';
      if (this.#result !== ourRole) {
        this.#result = 'failed';
        return { reply: [], terminated: true, failed: 'master/slave determination: the Ack contradicts ours' };
      }
      return { reply: [], terminated: true };
    }
    return { reply: [], terminated: true };
  }

  #onMsdReject(): H245SessionEffect {
    if (this.#msdState !== 'outgoing') return { reply: [], terminated: true };
    return this.#retry();
  }

  /** Our request failed to decide: a new one with a new number, until the retries are used up (N100). */
  #retry(): H245SessionEffect {
    this.#msdState = 'idle';
    if (this.#retries >= this.#o.maxMsdRetries) {
      this.#result = 'failed';
      return { reply: [], terminated: true, failed: 'master/slave determination: identical numbers, retries used up' };
    }
    this.#retries++;
    return { reply: this.#msdRequest(), terminated: true };
  }
}
