import { createHash, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import type { CallRegistry } from '../../calls/call-registry.ts';
import { category, type Logger, silentLogger } from '../../common/log.ts';
import type { Clock, TimerHandle } from '../../common/timers.ts';
import type { ProxySettings } from '../../routing/config.ts';
import {
  DEFAULT_ZONE,
  LOCAL_ZONE,
  type RouteDecision,
  type Router,
  type SearchContinuation,
  type Zone,
  type ZoneSearcher,
} from '../../routing/router.ts';
import { FlowTokens } from '../../traversal/flow-token.ts';
import { assertIdentity, removeUntrustedIdentity } from '../auth/identity.ts';
import type { AuthResult, RequestAuthenticator } from '../auth/types.ts';
import { canonicalName, splitList } from '../message/headers.ts';
import {
  createResponse,
  findHeaders,
  getCallId,
  getContacts,
  getCSeq,
  getFrom,
  getFromTag,
  getHeader,
  getHeaders,
  getMaxForwards,
  getParam,
  getRequestUri,
  getRoutes,
  getToTag,
  getVias,
  newTag,
  parseUri,
  prependHeader,
  prependVia,
  removeHeader,
  removeTopVia,
  setHeader,
} from '../message/index.ts';
import type { SipRequest, SipResponse, SipUri } from '../message/types.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransactionHandle,
  TransportInfo,
} from '../transaction/types.ts';
import { dropCredentials, NeighborAuth } from './neighbor-auth.ts';
import { type DnsLookup, resolveUri } from './resolver.ts';
import type {
  ProxyListener,
  ProxyLocation,
  ProxyMedia,
  ProxyTransactions,
  ProxyTraversal,
  SipTarget,
} from './types.ts';

/**
 * The stateful proxy core (RFC 3261 §16): validates each request (§16.3), processes Route (§16.4), asks routing where
 * an out-of-dialog request goes (transforms, call policy, search rules over zones), forks in parallel to every target
 * (§16.6), collects the responses and forwards the best (§16.7), cancels what is left on a 2xx or 6xx (§16.7 step 10)
 * or on the caller's CANCEL (§16.10), runs Timer C (§16.8), and forwards ACKs for 2xx and in-dialog requests along
 * their Route. Sans-I/O: it talks to the transaction layer, and reads time from the injected clock.
 */

/** Methods the proxy forwards. */
export const PROXY_METHODS: readonly string[] = [
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'MESSAGE',
  'INFO',
  'UPDATE',
  'PRACK',
  'SUBSCRIBE',
  'NOTIFY',
  'REFER',
  'PUBLISH',
];

/** Requests that create a dialog: Record-Routed when out of dialog. */
const DIALOG_CREATING = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);
/** Out-of-dialog requests challenged when `authenticateCalls` is on. */
const AUTHENTICATED_METHODS = new Set(['INVITE', 'MESSAGE', 'SUBSCRIBE', 'REFER']);

/**
 * Delegated credential checking (docs/traversal.md): the edge marks a request it passed down a traversal zone without
 * checking the caller, so the core challenges it. Trusted only on a zone's flow; removed everywhere else.
 */
export const DELEGATED_AUTH_HEADER = 'Crossway-Delegated-Auth';

/** State of one response context (RFC 3261 §16.7): one per proxied request. */
export type ContextState = 'routing' | 'forwarding' | 'completed';
const CONTEXT_EDGES: Record<ContextState, readonly ContextState[]> = {
  routing: ['forwarding', 'completed'],
  // Back to routing: every target failed in a way the search goes on after (a neighbor's 404).
  forwarding: ['completed', 'routing'],
  completed: [],
};

/** State of one branch (a forwarded copy in its own client transaction). */
export type BranchState = 'trying' | 'proceeding' | 'completed';
const BRANCH_EDGES: Record<BranchState, readonly BranchState[]> = {
  trying: ['proceeding', 'completed'],
  proceeding: ['completed'],
  completed: [],
};

interface Branch {
  index: number;
  state: BranchState;
  zone: string;
  request: SipRequest;
  destinations: Destination[];
  destIndex: number;
  tx: ClientTransactionHandle | undefined;
  timerC: TimerHandle | undefined;
  /** Any provisional (100 included) seen: a CANCEL may be sent. */
  provisional: boolean;
  response: SipResponse | undefined;
  /** A CANCEL was asked for (Timer C, the caller, a 2xx or 6xx elsewhere): Timer C firing again gives up (408). */
  cancelSent: boolean;
  /** Times this branch answered its zone's challenge (sent again with credentials). */
  authTries: number;
  /** How far the branch's CSeq is ahead of the caller's (one per answered challenge). */
  cseqShift: number;
  /** Its 3xx was recursed on: its Contacts are branches of their own, the 3xx is out of the running (§16.7 step 4). */
  recursed: boolean;
}

/** Dialogs remembered with a CSeq difference (an answered challenge); the oldest is forgotten beyond this. */
const MAX_SHIFTED_DIALOGS = 100_000;

interface Context {
  state: ContextState;
  request: SipRequest;
  server: ServerTransactionHandle;
  info: TransportInfo;
  branches: Branch[];
  cancelled: boolean;
  /** A final response went upstream (a 2xx, or the best after all branches ended). */
  callId?: string;
  /** Live client transactions still mapped to this context. */
  live: number;
  /** Forwards started whose branch is not in `branches` yet (next hop being resolved): no final answer meanwhile. */
  pending: number;
  /** The request as routed (credentials consumed, SDP anchored): copied again when the search goes on. */
  fwd?: SipRequest;
  /** Where the search may go on, and the first branch of its current step. */
  search?: { cont: SearchContinuation; from: number };
  /** Branch CSeqs differ from the caller's (an answered challenge, a dialog that had one): responses get its back. */
  restoreCSeq?: boolean;
  /** Dialogs (early or confirmed) this request remembered a CSeq difference for: forgotten if it fails. */
  shiftKeys?: string[];
  serverDone: boolean;
  /** RFC 3325: the identity this node vouches for toward trusted zones (the authenticated caller), if any. */
  identity?: string;
  /** Media anchored for this request's SDP: responses carrying SDP go through the relay, in order. */
  media?: {
    callId: string;
    initial: boolean;
    chain: Promise<void>;
    /** Late offer (INVITE without SDP): the leg kinds of caller and callee, for the offer in the 18x/2xx. */
    late?: { caller: 'endpoint' | 'traversal'; callee: 'endpoint' | 'traversal'; anchored?: boolean };
    /** The leg kinds a first offer was anchored with (a search that goes on to another kind of zone re-anchors). */
    legs?: { from: 'endpoint' | 'traversal'; to: 'endpoint' | 'traversal' };
  };
}

/** Counters of the proxy, for status and tests. */
export interface ProxyCounters {
  requests: number;
  forwarded: number;
  branches: number;
  responsesForwarded: Record<number, number>;
  acksForwarded: number;
  cancelsReceived: number;
  cancelsSent: number;
  timerC: number;
  failovers: number;
  loops: number;
  /** Challenges of a neighbor zone answered with its credentials. */
  challengesAnswered: number;
  /** Searches that went on after every target they had found failed. */
  searchesContinued: number;
}

export interface StatefulProxyOptions {
  settings: Readonly<ProxySettings>;
  router: Router<SipTarget>;
  transactions: ProxyTransactions;
  /** This node's SIP listeners (Via sent-by, Record-Route, recognising our own Route and Request-URI). */
  listeners: () => readonly ProxyListener[];
  /** Domains the node serves (realm for challenges). */
  domains: readonly string[];
  clock: Clock;
  dns: DnsLookup;
  location?: ProxyLocation;
  authenticator?: RequestAuthenticator;
  /** Authentication policy of a source zone (config `auth.zones`); default `check`. */
  authPolicy?: (zone: string) => 'check' | 'treat-as-authenticated' | 'do-not-check';
  /** Zones inside the trust domain (RFC 3325) besides traversal zones and trusted neighbors (`auth.trustedZones`). */
  trustedZones?: readonly string[];
  /** Realm per domain (config `auth.realms`); a domain not listed is its own realm, as for the registrar. */
  realms?: Readonly<Record<string, string>>;
  calls?: CallRegistry;
  /** Traversal zones: flows, source zones, REGISTER proxied to the core (docs/traversal.md). */
  traversal?: ProxyTraversal;
  /** Flow tokens of Path URIs (default: a key of this process only; the node passes one kept in its store). */
  flowTokens?: FlowTokens;
  /** The node's media relay: SDP of proxied calls is anchored when present (docs/media.md). */
  media?: () => ProxyMedia | undefined;
  log?: Logger;
}

/** True for a message whose body is SDP. */
function hasSdp(msg: SipRequest | SipResponse): boolean {
  return msg.body.length > 0 && /^\s*application\/sdp/i.test(getHeader(msg, 'content-type') ?? '');
}

function setBody(msg: SipRequest | SipResponse, sdp: string): void {
  msg.body = Buffer.from(sdp);
  setHeader(msg, 'Content-Length', String(msg.body.length));
}

/** RFC 3263 for a URI string; [] when it does not parse. */
async function resolveString(uri: string, dns: DnsLookup): Promise<Destination[]> {
  const u = parseUri(uri);
  return u.ok ? resolveUri(u.value, dns) : [];
}

