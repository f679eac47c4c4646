/**
 * Calls the node carries: active calls with their legs, zones, timestamps and state, a bounded history of finished
 * calls in memory, and a call detail record for each finished call handed to a {@link CallRecordSink} (the store).
 * Protocol-neutral: SIP keys a call by Call-ID and From tag; H.323 will key it by its call identifier.
 */

/** RFC-free call states: `routing` (searching), `proceeding` (legs out, no answer yet), `active`, then an end. */
export type CallState = 'routing' | 'proceeding' | 'active' | 'ended' | 'failed';

const EDGES: Record<CallState, readonly CallState[]> = {
  routing: ['proceeding', 'failed'],
  proceeding: ['active', 'failed'],
  active: ['ended'],
  ended: [],
  failed: [],
};

/** One leg: where a branch of the call went. */
export interface CallLeg {
  zone: string;
  target: string;
  /** Last status seen on the leg (0: none yet). */
  status: number;
  startedAt: number;
}

export interface CallInfo {
  id: string;
  protocol: 'sip' | 'h323';
  state: CallState;
  from: string;
  to: string;
  sourceZone: string;
  /** Zone of the leg that answered. */
  targetZone?: string;
  searchId?: number;
  legs: CallLeg[];
  /** Wall-clock ms. */
  startedAt: number;
  answeredAt?: number;
  endedAt?: number;
  /** The final status that decided the call (SIP status; 200 for an answered call). */
  status?: number;
  /** Why it ended: `bye from caller`, `486 Busy Here`, `cancelled by caller`, `timeout`… */
  cause?: string;
  /** Media the node relayed, per direction, taken when the relay let go of the call (absent: not anchored). */
  media?: CallMedia;
  /**
   * Codecs each side sends (H.323) or lists in its SDP (SIP) and the relay ports facing each side, as the call goes;
   * kept in the record (absent: not anchored or not known).
   */
  mediaPath?: CallMediaPath;
}

/** A relay port pair (RTP, RTCP). */
export interface RelayPortPair {
  rtp: number;
  rtcp: number;
}

/** What the call's media looks like now: codecs per side and, per RTP session, the relay's ports facing each side. */
export interface CallMediaPath {
  /** Codecs each side sends on its open channels (`audio:g711Ulaw`…). */
  codecs: { caller: string[]; callee: string[] };
  /**
   * Per RTP session (H.323: its session id; SIP: the m= line's index): the relay's address toward the caller (and
   * toward the callee when it differs, `calleeAddress`) and its port pairs facing each side.
   */
  relay: Array<{
    session: number;
    address: string;
    calleeAddress?: string;
    caller: RelayPortPair;
    callee: RelayPortPair;
  }>;
}

/** Packets and bytes the node's relay received from one party, and when the last one came (wall-clock ms, 0: none). */
export interface CallMediaDirection {
  packets: number;
  bytes: number;
  lastAt: number;
}

export interface CallMedia {
  fromCaller: CallMediaDirection;
  fromCallee: CallMediaDirection;
}

/** A finished call as written to the store. */
export type CallRecord = CallInfo & { state: 'ended' | 'failed' };

/** Where call detail records go (the SQLite store; a cluster backend later). Must not throw. */
export interface CallRecordSink {
  write(record: CallRecord): void;
}

export interface CallRegistryOptions {
  historySize: number;
  /**
   * Most calls followed at once (default 100 000). Beyond it the oldest active call is closed with cause
   * `evicted: no BYE seen`: the proxy keeps no dialog timer, so a dialog whose BYE never crosses the node would
   * otherwise stay forever.
   */
  maxActive?: number;
  wallNow: () => number;
  sink?: CallRecordSink;
}

/** What the registry reports to listeners (management feedback): a call attempt, its answer, its end. */
export type CallEvent =
  | { kind: 'attempt'; call: Readonly<CallInfo> }
  | { kind: 'connected'; call: Readonly<CallInfo> }
  | { kind: 'disconnected'; call: Readonly<CallRecord> };

