import { InternalError, OperationalError } from '../../common/errors.ts';
import { category, type Logger, RateLimitedLog, silentLogger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import { createResponse } from '../message/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '../message/types.ts';
import { buildCancel } from './cancel.ts';
import { InviteClientTransaction } from './invite-client.ts';
import { InviteServerTransaction } from './invite-server.ts';
import { branchOf, clientKey, clientKeyOfResponse, isRfc3261Branch, serverMatch } from './keys.ts';
import { NonInviteClientTransaction } from './non-invite-client.ts';
import { NonInviteServerTransaction } from './non-invite-server.ts';
import { cseq, newBranch, setTopViaBranch, topVia } from './sip-access.ts';
import { resolveTimers } from './timer-values.ts';
import type { TransactionBase, TransactionEnv, TransactionEvents } from './transaction.ts';
import type {
  ClientTransactionHandle,
  Destination,
  OutboundTarget,
  PreparedSend,
  TransactionHandle,
  TransactionKind,
  TransactionSender,
  TransactionTimerConfig,
  TransactionUser,
  TransportInfo,
} from './types.ts';

export type ClientTransaction = InviteClientTransaction | NonInviteClientTransaction;
export type ServerTransaction = InviteServerTransaction | NonInviteServerTransaction;
export type Transaction = ClientTransaction | ServerTransaction;

/** What `receive` did with a message (for counters, tests and the transport's logs). */
export type ReceiveOutcome =
  | { action: 'new-transaction'; transaction: ServerTransaction }
  /** `transaction` is absent for a compact completed record whose handle nobody holds any more. */
  | { action: 'retransmission'; transaction?: ServerTransaction }
  | { action: 'ack-absorbed'; transaction: InviteServerTransaction }
  | { action: 'ack-to-tu'; transaction?: InviteServerTransaction }
  | { action: 'response'; transaction: ClientTransaction }
  | { action: 'stray-response' }
  | { action: 'dropped'; reason: string };

export interface TransactionLayerOptions {
  clock: Clock;
  /** T1/T2/T4 from config `sip.timers`, plus optional Timer D and 100 Trying delay. */
  timers: TransactionTimerConfig;
  sender: TransactionSender;
  user: TransactionUser;
  log?: Logger;
  /**
   * Most live transactions (client plus server, compact completed records not counted) the table holds, default
   * 100 000. Beyond it a new request is answered 503 statelessly (RFC 3261 §21.5.4) and `sendRequest` throws an
   * `OperationalError` (`ERR_TSX_TABLE_FULL`).
   */
  maxTransactions?: number;
  /**
   * Most compact records of non-INVITE server transactions completed over UDP (RFC 3261 §17.2.2 Completed, Timer J
   * = 64*T1), default 1 000 000 (20,000 tx/s for 32 s = 640,000). When full, the oldest record ends early (counted in
   * `completedEvicted`): its request's retransmissions, if any still come, are then new requests.
   */
  maxCompletedTransactions?: number;
}

/** Default cap on live transactions. */
export const DEFAULT_MAX_TRANSACTIONS = 100_000;
/** Default cap on compact completed non-INVITE server transactions. */
export const DEFAULT_MAX_COMPLETED_TRANSACTIONS = 1_000_000;

/**
 * What is left of a non-INVITE server transaction in Completed on an unreliable transport: what RFC 3261 §17.2.2
 * needs to absorb retransmissions ("pass the final response to the transport layer for retransmission whenever a
 * retransmission of the request is received") and when Timer J ends it. It is itself the prepared send (bytes and
 * destination) when the sender prepares; otherwise it keeps the response message and its target.
 */
class CompletedRecord implements PreparedSend {
  constructor(
    readonly key: string,
    /** Clock time at which Timer J fires. */
    readonly at: number,
    /** The response bytes: `length` bytes at `offset` in an arena chunk (a view is made only to re-send). */
    readonly chunk: Buffer,
    readonly offset: number,
    readonly length: number,
    readonly to: unknown,
    readonly response: SipResponse | undefined,
    readonly target: OutboundTarget | undefined,
    /** The transaction handle, for `onTerminated` if the TU still holds it; undefined when the TU has no such hook. */
    readonly handle: WeakRef<NonInviteServerTransaction> | undefined,
  ) {}

  get bytes(): Buffer {
    return this.chunk.subarray(this.offset, this.offset + this.length);
  }
}

const NO_BYTES = Buffer.alloc(0);
const ARENA_CHUNK = 64 * 1024;

/**
 * Response bytes of compact records, copied one after the other into 64 KiB chunks. Records end in the order they
 * were made (one Timer J for all), so a chunk is freed soon after its last record: kept bytes never pin the unrelated
 * buffers a shared pool slab would hold, and a record keeps an offset, not a Buffer view of its own.
 */
class ByteArena {
  #chunk = Buffer.allocUnsafeSlow(ARENA_CHUNK);
  #used = 0;
  /** Set by `copy`: where the bytes went. */
  chunk: Buffer = NO_BYTES;
  offset = 0;

  copy(bytes: Buffer): void {
    if (bytes.length > ARENA_CHUNK / 8) {
      this.chunk = Buffer.from(bytes);
      this.offset = 0;
      return;
    }
    if (this.#used + bytes.length > ARENA_CHUNK) {
      this.#chunk = Buffer.allocUnsafeSlow(ARENA_CHUNK);
      this.#used = 0;
    }
    bytes.copy(this.#chunk, this.#used);
    this.chunk = this.#chunk;
    this.offset = this.#used;
    this.#used += bytes.length;
  }
}

/**
 * A flat copy of a table key. Keys are built from slices of a request's header text; kept as is for 32 s they would
 * pin that whole text.
 */
function ownKey(key: string): string {
  // A string through JSON comes back as a new sequential string (measured: 1,014 -> 548 B per record).
  return JSON.parse(JSON.stringify(key)) as string;
}

/** Seconds the stateless 503 of a full table asks the peer to wait (Retry-After). */
const OVERLOAD_RETRY_AFTER_S = 5;

/** What `cancel` did: sent the CANCEL, will send it on the first provisional response, or found it too late. */
export type CancelOutcome =
  | { status: 'sent'; transaction: ClientTransactionHandle }
  | { status: 'pending' }
  | { status: 'too-late' };

/** Monotonic counters of the layer. */
export interface TransactionCounters {
  created: { ict: number; nict: number; ist: number; nist: number };
  requestRetransmissionsAbsorbed: number;
  acksAbsorbed: number;
  strayResponses: number;
  dropped: number;
  /** New requests refused with 503 because the table was full. */
  overloaded: number;
  /** Compact completed records ended before Timer J because `maxCompletedTransactions` was reached. */
  completedEvicted: number;
  timeouts: number;
  transportErrors: number;
}

/**
 * The RFC 3261 §17 transaction layer: owns the table of client and server transactions, matches inbound messages to
 * them (§17.1.3, §17.2.3 with the RFC 2543 fallback, §9.2 for CANCEL), creates server transactions for new requests
 * and client transactions for the TU's requests, and routes the machines' upcalls to the TU. Sans-I/O: messages come
 * in through `receive`, go out through the injected sender; time comes from the injected clock.
 */
export class TransactionLayer {
  readonly #client = new Map<string, ClientTransaction>();
  readonly #server = new Map<string, ServerTransaction>();
  /** Compact Completed non-INVITE server transactions by key, and the same in order of Timer J (one lifetime). */
  readonly #completed = new Map<string, CompletedRecord>();
  #ring: CompletedRecord[] = [];
  #ringHead = 0;
  #ringTimer: TimerHandle | undefined;
  readonly #clock: Clock;
  /** Timer J on UDP, and how late a record may end so that one timer serves many (T1/5: 100 ms at T1 = 500). */
  readonly #timerJ: number;
  readonly #ringSlack: number;
  readonly #maxCompleted: number;
  readonly #arena = new ByteArena();
  /** INVITE client transactions still in Calling whose CANCEL waits for a provisional response (§9.1). */
  readonly #pendingCancels = new Set<string>();
  readonly #user: TransactionUser;
  readonly #sender: TransactionSender;
  readonly #log: Logger;
  readonly #badInput: RateLimitedLog;
  /** One environment per machine kind (log category `sip.tsx.<kind>`) and transport reliability. */
  readonly #envs: Record<`${TransactionKind}:${'r' | 'u'}`, TransactionEnv>;
  readonly #counters: TransactionCounters = {
    created: { ict: 0, nict: 0, ist: 0, nist: 0 },
    requestRetransmissionsAbsorbed: 0,
    acksAbsorbed: 0,
    strayResponses: 0,
    dropped: 0,
    overloaded: 0,
    timeouts: 0,
    transportErrors: 0,
    completedEvicted: 0,
  };
  readonly #max: number;
  #closed = false;

  constructor(options: TransactionLayerOptions) {
    const { t1, t2 } = options.timers;
    if (!(t1 > 0 && t2 >= t1 && options.timers.t4 > 0)) {
      throw new InternalError('ERR_TSX_TIMERS', `invalid transaction timers t1=${t1} t2=${t2} t4=${options.timers.t4}`);
    }
    this.#user = options.user;
    this.#max = options.maxTransactions ?? DEFAULT_MAX_TRANSACTIONS;
    this.#maxCompleted = options.maxCompletedTransactions ?? DEFAULT_MAX_COMPLETED_TRANSACTIONS;
    this.#clock = options.clock;
    this.#log = category(options.log ?? silentLogger, 'sip.tsx');
    this.#badInput = new RateLimitedLog(this.#log, () => options.clock.now());
    const events: TransactionEvents = {
      response: (tx, response, info) => {
        this.#toUser('onResponse', () => this.#user.onResponse(response, tx as ClientTransaction, info));
        if (this.#pendingCancels.has(tx.key)) this.#releaseCancel(tx as ClientTransaction, response.status);
      },
      timeout: (tx) => {
        this.#counters.timeouts++;
        this.#toUser('onTimeout', () => this.#user.onTimeout(tx as Transaction));
      },
      transportError: (tx) => {
        this.#counters.transportErrors++;
        this.#toUser('onTransportError', () => this.#user.onTransportError(tx as Transaction));
      },
      terminated: (tx) => this.#onTerminated(tx),
      completed: (tx, response, prepared, target) => this.#compact(tx, response, prepared, target),
    };
    // The sender must not throw; if it does anyway, the send counts as a transport error of its transaction.
    const sender: TransactionSender = {
      send: (message, target, key) => {
        try {
          options.sender.send(message, target, key);
        } catch (err) {
          this.#log.error({ err, key }, 'sender threw => transport error');
          if (key !== undefined) this.transportError(key);
        }
      },
    };
    const inner = options.sender;
    if (inner.prepare && inner.sendPrepared) {
      sender.prepare = (message, target) => {
        try {
          return inner.prepare!(message, target);
        } catch (err) {
          this.#log.error({ err }, 'sender prepare threw => message sent unprepared');
          return undefined;
        }
      };
      sender.sendPrepared = (prepared, key) => {
        try {
          inner.sendPrepared!(prepared, key);
        } catch (err) {
          this.#log.error({ err, key }, 'sender threw => transport error');
          if (key !== undefined) this.transportError(key);
        }
      };
    }
    this.#sender = sender;
    const base = { clock: options.clock, sender, events, log: this.#log };
    const reliable = resolveTimers(options.timers, true);
    const unreliable = resolveTimers(options.timers, false);
    const envs = {} as Record<`${TransactionKind}:${'r' | 'u'}`, TransactionEnv>;
    for (const kind of ['ict', 'nict', 'ist', 'nist'] as const) {
      const log = category(options.log ?? silentLogger, `sip.tsx.${kind}`);
      envs[`${kind}:r`] = { ...base, log, timers: reliable };
      envs[`${kind}:u`] = { ...base, log, timers: unreliable };
    }
    this.#envs = envs;
    this.#timerJ = unreliable.J;
    this.#ringSlack = Math.max(1, Math.floor(t1 / 5));
  }

  /** Transactions in the table now (server: live ones plus compact completed records). */
  get size(): { client: number; server: number } {
    return { client: this.#client.size, server: this.#server.size + this.#completed.size };
  }

  /** Compact completed non-INVITE server transactions (included in `size.server`). */
  get completedSize(): number {
    return this.#completed.size;
  }

  get counters(): Readonly<TransactionCounters> {
    return this.#counters;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** A transaction by its key (as passed to the sender), if still in the table. */
  find(key: string): Transaction | undefined {
    return this.#client.get(key) ?? this.#server.get(key);
  }

  /**
   * Starts a client transaction for a request the TU built (RFC 3261 §17.1). The branch is taken from the top Via;
   * when the top Via has no RFC 3261 branch, a fresh one is generated and set in the request. ACK is never sent through
   * a client transaction (the ACK for a 2xx is the TU's, §13.2.2.4): use `sendStateless`.
   */
  sendRequest(request: SipRequest, destination: Destination): ClientTransactionHandle {
    if (this.#closed) throw new InternalError('ERR_TSX_CLOSED', 'transaction layer is closed');
    if (request.method === 'ACK') {
      throw new InternalError('ERR_TSX_ACK', 'an ACK has no client transaction; send it with sendStateless');
    }
    const via = topVia(request);
    if (!via) throw new InternalError('ERR_TSX_NO_VIA', `${request.method} has no (valid) top Via`);
    const cs = cseq(request);
    if (!cs || cs.method !== request.method) {
      throw new InternalError('ERR_TSX_BAD_CSEQ', `${request.method} has no CSeq or a CSeq of another method`);
    }
    let branch = branchOf(via);
    if (!isRfc3261Branch(branch)) {
      // RFC 3261 §8.1.1.7: "The branch ID inserted by an element compliant with this specification MUST always begin
      // with the characters 'z9hG4bK'".
      branch = newBranch();
      setTopViaBranch(request, branch);
    }
    const key = clientKey(branch, request.method);
    if (this.#client.has(key)) {
      throw new InternalError('ERR_TSX_DUPLICATE', `a client transaction with branch ${branch} and method exists`);
    }
    if (this.#client.size + this.#server.size >= this.#max) {
      throw new OperationalError('ERR_TSX_TABLE_FULL', `transaction table full (${this.#max})`);
    }
    const reliable = destination.reliable ?? destination.transport.toUpperCase() !== 'UDP';
    const r = reliable ? 'r' : 'u';
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(key, request, branch, destination, this.#envs[`ict:${r}`])
        : new NonInviteClientTransaction(key, request, branch, destination, this.#envs[`nict:${r}`]);
    this.#counters.created[tx.kind]++;
    this.#client.set(key, tx);
    tx.start();
    return tx;
  }

  /**
   * Sends a message outside any transaction: the ACK for a 2xx (to a destination), a request forwarded statelessly,
   * or a response sent back by its top Via (`{ kind: 'response' }`, with the request's transport info if known).
   */
  sendStateless(message: SipMessage, target: Destination | OutboundTarget): void {
    this.#sender.send(message, 'kind' in target ? target : { kind: 'request', destination: target });
  }

  /** A message from the transport layer (already parsed and checked by the message layer). */
  receive(message: SipMessage, info: TransportInfo): ReceiveOutcome {
    if (this.#closed) return this.#drop('layer closed', message);
    return message.kind === 'response' ? this.#receiveResponse(message, info) : this.#receiveRequest(message, info);
  }

  /** The transport layer failed to send a message of the transaction with this key. Returns false if unknown. */
  transportError(transactionKey: string): boolean {
    const rec = this.#completed.get(transactionKey);
    if (rec) {
      // RFC 3261 §17.2.4 and Figure 8: "Transport Err. / Inform TU" from Completed, to Terminated.
      this.#completed.delete(transactionKey);
      if (this.#completed.size === 0) {
        // Nothing left to expire: no timer stays armed for records already gone.
        this.#ringTimer?.cancel();
        this.#ringTimer = undefined;
        this.#ring = [];
        this.#ringHead = 0;
      }
      const tx = rec.handle?.deref();
      if (tx) tx.transportError();
      else this.#counters.transportErrors++;
      return true;
    }
    const tx = this.find(transactionKey);
    if (!tx) return false;
    tx.transportError();
    return true;
  }

  /**
   * The INVITE server transaction a CANCEL cancels (RFC 3261 §9.2: "applying the transaction matching procedures of
   * Section 17.2.3" as if the CANCEL's method were that of the request to cancel), if it is still in the table.
   */
  matchCancel(cancel: SipRequest): InviteServerTransaction | undefined {
    const m = serverMatch(cancel, 'INVITE');
    if (!m) return undefined;
    const tx = this.#server.get(m.key);
    if (!(tx instanceof InviteServerTransaction)) return undefined;
    if (m.rfc2543 && m.toTag !== tx.requestToTag) return undefined;
    return tx;
  }

  /**
   * Cancels an INVITE the TU sent (RFC 3261 §9.1) with a CANCEL built from it, sent to the same destination in a
   * client transaction of its own. "If no provisional response has been received, the CANCEL request MUST NOT be
   * sent; rather, the client MUST wait for the arrival of a provisional response before sending the request": in
   * Calling the CANCEL is held and sent on the first 1xx (dropped if a final response or a timeout comes first).
   * "If the request has generated a final response, the CANCEL ... has no effect": after one, nothing is sent.
   */
  cancel(invite: ClientTransactionHandle): CancelOutcome {
    const tx = this.#client.get(invite.key);
    if (tx !== invite || !(tx instanceof InviteClientTransaction)) {
      // RFC 3261 §9.1: "CANCEL should not be sent to cancel requests other than INVITE."
      if (invite.kind !== 'ict') throw new InternalError('ERR_TSX_CANCEL', `cannot CANCEL a ${invite.request.method}`);
      return { status: 'too-late' };
    }
    if (tx.state === 'Calling') {
      this.#pendingCancels.add(tx.key);
      return { status: 'pending' };
    }
    if (tx.state !== 'Proceeding') return { status: 'too-late' };
    return { status: 'sent', transaction: this.sendRequest(buildCancel(tx.request), tx.destination) };
  }

  #releaseCancel(tx: ClientTransaction, status: number): void {
    this.#pendingCancels.delete(tx.key);
    if (status < 200 && tx.state === 'Proceeding' && !this.#closed) {
      this.#toUser('cancel', () => this.sendRequest(buildCancel(tx.request), tx.destination));
    }
  }

  /** Ends every transaction (cancelling every timer) and refuses further work. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const tx of [...this.#client.values(), ...this.#server.values()]) tx.terminate();
    this.#ringTimer?.cancel();
    this.#ringTimer = undefined;
    const records = [...this.#completed.values()];
    this.#completed.clear();
    this.#ring = [];
    this.#ringHead = 0;
    for (const rec of records) rec.handle?.deref()?.terminate();
  }

  /** Takes over Completed of a non-INVITE server transaction on an unreliable transport (see `CompletedRecord`). */
  #compact(tx: TransactionBase, response: SipResponse, prepared: PreparedSend | undefined, target: OutboundTarget) {
    if (this.#closed || this.#server.get(tx.key) !== tx || !(tx instanceof NonInviteServerTransaction)) return false;
    if (this.#completed.size >= this.#maxCompleted) this.#evictOldest();
    const handle = this.#user.onTerminated ? new WeakRef(tx) : undefined;
    const key = ownKey(tx.key);
    const at = this.#clock.now() + this.#timerJ;
    let rec: CompletedRecord;
    if (prepared) {
      const arena = this.#arena;
      arena.copy(prepared.bytes);
      rec = new CompletedRecord(
        key,
        at,
        arena.chunk,
        arena.offset,
        prepared.bytes.length,
        prepared.to,
        undefined,
        undefined,
        handle,
      );
    } else {
      rec = new CompletedRecord(key, at, NO_BYTES, 0, 0, undefined, response, target, handle);
    }
    this.#server.delete(tx.key);
    this.#completed.set(key, rec);
    this.#ring.push(rec);
    if (!this.#ringTimer) this.#armRing();
    return true;
  }

  /** Arms the one expiry timer for the oldest record (never earlier than its Timer J). */
  #armRing(): void {
    const head = this.#ring[this.#ringHead];
    if (!head) return;
    this.#ringTimer = this.#clock.setTimer(Math.max(0, head.at - this.#clock.now()), () => this.#expire());
  }

  /** RFC 3261 §17.2.2: "If Timer J fires while in the Completed state, the server transaction MUST transition to the
   * Terminated state." Ends every record due now, or due within the slack of one timer. */
  #expire(): void {
    this.#ringTimer = undefined;
    const now = this.#clock.now();
    const ring = this.#ring;
    let i = this.#ringHead;
    for (; i < ring.length; i++) {
      const rec = ring[i]!;
      if (rec.at > now) break;
      this.#end(rec);
    }
    this.#ringHead = i;
    this.#compactRing();
    const head = this.#ring[this.#ringHead];
    if (head && !this.#closed) {
      // Coalesce: the next timer waits at least the slack, so that a busy node fires a few times per second.
      const delay = Math.max(head.at - now, this.#ringSlack);
      this.#ringTimer = this.#clock.setTimer(delay, () => this.#expire());
    }
  }

  #evictOldest(): void {
    const ring = this.#ring;
    while (this.#ringHead < ring.length) {
      const rec = ring[this.#ringHead++]!;
      if (this.#completed.get(rec.key) === rec) {
        this.#counters.completedEvicted++;
        this.#end(rec);
        break;
      }
    }
    this.#compactRing();
  }

  #end(rec: CompletedRecord): void {
    if (this.#completed.get(rec.key) !== rec) return;
    this.#completed.delete(rec.key);
    rec.handle?.deref()?.terminate();
  }

  /** Drops the consumed front of the ring once it is large (amortised O(1) per record). */
  #compactRing(): void {
    const head = this.#ringHead;
    if (head >= this.#ring.length) {
      this.#ring = [];
      this.#ringHead = 0;
    } else if (head > 4096 && head * 2 > this.#ring.length) {
      this.#ring = this.#ring.slice(head);
      this.#ringHead = 0;
    }
  }

  #receiveResponse(response: SipResponse, info: TransportInfo): ReceiveOutcome {
    const key = clientKeyOfResponse(response);
    if (key === undefined) return this.#drop('response without top Via branch or CSeq', response);
    const tx = this.#client.get(key);
    if (!tx) {
      this.#counters.strayResponses++;
      this.#toUser('onStrayResponse', () => this.#user.onStrayResponse(response, info));
      return { action: 'stray-response' };
    }
    tx.receiveResponse(response, info);
    return { action: 'response', transaction: tx };
  }

  #receiveRequest(request: SipRequest, info: TransportInfo): ReceiveOutcome {
    const cs = cseq(request);
    if (!cs) return this.#drop('request without a valid CSeq', request);
    // RFC 3261 §8.1.1.5: "The method MUST match that of the request."
    if (cs.method !== request.method) return this.#drop('CSeq method differs from the request method', request);
    const m = serverMatch(request);
    if (!m) return this.#drop('request without a valid top Via', request);
    const existing = this.#server.get(m.key);
    if (existing === undefined && request.method !== 'ACK') {
      const rec = this.#completed.get(m.key);
      if (rec) {
        // RFC 3261 §17.2.2: "While in the Completed state, the server transaction MUST pass the final response to the
        // transport layer for retransmission whenever a retransmission of the request is received."
        this.#counters.requestRetransmissionsAbsorbed++;
        if (rec.response) this.#sender.send(rec.response, rec.target!, rec.key);
        else this.#sender.sendPrepared!(rec, rec.key);
        const tx = rec.handle?.deref();
        return tx ? { action: 'retransmission', transaction: tx } : { action: 'retransmission' };
      }
    }

    if (request.method === 'ACK') {
      if (existing instanceof InviteServerTransaction && (!m.rfc2543 || m.toTag === existing.responseToTag)) {
        if (existing.receiveAck() === 'absorbed') {
          this.#counters.acksAbsorbed++;
          return { action: 'ack-absorbed', transaction: existing };
        }
        this.#toUser('onAck', () => this.#user.onAck(request, info, existing));
        return { action: 'ack-to-tu', transaction: existing };
      }
      // RFC 3261 §17.2.3 / §13.3.1.4: the ACK for a 2xx is its own transaction, handled by the TU.
      this.#toUser('onAck', () => this.#user.onAck(request, info));
      return { action: 'ack-to-tu' };
    }

    if (existing) {
      if (m.rfc2543 && existing.kind === 'ist' && m.toTag !== existing.requestToTag) {
        return this.#drop('RFC 2543 request clashes with a transaction of another To tag', request);
      }
      this.#counters.requestRetransmissionsAbsorbed++;
      existing.receiveRequest();
      return { action: 'retransmission', transaction: existing };
    }

    if (this.#client.size + this.#server.size >= this.#max) {
      // RFC 3261 §21.5.4: 503 "The server is temporarily unable to process the request due to a temporary
      // overloading"; sent without a transaction (a retransmission gets another one).
      this.#counters.overloaded++;
      this.#badInput.warn('tsx:table-full', 'transaction table full => 503', { max: this.#max });
      const busy = createResponse(request, 503, 'Service Unavailable', {
        headers: [['Retry-After', String(OVERLOAD_RETRY_AFTER_S)]],
      });
      this.#sender.send(busy, { kind: 'response', replyTo: info, request });
      return { action: 'dropped', reason: 'transaction table full' };
    }
    const r = info.reliable ? 'r' : 'u';
    let tx: ServerTransaction;
    if (request.method === 'INVITE') {
      tx = new InviteServerTransaction(m.key, request, info, this.#envs[`ist:${r}`]);
    } else {
      const nist = new NonInviteServerTransaction(m.key, request, info, this.#envs[`nist:${r}`]);
      // RFC 3261 §9.2: the CANCEL is a transaction of its own; the TU is told which INVITE it cancels.
      if (request.method === 'CANCEL') nist.cancels = this.matchCancel(request);
      tx = nist;
    }
    this.#counters.created[tx.kind]++;
    this.#server.set(m.key, tx);
    tx.start();
    if (!tx.terminated) this.#toUser('onRequest', () => this.#user.onRequest(request, tx, info));
    return { action: 'new-transaction', transaction: tx };
  }

  #onTerminated(tx: TransactionBase): void {
    const table: Map<string, Transaction> = tx.kind === 'ict' || tx.kind === 'nict' ? this.#client : this.#server;
    if (table.get(tx.key) === tx) table.delete(tx.key);
    this.#pendingCancels.delete(tx.key);
    const onTerminated = this.#user.onTerminated;
    if (onTerminated) this.#toUser('onTerminated', () => onTerminated.call(this.#user, tx as TransactionHandle));
  }

  #drop(reason: string, message: SipMessage): ReceiveOutcome {
    this.#counters.dropped++;
    const what = message.kind === 'request' ? message.method : String(message.status);
    this.#badInput.warn(`tsx:${reason}`, `${reason} => dropped`, { what });
    return { action: 'dropped', reason };
  }

  #toUser(callback: string, call: () => void): void {
    try {
      call();
    } catch (err) {
      this.#log.error({ err, callback }, 'transaction user callback threw => ignored');
    }
  }
}