/** `user@host` (or a bare host) of a SIP URI: the alias routing sees. */
export function aliasOf(uri: SipUri): string {
  const host = uri.host.includes(':') ? `[${uri.host}]` : uri.host.toLowerCase();
  return uri.user !== undefined && uri.user !== '' ? `${uri.user}@${host}` : host;
}

/** The SIP searcher of routing's zones: the location service, a neighbor's address, or RFC 3263 for DNS zones. */
export function sipZoneSearcher(opts: {
  location?: ProxyLocation;
  dns: DnsLookup;
  scheme?: (alias: string) => string;
}): ZoneSearcher<SipTarget> {
  return {
    async search(zone: Zone, alias: string): Promise<SipTarget[]> {
      if (zone.type === 'local') {
        if (!opts.location) return [];
        const at = alias.lastIndexOf('@');
        const aor = at >= 0 ? `sip:${alias.slice(0, at)}@${alias.slice(at + 1).toLowerCase()}` : `sip:@${alias}`;
        return opts.location.lookup(aor).map((b) => {
          const transport = b.flow.transport.toUpperCase();
          const d: Destination = { transport, address: b.flow.source.address, port: b.flow.source.port };
          if (b.flow.connectionId !== undefined) d.connectionId = b.flow.connectionId;
          // Back out of the listener the registration arrived on: the side of the node the endpoint is reached from.
          d.local = { address: b.flow.local.address, port: b.flow.local.port };
          // The registrar keeps Path header values (`<uri>`); routes are bare URIs.
          return b.path.length > 0
            ? { uri: b.contact, routes: b.path.map((p) => /<([^>]*)>/.exec(p)?.[1] ?? p.trim()) }
            : { uri: b.contact, routes: [], destinations: [d] };
        });
      }
      const uri = `sip:${alias}`;
      // An H.323 neighbor gatekeeper is searched by the H.323 side only (src/h323/gatekeeper/neighbours.ts).
      if (zone.type === 'neighbor' && zone.protocol === 'h323') return [];
      if (zone.type === 'neighbor') {
        const transport = zone.transport.toUpperCase() as 'UDP' | 'TCP' | 'TLS';
        const host = zone.address!.includes(':') && isIP(zone.address!) === 6 ? `[${zone.address}]` : zone.address!;
        const port = zone.port ?? (transport === 'TLS' ? 5061 : 5060);
        const destinations = await resolveString(`sip:${host}:${port};transport=${transport.toLowerCase()}`, opts.dns);
        const target = alias.includes('@') ? uri : `sip:${alias}@${host}`;
        return destinations.length > 0 ? [{ uri: target, routes: [], destinations }] : [];
      }
      // DNS zone: found when RFC 3263 gives at least one destination.
      const destinations = await resolveString(uri, opts.dns);
      return destinations.length > 0 ? [{ uri, routes: [], destinations }] : [];
    },
  };
}

const formatHost = (h: string) => (h.includes(':') ? `[${h}]` : h);

/** Removes the first Route value (the line, or the first element of a comma list). */
function removeTopRoute(msg: SipRequest): void {
  const at = msg.headers.findIndex((h) => canonicalName(h.name) === 'route');
  if (at < 0) return;
  const h = msg.headers[at]!;
  const parts = splitList(h.value);
  if (parts.length <= 1) msg.headers.splice(at, 1);
  else msg.headers[at] = { name: h.name, value: parts.slice(1).join(', ') };
}

function copyRequest(req: SipRequest): SipRequest {
  return {
    kind: 'request',
    method: req.method,
    uri: req.uri,
    version: req.version,
    headers: req.headers.map((h) => ({ name: h.name, value: h.value })),
    body: req.body,
  };
}

/** The stateful proxy core; a `RequestHandler` of the node's transaction user. */
export class StatefulProxy {
  readonly name = 'proxy';
  readonly methods = PROXY_METHODS;
  readonly counters: ProxyCounters = {
    requests: 0,
    forwarded: 0,
    branches: 0,
    responsesForwarded: {},
    acksForwarded: 0,
    cancelsReceived: 0,
    cancelsSent: 0,
    timerC: 0,
    failovers: 0,
    loops: 0,
    challengesAnswered: 0,
    searchesContinued: 0,
  };
  readonly #opts: StatefulProxyOptions;
  readonly #log: Logger;
  /** Client transaction key → its context and branch. */
  readonly #byClient = new Map<string, { ctx: Context; branch: Branch }>();
  /** INVITE server transaction key → context (for CANCEL). */
  readonly #byServer = new Map<string, Context>();
  #seq = 0;
  readonly #neighborAuth = new NeighborAuth();
  /**
   * Dialogs whose INVITE went out with a higher CSeq than the caller's (an answered challenge): `Call-ID;caller tag;
   * callee tag` (a forked INVITE's other dialogs are not shifted) →
   * the difference, added to the caller's ACK and later requests.
   */
  readonly #dialogShift = new Map<string, number>();
  /** The flow tokens this proxy puts in Path (RFC 5626 §5.2: only this node can make or read them). */
  readonly #flowTokens: FlowTokens;

  constructor(opts: StatefulProxyOptions) {
    this.#opts = opts;
    this.#flowTokens = opts.flowTokens ?? new FlowTokens(randomBytes(32));
    this.#log = category(opts.log ?? silentLogger, 'sip.proxy');
  }

  /**
   * A REGISTER for a domain served behind a traversal zone (edge): proxied down the zone with a Path naming this node
   * and the endpoint's flow (RFC 3327, RFC 5626 §5.2), so calls to the endpoint come back on that flow. False: the
   * local registrar's.
   */
  handleRegister(request: SipRequest, transaction: ServerTransactionHandle, info: TransportInfo): boolean {
    const ruri = getRequestUri(request);
    if (!ruri.ok || !this.#opts.traversal) return false;
    const found = this.#opts.traversal.registerTarget(ruri.value.host.toLowerCase());
    if (!found) return false;
    this.counters.requests++;
    // The zone's flow is down: the registrar behind it is unreachable (never resolve the domain instead).
    if (!found.target.destinations?.length) {
      transaction.respond(
        createResponse(request, 503, 'Service Unavailable', { toTag: newTag(), headers: [['Retry-After', '30']] }),
      );
      return true;
    }
    const mf = getMaxForwards(request);
    if (mf?.ok && mf.value === 0) return this.#reject(transaction, 483, 'Too Many Hops');
    const fwd = copyRequest(request);
    // RFC 3261 §16.4: a Route naming this node (the phone's outbound proxy) is removed, else it is the next hop.
    this.#preprocessRoute(fwd);
    const ctx: Context = {
      state: 'forwarding',
      request,
      server: transaction,
      info,
      branches: [],
      cancelled: false,
      live: 0,
      pending: 0,
      serverDone: false,
    };
    // RFC 3327 §5.1: "the proxy MUST insert a Path header field value ... that resolves to itself" — on top of any.
    // It names the listener the core reaches this node on (the zone's flow), else the one the REGISTER came in on.
    const down = found.target.destinations?.[0];
    const near = (down && this.#opts.traversal?.flowListener?.(down)) ?? this.#inboundListener(info);
    prependHeader(fwd, 'Path', this.#flowRoute(near, info));
    void this.#forward(
      ctx,
      fwd,
      { uri: fwd.uri, routes: [], ...(found.target.destinations ? { destinations: found.target.destinations } : {}) },
      found.zone,
      false,
    ).catch((err: unknown) => {
      this.#log.error({ err }, 'REGISTER forwarding failed => 500');
      this.#reject(transaction, 500, 'Server Internal Error');
    });
    return true;
  }

  /** Contexts still open (server side), for status and leak tests. */
  get contexts(): number {
    return this.#byServer.size;
  }

  /** Client transactions the proxy still follows. */
  get branchesInFlight(): number {
    return this.#byClient.size;
  }

  // ───────────────────────────── requests ─────────────────────────────

  handle(request: SipRequest, transaction: ServerTransactionHandle, info: TransportInfo): boolean {
    if (request.method === 'CANCEL') return this.#cancelFromCaller(request, transaction);
    const ruri = getRequestUri(request);
    const inDialog = getToTag(request) !== undefined;
    // Requests for the node itself (OPTIONS sip:node, a stray in-dialog request with no Route) are the basic UAS's.
    if (ruri.ok && this.#isOurs(ruri.value) && !this.#hasForeignRoute(request)) {
      if (inDialog || ruri.value.user === undefined || ruri.value.user === '') return false;
    }
    this.counters.requests++;
    // RFC 3261 §16.3 step 3: "If the request does not contain a Max-Forwards header field, this check is passed.
    // If the request contains a Max-Forwards header field with a field value of zero (0), the element MUST NOT
    // forward the request. If the request was for OPTIONS, the element MAY act as the final recipient".
    const mf = getMaxForwards(request);
    if (mf && !mf.ok) return this.#reject(transaction, 400, 'Bad Max-Forwards');
    if (mf?.ok && mf.value === 0) {
      if (request.method === 'OPTIONS') return false;
      return this.#reject(transaction, 483, 'Too Many Hops');
    }
    // §16.3 step 2: URI scheme.
    if (!ruri.ok) return this.#reject(transaction, 416, 'Unsupported URI Scheme');
    // §16.3 step 5: "If the request contains a Proxy-Require header field ... with one or more option-tags this
    // element does not understand, the element MUST return a 420 (Bad Extension) response."
    const proxyRequire = getHeaders(request, 'proxy-require').filter((t) => t.trim() !== '');
    if (proxyRequire.length > 0) {
      transaction.respond(
        createResponse(request, 420, 'Bad Extension', {
          toTag: newTag(),
          headers: [['Unsupported', proxyRequire.join(', ')]],
        }),
      );
      return true;
    }
    // §16.3 step 4: loop detection.
    if (this.#isLoop(request)) {
      this.counters.loops++;
      return this.#reject(transaction, 482, 'Loop Detected');
    }
    const routes = getRoutes(request);
    if (routes && !routes.ok) return this.#reject(transaction, 400, 'Bad Route');
    void this.#process(request, transaction, info, inDialog).catch((err: unknown) => {
      this.#log.error({ err, method: request.method }, 'proxy failed => 500');
      this.#reject(transaction, 500, 'Server Internal Error');
    });
    return true;
  }

