import { type AliasText, aliasToText, h225Address, type IpPort } from '../api.ts';
import type { H323Target } from '../gatekeeper/gatekeeper.ts';
import type { ReleaseCompleteReason } from '../per/generated/types.ts';
import { type CallSignallingMessage, decodeCallSignalling, encodeCallSignalling } from '../q931/call-signalling.ts';
import { encodeCause, IE, q931MessageName } from '../q931/q931.ts';

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
  resolve(destination: AliasText[], source: AliasText[]): H323Target | undefined | Promise<H323Target | undefined>;
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
  /** The node's own call signalling address (put in Setup.sourceCallSignalAddress toward B). */
  readonly localAddress: IpPort;
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
}

/** Q.931 cause values used when the node itself clears a leg (Q.850). */
export const CAUSE = { unallocatedNumber: 1, normalClearing: 16, noRoute: 3, temporaryFailure: 41 } as const;

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
  readonly info: RoutedCallInfo;
  /** Told once when the call ends. */
  onEnd: (info: RoutedCallInfo) => void = () => {};
  /** Told of every state change, the end included (call records, status); must not throw. */
  onState: (info: RoutedCallInfo) => void = () => {};

  constructor(id: string, io: CallIo, callReferenceB: number, now: () => number) {
    this.#io = io;
    this.#now = now;
    this.#crB = callReferenceB;
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
    };
  }

  get state(): RoutedCallState {
    return this.#state;
  }

  #to(next: RoutedCallState): boolean {
    if (!EDGES[this.#state].includes(next)) return false;
    this.#state = next;
    this.info.state = next;
    if (next === 'connected') this.info.connectedAt = this.#now();
    if (next === 'released') this.info.endedAt = this.#now();
    try {
      this.onState(this.info);
    } catch {
      // a listener's fault is its own
    }
    if (next === 'released') this.onEnd(this.info);
    return true;
  }

  #busy = false;
  readonly #backlog: Array<() => undefined | Promise<void>> = [];

  /** Runs PDU handlers in arrival order; one that waits (media anchoring) holds back the ones after it. */
  #run(fn: () => undefined | Promise<void>): void {
    if (this.#busy) {
      this.#backlog.push(fn);
      return;
    }
    const r = fn();
    if (!r) return;
    this.#busy = true;
    void r
      .catch((e: unknown) => this.#abort(`media anchoring failed: ${(e as Error).message}`))
      .finally(() => {
        this.#busy = false;
        const next = this.#backlog.shift();
        if (next) this.#run(next);
        while (!this.#busy && this.#backlog.length > 0) this.#run(this.#backlog.shift()!);
      });
  }

  /** A PDU from the caller's leg; a malformed one ends the call (ReleaseComplete undefinedReason both ways). */
  fromA(pdu: Uint8Array): void {
    this.#run(() => this.#fromA(pdu));
  }

  /** A PDU from the callee's leg. */
  fromB(pdu: Uint8Array): void {
    this.#run(() => this.#fromB(pdu));
  }

  #withFastStart(
    m: CallSignallingMessage,
    from: Leg,
    then: (m: CallSignallingMessage) => void | Promise<void>,
  ): undefined | Promise<void> {
    const body = m.uu?.['h323-uu-pdu']['h323-message-body'];
    const fs = body && 'value' in body ? (body.value as { fastStart?: Uint8Array[] } | null)?.fastStart : undefined;
    const anchor = this.#io.anchorFastStart;
    if (!anchor || !fs || fs.length === 0 || !body) {
      const r = then(m);
      return r instanceof Promise ? r : undefined;
    }
    return anchor(from, fs).then((olcs) => {
      const uu = m.uu!;
      return then({
        ...m,
        uu: {
          ...uu,
          'h323-uu-pdu': {
            ...uu['h323-uu-pdu'],
            'h323-message-body': { ...body, value: { ...(body.value as object), fastStart: olcs } } as typeof body,
          },
        },
      });
    });
  }

  #fromA(pdu: Uint8Array): undefined | Promise<void> {
    const d = decodeCallSignalling(pdu);
    if (!d.ok) {
      this.#abort(`malformed PDU from the caller: ${d.reason}`);
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
      return this.#withFastStart(m, 'a', (x) => this.#setup(x));
    }
    if (this.#state === 'released') return;
    if (this.#state === 'routing' && !this.#bUp) {
      // leg B is being opened: what the caller sends meanwhile (tunnelled H.245, Information) waits for it
      if (this.#queued.length < 32) this.#queued.push(m);
      return;
    }
    return this.#withFastStart(m, 'a', (x) => this.#relay(x, 'b'));
  }

  #fromB(pdu: Uint8Array): undefined | Promise<void> {
    if (this.#state === 'released') return;
    const d = decodeCallSignalling(pdu);
    if (!d.ok) {
      this.#abort(`malformed PDU from the callee: ${d.reason}`);
      return;
    }
    return this.#withFastStart(d.value, 'b', (x) => {
      if (this.#state !== 'released') this.#relay(x, 'a');
    });
  }

  #setup(m: CallSignallingMessage): undefined | Promise<void> {
    const body = m.uu!['h323-uu-pdu']['h323-message-body'];
    if (body.choice !== 'setup') return;
    const setup = body.value;
    this.#crA = m.q931.callReference;
    this.#callIdentifier = setup.callIdentifier?.guid;
    this.info.source = (setup.sourceAddress ?? []).map(aliasToText);
    this.info.destination = (setup.destinationAddress ?? []).map(aliasToText);
    this.#to('routing');
    const found = this.#io.resolve(this.info.destination, this.info.source);
    if (!(found instanceof Promise)) return this.#routed(m, found);
    // a neighbor zone is being asked (LRQ): the caller may hang up meanwhile
    return found.then((t) => (this.#state === 'routing' ? this.#routed(m, t) : undefined));
  }

  #routed(m: CallSignallingMessage, target: H323Target | undefined): undefined {
    const body = m.uu!['h323-uu-pdu']['h323-message-body'];
    if (body.choice !== 'setup') return;
    const setup = body.value;
    if (!target) {
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
    const to = target.kind === 'endpoint' ? target.registration.callSignalAddresses[0]! : target.address;
    this.info.target = to;
    const out: CallSignallingMessage = {
      q931: { ...m.q931, callReference: this.#crB, fromDestination: false },
      uu: {
        ...m.uu!,
        'h323-uu-pdu': {
          ...m.uu!['h323-uu-pdu'],
          'h323-message-body': {
            choice: 'setup',
            value: {
              ...setup,
              destCallSignalAddress: h225Address(to.ip, to.port),
              sourceCallSignalAddress: h225Address(this.#io.localAddress.ip, this.#io.localAddress.port),
            },
          },
        },
      },
    };
    this.#pendingSetup = out;
    this.#io.connectB(to);
  }

  /** Leg B's TCP connection is up: the Setup goes out. */
  bConnected(): void {
    if (this.#state !== 'routing' || !this.#pendingSetup) return;
    this.#io.send('b', encodeCallSignalling(this.#pendingSetup));
    this.#pendingSetup = undefined;
    this.#bUp = true;
    for (const m of this.#queued.splice(0)) this.#relay(m, 'b');
  }

  /** Leg B could not be opened: the caller is told the destination is unreachable. */
  bFailed(why: string): void {
    if (this.#state === 'released') return;
    this.#io.send('a', releaseComplete(this.#crA, true, this.#callIdentifier, CAUSE.noRoute, 'unreachableDestination'));
    this.info.endReason = `unreachableDestination: ${why}`;
    this.#io.close('a');
    this.#to('released');
  }

  /** A leg's byte stream is broken (bad or oversize TPKT): the call ends with ReleaseComplete undefinedReason. */
  broken(leg: Leg, why: string): void {
    this.#abort(`leg ${leg}: ${why}`);
  }

  /** A leg's connection closed without a ReleaseComplete: the other leg is released. */
  closed(leg: Leg): void {
    if (this.#state === 'released') return;
    const other: Leg = leg === 'a' ? 'b' : 'a';
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

  #abort(why: string): void {
    if (this.#state === 'released') return;
    this.info.endReason = why;
    this.#io.send(
      'a',
      releaseComplete(this.#crA, true, this.#callIdentifier, CAUSE.temporaryFailure, 'undefinedReason'),
    );
    if (this.#state !== 'setup-received' && this.#state !== 'routing')
      this.#io.send(
        'b',
        releaseComplete(this.#crB, false, this.#callIdentifier, CAUSE.temporaryFailure, 'undefinedReason'),
      );
    this.#io.close('a');
    this.#io.close('b');
    this.#to('released');
  }
}
