import type { PeerCertificate } from 'node:tls';
import type { Clock } from '../common/timers.ts';
import type { RequestAuthenticator } from '../sip/auth/types.ts';
import { createResponse, getTopVia, newTag } from '../sip/message/index.ts';
import type { SipRequest } from '../sip/message/types.ts';
import type { Destination, ServerTransactionHandle, TransportInfo } from '../sip/transaction/types.ts';
import { certificateNames } from '../sip/transport/tls-transport.ts';
import { KNOWN_METHODS, type RequestHandler } from '../sip/tu/basic-uas.ts';
import type { ZoneStatus } from './client-zone.ts';

/** Most `host:port` hops of the core remembered per flow (its Via sent-by values): a bound on what a peer can add. */
const MAX_PEER_HOPS = 8;

/** States of an edge's traversal server zone: `checking` until a core authenticated, then `active` or `failed`. */
export type ServerZoneState = 'checking' | 'active' | 'failed';

/** The edge's zone status, in the client zone's shape so management, SNMP and events show both alike. */
export interface ServerZoneStatus extends ZoneStatus {
  readonly role: 'server';
  /** `address:port` of the core's flow (its outbound connection), '' before the first one. */
  readonly peer: string;
  readonly state: ServerZoneState;
  /** Requests that arrived on the authenticated flow (keepalives included). */
  readonly probes: number;
  /** Times the zone failed (flow closed, credentials refused while no flow was up). */
  readonly failures: number;
  /** Requests refused on the zone's listener because the flow had not authenticated. */
  readonly challenged: number;
}

export interface ServerZoneOptions {
  name: string;
  /** Port of the zone's `traversal-sip:N` listener: requests arriving on it belong to the zone. */
  port: number;
  /** Realm of the digest challenge. */
  realm: string;
  /** Checks the core's credentials against the edge's credential store; without it every flow is accepted. */
  authenticator?: RequestAuthenticator;
  /** The username the core must authenticate as (any user of the realm when absent). */
  username?: string;
  /**
   * TLS verify subject name: the core's client certificate (verified against the edge's CA bundle) must carry this name
   * (subjectAltName DNS/IP, or the CN when it has none). Absent: no client certificate is asked for.
   */
  verifySubjectName?: string;
  clock: Clock;
  onChange?: (status: ServerZoneStatus) => void;
}

const EDGES: Readonly<Record<ServerZoneState, readonly ServerZoneState[]>> = {
  checking: ['active', 'failed'],
  active: ['failed', 'active'],
  failed: ['active'],
};

/**
 * The edge's end of a traversal zone. A request on the zone's listener from a flow that has not authenticated is
 * challenged (401, digest against the edge's credential store); once one succeeds, that connection is the zone's flow
 * and everything on it passes to the rest of the node (the basic UAS answers keepalives, the proxy the rest). The
 * proxy sends requests for the inside down {@link flow}: the inside firewall never opens an inbound port.
 */
export class TraversalServerZone implements RequestHandler {
  readonly name = 'traversal-server-zone';
  /** Every request on the zone's listener passes here first (ACK has no response to carry a challenge). */
  readonly methods: readonly string[] = [...KNOWN_METHODS].filter((m) => m !== 'ACK');
  readonly #o: ServerZoneOptions;
  #state: ServerZoneState = 'checking';
  #since: number;
  #lastError: string | undefined;
  #challenged = 0;
  #passed = 0;
  #failures = 0;
  #flow: (Destination & { connectionId: string }) | undefined;
  #local: { address: string; port: number } | undefined;
  /** `host:port` the core names itself by on the flow (Via sent-by), where its Record-Route points. */
  readonly #peerHops = new Set<string>();

  constructor(o: ServerZoneOptions) {
    this.#o = o;
    this.#since = o.clock.wallNow();
  }

  get zoneName(): string {
    return this.#o.name;
  }

  get state(): ServerZoneState {
    return this.#state;
  }

  /** Where requests for the inside go: the authenticated connection of the core, while it is open. */
  get flow(): Readonly<Destination & { connectionId: string }> | undefined {
    return this.#state === 'active' ? this.#flow : undefined;
  }

  /** This edge's end of the flow (its traversal listener's address and port), while active. */
  get local(): { address: string; port: number } | undefined {
    return this.#state === 'active' ? this.#local : undefined;
  }

  status(): ServerZoneStatus {
    const f = this.#flow;
    return {
      name: this.#o.name,
      role: 'server',
      peer: f ? `${f.address}:${f.port}` : '',
      state: this.#state,
      since: this.#since,
      probes: this.#passed,
      failures: this.#failures,
      challenged: this.#challenged,
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
    };
  }

  /**
   * True for a next hop naming the core behind this zone: the flow's own address and port, or a `host:port` the core
   * named itself by in a Via on the flow (its Record-Route names the same listener). Nothing else at the core's
   * address goes down the flow (an outside endpoint behind the same NAT as the core is not the core).
   */
  namesPeer(address: string, port: number): boolean {
    const f = this.flow;
    if (!f) return false;
    if (f.address === address && f.port === port) return true;
    return this.#peerHops.has(`${address.toLowerCase()}:${port}`);
  }