  /** RFC 3261 §16.11 (stateful proxies forward an ACK for a 2xx like any in-dialog request, without a transaction). */
  handleAck(ack: SipRequest, _info: TransportInfo): boolean {
    const ruri = getRequestUri(ack);
    if (!ruri.ok) return false;
    const fwd = copyRequest(ack);
    const flow = this.#preprocessRoute(fwd);
    const target = getRequestUri(fwd);
    if (!flow && !this.#hasForeignRoute(fwd) && (!target.ok || this.#isOurs(target.value))) return false;
    const mf = getMaxForwards(ack);
    if (mf?.ok && mf.value === 0) return true;
    setHeader(fwd, 'Max-Forwards', String(mf?.ok ? mf.value - 1 : 70));
    // RFC 3261 §13.2.2.4: the ACK carries the CSeq of the INVITE the callee answered (ours, after a challenge).
    this.#shiftCSeq(fwd, this.#dialogShift.get(this.#dialogKey(ack)));
    void this.#ackAnswer(fwd)
      .then(() => this.#nextHop(fwd, flow ? [flow] : undefined))
      .then((dests) => {
        const dest = dests[0];
        if (!dest) return;
        const l = this.#listenerFor(dest);
        if (!l) return;
        prependVia(fwd, this.#via(l, this.#statelessBranch(ack)));
        this.#opts.transactions.sendStateless(fwd, dest);
        this.counters.acksForwarded++;
      })
      .catch((err: unknown) => this.#log.warn({ err }, 'ACK forwarding failed => dropped'));
    return true;
  }

  async #process(request: SipRequest, server: ServerTransactionHandle, info: TransportInfo, inDialog: boolean) {
    const fwd = copyRequest(request);
    // RFC 3261 §16.4 Route information preprocessing; a Path of ours carries the flow of the endpoint it names.
    const flow = this.#preprocessRoute(fwd);
    const ctx: Context = {
      state: 'routing',
      request,
      server,
      info,
      branches: [],
      cancelled: false,
      live: 0,
      pending: 0,
      serverDone: false,
    };
    if (request.method === 'INVITE') this.#byServer.set(server.key, ctx);
    if (inDialog && this.#shiftCSeq(fwd, this.#dialogShift.get(this.#dialogKey(request)))) ctx.restoreCSeq = true;

    // §16.5: a pre-loaded Route, or an in-dialog request: the target is the Request-URI as it is.
    if (inDialog || this.#hasForeignRoute(fwd) || flow) {
      if (inDialog && request.method === 'BYE') {
        // The call is keyed by the caller's From tag: a BYE from the callee carries it in To.
        const byCaller = this.#callKey(request);
        const byCallee = `${getCallId(request) ?? ''};${getToTag(request) ?? ''}`;
        ctx.callId = this.#opts.calls?.get(byCaller)
          ? byCaller
          : this.#opts.calls?.get(byCallee)
            ? byCallee
            : undefined;
      }
      if (!(await this.#anchorInDialog(ctx, fwd, inDialog, info, flow))) return;
      this.#transition(ctx, 'forwarding');
      const rr = !inDialog && this.#opts.settings.recordRoute && DIALOG_CREATING.has(request.method);
      const target: SipTarget = { uri: fwd.uri, routes: [], ...(flow ? { destinations: [flow] } : {}) };
      await this.#forward(ctx, fwd, target, 'route', rr);
      return;
    }

    // Out of dialog: who is calling, authenticated or not, then routing.
    const sourceZone = this.#sourceZone(request, info);
    // RFC 3325 §5: P-Asserted-Identity from outside the trust domain is removed before anything reads it.
    removeUntrustedIdentity(fwd, sourceZone.trusted);
    let authenticated = sourceZone.trusted;
    const policy = this.#opts.authPolicy?.(sourceZone.name) ?? 'check';
    if (policy === 'treat-as-authenticated') authenticated = true;
    const auth = this.#opts.authenticator;
    const from = getFrom(request);
    // Delegated credential checking (docs/traversal.md): the caller's domain is served behind a traversal zone whose
    // core checks credentials; the request goes down that zone unchallenged and nowhere else.
    const delegated =
      !authenticated && policy === 'check' && AUTHENTICATED_METHODS.has(request.method) && from?.ok
        ? this.#opts.traversal?.delegatedTarget?.(from.value.uri.host.toLowerCase())
        : undefined;
    if (
      this.#opts.settings.authenticateCalls &&
      auth &&
      !authenticated &&
      !delegated &&
      policy === 'check' &&
      AUTHENTICATED_METHODS.has(request.method)
    ) {
      // RFC 3261 §22.3: a proxy challenges with 407 in the realm of the caller's domain.
      const host = from?.ok ? from.value.uri.host.toLowerCase() : this.#realm();
      const realm = this.#opts.realms?.[host] ?? host;
      const result: AuthResult = await auth.authenticate(request, { realm, mode: 'proxy', source: info.source });
      if (result.kind !== 'authenticated') {
        this.#sendFinal(ctx, result.response);
        return;
      }
      authenticated = true;
      this.#stripOwnCredentials(fwd, realm);
      ctx.identity = `sip:${result.username}@${host}`;
    }
    // The mark is this node's word to the next one only: whatever came in is dropped, a delegation adds its own.
    removeHeader(fwd, DELEGATED_AUTH_HEADER);
    if (delegated) setHeader(fwd, DELEGATED_AUTH_HEADER, delegated.zone);

    const ruri = getRequestUri(request);
    const alias = ruri.ok ? aliasOf(ruri.value) : request.uri;
    const sourceAlias = from?.ok ? aliasOf(from.value.uri) : '';
    const calls = this.#opts.calls;
    if (request.method === 'INVITE' && calls) {
      const id = this.#callKey(request);
      if (calls.start({ id, protocol: 'sip', from: sourceAlias, to: alias, sourceZone: sourceZone.name }))
        ctx.callId = id;
    }
    if (delegated && !delegated.target.destinations?.length) {
      // The zone is down: the node that checks this caller's credentials is unreachable.
      const busy = createResponse(request, 503, 'Service Unavailable', {
        toTag: newTag(),
        headers: [['Retry-After', '30']],
      });
      this.#sendFinal(ctx, busy);
      return;
    }
    const decision: RouteDecision<SipTarget> = delegated
      ? {
          kind: 'found',
          searchId: 0,
          alias,
          targets: [
            {
              zone: delegated.zone,
              rule: 'delegated credential checking',
              alias,
              target: { ...delegated.target, uri: fwd.uri },
            },
          ],
        }
      : await this.#opts.router.route({
          protocol: 'sip',
          alias,
          sourceAlias,
          sourceZone: sourceZone.name,
          authenticated,
          label: `${request.method} ${getCallId(request) ?? ''}`,
        });
    if (ctx.cancelled) {
      this.#sendFinal(ctx, createResponse(request, 487, 'Request Terminated', { toTag: newTag() }));
      return;
    }
    if (decision.kind === 'rejected') {
      this.#sendFinal(ctx, createResponse(request, 403, 'Forbidden', { toTag: newTag() }));
      return;
    }
    if (decision.kind === 'not-found') {
      this.#sendFinal(ctx, createResponse(request, 404, 'Not Found', { toTag: newTag() }));
      return;
    }
    const targets = decision.targets.slice(0, this.#opts.settings.maxBranches);
    if (!(await this.#anchorOffer(ctx, fwd, info, targets[0]))) return;
    if (decision.continuation) {
      ctx.fwd = fwd;
      ctx.search = { cont: decision.continuation, from: 0 };
    }
    this.#transition(ctx, 'forwarding');
    const recordRoute = this.#opts.settings.recordRoute && DIALOG_CREATING.has(request.method);
    // §16.6: one copy per target, forwarded in parallel.
    await Promise.all(
      targets.map((t) => this.#forward(ctx, copyRequest(fwd), t.target, t.zone, recordRoute, decision.searchId)),
    );
  }

  /** RFC 3261 §16.6 Request Forwarding, steps 1–11, for one target. */
  async #forward(
    ctx: Context,
    req: SipRequest,
    target: SipTarget,
    zone: string,
    recordRoute: boolean,
    searchId?: number,
  ): Promise<void> {
    // Step 2: Request-URI.
    req.uri = target.uri;
    // Step 3: Max-Forwards.
    const mf = getMaxForwards(req);
    setHeader(req, 'Max-Forwards', String(mf?.ok ? Math.max(0, mf.value - 1) : 70));
    // RFC 3325 §5/§6: vouch for the authenticated caller toward a trusted zone only; never leak P-Preferred-Identity.
    assertIdentity(req, {
      ...(ctx.identity ? { identity: ctx.identity } : {}),
      toTrusted: this.#zoneTrusted(zone),
    });
    // Step 6: postprocess routing information — the registration's Path become Route headers, in order.
    for (let i = target.routes.length - 1; i >= 0; i--) prependHeader(req, 'Route', `<${target.routes[i]}>`);
    // Step 7: the next hop. Until the branch exists, the context may not send its final answer.
    ctx.pending++;
    let destinations: Destination[];
    try {
      destinations = await this.#nextHop(req, target.destinations);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'next hop resolution failed => 503');
      destinations = [];
    } finally {
      ctx.pending--;
    }
    const branch: Branch = {
      index: ctx.branches.length,
      state: 'trying',
      zone,
      request: req,
      destinations,
      destIndex: 0,
      tx: undefined,
      timerC: undefined,
      provisional: false,
      response: undefined,
      cancelSent: false,
      authTries: 0,
      cseqShift: 0,
      recursed: false,
    };
    ctx.branches.push(branch);
    this.counters.branches++;
    if (ctx.callId && ctx.request.method === 'INVITE') this.#opts.calls?.addLeg(ctx.callId, zone, target.uri, searchId);
    if (ctx.cancelled) {
      this.#branchFinal(ctx, branch, createResponse(ctx.request, 487, 'Request Terminated'));
      return;
    }
    const dest = destinations[0];
    if (!dest) {
      this.#branchFinal(ctx, branch, createResponse(ctx.request, 503, 'No Route To Target'));
      return;
    }
    // Step 4: Record-Route — twice when the request leaves on another transport or interface than it came in on.
    if (recordRoute) {
      const out = this.#listenerFor(dest);
      const inbound = this.#inboundListener(ctx.info);
      if (out) {
        // With a traversal zone, a Record-Route facing an endpoint carries the endpoint's flow (token as in Path), so
        // in-dialog requests from the other side reach it on that flow even when its Contact is a private address.
        const t = this.#opts.traversal;
        // A different port counts too: the edge's traversal listener and its public TLS port share an address on a
        // one-interface edge, and the core must be given the traversal one (docs/traversal.md).
        if (
          inbound &&
          (inbound.transport !== out.transport || inbound.address !== out.address || inbound.port !== out.port)
        ) {
          const endpointIn = t !== undefined && t.sourceZone(ctx.info) === undefined;
          prependHeader(
            req,
            'Record-Route',
            endpointIn ? this.#flowRoute(inbound, ctx.info) : this.#recordRoute(inbound),
          );
          const endpointOut = t !== undefined && target.destinations !== undefined && !t.isFlow(dest);
          prependHeader(req, 'Record-Route', endpointOut ? this.#flowRouteTo(out, dest) : this.#recordRoute(out));
        } else prependHeader(req, 'Record-Route', this.#recordRoute(out));
      }
    }
    this.#send(ctx, branch);
  }

  /** Steps 8–11: Via, then a client transaction to the current destination; Timer C for INVITE. */
  #send(ctx: Context, branch: Branch): void {
    const dest = branch.destinations[branch.destIndex]!;
    const listener = this.#listenerFor(dest);
    if (!listener) {
      this.#branchFinal(ctx, branch, createResponse(ctx.request, 503, 'No Transport'));
      return;
    }
    // Step 8: "The proxy MUST insert a Via header field value into the copy before the existing Via header field
    // values"; the branch carries the loop-detection hash (§16.6 step 8, §16.3 step 4).
    prependVia(branch.request, this.#via(listener, this.#branchId(ctx.request)));
    let tx: ClientTransactionHandle;
    try {
      tx = this.#opts.transactions.sendRequest(branch.request, dest);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'cannot start client transaction => 503');
      removeTopVia(branch.request);
      this.#branchFinal(ctx, branch, createResponse(ctx.request, 503, 'Service Unavailable'));
      return;
    }
    branch.tx = tx;
    ctx.live++;
    this.#byClient.set(tx.key, { ctx, branch });
    this.counters.forwarded++;
    // Step 11: Timer C.
    if (ctx.request.method === 'INVITE') this.#armTimerC(ctx, branch);
  }

  #armTimerC(ctx: Context, branch: Branch): void {
    branch.timerC?.cancel();
    branch.timerC = this.#opts.clock.setTimer(this.#opts.settings.timerCSeconds * 1000, () => {
      this.counters.timerC++;
      // RFC 3261 §16.8: "If the client transaction has received a provisional response, the proxy MUST generate a
      // CANCEL request matching that transaction. If the client transaction has not received a provisional
      // response, the proxy MUST behave as if the transaction received a 408 (Request Timeout) response."
      if (branch.state === 'completed') return;
      if (branch.provisional && branch.tx && !branch.cancelSent) {
        this.#cancelBranch(branch);
        // A callee that never answers the CANCEL (no 487) is given up when Timer C fires again.
        this.#armTimerC(ctx, branch);
        return;
      }
      this.#unmap(branch);
      this.#branchFinal(ctx, branch, createResponse(ctx.request, 408, 'Request Timeout'));
    });
  }

  // ───────────────────────────── responses ─────────────────────────────

  /** A response to one of the proxy's client transactions; false when the transaction is not the proxy's. */
  onResponse(response: SipResponse, transaction: ClientTransactionHandle): boolean {
    const entry = this.#byClient.get(transaction.key);
    if (!entry) return false;
    const { ctx, branch } = entry;
    // RFC 3261 §16.7 step 3: "The proxy removes the topmost Via header field value from the response."
    const res: SipResponse = { ...response, headers: response.headers.map((h) => ({ name: h.name, value: h.value })) };
    removeTopVia(res);
    // "If no Via header field values remain in the response, the response was meant for this element and MUST NOT
    // be forwarded." A response to a CANCEL we originated ends here; but a UAS that built its 487 from the
    // CANCEL (one Via) instead of the INVITE still answers our branch: its upstream Vias are the request's own.
    if (!getVias(res)) {
      if (transaction.request.method !== ctx.request.method) return true;
      for (const h of findHeaders(ctx.request, 'via').reverse()) prependHeader(res, h.name, h.value);
    }
    // The caller's CSeq back in responses to a request sent on with another (an answered challenge).
    if (ctx.restoreCSeq) setHeader(res, 'CSeq', getHeader(ctx.request, 'cseq') ?? '');
    const media = ctx.media;
    if (media) {
      // Responses of an anchored request keep their order while SDP goes through the relay.
      media.chain = media.chain
        .then(() => this.#anchorAnswer(ctx, res))
        .then(() => {
          this.#branchResponse(ctx, branch, res);
        })
        .catch((err: unknown) => this.#log.error({ err }, 'response after media anchoring failed => dropped'));
      return true;
    }
    return this.#branchResponse(ctx, branch, res);
  }

  #branchResponse(ctx: Context, branch: Branch, res: SipResponse): boolean {
    const status = res.status;
    // Legs are the INVITE's branches; an in-dialog request (the BYE) has branches of its own.
    if (ctx.callId && ctx.request.method === 'INVITE') this.#opts.calls?.legStatus(ctx.callId, branch.index, status);
    if (status < 200) {
      branch.provisional = true;
      if (branch.state === 'trying') branch.state = 'proceeding';
      if (status === 100) return true;
      // An early dialog of a request sent with CSeq + 1 (PRACK, UPDATE before the answer) needs the difference too.
      if (branch.cseqShift > 0 && ctx.request.method === 'INVITE' && getToTag(res) !== undefined) {
        this.#rememberShift(ctx, `${this.#callKey(ctx.request)};${getToTag(res)}`, branch.cseqShift);
      }
      // §16.8: "Timer C MUST be reset when the proxy receives a provisional response with status between 101 and 199".
      if (ctx.request.method === 'INVITE' && branch.state !== 'completed') this.#armTimerC(ctx, branch);
      // §16.7 step 5: provisional responses (other than 100) are forwarded immediately.
      if (ctx.state !== 'completed') this.#forwardUp(ctx, res);
      return true;
    }
    if (status < 300) {
      // 2xx: forwarded at once, each of them (forked 2xx and retransmissions alike, RFC 6026 §8.2/§8.3).
      const first = branch.state !== 'completed';
      if (first && branch.cseqShift > 0 && ctx.request.method === 'INVITE') {
        const key = `${this.#callKey(ctx.request)};${getToTag(res) ?? ''}`;
        this.#rememberShift(ctx, key, branch.cseqShift);
        // The answer confirms one dialog: early dialogs of other tags end (RFC 3261 §13.2.2.4).
        for (const k of ctx.shiftKeys ?? []) if (k !== key) this.#dialogShift.delete(k);
      }
      this.#completeBranch(branch, res);
      this.#forwardUp(ctx, res);
      if (ctx.state !== 'completed') {
        this.#transition(ctx, 'completed');
        if (ctx.callId) {
          if (ctx.request.method === 'INVITE') this.#opts.calls?.answered(ctx.callId, branch.index);
          else if (ctx.request.method === 'BYE') this.#endCall(ctx);
        }
        if (ctx.request.method === 'BYE') this.#forgetShift(ctx.request);
      }
      // §16.7 step 10: "If a final response has been sent for the server transaction ... the proxy MUST cancel all
      // pending client transactions".
      if (first && ctx.request.method === 'INVITE') this.#cancelPending(ctx);
      this.#releaseIfDone(ctx);
      return true;
    }
    if (branch.state === 'completed') return true;
    if ((status === 401 || status === 407) && this.#answerChallenge(ctx, branch, res)) return true;
    if (status >= 300 && status < 400 && this.#opts.settings.redirects === 'recurse' && !ctx.cancelled) {
      if (this.#recurse(ctx, branch, res)) return true;
    }
    // RFC 3263 §4.3: a 503 moves on to the next destination of the same target.
    if (status === 503 && !branch.provisional && this.#failover(ctx, branch)) return true;
    this.#branchFinal(ctx, branch, res);
    return true;
  }

  /** Timer B/F of a client transaction: as a 408 (§16.8); next destination first when there is one. */
  onTimeout(transaction: TransactionHandle): boolean {
    const entry = this.#byClient.get(transaction.key);
    if (!entry) return false;
    const { ctx, branch } = entry;
    if (branch.state === 'completed') return true;
    if (!branch.provisional && this.#failover(ctx, branch)) return true;
    this.#branchFinal(ctx, branch, createResponse(ctx.request, 408, 'Request Timeout'));
    return true;
  }

  /** RFC 3261 §16.9: "the proxy MUST behave as if the forwarded request received a 503"; RFC 3263: try the next. */
  onTransportError(transaction: TransactionHandle): boolean {
    const entry = this.#byClient.get(transaction.key);
    if (!entry) return false;
    const { ctx, branch } = entry;
    if (branch.state === 'completed') return true;
    if (this.#failover(ctx, branch)) return true;
    this.#branchFinal(ctx, branch, createResponse(ctx.request, 503, 'Service Unavailable'));
    return true;
  }

  /** A transaction left the table: the proxy forgets it, and the context once nothing of it is live. */
  onTerminated(transaction: TransactionHandle): boolean {
    const entry = this.#byClient.get(transaction.key);
    if (entry) {
      this.#byClient.delete(transaction.key);
      entry.ctx.live--;
      entry.branch.timerC?.cancel();
      this.#releaseIfDone(entry.ctx);
      return true;
    }
    const ctx = this.#byServer.get(transaction.key);
    if (ctx && ctx.server === transaction) {
      ctx.serverDone = true;
      this.#releaseIfDone(ctx);
      return true;
    }
    return false;
  }

  #failover(ctx: Context, branch: Branch): boolean {
    if (ctx.cancelled || branch.destIndex + 1 >= branch.destinations.length) return false;
    this.#unmap(branch);
    removeTopVia(branch.request);
    branch.destIndex++;
    branch.state = 'trying';
    this.counters.failovers++;
    this.#send(ctx, branch);
    return true;
  }

  /** 3xx with redirects = recurse: the Contacts become new branches (bounded by maxBranches). */
  #recurse(ctx: Context, branch: Branch, res: SipResponse): boolean {
    const contacts = getContacts(res);
    if (!contacts?.ok || contacts.value === '*' || contacts.value.length === 0) return false;
    const room = this.#opts.settings.maxBranches - ctx.branches.length;
    const uris = contacts.value.slice(0, Math.max(0, room)).map((c) => c.uri);
    if (uris.length === 0) return false;
    branch.recursed = true;
    this.#completeBranch(branch, res);
    const base = copyRequest(branch.request);
    removeTopVia(base);
    for (const uri of uris) {
      const u = `${uri.scheme}:${uri.user ? `${uri.user}@` : ''}${formatHost(uri.host)}${uri.port ? `:${uri.port}` : ''}`;
      void this.#forward(ctx, copyRequest(base), { uri: u, routes: [] }, branch.zone, false);
    }
    return true;
  }

  /** A branch got its final answer (real or synthesized); send the best upstream when every branch is done. */
  #branchFinal(ctx: Context, branch: Branch, res: SipResponse): void {
    if (branch.state === 'completed') return;
    this.#completeBranch(branch, res);
    // §16.7 step 10 for 6xx: "the proxy SHOULD cancel all client pending transactions".
    if (res.status >= 600 && ctx.request.method === 'INVITE') this.#cancelPending(ctx);
    this.#settle(ctx);
    // A branch of a request already answered upstream (a forked MESSAGE after the first 2xx) ends here.
    if (ctx.state === 'completed') this.#releaseIfDone(ctx);
  }

  /**
   * Every branch ended (and none is being set up): the search goes on when all of its current step failed in a way
   * that allows it (`searchContinueOn`, not LocalZone, no `stop`), else the best response goes upstream.
   */
  #settle(ctx: Context): void {
    if (ctx.state !== 'forwarding' || ctx.pending > 0) return;
    if (!ctx.branches.every((b) => b.state === 'completed')) return;
    if (this.#mayContinue(ctx)) {
      void this.#searchOn(ctx).catch((err: unknown) => {
        this.#log.error({ err }, 'search continuation failed => 500');
        this.#sendFinal(ctx, createResponse(ctx.request, 500, 'Server Internal Error', { toTag: newTag() }));
      });
      return;
    }
    this.#sendFinal(ctx, this.#best(ctx));
  }

  #mayContinue(ctx: Context): boolean {
    const s = ctx.search;
    if (!s || !ctx.fwd || ctx.cancelled) return false;
    const on = this.#opts.settings.searchContinueOn;
    const step = ctx.branches.slice(s.from).filter((b) => !b.recursed);
    return (
      step.length > 0 &&
      // A branch this proxy CANCELled (Timer C after ringing) was found and given up on: not a miss.
      step.every(
        (b) => b.zone !== LOCAL_ZONE && !b.cancelSent && b.response !== undefined && on.includes(b.response.status),
      )
    );
  }

  /** The search goes on from the priority level after the one whose targets all failed (docs/routing.md). */
  async #searchOn(ctx: Context): Promise<void> {
    const s = ctx.search!;
    this.#transition(ctx, 'routing');
    this.counters.searchesContinued++;
    const outcomes = ctx.branches
      .slice(s.from)
      .filter((b) => !b.recursed)
      .map((b) => ({ zone: b.zone, status: b.response?.status ?? 408 }));
    const d = await this.#opts.router.resume(s.cont, outcomes);
    if (ctx.cancelled) {
      this.#sendFinal(ctx, createResponse(ctx.request, 487, 'Request Terminated', { toTag: newTag() }));
      return;
    }
    if (d.kind !== 'found') {
      // Nothing further: the best of what the zones answered (their 404 rather than ours).
      this.#sendFinal(ctx, this.#best(ctx));
      return;
    }
    if (!(await this.#reanchor(ctx, d.targets[0]))) return;
    if (d.continuation) ctx.search = { cont: d.continuation, from: ctx.branches.length };
    else delete ctx.search;
    this.#transition(ctx, 'forwarding');
    const recordRoute = this.#opts.settings.recordRoute && DIALOG_CREATING.has(ctx.request.method);
    const fwd = ctx.fwd!;
    await Promise.all(
      d.targets
        .slice(0, this.#opts.settings.maxBranches)
        .map((t) => this.#forward(ctx, copyRequest(fwd), t.target, t.zone, recordRoute, d.searchId)),
    );
  }

  /**
   * A 401/407 from a zone configured with credentials: the branch goes again, on a new client transaction, with the
   * answer (RFC 3261 §22.2, §22.3) and CSeq + 1 (§8.1.3.5: "the same Call-ID ... the CSeq header field value MUST be
   * incremented"). Once per branch, twice when the second challenge says the nonce was stale. False: the response
   * stays the branch's answer.
   */
  #answerChallenge(ctx: Context, branch: Branch, res: SipResponse): boolean {
    // Not for a request already answered upstream or a branch being cancelled (a 2xx came from another branch).
    if (ctx.cancelled || ctx.state === 'completed' || branch.cancelSent || branch.recursed) return false;
    // A REGISTER passed down a traversal zone is the endpoint's to answer, never the node's.
    if (ctx.request.method === 'REGISTER') return false;
    const zone = this.#opts.router.zone(branch.zone);
    const credentials = zone && (zone.type === 'neighbor' || zone.type === 'dns') ? zone.authentication : undefined;
    if (!credentials) return false;
    const req = branch.request;
    const answer = this.#neighborAuth.answer(res, branch.zone, credentials, req.method, req.uri);
    const cseq = getCSeq(req);
    if (!answer || !cseq?.ok) return false;
    if (branch.authTries >= 2 || (branch.authTries === 1 && !answer.stale)) {
      this.#log.warn({ zone: branch.zone, status: res.status }, 'zone refused our credentials => 403 for the branch');
      this.#branchFinal(ctx, branch, createResponse(ctx.request, 403, 'Zone Authentication Failed'));
      return true;
    }
    this.#unmap(branch);
    removeTopVia(req);
    req.headers = dropCredentials(req.headers, answer.header, answer.realms);
    for (const v of answer.values) req.headers.push({ name: answer.header, value: v });
    setHeader(req, 'CSeq', `${cseq.value.seq + 1} ${cseq.value.method}`);
    branch.cseqShift++;
    branch.authTries++;
    branch.state = 'trying';
    branch.provisional = false;
    ctx.restoreCSeq = true;
    this.counters.challengesAnswered++;
    this.#send(ctx, branch);
    return true;
  }

  /** Adds the dialog's CSeq difference to a request; false when there is none. */
  #shiftCSeq(req: SipRequest, shift: number | undefined): boolean {
    if (!shift) return false;
    const cseq = getCSeq(req);
    if (!cseq?.ok) return false;
    setHeader(req, 'CSeq', `${cseq.value.seq + shift} ${cseq.value.method}`);
    return true;
  }

  /** `Call-ID;From tag;To tag` of an in-dialog request: the caller's requests name the dialog as it was answered. */
  #dialogKey(req: SipRequest): string {
    return `${getCallId(req) ?? ''};${getFromTag(req) ?? ''};${getToTag(req) ?? ''}`;
  }

  #rememberShift(ctx: Context, key: string, shift: number): void {
    if (this.#dialogShift.get(key) !== shift) {
      ctx.shiftKeys ??= [];
      ctx.shiftKeys.push(key);
    }
    this.#dialogShift.delete(key);
    this.#dialogShift.set(key, shift);
    if (this.#dialogShift.size > MAX_SHIFTED_DIALOGS) this.#dialogShift.delete(this.#dialogShift.keys().next().value!);
  }

  /** The dialog a BYE ends needs no CSeq difference any more (either side's BYE). */
  #forgetShift(bye: SipRequest): void {
    if (this.#dialogShift.size === 0) return;
    const callId = getCallId(bye) ?? '';
    const from = getFromTag(bye) ?? '';
    const to = getToTag(bye) ?? '';
    this.#dialogShift.delete(`${callId};${from};${to}`);
    this.#dialogShift.delete(`${callId};${to};${from}`);
  }

  /** Dialogs remembered with a CSeq difference (status, tests). */
  get shiftedDialogs(): number {
    return this.#dialogShift.size;
  }

  #completeBranch(branch: Branch, res: SipResponse): void {
    if (branch.state === 'completed') return;
    if (!BRANCH_EDGES[branch.state].includes('completed')) return;
    branch.state = 'completed';
    branch.response = res;
    branch.timerC?.cancel();
    branch.timerC = undefined;
  }

  /**
   * RFC 3261 §16.7 step 6: "the proxy MUST choose from the 6xx class responses if any exist in the context. If no 6xx
   * class responses are present, the proxy SHOULD choose from the lowest response class stored in the response
   * context ... If no final response has been received, 408. ... If the selected response is a 503, the proxy MUST
   * generate a 500 (Server Error) response". Challenges of every 401/407 are gathered into the chosen one (§16.7
   * step 7).
   */
  #best(ctx: Context): SipResponse {
    // §16.7 step 4: a 3xx whose Contacts were recursed on is out of the running, unless nothing else answered.
    const answered = ctx.branches.filter((b) => b.response !== undefined);
    const live = answered.filter((b) => !b.recursed);
    const finals = (live.length > 0 ? live : answered).map((b) => b.response!);
    if (ctx.cancelled) return createResponse(ctx.request, 487, 'Request Terminated', { toTag: newTag() });
    let best = finals.find((r) => r.status >= 600);
    if (!best) {
      for (const r of finals) {
        if (!best) best = r;
        else if (Math.floor(r.status / 100) < Math.floor(best.status / 100)) best = r;
        // Within the class, prefer an answer from the far end over our own timeout or overload reports.
        else if (Math.floor(r.status / 100) === Math.floor(best.status / 100) && [408, 503].includes(best.status)) {
          if (![408, 503].includes(r.status)) best = r;
        }
      }
    }
    if (!best) return createResponse(ctx.request, 408, 'Request Timeout', { toTag: newTag() });
    if (best.status === 503) return createResponse(ctx.request, 500, 'Server Internal Error', { toTag: newTag() });
    if (best.status === 401 || best.status === 407) {
      const out = { ...best, headers: best.headers.map((h) => ({ ...h })) };
      for (const r of finals) {
        if (r === best || (r.status !== 401 && r.status !== 407)) continue;
        for (const name of ['www-authenticate', 'proxy-authenticate']) {
          for (const h of findHeaders(r, name)) out.headers.push({ name: h.name, value: h.value });
        }
      }
      return out;
    }
    // A response the proxy made itself for a branch needs the To tag of a UAS (§8.2.6.2).
    if (best.status >= 300 && getToTag(best) === undefined) {
      setHeader(best, 'To', `${getHeader(best, 'to') ?? ''};tag=${newTag()}`);
    }
    return best;
  }

  #sendFinal(ctx: Context, res: SipResponse): void {
    if (ctx.state === 'completed') return;
    this.#transition(ctx, 'completed');
    // A failed first INVITE (CANCEL included) ends the call: its ports go back, its early dialogs are forgotten.
    if (ctx.media?.initial && res.status >= 300) this.#opts.media?.()?.delete(ctx.media.callId);
    if (res.status >= 300 && ctx.shiftKeys) for (const k of ctx.shiftKeys) this.#dialogShift.delete(k);
    this.#forwardUp(ctx, res);
    if (ctx.callId) {
      if (ctx.request.method === 'INVITE') {
        const cause = ctx.cancelled ? 'cancelled by caller' : `${res.status} ${res.reason}`;
        this.#opts.calls?.finish(ctx.callId, res.status, cause);
      } else if (ctx.request.method === 'BYE') {
        this.#endCall(ctx);
      }
    }
    if (ctx.request.method === 'BYE') this.#forgetShift(ctx.request);
    this.#releaseIfDone(ctx);
  }

  #forwardUp(ctx: Context, res: SipResponse): void {
    if (ctx.server.respond(res)) {
      this.counters.responsesForwarded[res.status] = (this.counters.responsesForwarded[res.status] ?? 0) + 1;
    }
  }

  #endCall(ctx: Context): void {
    const calls = this.#opts.calls;
    if (!calls || !ctx.callId) return;
    const fromTag = getFromTag(ctx.request);
    const caller = ctx.callId.endsWith(`;${fromTag}`);
    calls.finish(ctx.callId, 200, caller ? 'bye from caller' : 'bye from callee');
  }