/** Active calls and a bounded ring of finished ones. */
export class CallRegistry {
  /** Told of every call attempt, answer and end; must not throw (a throw is swallowed). */
  onEvent: ((event: CallEvent) => void) | undefined;
  readonly #active = new Map<string, CallInfo>();
  readonly #history: CallRecord[] = [];
  readonly #opts: CallRegistryOptions;
  readonly counters = { started: 0, answered: 0, ended: 0, failed: 0 };

  constructor(opts: CallRegistryOptions) {
    this.#opts = opts;
  }

  /** A new call in `routing`. Returns undefined when a call with this id is already known. */
  start(init: {
    id: string;
    protocol: 'sip' | 'h323';
    from: string;
    to: string;
    sourceZone: string;
  }): CallInfo | undefined {
    if (this.#active.has(init.id)) return undefined;
    if (this.#active.size >= (this.#opts.maxActive ?? 100_000)) {
      const oldest = this.#active.keys().next().value;
      if (oldest !== undefined) this.finish(oldest, 0, 'evicted: no BYE seen');
    }
    const call: CallInfo = { ...init, state: 'routing', legs: [], startedAt: this.#opts.wallNow() };
    this.#active.set(init.id, call);
    this.counters.started++;
    this.#notify({ kind: 'attempt', call });
    return call;
  }

  get(id: string): CallInfo | undefined {
    return this.#active.get(id);
  }

  /** Routing found targets; the legs are added as they are forwarded. */
  addLeg(id: string, zone: string, target: string, searchId?: number): void {
    const call = this.#active.get(id);
    if (!call) return;
    if (searchId !== undefined) call.searchId = searchId;
    call.legs.push({ zone, target, status: 0, startedAt: this.#opts.wallNow() });
    if (call.state === 'routing') this.#transition(call, 'proceeding');
  }

  /** The zone the call comes from, once known better than at its start (H.323: after routing the Setup). */
  setSourceZone(id: string, zone: string): void {
    const call = this.#active.get(id);
    if (call) call.sourceZone = zone;
  }

  /** The call's media statistics, recorded with the call when it ends (the relay releases the call first). */
  setMedia(id: string, media: CallMedia): void {
    const call = this.#active.get(id);
    if (call) call.media = media;
  }

  /** The call's codecs and relay ports as they are now (replaced on each change; kept in the history and the record). */
  setMediaPath(id: string, path: CallMediaPath): void {
    const call = this.#active.get(id);
    if (call) call.mediaPath = path;
  }

  legStatus(id: string, leg: number, status: number): void {
    const l = this.#active.get(id)?.legs[leg];
    if (l) l.status = status;
  }

  /** The call was answered on `leg`. */
  answered(id: string, leg: number): void {
    const call = this.#active.get(id);
    if (call?.state !== 'proceeding') return;
    call.answeredAt = this.#opts.wallNow();
    call.status = 200;
    const l = call.legs[leg];
    if (l) call.targetZone = l.zone;
    this.#transition(call, 'active');
    this.counters.answered++;
    this.#notify({ kind: 'connected', call });
  }

  /** The call ended (active → ended) or failed before an answer; recorded with its cause. */
  finish(id: string, status: number, cause: string): void {
    const call = this.#active.get(id);
    if (!call) return;
    const to: CallState = call.state === 'active' ? 'ended' : 'failed';
    if (call.state !== 'active') call.status = status;
    call.cause = cause;
    call.endedAt = this.#opts.wallNow();
    this.#transition(call, to);
    this.#active.delete(id);
    this.counters[to]++;
    const record = call as CallRecord;
    this.#history.push(record);
    if (this.#history.length > this.#opts.historySize) this.#history.shift();
    this.#opts.sink?.write(record);
    this.#notify({ kind: 'disconnected', call: record });
  }

  #notify(event: CallEvent): void {
    try {
      this.onEvent?.(event);
    } catch {
      // a listener's failure is not the call's
    }
  }

  active(): CallInfo[] {
    return [...this.#active.values()];
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Finished calls, newest first. */
  history(limit = this.#history.length): CallRecord[] {
    return this.#history.slice(-limit).reverse();
  }

  #transition(call: CallInfo, to: CallState): void {
    if (!EDGES[call.state].includes(to)) return;
    call.state = to;
  }
}