  /** True when the request arrived on this zone's authenticated flow. */
  isZoneFlow(info: TransportInfo): boolean {
    return (
      this.#state === 'active' && info.connectionId !== undefined && info.connectionId === this.#flow?.connectionId
    );
  }

  handle(request: SipRequest, tx: ServerTransactionHandle, info: TransportInfo): boolean {
    if (info.local.port !== this.#o.port || info.transport === 'UDP') return false;
    if (this.isZoneFlow(info)) {
      this.#passed++;
      this.#learnHop(request);
      return false;
    }
    const subject = this.#checkSubject(info.tlsPeerCertificate, info);
    if (subject !== undefined) {
      this.#challenged++;
      this.#fail(subject);
      tx.respond(createResponse(request, 403, 'Forbidden', { toTag: newTag() }));
      return true;
    }
    const auth = this.#o.authenticator;
    if (!auth) {
      this.#accept(info);
      this.#learnHop(request);
      return false;
    }
    // The core authenticates on its flow before anything else: its keepalive OPTIONS is the first request.
    void Promise.resolve(
      auth.authenticate(request, { realm: this.#o.realm, mode: 'registrar', source: info.source }),
    ).then(
      (r) => {
        const expected = this.#o.username;
        if (r.kind === 'authenticated' && expected !== undefined && r.username !== expected) {
          this.#challenged++;
          this.#fail(`authenticated as ${r.username}, the zone expects ${expected}`);
          tx.respond(createResponse(request, 403, 'Forbidden', { toTag: newTag() }));
          return;
        }
        if (r.kind === 'authenticated') {
          this.#accept(info);
          this.#learnHop(request);
          tx.respond(createResponse(request, 200, 'OK', { toTag: newTag() }));
          return;
        }
        this.#challenged++;
        if (r.kind === 'rejected') this.#fail(`credentials refused (${r.response.status}) from ${info.source.address}`);
        tx.respond(r.response);
      },
      (err: unknown) => {
        this.#fail(`credential check failed: ${(err as Error)?.message ?? String(err)}`);
        tx.respond(createResponse(request, 503, 'Service Unavailable', { toTag: newTag() }));
      },
    );
    return true;
  }

  /** Why the flow's TLS peer is refused (TLS verify subject name), or undefined when it is not. */
  #checkSubject(cert: PeerCertificate | undefined, info: TransportInfo): string | undefined {
    const name = this.#o.verifySubjectName;
    if (name === undefined) return undefined;
    const from = `${info.source.address}:${info.source.port}`;
    if (info.transport !== 'TLS') return `TLS verify subject name ${name}: the flow from ${from} is not TLS`;
    if (!cert) return `TLS verify subject name ${name}: no verified client certificate from ${from}`;
    if (certificateNames(cert, name)) return undefined;
    const alt = cert.subjectaltname ? ` (${cert.subjectaltname})` : '';
    return `TLS verify subject name ${name}: client certificate CN=${cert.subject?.CN ?? ''}${alt} from ${from} does not match`;
  }

  #learnHop(request: SipRequest): void {
    const v = getTopVia(request);
    if (!v?.ok || this.#peerHops.size >= MAX_PEER_HOPS) return;
    const t = v.value.transport.toUpperCase();
    this.#peerHops.add(`${v.value.host.toLowerCase()}:${v.value.port ?? (t === 'TLS' ? 5061 : 5060)}`);
  }

  /** The transport closed a connection: the zone fails when it was the zone's flow. */
  connectionClosed(connectionId: string): void {
    if (this.#flow?.connectionId !== connectionId || this.#state !== 'active') return;
    this.#fail('flow closed', true);
  }

  #accept(info: TransportInfo): void {
    if (info.connectionId === undefined) return;
    if (this.#flow?.connectionId !== info.connectionId) this.#peerHops.clear();
    this.#local = { address: info.local.address, port: info.local.port };
    this.#flow = {
      transport: info.transport,
      address: info.source.address,
      port: info.source.port,
      connectionId: info.connectionId,
    };
    this.#transition('active');
  }

  /** Records why; a refused stranger does not fail a zone whose flow is up, only a closed flow does. */
  #fail(reason: string, flowLost = false): void {
    this.#lastError = reason;
    if (this.#state === 'active' && !flowLost) return;
    if (this.#state === 'failed') this.#notify();
    else this.#transition('failed');
  }

  #transition(to: ServerZoneState): void {
    if (!EDGES[this.#state].includes(to)) return;
    if (this.#state !== to) this.#since = this.#o.clock.wallNow();
    if (to === 'failed' && this.#state !== 'failed') this.#failures++;
    this.#state = to;
    this.#notify();
  }

  #notify(): void {
    try {
      this.#o.onChange?.(this.status());
    } catch {
      // a listener's failure is not the zone's
    }
  }
}
