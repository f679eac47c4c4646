import type { Clock } from '../common/timers.ts';
import { splitList } from '../sip/message/headers.ts';
import {
  createRequest,
  getCallId,
  getCSeq,
  getFromTag,
  getHeader,
  getHeaders,
  getToTag,
  newBranch,
} from '../sip/message/index.ts';
import type { SipMessage, SipRequest, SipResponse } from '../sip/message/types.ts';
import type { Destination, TransportInfo } from '../sip/transaction/types.ts';

/** Where one side of a dialog is reached from this node: the hop a message of that side came from, and our socket. */
interface Hop {
  destination: Destination;
  /** Our end (the Via of a request we send that way). */
  local: { address: string; port: number };
  transport: string;
}

/** An INVITE seen on its way through, waiting for its 2xx. */
interface Pending {
  at: number;
  from: string;
  to: string;
  cseq: number;
  contact: string | undefined;
  hop: Hop;
}

/** A confirmed dialog the node proxies (it Record-Routed it), as far as the node needs to end it. */
interface Dialog {
  callId: string;
  callerTag: string;
  calleeTag: string;
  /** From of the INVITE (caller, with its tag) and To of the 2xx (callee, with its tag), as written. */
  caller: string;
  callee: string;
  callerContact: string;
  calleeContact: string;
  /** The 2xx's Record-Route entries, top first (callee's side first), as written. */
  recordRoute: string[];
  callerHop: Hop;
  calleeHop: Hop;
  /** Highest CSeq seen from each side. */
  callerSeq: number;
  calleeSeq: number;
}

export interface DialogReleaseOptions {
  clock: Clock;
  /** Sends a request the node originates; resolves with its final response (the node's `ClientRequests`). */
  send(request: SipRequest, destination: Destination): Promise<SipResponse>;
  /** True for a Record-Route URI naming this node (one of its listeners, or a flow token it made). */
  ownUri(uri: string): boolean;
  /** Most dialogs (and INVITEs waiting for a 2xx) followed at once; the oldest go first. Default 100 000. */
  maxDialogs?: number;
  /** An INVITE with no 2xx after this long is forgotten (ms). Default 300 000. */
  pendingMs?: number;
}

/**
 * CSeq margin of a BYE the node sends over the highest CSeq it saw from the side it speaks for: a request the node's proxy
 * re-numbered (a challenge it answered) stays below it. RFC 3261 §12.2.1.1 only asks for a higher number.
 */
const CSEQ_MARGIN = 100;

/** `<uri>` or a bare URI of a name-addr header value (Contact, Record-Route entry). */
function uriOf(value: string): string | undefined {
  const lt = value.indexOf('<');
  if (lt >= 0) {
    const gt = value.indexOf('>', lt);
    return gt > lt ? value.slice(lt + 1, gt).trim() : undefined;
  }
  const v = value.split(';')[0]?.trim();
  return v ? v : undefined;
}

function hopOf(info: TransportInfo): Hop {
  const destination: Destination = {
    transport: info.transport,
    address: info.source.address,
    port: info.source.port,
    ...(info.connectionId !== undefined ? { connectionId: info.connectionId } : {}),
  };
  return { destination, local: { ...info.local }, transport: info.transport.toUpperCase() };
}

const formatHost = (h: string) => (h.includes(':') ? `[${h}]` : h);

/**
 * Ends the dialogs of a call whose media stopped (docs/media.md, media timeout): the node follows the dialogs it proxies
 * from the messages it receives — the INVITE (caller's From, Contact, CSeq, where it came from), the 2xx (callee's To
 * tag, Contact, Record-Route, where it came from), in-dialog requests (CSeq), BYE (forgotten) — and, asked to release a
 * Call-ID, sends a BYE to each side as the other side would: to the caller from the callee, to the callee from the
 * caller, each with the route set beyond this node and on the hop that side's messages came from (RFC 3261 §12.2.1.1,
 * §15.1.1). Sans-I/O apart from the injected `send`; fed by the composition root, never throws on what it is fed.
 */