  // ───────────────────────────── media anchoring ─────────────────────────────

  /**
   * The first INVITE's SDP offer goes through the relay (docs/media.md): the leg it came from and the leg it goes to
   * are `traversal` when they face the other Crossway node. False when the relay refused and the caller was answered.
   */
  async #anchorOffer(
    ctx: Context,
    fwd: SipRequest,
    info: TransportInfo,
    first: { zone: string; target: SipTarget } | undefined,
  ): Promise<boolean> {
    const media = this.#opts.media?.();
    if (!media || ctx.request.method !== 'INVITE') return true;
    if (fwd.body.length > 0 && !hasSdp(fwd)) return true;
    const from = this.#opts.traversal?.sourceZone(info) !== undefined ? 'traversal' : 'endpoint';
    const to = await this.#calleeKind(first);
    if (fwd.body.length === 0) {
      // RFC 3264 §4 / RFC 3261 §13.2.1: no offer in the INVITE — the callee offers in its 18x/2xx, the caller answers
      // in the ACK.
      ctx.media = {
        callId: getCallId(fwd) ?? '',
        initial: true,
        chain: Promise.resolve(),
        late: { caller: from, callee: to },
      };
      return true;
    }
    return this.#offer(ctx, fwd, media, from, to, true);
  }

  /** The callee's leg kind: `traversal` for a traversal zone or a target whose next hop is a zone's flow. */
  async #calleeKind(first: { zone: string; target: SipTarget } | undefined): Promise<'endpoint' | 'traversal'> {
    const t = this.#opts.traversal;
    if (!t || !first) return 'endpoint';
    // A traversal zone, or a target whose next hop is a zone's flow (an endpoint registered through the edge).
    const route = first.target.routes[0];
    const hops = route !== undefined ? await resolveString(route, this.#opts.dns) : (first.target.destinations ?? []);
    return t.isTraversalZone(first.zone) || hops.some((d) => t.isFlow(t.viaFlow(d))) ? 'traversal' : 'endpoint';
  }

  /**
   * A search that went on to a zone of another kind (the traversal zone answered 404, the DNS zone is next): the first
   * offer is anchored again for the new callee leg, from the caller's own SDP. False when the relay refused (answered).
   */
  async #reanchor(ctx: Context, first: { zone: string; target: SipTarget } | undefined): Promise<boolean> {
    const media = this.#opts.media?.();
    const m = ctx.media;
    if (!media || !m?.initial || !ctx.fwd) return true;
    const to = await this.#calleeKind(first);
    if (m.late) {
      m.late.callee = to;
      return true;
    }
    if (!m.legs || m.legs.to === to) return true;
    media.delete(m.callId);
    setBody(ctx.fwd, ctx.request.body.toString('utf8'));
    return this.#offer(ctx, ctx.fwd, media, m.legs.from, to, true);
  }

  /**
   * In-dialog offers (re-INVITE, UPDATE) of an anchored call reuse its ports; a BYE releases them; an INVITE steered by
   * a flow token (the core calling an endpoint registered through this edge) is a first offer from the traversal side.
   * An INVITE without SDP, in a dialog or on a flow token, is a late offer: the offer in the 2xx and the answer in the
   * ACK go through the relay (#anchorAnswer, #ackAnswer), so the endpoints' own addresses never pass unrewritten.
   */
  async #anchorInDialog(
    ctx: Context,
    fwd: SipRequest,
    inDialog: boolean,
    info: TransportInfo,
    flow: Destination | undefined,
  ): Promise<boolean> {
    const media = this.#opts.media?.();
    const callId = getCallId(fwd);
    if (!media || callId === undefined) return true;
    const method = ctx.request.method;
    if (inDialog && method === 'BYE') {
      media.delete(callId);
      return true;
    }
    if (method !== 'INVITE' && method !== 'UPDATE') return true;
    if (!hasSdp(fwd)) {
      // RFC 3311 §5.1: an UPDATE without a body carries no offer. A body that is not SDP is not ours to anchor.
      if (method !== 'INVITE' || fwd.body.length > 0) return true;
      // RFC 3261 §14.1 / RFC 3264 §4: a re-INVITE without SDP asks the UAS to offer in its 2xx; the ACK answers.
      if (inDialog) {
        if (!media.has(callId)) return true;
        // The call keeps the leg kinds of its first offer: the relay ignores these for a call it knows.
        ctx.media = {
          callId,
          initial: false,
          chain: Promise.resolve(),
          late: { caller: 'endpoint', callee: 'endpoint' },
        };
        return true;
      }
      const caller = this.#opts.traversal?.sourceZone(info) !== undefined ? 'traversal' : 'endpoint';
      ctx.media = {
        callId,
        initial: true,
        chain: Promise.resolve(),
        late: { caller, callee: flow ? 'endpoint' : 'traversal' },
      };
      return true;
    }
    if (inDialog) return media.has(callId) ? this.#offer(ctx, fwd, media, 'endpoint', 'endpoint', false) : true;
    if (method !== 'INVITE') return true;
    const from = this.#opts.traversal?.sourceZone(info) !== undefined ? 'traversal' : 'endpoint';
    return this.#offer(ctx, fwd, media, from, flow ? 'endpoint' : 'traversal', true);
  }

  async #offer(
    ctx: Context,
    fwd: SipRequest,
    media: ProxyMedia,
    from: 'endpoint' | 'traversal',
    to: 'endpoint' | 'traversal',
    initial: boolean,
  ): Promise<boolean> {
    const callId = getCallId(fwd) ?? '';
    // An in-dialog offer never anchors a new call: the call may be gone, released by a BYE that crossed it.
    const r = await media.offer({
      callId,
      fromTag: getFromTag(fwd) ?? '',
      sdp: fwd.body.toString('utf8'),
      from,
      to,
      create: initial,
    });
    if (!r.ok) {
      this.#log.warn({ callId, status: r.reason.status, why: r.reason.message }, 'media offer refused => answered');
      this.#transition(ctx, 'forwarding');
      // the relay refuses with 481, 488 or 503: their RFC 3261 phrases
      this.#sendFinal(ctx, createResponse(ctx.request, r.reason.status, undefined, { toTag: newTag() }));
      return false;
    }
    setBody(fwd, r.value.sdp);
    ctx.media = { callId, initial, chain: Promise.resolve(), ...(initial ? { legs: { from, to } } : {}) };
    return true;
  }

  /** An SDP answer in a 18x/2xx of an anchored offer: rewritten toward the offerer. */
  async #anchorAnswer(ctx: Context, res: SipResponse): Promise<void> {
    const media = this.#opts.media?.();
    if (!media || !ctx.media || res.status < 101 || res.status >= 300 || !hasSdp(res)) return;
    const late = ctx.media.late;
    if (late) {
      // The callee's offer: the relay learns the callee as the offerer (rtpengine's convention for a late offer). Only
      // the first one of a first INVITE may anchor the call: a later 18x/2xx (a retransmission that crossed the ACK and
      // the BYE) or the 2xx of a re-INVITE finds the call or nothing.
      const r = await media.offer({
        callId: ctx.media.callId,
        fromTag: getToTag(res) ?? '',
        sdp: res.body.toString('utf8'),
        from: late.callee,
        to: late.caller,
        create: ctx.media.initial && !late.anchored,
      });
      if (r.ok) {
        late.anchored = true;
        setBody(res, r.value.sdp);
      } else
        this.#log.warn({ callId: ctx.media.callId, why: r.reason.message }, 'media late offer refused => passed as is');
      return;
    }
    const r = await media.answer({
      callId: ctx.media.callId,
      fromTag: getFromTag(ctx.request) ?? '',
      toTag: getToTag(res) ?? '',
      sdp: res.body.toString('utf8'),
    });
    if (r.ok) setBody(res, r.value.sdp);
    else this.#log.warn({ callId: ctx.media.callId, why: r.reason.message }, 'media answer refused => passed as is');
  }

  /** The caller's answer in the ACK of a late-offer call goes through the relay (offerer: the callee, the To tag). */
  async #ackAnswer(ack: SipRequest): Promise<void> {
    const media = this.#opts.media?.();
    const callId = getCallId(ack);
    if (!media || callId === undefined || !hasSdp(ack) || !media.has(callId)) return;
    const r = await media.answer({
      callId,
      fromTag: getToTag(ack) ?? '',
      toTag: getFromTag(ack) ?? '',
      sdp: ack.body.toString('utf8'),
    });
    if (r.ok) setBody(ack, r.value.sdp);
    else this.#log.warn({ callId, why: r.reason.message }, 'media answer in ACK refused => passed as is');
  }

  // ───────────────────────────── flow tokens ─────────────────────────────

  /**
   * A Path / Record-Route URI naming this node and the flow a request came on (RFC 5626 §5.2): the user part is the
   * flow, signed with a key only this node holds, so a request routed back with it goes out on that flow.
   */
  #flowRoute(l: ProxyListener | undefined, info: TransportInfo): string {
    const token = this.#flowTokens.encode({
      transport: info.transport,
      address: info.source.address,
      port: info.source.port,
      ...(info.connectionId !== undefined ? { connectionId: info.connectionId } : {}),
    });
    const listener = l ?? { transport: 'UDP' as const, address: info.local.address, port: info.local.port };
    const t = listener.transport === 'UDP' ? '' : `;transport=${listener.transport.toLowerCase()}`;
    return `<sip:${token}@${formatHost(listener.address)}:${listener.port}${t};lr;ob>`;
  }

  #readFlowToken(route: string): Destination | undefined {
    return this.#flowTokens.decode(route);
  }

  // ───────────────────────────── CANCEL ─────────────────────────────

  /** RFC 3261 §16.10: answer the CANCEL 200 and cancel every pending branch of the INVITE it matches. */
  #cancelFromCaller(cancel: SipRequest, transaction: ServerTransactionHandle): boolean {
    const invite = transaction.cancels;
    const ctx = invite ? this.#byServer.get(invite.key) : undefined;
    if (!ctx) return false;
    this.counters.cancelsReceived++;
    transaction.respond(createResponse(cancel, 200, 'OK', { toTag: newTag() }));
    if (ctx.state === 'completed') return true;
    ctx.cancelled = true;
    this.#cancelPending(ctx);
    this.#settle(ctx);
    return true;
  }

  #cancelPending(ctx: Context): void {
    for (const b of ctx.branches) if (b.state !== 'completed') this.#cancelBranch(b);
  }

  #cancelBranch(branch: Branch): void {
    if (!branch.tx) return;
    branch.cancelSent = true;
    const out = this.#opts.transactions.cancel(branch.tx);
    if (out.status !== 'too-late') this.counters.cancelsSent++;
  }

  // ───────────────────────────── helpers ─────────────────────────────

  #transition(ctx: Context, to: ContextState): void {
    if (ctx.state === to) return;
    if (!CONTEXT_EDGES[ctx.state].includes(to)) {
      this.#log.error({ from: ctx.state, to }, 'illegal response-context transition => ignored');
      return;
    }
    ctx.state = to;
  }

  #unmap(branch: Branch): void {
    if (branch.tx && this.#byClient.get(branch.tx.key)?.branch === branch) {
      // The old transaction stays in the layer until it terminates; its late messages are not ours any more.
      this.#byClient.delete(branch.tx.key);
      branch.tx = undefined;
    }
  }

  #releaseIfDone(ctx: Context): void {
    if (ctx.state !== 'completed') return;
    delete ctx.fwd;
    delete ctx.search;
    // The server transaction stays mapped while it lives (CANCEL after the 2xx gets its 200 from us, not a 481).
    if (ctx.serverDone || ctx.request.method !== 'INVITE') this.#byServer.delete(ctx.server.key);
    // A non-INVITE is done once answered: its ended branches are not followed to their Timer K, so the context (and
    // the server transaction it holds, which the layer keeps as a compact record) is garbage at once. A forked
    // INVITE's branches stay mapped: a 2xx from another branch must still be forwarded (RFC 6026).
    if (ctx.request.method !== 'INVITE') {
      for (const b of ctx.branches) if (b.state === 'completed') this.#unmap(b);
    }
  }

  #reject(tx: ServerTransactionHandle, status: number, reason: string): boolean {
    tx.respond(createResponse(tx.request, status, reason, { toTag: newTag() }));
    return true;
  }

  #callKey(req: SipRequest): string {
    return `${getCallId(req) ?? ''};${getFromTag(req) ?? ''}`;
  }

  #realm(): string {
    return this.#opts.domains[0] ?? this.#opts.listeners()[0]?.address ?? 'crossway';
  }

  /** RFC 3261 §22.3: credentials for our own realm are consumed here, not forwarded. */
  #stripOwnCredentials(req: SipRequest, realm: string): void {
    req.headers = req.headers.filter(
      (h) =>
        canonicalName(h.name) !== 'proxy-authorization' ||
        !new RegExp(`realm\\s*=\\s*"?${realm.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"?`, 'i').test(h.value),
    );
  }

  /** Whether a routing zone is inside the trust domain (RFC 3325): the other node's traversal zone, or configured so. */
  #zoneTrusted(zone: string): boolean {
    if (this.#opts.traversal?.isTraversalZone(zone) || this.#opts.trustedZones?.includes(zone)) return true;
    return this.#opts.router.zones().some((z) => z.name === zone && z.type === 'neighbor' && z.trusted === true);
  }

  /** Where the request comes from: a configured zone by address, the local zone for a registered endpoint, else default. */
  #sourceZone(req: SipRequest, info: TransportInfo): { name: string; trusted: boolean } {
    // The other node's authenticated flow: its zone, trusted (it authenticated its own endpoints).
    const tz = this.#opts.traversal?.sourceZone(info);
    // Unless it delegated the caller's credential check to this node: then the request is as good as a stranger's.
    if (tz !== undefined) return { name: tz, trusted: getHeader(req, DELEGATED_AUTH_HEADER) === undefined };
    for (const z of this.#opts.router.zones()) {
      if (z.type === 'neighbor' && z.protocol !== 'h323' && z.address === info.source.address)
        return { name: z.name, trusted: z.trusted };
    }
    const from = getFrom(req);
    if (from?.ok && this.#opts.location) {
      const u = from.value.uri;
      const bindings = this.#opts.location.lookup(`sip:${u.user ?? ''}@${u.host.toLowerCase()}`);
      if (bindings.some((b) => b.flow.source.address === info.source.address))
        return { name: LOCAL_ZONE, trusted: false };
    }
    return { name: DEFAULT_ZONE, trusted: false };
  }

  /**
   * True for a URI naming this node: one of its listeners (address and port; the default port when none is given),
   * or, without a port, one of its addresses or served domains.
   */
  #isOurs(uri: SipUri): boolean {
    const port = (t: string) => (t === 'TLS' ? 5061 : 5060);
    const host = uri.host.toLowerCase();
    for (const l of this.#opts.listeners()) {
      if (l.address === host && (uri.port ?? port(l.transport)) === l.port) return true;
      if (uri.port === undefined && l.address === host) return true;
    }
    return uri.port === undefined && this.#opts.domains.includes(host);
  }

  #routeIsOurs(value: string): boolean {
    const u = parseUri(value.replace(/^.*<|>.*$/g, ''));
    return u.ok && this.#isOurs(u.value);
  }

  /** True when the request still has a Route that is not ours (after preprocessing). */
  #hasForeignRoute(req: SipRequest): boolean {
    const routes = getRoutes(req);
    return routes?.ok === true && routes.value.length > 0 && !this.#isOurs(routes.value[0]!.uri);
  }

  /**
   * RFC 3261 §16.4: "If the Request-URI contains a value this proxy previously placed into a Record-Route header
   * field, the proxy MUST replace the Request-URI in the request with the last value from the Route header field,
   * and remove that value from the Route header field" (a strict router upstream); then "If the first value in the
   * Route header field indicates this proxy, the proxy MUST remove that value" — twice after a double Record-Route.
   */
  #preprocessRoute(req: SipRequest): Destination | undefined {
    let flow: Destination | undefined;
    const ruri = getRequestUri(req);
    const routes = getRoutes(req);
    if (ruri.ok && this.#isOurs(ruri.value) && getParam(ruri.value.params, 'lr') !== undefined && routes?.ok) {
      const last = routes.value[routes.value.length - 1];
      if (last) {
        const lines = findHeaders(req, 'route');
        const lastLine = lines[lines.length - 1]!;
        const parts = splitList(lastLine.value);
        parts.pop();
        if (parts.length === 0) req.headers.splice(req.headers.indexOf(lastLine), 1);
        else lastLine.value = parts.join(', ');
        const u = last.uri;
        req.uri = `${u.scheme}:${u.user ? `${u.user}@` : ''}${formatHost(u.host)}${u.port ? `:${u.port}` : ''}`;
      }
    }
    for (let i = 0; i < 4; i++) {
      const top = findHeaders(req, 'route')[0];
      if (!top) break;
      const first = splitList(top.value)[0];
      if (first === undefined || !this.#routeIsOurs(first)) break;
      flow ??= this.#readFlowToken(first);
      removeTopRoute(req);
    }
    return flow;
  }

  /** RFC 3261 §16.6 step 7: the top Route if any (loose routing), else the known destinations, else the Request-URI. */
  async #nextHop(req: SipRequest, known: Destination[] | undefined): Promise<Destination[]> {
    const t = this.#opts.traversal;
    const routes = getRoutes(req);
    let out: Destination[];
    if (routes?.ok && routes.value.length > 0) out = await resolveUri(routes.value[0]!.uri, this.#opts.dns);
    else if (known && known.length > 0) out = known;
    else {
      const u = getRequestUri(req);
      out = u.ok ? await resolveUri(u.value, this.#opts.dns) : [];
    }
    return t ? out.map((d) => t.viaFlow(d)) : out;
  }

  /**
   * The listener a request to `dest` leaves from, hence its Via and Record-Route (docs/routing.md, "Which listener a
   * request leaves from"): the one the target is reached through — a traversal zone's flow listener (the edge's private
   * side, facing the core), or the socket the destination names (`local`: the listener a registration arrived on) —
   * else the first listener of the transport and address family (the node's SIP listeners, on its own side).
   */
  #listenerFor(dest: Destination): ProxyListener | undefined {
    const flow = this.#opts.traversal?.flowListener?.(dest);
    if (flow) return flow;
    const ls = this.#opts.listeners();
    const t = dest.transport.toUpperCase();
    const local = dest.local;
    if (local) {
      const own =
        ls.find((l) => l.transport === t && l.address === local.address && l.port === local.port) ??
        ls.find((l) => l.transport === t && l.address === local.address);
      if (own) return own;
    }
    const family = isIP(dest.address) === 6 ? 6 : 4;
    return (
      ls.find((l) => l.transport === t && (isIP(l.address) === 6 ? 6 : 4) === family) ??
      ls.find((l) => l.transport === t)
    );
  }

  #inboundListener(info: TransportInfo): ProxyListener | undefined {
    const t = info.transport.toUpperCase();
    const ls = this.#opts.listeners();
    return (
      ls.find((l) => l.transport === t && l.address === info.local.address && l.port === info.local.port) ??
      // A request on a connection this node opened (the core's traversal flow): our listener of that transport.
      ls.find((l) => l.transport === t && l.address === info.local.address) ?? {
        transport: t as ProxyListener['transport'],
        address: info.local.address,
        port: info.local.port,
      }
    );
  }

  #via(l: ProxyListener, branch: string): string {
    return `SIP/2.0/${l.transport} ${formatHost(l.address)}:${l.port};branch=${branch};rport`;
  }

  /** A Record-Route naming this node and the flow a request leaves on (`#flowRoute` for a destination). */
  #flowRouteTo(l: ProxyListener, dest: Destination): string {
    return this.#flowRoute(l, {
      transport: dest.transport,
      reliable: dest.transport !== 'UDP',
      source: { address: dest.address, port: dest.port },
      local: { address: l.address, port: l.port },
      ...(dest.connectionId !== undefined ? { connectionId: dest.connectionId } : {}),
    });
  }

  #recordRoute(l: ProxyListener): string {
    const t = l.transport === 'UDP' ? '' : `;transport=${l.transport.toLowerCase()}`;
    return `<sip:${formatHost(l.address)}:${l.port}${t};lr>`;
  }

  /**
   * RFC 3261 §16.6 step 8: the branch of a forwarded request carries a hash of what identifies the request as received
   * (Request-URI, From tag, Call-ID, CSeq number), so a request coming back unchanged is a loop (§16.3 step 4).
   */
  #loopHash(req: SipRequest): string {
    const cseq = getCSeq(req);
    return createHash('md5')
      .update(`${req.uri}\n${getFromTag(req) ?? ''}\n${getCallId(req) ?? ''}\n${cseq?.ok ? cseq.value.seq : ''}`)
      .digest('hex')
      .slice(0, 12);
  }

  /**
   * RFC 3261 §16.11: a request forwarded without a transaction (the ACK for a 2xx) keeps its branch when it is
   * retransmitted — a hash of what identifies it as received: the top Via (its branch), the To and From tags, the
   * Call-ID, the CSeq number and the Request-URI. A UAS then takes a retransmitted ACK for the same message, not for a
   * stray one (sipp aborts the call on the latter).
   */
  #statelessBranch(req: SipRequest): string {
    const topVia = splitList(findHeaders(req, 'via')[0]?.value ?? '')[0] ?? '';
    const cseq = getCSeq(req);
    return `z9hG4bKcwa${createHash('sha256')
      .update(`${topVia}\n${getToTag(req) ?? ''}\n${getFromTag(req) ?? ''}\n${getCallId(req) ?? ''}\n`)
      .update(`${cseq?.ok ? cseq.value.seq : ''}\n${req.uri}`)
      .digest('base64url')
      .slice(0, 22)}`;
  }

  #branchId(req: SipRequest): string {
    return `z9hG4bKcw${this.#loopHash(req)}.${(++this.#seq).toString(36)}${newTag().slice(0, 6)}`;
  }

  #isLoop(req: SipRequest): boolean {
    const vias = getVias(req);
    if (!vias?.ok) return false;
    let prefix: string | undefined;
    for (const v of vias.value) {
      const b = getParam(v.params, 'branch');
      if (typeof b !== 'string' || !b.startsWith('z9hG4bKcw')) continue;
      const l = this.#opts.listeners().find((x) => x.address === v.host && (v.port ?? 5060) === x.port);
      if (!l) continue;
      prefix ??= `z9hG4bKcw${this.#loopHash(req)}.`;
      if (b.startsWith(prefix)) return true;
    }
    return false;
  }
}
