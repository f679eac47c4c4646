import { randomBytes } from 'node:crypto';
import { category, type Logger, silentLogger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { AuthResult, RequestAuthenticator } from '../auth/types.ts';
import type { Binding, BindingFlow, LocationService } from '../location/types.ts';
import {
  createResponse,
  formatUri,
  getCallId,
  getContacts,
  getCSeq,
  getExpires,
  getFrom,
  getHeader,
  getHeaders,
  getParam,
  getRequestUri,
  getTo,
  parseNameAddrList,
  parseUri,
  UNSUPPORTED_SCHEME,
  unquote,
  uriEquals,
} from '../message/index.ts';
import type { NameAddr, SipRequest, SipResponse, SipUri } from '../message/types.ts';
import type { ServerTransactionHandle, TransportInfo } from '../transaction/types.ts';
import type { RequestHandler } from '../tu/basic-uas.ts';
import type { RegistrarConfig } from './config.ts';
import { RestrictionPolicy } from './restriction.ts';

/** Option tags the registrar supports (RFC 3327 path, RFC 5626 outbound). */
export const REGISTRAR_OPTION_TAGS: readonly string[] = ['path', 'outbound'];

/**
 * The canonical AOR of a To URI (RFC 3261 §10.3 step 5: URI parameters removed, escapes resolved — the parser already
 * unescapes the user). sips: folds into sip: and the port is dropped, so the proxy finds the same AOR whatever form
 * a caller used.
 */
export function aorKey(uri: SipUri): string {
  return `sip:${uri.user ?? ''}@${uri.host.toLowerCase()}`;
}

export interface RegistrarOptions {
  config: RegistrarConfig;
  /** Domains (host names or addresses) this node is registrar for. */
  domains: readonly string[];
  location: LocationService;
  clock: Clock;
  /** Digest authentication; without one (or with `config.authenticate` off) REGISTER is not authenticated. */
  authenticator?: RequestAuthenticator;
  /** Realm per domain (config `auth.realms`); a domain not listed is its own realm. */
  realms?: Readonly<Record<string, string>>;
  /**
   * The authentication policy of the zone a REGISTER arrived on (config `auth.zones`): `check` (digest, the
   * default), `treat-as-authenticated` (the From user is the identity, no challenge), `do-not-check`.
   */
  authPolicy?: (info: TransportInfo) => 'check' | 'treat-as-authenticated' | 'do-not-check';
  log?: Logger;
}

/** Counters of the registrar: REGISTER answered per status, and outbound/fetch/removal counts. */
export interface RegistrarCounters {
  responses: Record<number, number>;
  fetches: number;
  refreshes: number;
  removals: number;
  /** Outbound flows found failed (connection closed, or a UDP flow silent past Flow-Timer + grace). */
  flowFailures: number;
}

/** Where a UDP flow runs: our socket and the far end (RFC 5626 §3.1's flow, as a map key). */
function udpFlowKey(local: { address: string; port: number }, source: { address: string; port: number }): string {
  return `${local.address}:${local.port}>${source.address}:${source.port}`;
}

interface UdpFlow {
  /** Wall-clock ms of the last sign of life (keepalive, REGISTER, any SIP message). */
  lastSeen: number;
  /** AORs with an outbound binding registered on this flow. */
  aors: Set<string>;
}

interface ContactRequest {
  uri: SipUri;
  text: string;
  expires: number;
  q: number;
  instance?: string;
  regId?: number;
}

type Step<T> = { ok: true; value: T } | { ok: false; response: SipResponse };

const Q_RE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;
const DIGITS = /^\d{1,10}$/;
const ONE_HOUR = 3600;
const MAX_DELTA = 0xffffffff;

/**
 * The registrar (RFC 3261 §10.3) as a request handler in front of the basic UAS. It authenticates (when an
 * authenticator is given), applies the restriction policy, updates the location service atomically per REGISTER
 * and answers 200 with every current binding. Path (RFC 3327) and the flow of an outbound registration
 * (RFC 5626) are kept with each binding.
 */
export class Registrar implements RequestHandler {
  readonly name = 'registrar';
  readonly methods: readonly string[] = ['REGISTER'];
  readonly optionTags: readonly string[] = REGISTRAR_OPTION_TAGS;
  readonly counters: RegistrarCounters = { responses: {}, fetches: 0, refreshes: 0, removals: 0, flowFailures: 0 };
  readonly #opts: RegistrarOptions;
  readonly #domains: Set<string>;
  readonly #restriction: RestrictionPolicy;
  readonly #log: Logger;
  /** Outbound UDP flows being watched for failure (RFC 5626 §4.4.2 keepalives); keyed by `udpFlowKey`. */
  readonly #udpFlows = new Map<string, UdpFlow>();
  #flowSweep: TimerHandle | undefined;

  constructor(opts: RegistrarOptions) {
    this.#opts = opts;
    this.#domains = new Set(opts.domains.map((d) => d.toLowerCase().replace(/^\[|\]$/g, '')));
    this.#restriction = new RestrictionPolicy(opts.config.restriction.policy, opts.config.restriction.patterns);
    this.#log = category(opts.log ?? silentLogger, 'sip.registrar');
  }

  /** True when REGISTER requests are authenticated (an authenticator is present and `authenticate` is on). */
  get authenticates(): boolean {
    return this.#opts.authenticator !== undefined && this.#opts.config.authenticate;
  }

  /** The location service the registrar writes (the proxy reads it). */
  get location(): LocationService {
    return this.#opts.location;
  }

  handle(request: SipRequest, transaction: ServerTransactionHandle, info: TransportInfo): boolean {
    const answer = this.process(request, info);
    if (answer instanceof Promise) {
      answer.then(
        (res) => this.#send(transaction, res),
        (err) => {
          this.#log.error({ err: (err as Error)?.message }, 'REGISTER processing failed => 500');
          this.#send(transaction, reply(request, 500, 'Server Internal Error'));
        },
      );
    } else {
      this.#send(transaction, answer);
    }
    return true;
  }

  /** A connection closed: RFC 5626 §6, the outbound bindings of that flow are removed. */
  flowClosed(connectionId: string): void {
    const removed = this.#opts.location.removeFlow(connectionId);
    if (removed > 0) {
      this.counters.flowFailures++;
      this.#log.info({ connectionId, removed }, 'flow failed => its outbound bindings removed');
    }
  }

  /**
   * Something arrived on a UDP flow (a STUN keepalive, RFC 5626 §4.4.2; a CRLF; any SIP message): if it is an
   * outbound flow being watched, it is alive now. O(1); nothing to do when no outbound UDP flow is registered.
   */
  flowAlive(transport: string, local: { address: string; port: number }, source: { address: string; port: number }) {
    if (this.#udpFlows.size === 0 || transport !== 'UDP') return;
    const f = this.#udpFlows.get(udpFlowKey(local, source));
    if (f) f.lastSeen = this.#opts.clock.wallNow();
  }

  /** Outbound UDP flows watched for keepalives. */
  get watchedUdpFlows(): number {
    return this.#udpFlows.size;
  }

  /** Stops the flow-failure timer (node shutdown). */
  close(): void {
    this.#flowSweep?.cancel();
    this.#flowSweep = undefined;
    this.#udpFlows.clear();
  }

  /** An outbound registration was accepted on a UDP flow: watch the flow for keepalives from now on. */
  #watchUdpFlow(aor: string, flow: BindingFlow, now: number): void {
    if (this.#opts.config.flowFailureGraceSeconds <= 0) return;
    const key = udpFlowKey(flow.local, flow.source);
    const f = this.#udpFlows.get(key);
    if (f) {
      f.lastSeen = now;
      f.aors.add(aor);
    } else {
      this.#udpFlows.set(key, { lastSeen: now, aors: new Set([aor]) });
    }
    this.#armFlowSweep();
  }

  #armFlowSweep(): void {
    if (this.#flowSweep || this.#udpFlows.size === 0) return;
    // Checked a few times per grace period: a failed flow is found within Flow-Timer + grace + grace/2.
    const every = Math.max(1000, (this.#opts.config.flowFailureGraceSeconds * 1000) / 2);
    this.#flowSweep = this.#opts.clock.setTimer(every, () => {
      this.#flowSweep = undefined;
      this.#sweepUdpFlows();
      this.#armFlowSweep();
    });
  }

  /**
   * RFC 5626 §4.4.2 / §5.4: a UDP flow whose keepalives stopped for longer than Flow-Timer + grace has failed: the
   * outbound bindings registered on it are removed, so the proxy no longer sends there and uses the UA's other flows
   * (RFC 5626 §5.3). A flow whose AORs no longer have an outbound binding on it is forgotten.
   */
  #sweepUdpFlows(): void {
    const cfg = this.#opts.config;
    const now = this.#opts.clock.wallNow();
    const deadline = now - (cfg.flowTimerSeconds + cfg.flowFailureGraceSeconds) * 1000;
    for (const [key, f] of this.#udpFlows) {
      const failed = f.lastSeen < deadline;
      let onFlow = 0;
      let removed = 0;
      for (const aor of f.aors) {
        const current = this.#opts.location.lookup(aor);
        const mine = (b: Binding) =>
          b.regId !== undefined && b.flow.transport === 'UDP' && udpFlowKey(b.flow.local, b.flow.source) === key;
        const n = current.filter(mine).length;
        if (n === 0) {
          f.aors.delete(aor);
          continue;
        }
        onFlow += n;
        if (!failed) continue;
        this.#opts.location.replace(
          aor,
          current.filter((b) => !mine(b)).map(({ expiresIn: _e, ...b }) => b),
        );
        removed += n;
      }
      if (failed || onFlow === 0) this.#udpFlows.delete(key);
      if (failed && removed > 0) {
        this.counters.flowFailures++;
        this.#log.info(
          { flow: key, removed, silentSeconds: Math.round((now - f.lastSeen) / 1000) },
          'UDP flow failed (no keepalive) => its outbound bindings removed',
        );
      }
    }
  }

  /** The answer to a REGISTER (a promise only while an asynchronous authenticator works). */
  process(req: SipRequest, info: TransportInfo): SipResponse | Promise<SipResponse> {
    // RFC 3261 §10.3 step 1: the registrar must be responsible for the domain in the Request-URI.
    const ruri = getRequestUri(req);
    if (!ruri.ok) {
      return ruri.reason === UNSUPPORTED_SCHEME
        ? reply(req, 416, 'Unsupported URI Scheme')
        : reply(req, 400, 'Bad Request-URI');
    }
    if (ruri.value.scheme === 'tel' || !this.#domains.has(ruri.value.host)) {
      return reply(req, 403, 'Not a registrar for this domain');
    }
    // RFC 3261 §10.3 step 2: Require processed as in §8.2.2.
    const unsupported = getHeaders(req, 'require')
      .map((t) => t.trim())
      .filter((t) => t !== '' && !REGISTRAR_OPTION_TAGS.includes(t.toLowerCase()));
    if (unsupported.length > 0) {
      return reply(req, 420, 'Bad Extension', [['Unsupported', unsupported.join(', ')]]);
    }
    // RFC 3261 §10.3 step 3: authenticate the UAC (as the zone's policy says).
    const auth = this.#opts.authenticator;
    const policy = this.#opts.authPolicy?.(info) ?? 'check';
    if (!auth || !this.#opts.config.authenticate || policy === 'do-not-check') {
      return this.#afterAuth(req, info, undefined);
    }
    if (policy === 'treat-as-authenticated') {
      // The zone is trusted: the From user is who registers, so step 4 still refuses third-party registrations.
      const from = getFrom(req);
      const user = from?.ok ? from.value.uri.user : undefined;
      if (user === undefined || user === '') return reply(req, 403, 'Forbidden (no identity in From)');
      return this.#afterAuth(req, info, user);
    }
    // RFC 3261 §22.1: the realm names the protection domain; one per SIP domain here (config auth.realms).
    const realm = this.#opts.realms?.[ruri.value.host] ?? ruri.value.host;
    const result = auth.authenticate(req, { realm, mode: 'registrar', source: info.source });
    if (result instanceof Promise) return result.then((r) => this.#authenticated(req, info, r));
    return this.#authenticated(req, info, result);
  }

  #authenticated(req: SipRequest, info: TransportInfo, r: AuthResult): SipResponse {
    if (r.kind !== 'authenticated') return r.response;
    return this.#afterAuth(req, info, r.username);
  }

  #afterAuth(req: SipRequest, info: TransportInfo, username: string | undefined): SipResponse {
    // RFC 3261 §10.3 step 5: the AOR is the To URI, in canonical form, and must be valid for the domain.
    const to = getTo(req);
    if (!to?.ok) return reply(req, 400, 'Bad To header');
    const toUri = to.value.uri;
    if (toUri.scheme === 'tel' || toUri.user === undefined || toUri.user === '') {
      return reply(req, 404, 'Not Found');
    }
    if (!this.#domains.has(toUri.host)) return reply(req, 404, 'Not Found');
    // RFC 3261 §10.3 step 4: the authenticated user must be authorized for this AOR (here: the same user).
    if (username !== undefined && username !== toUri.user) {
      return reply(req, 403, 'Forbidden (user does not own this address-of-record)');
    }
    const aor = aorKey(toUri);
    if (!this.#restriction.allows(`${toUri.user}@${toUri.host}`)) {
      return reply(req, 403, 'Forbidden (registration restricted)');
    }
    const callId = getCallId(req);
    const cseq = getCSeq(req);
    if (callId === undefined || !cseq || !cseq.ok) return reply(req, 400, 'Bad Call-ID or CSeq');

    const contacts = getContacts(req);
    const now = this.#opts.clock.wallNow();
    const current = this.#opts.location.lookup(aor);
    // RFC 3261 §10.2.3 / §10.3: a REGISTER without Contact fetches the current bindings.
    if (contacts === undefined) {
      this.counters.fetches++;
      return this.#ok(req, current, now, false);
    }
    if (!contacts.ok) {
      return contacts.reason === UNSUPPORTED_SCHEME
        ? reply(req, 400, 'Unsupported Contact URI scheme')
        : reply(req, 400, 'Bad Contact');
    }
    const expiresParsed = getExpires(req);
    // RFC 3261 §20.19: "Malformed values SHOULD be treated as equivalent to 3600"; the only other failure of the
    // parser is a value above 2^32-1, which §10.2.1.1 caps there — above any maxExpires either way.
    const headerExpires =
      expiresParsed === undefined
        ? undefined
        : expiresParsed.ok
          ? expiresParsed.value
          : /^\d+$/.test(getHeader(req, 'expires') ?? '')
            ? MAX_DELTA
            : ONE_HOUR;

    let next: Binding[];
    let outbound = false;
    /** The flow of this REGISTER when it registered an outbound binding (RFC 5626). */
    let outboundFlow: BindingFlow | undefined;
    if (contacts.value === '*') {
      // RFC 3261 §10.3 step 6: "*" only with Expires: 0 (and alone, which getContacts checks).
      if (headerExpires !== 0) return reply(req, 400, 'Wildcard Contact requires Expires: 0');
      for (const b of current) {
        // RFC 3261 §10.3 step 6: same Call-ID → remove only when the CSeq is higher; otherwise the request fails.
        if (b.callId === callId && cseq.value.seq <= b.cseq) return outOfOrder(req);
      }
      next = [];
      this.counters.removals++;
    } else {
      const parsed = this.#contacts(req, contacts.value, headerExpires);
      if (!parsed.ok) return parsed.response;
      const path = this.#path(req);
      if (!path.ok) return path.response;
      const withRegId = parsed.value.filter((c) => c.regId !== undefined);
      if (withRegId.length > 0) {
        // RFC 5626 §6: more than one Contact with a reg-id → 400.
        if (withRegId.length > 1) return reply(req, 400, 'More than one Contact with reg-id');
        // RFC 5626 §6: the first hop (the edge proxy nearest the UA) must support outbound: its Path URI must carry
        // "ob". Proxies prepend their Path (RFC 3327 §4.2), so the first hop's entry is the last value.
        const firstHop = path.value.parsed[path.value.parsed.length - 1];
        if (firstHop && getParam(firstHop.uri.params, 'ob') === undefined) {
          return reply(req, 439, 'First Hop Lacks Outbound Support');
        }
        outbound = true;
      }
      const flow: BindingFlow = {
        transport: info.transport,
        source: { address: info.source.address, port: info.source.port },
        local: { address: info.local.address, port: info.local.port },
        ...(info.connectionId !== undefined ? { connectionId: info.connectionId } : {}),
      };
      if (outbound) outboundFlow = flow;
      next = current.map(({ expiresIn: _e, ...b }) => b);
      const userAgent = getHeader(req, 'user-agent');
      for (const c of parsed.value) {
        // RFC 5626 §6: an outbound binding is identified by (AOR, instance-id, reg-id), whatever its Contact URI.
        const at =
          c.regId !== undefined
            ? next.findIndex((b) => b.instance === c.instance && b.regId === c.regId)
            : next.findIndex((b) => b.regId === undefined && sameContact(b.contact, c.text));
        const existing = at >= 0 ? next[at] : undefined;
        // RFC 3261 §10.3 step 7: same Call-ID with a CSeq not higher than the binding's → the update is aborted and
        // the request fails; nothing of this REGISTER is applied (500, as the step's atomicity rule says).
        if (existing && existing.callId === callId && cseq.value.seq <= existing.cseq) return outOfOrder(req);
        if (c.expires === 0) {
          if (at >= 0) next.splice(at, 1);
          this.counters.removals++;
          continue;
        }
        const binding: Binding = {
          aor,
          contact: c.text,
          q: c.q,
          expiresAt: now + c.expires * 1000,
          callId,
          cseq: cseq.value.seq,
          path: path.value.values,
          flow,
          natted: isNatted(c.uri, info),
          updatedAt: now,
          ...(c.instance !== undefined ? { instance: c.instance } : {}),
          ...(c.regId !== undefined ? { regId: c.regId } : {}),
          ...(userAgent !== undefined ? { userAgent: userAgent.slice(0, 256) } : {}),
        };
        if (at >= 0) {
          next[at] = binding;
          this.counters.refreshes++;
        } else {
          next.push(binding);
        }
      }
      if (next.length > this.#opts.config.maxContactsPerAor) {
        return reply(req, 403, 'Forbidden (too many contacts)');
      }
    }
    // RFC 3261 §10.3 step 7: all updates of the request are committed together, or none.
    this.#opts.location.replace(aor, next);
    if (
      outboundFlow &&
      info.transport === 'UDP' &&
      next.some((b) => b.flow === outboundFlow && b.regId !== undefined)
    ) {
      this.#watchUdpFlow(aor, outboundFlow, now);
    }
    this.#log.debug({ aor, bindings: next.length }, 'registered');
    return this.#ok(req, this.#opts.location.lookup(aor), now, outbound);
  }

  #contacts(req: SipRequest, list: NameAddr[], headerExpires: number | undefined): Step<ContactRequest[]> {
    const cfg = this.#opts.config;
    const out: ContactRequest[] = [];
    for (const na of list) {
      // RFC 3261 §10.3 step 6: the expires parameter, else the Expires header, else the registrar's default.
      let expires: number;
      const ep = getParam(na.params, 'expires');
      if (ep !== undefined) {
        // RFC 3261 §10.2.1.1: a value above 2^32-1 counts as 2^32-1; §20.19: a malformed one as 3600.
        expires = ep !== null && /^\d+$/.test(ep) ? Math.min(Number(ep), MAX_DELTA) : ONE_HOUR;
      } else {
        expires = headerExpires ?? cfg.defaultExpires;
      }
      if (expires > 0 && expires < cfg.minExpires) {
        // RFC 3261 §10.3 step 7: "If and only if the requested expiration interval is greater than zero AND smaller
        // than one hour AND less than a registrar-configured minimum, the registrar MAY reject the registration
        // with a response of 423 (Interval Too Brief)."
        if (expires < ONE_HOUR) {
          return {
            ok: false,
            response: reply(req, 423, 'Interval Too Brief', [['Min-Expires', String(cfg.minExpires)]]),
          };
        }
        expires = cfg.minExpires;
      }
      // RFC 3261 §10.3 step 7: "The registrar MAY choose an expiration less than the requested expiration interval."
      if (expires > cfg.maxExpires) expires = cfg.maxExpires;
      const qp = getParam(na.params, 'q');
      let q = 1000;
      if (qp !== undefined) {
        if (qp === null || !Q_RE.test(qp)) return { ok: false, response: reply(req, 400, 'Bad q parameter') };
        q = Math.round(Number(qp) * 1000);
      }
      const c: ContactRequest = { uri: na.uri, text: formatUri(na.uri), expires, q };
      const inst = getParam(na.params, '+sip.instance');
      if (typeof inst === 'string') c.instance = unquote(inst).replace(/^<|>$/g, '');
      const regId = getParam(na.params, 'reg-id');
      // RFC 5626 §6: "If the Contact header field does not contain a '+sip.instance' Contact header field parameter,
      // the registrar MUST ignore the reg-id Contact header field parameter."
      if (regId !== undefined && c.instance !== undefined) {
        if (regId === null || !DIGITS.test(regId) || Number(regId) < 1 || Number(regId) > 0x7fffffff) {
          return { ok: false, response: reply(req, 400, 'Bad reg-id parameter') };
        }
        c.regId = Number(regId);
      }
      out.push(c);
    }
    return { ok: true, value: out };
  }

  #path(req: SipRequest): Step<{ values: string[]; parsed: NameAddr[] }> {
    const values = getHeaders(req, 'path');
    const parsed: NameAddr[] = [];
    for (const v of values) {
      const r = parseNameAddrList(v);
      if (!r.ok) return { ok: false, response: reply(req, 400, 'Bad Path header') };
      for (const na of r.value) parsed.push(na);
    }
    return { ok: true, value: { values, parsed } };
  }

  /** RFC 3261 §10.3 step 8: 200 with every current binding and its remaining expiry, plus Date. */
  #ok(
    req: SipRequest,
    bindings: readonly (Binding & { expiresIn: number })[],
    now: number,
    outbound: boolean,
  ): SipResponse {
    const headers: [string, string][] = [];
    for (const b of bindings) {
      let v = `<${b.contact}>;expires=${b.expiresIn}`;
      if (b.q !== 1000) v += `;q=${formatQ(b.q)}`;
      if (b.instance !== undefined) v += `;+sip.instance="<${b.instance}>"`;
      if (b.regId !== undefined) v += `;reg-id=${b.regId}`;
      headers.push(['Contact', v]);
    }
    headers.push(['Date', httpDate(now)]);
    // RFC 3327 §5.3: the stored Path goes back in the 200 only when the UA said it supports path.
    if (supports(req, 'path')) for (const p of getHeaders(req, 'path')) headers.push(['Path', p]);
    if (outbound) {
      // RFC 5626 §6: the registrar includes Require: outbound when it applied outbound processing, and
      // §4.4.1: Flow-Timer tells the UA how often to send keepalives on the flow.
      headers.push(['Require', 'outbound']);
      headers.push(['Flow-Timer', String(this.#opts.config.flowTimerSeconds)]);
    }
    headers.push(['Supported', REGISTRAR_OPTION_TAGS.join(', ')]);
    return reply(req, 200, 'OK', headers);
  }

  #send(tx: ServerTransactionHandle, res: SipResponse): void {
    this.counters.responses[res.status] = (this.counters.responses[res.status] ?? 0) + 1;
    // RFC 3261 §8.2.7 (registrar.statelessChallenges): a challenge answered statelessly keeps no transaction state; a
    // retransmitted REGISTER then gets a fresh 401 with a new nonce.
    if (res.status === 401 && this.#opts.config.statelessChallenges && tx.respondStateless?.(res)) return;
    tx.respond(res);
  }
}

/**
 * To tags from a pooled random buffer: RFC 3261 §19.3 wants tags cryptographically random with at least 32 bits;
 * these have 64, drawn 512 at a time instead of one `randomBytes` call per response.
 */
let tagPool = Buffer.alloc(0);
let tagAt = 0;
function poolTag(): string {
  if (tagAt + 8 > tagPool.length) {
    tagPool = randomBytes(4096);
    tagAt = 0;
  }
  const tag = tagPool.toString('hex', tagAt, tagAt + 8);
  tagAt += 8;
  return tag;
}

function reply(req: SipRequest, status: number, reason: string, headers: [string, string][] = []): SipResponse {
  return createResponse(req, status, reason, { toTag: poolTag(), headers });
}

/** RFC 1123 dates change once a second: cache the last one formatted. */
let dateSecond = -1;
let dateText = '';
function httpDate(wallMs: number): string {
  const s = Math.floor(wallMs / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(s * 1000).toUTCString();
  }
  return dateText;
}

function outOfOrder(req: SipRequest): SipResponse {
  return reply(req, 500, 'Out-of-order REGISTER (CSeq not higher than the binding)', [['Retry-After', '1']]);
}

function supports(req: SipRequest, tag: string): boolean {
  return getHeaders(req, 'supported').some((t) => t.trim().toLowerCase() === tag);
}

function formatQ(q: number): string {
  return (q / 1000).toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}

/** RFC 3261 §10.3 step 7: contacts are compared with the URI comparison rules of §19.1.4. */
function sameContact(a: string, b: string): boolean {
  if (a === b) return true;
  const pa = parseUri(a);
  const pb = parseUri(b);
  return pa.ok && pb.ok && uriEquals(pa.value, pb.value);
}

/** RFC 3581: an endpoint whose Contact does not name the address and port it sent from is behind a NAT. */
function isNatted(contact: SipUri, info: TransportInfo): boolean {
  const defaultPort = info.transport === 'TLS' ? 5061 : 5060;
  return contact.host !== info.source.address || (contact.port ?? defaultPort) !== info.source.port;
}