export class DialogRelease {
  readonly #o: DialogReleaseOptions;
  readonly #max: number;
  readonly #pendingMs: number;
  /** `Call-ID;from-tag` → INVITE waiting for a 2xx. */
  readonly #pending = new Map<string, Pending>();
  /** Call-ID → its confirmed dialogs (more than one when a fork was answered twice). */
  readonly #dialogs = new Map<string, Dialog[]>();
  #dialogCount = 0;

  constructor(o: DialogReleaseOptions) {
    this.#o = o;
    this.#max = o.maxDialogs ?? 100_000;
    this.#pendingMs = o.pendingMs ?? 300_000;
  }

  /** Confirmed dialogs followed. */
  get size(): number {
    return this.#dialogCount;
  }

  /** INVITEs waiting for a 2xx. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Every message the node receives, before the transaction layer; malformed or unrelated ones are ignored. */
  observe(msg: SipMessage, info: TransportInfo): void {
    try {
      if (msg.kind === 'request') this.#request(msg, info);
      else this.#response(msg, info);
    } catch {
      // Following dialogs is best effort: a message it cannot read is the proxy's business, not ours.
    }
  }

  #request(req: SipRequest, info: TransportInfo): void {
    // Cheap exits first: most traffic (REGISTER, OPTIONS, requests of dialogs not followed) stops at a map lookup.
    const initial = req.method === 'INVITE' && getToTag(req) === undefined;
    if (!initial && this.#dialogCount === 0) return;
    const callId = getCallId(req);
    if (callId === undefined || (!initial && !this.#dialogs.has(callId))) return;
    const fromTag = getFromTag(req);
    if (fromTag === undefined) return;
    const toTag = getToTag(req);
    if (toTag === undefined) {
      if (!initial) return;
      const cseq = getCSeq(req);
      const from = getHeader(req, 'from');
      const to = getHeader(req, 'to');
      if (!cseq?.ok || from === undefined || to === undefined) return;
      const contact = getHeader(req, 'contact');
      this.#prunePending();
      const key = `${callId};${fromTag}`;
      this.#pending.delete(key);
      this.#pending.set(key, {
        at: this.#o.clock.now(),
        from,
        to,
        cseq: cseq.value.seq,
        contact: contact !== undefined ? uriOf(contact) : undefined,
        hop: hopOf(info),
      });
      if (this.#pending.size > this.#max) this.#pending.delete(this.#pending.keys().next().value!);
      return;
    }
    const list = this.#dialogs.get(callId);
    if (!list) return;
    const d = list.find(
      (x) => (x.callerTag === fromTag && x.calleeTag === toTag) || (x.calleeTag === fromTag && x.callerTag === toTag),
    );
    if (!d) return;
    if (req.method === 'BYE') {
      this.#forget(d);
      return;
    }
    const cseq = getCSeq(req);
    if (!cseq?.ok || req.method === 'ACK' || req.method === 'CANCEL') return;
    if (fromTag === d.callerTag) d.callerSeq = Math.max(d.callerSeq, cseq.value.seq);
    else d.calleeSeq = Math.max(d.calleeSeq, cseq.value.seq);
  }

  #response(res: SipResponse, info: TransportInfo): void {
    if (res.status < 200 || res.status >= 300) return;
    const cseq = getCSeq(res);
    if (!cseq?.ok || cseq.value.method !== 'INVITE') return;
    const callId = getCallId(res);
    const fromTag = getFromTag(res);
    const toTag = getToTag(res);
    if (callId === undefined || fromTag === undefined || toTag === undefined) return;
    const p = this.#pending.get(`${callId};${fromTag}`);
    if (!p || p.contact === undefined) return;
    const list = this.#dialogs.get(callId) ?? [];
    if (list.some((x) => x.callerTag === fromTag && x.calleeTag === toTag)) return; // a retransmitted 2xx
    const contact = getHeader(res, 'contact');
    const calleeContact = contact !== undefined ? uriOf(contact) : undefined;
    const to = getHeader(res, 'to');
    if (calleeContact === undefined || to === undefined) return;
    const recordRoute = getHeaders(res, 'record-route').flatMap((v) => splitList(v).map((x) => x.trim()));
    // Only dialogs this node stays in: without our Record-Route the in-dialog requests do not cross the node.
    if (!recordRoute.some((r) => this.#own(r))) return;
    list.push({
      callId,
      callerTag: fromTag,
      calleeTag: toTag,
      caller: p.from,
      callee: to,
      callerContact: p.contact,
      calleeContact,
      recordRoute,
      callerHop: p.hop,
      calleeHop: hopOf(info),
      callerSeq: p.cseq,
      calleeSeq: 0,
    });
    this.#dialogs.set(callId, list);
    this.#dialogCount++;
    // Answered: the INVITE is done with (a second fork answering later is not followed; its BYE still crosses us).
    this.#pending.delete(`${callId};${fromTag}`);
    while (this.#dialogCount > this.#max) {
      const oldest = this.#dialogs.values().next().value;
      if (!oldest?.[0]) break;
      this.#forget(oldest[0]);
    }
  }

  #own(entry: string): boolean {
    const uri = uriOf(entry);
    return uri !== undefined && this.#o.ownUri(uri);
  }

  #forget(d: Dialog): void {
    const list = this.#dialogs.get(d.callId);
    if (!list) return;
    const i = list.indexOf(d);
    if (i < 0) return;
    list.splice(i, 1);
    this.#dialogCount--;
    if (list.length === 0) this.#dialogs.delete(d.callId);
  }

