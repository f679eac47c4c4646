/**
 * The location service's model: bindings of an address-of-record (RFC 3261 §10) to contacts, with the Path
 * (RFC 3327) and the flow (RFC 5626, RFC 3581) each one arrived on. The registrar writes it; the proxy reads it.
 */

/** The flow a registration arrived on: requests to an outbound contact (and to a NATed one) go back on it. */
export interface BindingFlow {
  /** Via transport token (UDP, TCP, TLS). */
  transport: string;
  /** Where the REGISTER came from (RFC 3581 received/rport). */
  source: { address: string; port: number };
  /** The local socket it arrived on (send from it so NAT and firewall state match). */
  local: { address: string; port: number };
  /** TCP/TLS connection id; dead after a restart or a close. */
  connectionId?: string;
}

/** One binding: an AOR → contact, as stored and as the proxy sees it. */
export interface Binding {
  /** Canonical address-of-record (`sip:user@host`, see `aorKey`). */
  aor: string;
  /** The Contact URI as registered (no header parameters). */
  contact: string;
  /** q-value in thousandths (0–1000); 1000 when absent (RFC 3261 §20.10: "a higher value means higher preference"). */
  q: number;
  /** Wall-clock ms when the binding expires. */
  expiresAt: number;
  callId: string;
  cseq: number;
  /** Path URIs (RFC 3327), first = the hop nearest to the registrar. */
  path: string[];
  /** RFC 5626 `+sip.instance` (without quotes and angle brackets). */
  instance?: string;
  /** RFC 5626 `reg-id`: present only for an outbound flow binding. */
  regId?: number;
  flow: BindingFlow;
  /** The contact's host:port differs from the source it came from (behind a NAT). */
  natted: boolean;
  userAgent?: string;
  /** Wall-clock ms of the last update. */
  updatedAt: number;
}

/** A binding as `lookup()` returns it: with its remaining lifetime. */
export interface LocatedBinding extends Binding {
  /** Remaining lifetime (s, rounded up). */
  expiresIn: number;
}

/**
 * What the location service persists through. The SQLite store is the embedded one; a cluster backend (Redis) will
 * implement the same interface. Writes are fire-and-forget (a write-behind store batches them); `flush()` makes
 * every write queued so far durable.
 */
export interface RegistrationStore {
  /** Every binding not expired at `wallNow`; expired ones are purged from the store. */
  load(wallNow: number): Promise<Binding[]>;
  /** Inserts or replaces the binding (`aor`, `contact`). */
  put(binding: Binding): void;
  /** Removes the binding (`aor`, `contact`). */
  delete(aor: string, contact: string): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The location service, one interface for the registrar (writes) and the proxy (lookups). */
export interface LocationService {
  /** Live bindings of an AOR, highest q first, then most recently updated first. */
  lookup(aor: string): LocatedBinding[];
  /** Replaces the whole binding set of an AOR in one step (an empty list removes the AOR). */
  replace(aor: string, bindings: readonly Binding[]): void;
  /**
   * A flow (TCP/TLS connection) failed: its outbound bindings are removed (RFC 5626 §6), other bindings on it only
   * forget the connection. Returns how many bindings were removed.
   */
  removeFlow(connectionId: string): number;
  /** Number of AORs with at least one live binding. */
  readonly aorCount: number;
  /** Number of live bindings. */
  readonly bindingCount: number;
  /** Every AOR (for listing and management). */
  aors(): IterableIterator<string>;
}