  #prunePending(): void {
    const now = this.#o.clock.now();
    for (const [k, p] of this.#pending) {
      if (now - p.at < this.#pendingMs) break;
      this.#pending.delete(k);
    }
  }

  /** Keys (`Call-ID;caller's tag`) of the calls of the dialogs of `callId` this node follows. */
  callKeys(callId: string): string[] {
    return [...new Set((this.#dialogs.get(callId) ?? []).map((d) => `${d.callId};${d.callerTag}`))];
  }

  /**
   * Sends a BYE to both sides of every dialog of `callId` this node follows, and forgets them. Resolves when each BYE
   * got its final response or failed, with the calls' keys (`Call-ID;caller's tag`), BYEs sent and answered 2xx.
   */
  async release(callId: string): Promise<{ calls: string[]; sent: number; answered: number }> {
    const list = [...(this.#dialogs.get(callId) ?? [])];
    for (const [k] of this.#pending) if (k.startsWith(`${callId};`)) this.#pending.delete(k);
    const byes: Promise<boolean>[] = [];
    for (const d of list) {
      this.#forget(d);
      const ours = d.recordRoute.map((r) => this.#own(r));
      const first = ours.indexOf(true);
      const last = ours.lastIndexOf(true);
      // RFC 3261 §12.2.1.1: the route set toward each side is the Record-Route beyond this node, nearest first.
      const towardCallee = d.recordRoute.slice(0, first).reverse();
      const towardCaller = d.recordRoute.slice(last + 1);
      byes.push(
        this.#bye(d, d.calleeContact, towardCallee, d.calleeHop, d.caller, d.callee, d.callerSeq + CSEQ_MARGIN),
        this.#bye(d, d.callerContact, towardCaller, d.callerHop, d.callee, d.caller, d.calleeSeq + CSEQ_MARGIN),
      );
    }
    const results = await Promise.all(byes);
    const calls = [...new Set(list.map((d) => `${d.callId};${d.callerTag}`))];
    return { calls, sent: byes.length, answered: results.filter(Boolean).length };
  }

  async #bye(
    d: Dialog,
    target: string,
    routes: string[],
    hop: Hop,
    from: string,
    to: string,
    seq: number,
  ): Promise<boolean> {
    const via = `SIP/2.0/${hop.transport} ${formatHost(hop.local.address)}:${hop.local.port};branch=${newBranch()};rport`;
    const bye = createRequest({
      method: 'BYE',
      uri: target,
      headers: [
        ['Via', via],
        ['Max-Forwards', '70'],
        ...routes.map((r): [string, string] => ['Route', r]),
        ['From', from],
        ['To', to],
        ['Call-ID', d.callId],
        ['CSeq', `${seq} BYE`],
        ['Reason', 'Q.850;cause=41;text="media timeout"'],
      ],
    });
    try {
      const res = await this.#o.send(bye, { ...hop.destination });
      return res.status >= 200 && res.status < 300;
    } catch {
      return false;
    }
  }
}
