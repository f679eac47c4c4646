import { isIP } from 'node:net';
/**
 * A reusable LDAP directory client over `ldapts`: servers tried in order, a service-account bind, StartTLS or LDAPS with
 * certificate verification on, and every TCP connection opened from the port plan's `ldap-outbound` source ports
 * (the socket is connected by `connectFromRange` and handed to ldapts through its `createConnection` /
 * `createSecureConnection` hooks). One bound connection is kept and reused; a failed one is dropped and the next
 * operation reconnects. Used by SIP digest (credentials) and by administrator login (management).
 */
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Client, type Entry } from 'ldapts';
import { OperationalError } from '../../../common/errors.ts';
import { category, type Logger, silentLogger } from '../../../common/log.ts';
import type { Clock } from '../../../common/timers.ts';
import { connectFromRange, OutboundPortCursor, type PortRange } from '../../../sip/transport/outbound-ports.ts';

/** One directory server (the top-level `ldap.servers` entries). */
export interface LdapServer {
  url: string;
  /** Upgrade an ldap:// connection with StartTLS (RFC 4511 §4.14) before binding. */
  startTls: boolean;
}

export interface LdapDirectoryOptions {
  servers: readonly LdapServer[];
  /** Service account; absent: anonymous searches. */
  bindDn?: string;
  bindPassword?: string;
  /** PEM CAs trusted for the directory's certificate (default: the system's). */
  ca?: string;
  /** Verify the directory's certificate and name (default true). */
  verifyCertificate?: boolean;
  /** Per operation and per connection attempt (ms). */
  timeoutMs: number;
  /** Source ports of outbound connections (port plan `ldap-outbound`); absent: the system chooses. */
  sourcePorts?: PortRange;
  /** Local address to connect from. */
  localAddress?: string;
  clock: Clock;
  log?: Logger;
}

/** A one-port "range" whose port is 0 (any). */
const ANY_PORT = { size: 1, range: { from: 0, to: 0 }, take: () => 0 } as unknown as OutboundPortCursor;

/** An entry as returned by searches: attribute values as strings. */
export interface DirectoryEntry {
  dn: string;
  attributes: Record<string, string[]>;
}

interface ParsedUrl {
  secure: boolean;
  host: string;
  port: number;
}

function parseLdapUrl(url: string): ParsedUrl {
  const u = new URL(url);
  const secure = u.protocol === 'ldaps:';
  if (!secure && u.protocol !== 'ldap:') throw new RangeError(`not an LDAP URL: ${url}`);
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { secure, host, port: u.port ? Number(u.port) : secure ? 636 : 389 };
}

/** RFC 4515 §3: escapes a value for use inside a search filter. */
export function escapeFilterValue(value: string): string {
  let out = '';
  for (const ch of value) {
    switch (ch) {
      case '*':
        out += '\\2a';
        break;
      case '(':
        out += '\\28';
        break;
      case ')':
        out += '\\29';
        break;
      case '\\':
        out += '\\5c';
        break;
      case '\0':
        out += '\\00';
        break;
      default:
        out += ch;
    }
  }
  return out;
}

function values(v: Entry[string]): string[] {
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x)));
}

/** Information about the current connection (status, tests). */
export interface ConnectionInfo {
  url: string;
  localPort: number;
  tls: 'ldaps' | 'starttls' | 'none';
}

/** An LDAP directory reached through one kept connection. */
export class LdapDirectory {
  readonly #o: LdapDirectoryOptions;
  readonly #log: Logger;
  readonly #cursor: OutboundPortCursor | undefined;
  #client: Client | undefined;
  #info: ConnectionInfo | undefined;
  #connecting: Promise<Client> | undefined;
  /** Clients whose TCP connection closed. */
  readonly #dead = new WeakSet<Client>();
  #closed = false;

  constructor(o: LdapDirectoryOptions) {
    if (o.servers.length === 0) throw new RangeError('no LDAP server configured (ldap.servers)');
    for (const s of o.servers) parseLdapUrl(s.url);
    this.#o = o;
    this.#log = category(o.log ?? silentLogger, 'ldap');
    this.#cursor = o.sourcePorts ? new OutboundPortCursor(o.sourcePorts) : undefined;
  }

  /** The current connection, if one is open. */
  get connection(): ConnectionInfo | undefined {
    return this.#usable(this.#client) ? this.#info : undefined;
  }

  #usable(c: Client | undefined): c is Client {
    return c?.isConnected === true && !this.#dead.has(c);
  }

  #tlsOptions(host: string): ConnectionOptions {
    const verify = this.#o.verifyCertificate ?? true;
    return {
      // RFC 6066 §3: SNI carries host names only; an IP is still checked against the certificate's IP SANs.
      ...(isIP(host) === 0 ? { servername: host } : {}),
      rejectUnauthorized: verify,
      ...(this.#o.ca ? { ca: this.#o.ca } : {}),
      minVersion: 'TLSv1.2',
    };
  }

  /** Opens a connection to one server: TCP from the source range, TLS (ldaps or StartTLS), service bind. */
  async #open(server: LdapServer): Promise<Client> {
    const u = parseLdapUrl(server.url);
    const raw = await connectFromRange({
      host: u.host,
      port: u.port,
      ...(this.#o.localAddress ? { localAddress: this.#o.localAddress } : {}),
      // Without a configured range the cursor hands out 0: the system chooses the source port.
      cursor: this.#cursor ?? ANY_PORT,
      clock: this.#o.clock,
      timeoutMs: this.#o.timeoutMs,
    });
    const localPort = raw.localPort ?? 0;
    raw.setNoDelay(true);
    let socket: import('node:net').Socket = raw;
    if (u.secure) {
      socket = await new Promise<TLSSocket>((resolve, reject) => {
        const s = tlsConnect({ socket: raw, ...this.#tlsOptions(u.host) });
        const timer = this.#o.clock.setTimer(this.#o.timeoutMs, () => {
          s.destroy();
          reject(new OperationalError('ERR_LDAP_TLS', `TLS handshake with ${server.url} timed out`));
        });
        s.once('secureConnect', () => {
          timer.cancel();
          resolve(s);
        });
        s.once('error', (err) => {
          timer.cancel();
          raw.destroy();
          reject(err);
        });
      });
    }
    const client = new Client({
      url: server.url,
      timeout: this.#o.timeoutMs,
      connectTimeout: this.#o.timeoutMs,
      // tlsOptions only for ldaps: ldapts treats any tlsOptions as "connect with TLS" (the StartTLS options are passed
      // to startTLS below).
      ...(u.secure ? { tlsOptions: this.#tlsOptions(u.host) } : {}),
      strictDN: true,
      // The socket is already connected from our source range; ldapts sees it open and uses it as is.
      createConnection: (() => socket) as unknown as typeof import('node:net').connect,
      ...(u.secure ? { createSecureConnection: (() => socket) as unknown as typeof tlsConnect } : {}),
    });
    try {
      if (!u.secure && server.startTls) await client.startTLS(this.#tlsOptions(u.host));
      if (this.#o.bindDn) await client.bind(this.#o.bindDn, this.#o.bindPassword ?? '');
    } catch (err) {
      socket.destroy();
      await client.unbind().catch(() => {});
      throw err;
    }
    this.#info = { url: server.url, localPort, tls: u.secure ? 'ldaps' : server.startTls ? 'starttls' : 'none' };
    // ldapts watches only its current socket: after StartTLS the TCP socket's close goes unnoticed and the next
    // operation would wait for its timeout on a dead connection. Watch the TCP socket ourselves.
    if (raw.destroyed) this.#dead.add(client);
    else raw.once('close', () => this.#dead.add(client));
    return client;
  }

  async #connect(): Promise<Client> {
    let last: unknown;
    for (const server of this.#o.servers) {
      try {
        const c = await this.#open(server);
        this.#log.info({ server: server.url, localPort: this.#info?.localPort }, 'directory connected');
        return c;
      } catch (err) {
        last = err;
        this.#log.warn({ server: server.url, err: (err as Error).message }, 'directory connection failed');
      }
    }
    throw new OperationalError(
      'ERR_LDAP_UNAVAILABLE',
      `no LDAP server reachable: ${(last as Error)?.message ?? 'unknown'}`,
      { cause: last },
    );
  }

  async #bound(): Promise<Client> {
    if (this.#closed) throw new OperationalError('ERR_LDAP_CLOSED', 'directory client closed');
    if (this.#usable(this.#client)) return this.#client;
    this.#client = undefined;
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = undefined;
    });
    const c = await this.#connecting;
    if (this.#closed) {
      await c.unbind().catch(() => {});
      throw new OperationalError('ERR_LDAP_CLOSED', 'directory client closed');
    }
    this.#client = c;
    return c;
  }

  /**
   * Searches the subtree of `baseDn` with `filter` (the caller escapes values with `escapeFilterValue`); at most
   * `sizeLimit` entries. Rejects with `ERR_LDAP_UNAVAILABLE` when no server answers — never with an empty result.
   */
  async search(baseDn: string, filter: string, attributes: string[], sizeLimit = 2): Promise<DirectoryEntry[]> {
    const run = async (c: Client) => {
      const r = await c.search(baseDn, { scope: 'sub', filter, attributes, sizeLimit });
      return r.searchEntries.map((e) => {
        const attrs: Record<string, string[]> = {};
        for (const [k, v] of Object.entries(e)) if (k !== 'dn') attrs[k.toLowerCase()] = values(v);
        return { dn: e.dn, attributes: attrs };
      });
    };
    const c = await this.#bound();
    try {
      return await run(c);
    } catch (err) {
      if (isDirectoryAnswer(err)) throw err;
      // The kept connection died (server restarted, idle close): reconnect once.
      this.#drop(c);
      try {
        return await run(await this.#bound());
      } catch (again) {
        if (isDirectoryAnswer(again)) throw again;
        throw new OperationalError('ERR_LDAP_UNAVAILABLE', `LDAP search failed: ${(again as Error).message}`, {
          cause: again,
        });
      }
    }
  }

  /** Checks a user's password by binding as `dn` on a separate connection (administrator login). */
  async verifyPassword(dn: string, password: string): Promise<boolean> {
    if (password === '') return false; // RFC 4513 §5.1.2: an empty password is an unauthenticated bind.
    const user = new LdapDirectory({ ...this.#o, bindDn: dn, bindPassword: password });
    try {
      await user.#bound();
      return true;
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause;
      if (isInvalidCredentials(cause) || isInvalidCredentials(err)) return false;
      throw err;
    } finally {
      await user.close();
    }
  }

  #drop(c: Client): void {
    if (this.#client === c) this.#client = undefined;
    c.unbind().catch(() => {});
  }

  async close(): Promise<void> {
    this.#closed = true;
    const c = this.#client;
    this.#client = undefined;
    if (c) await c.unbind().catch(() => {});
  }
}

/** An LDAP result code from the server (e.g. noSuchObject): an answer, not an outage. */
function isDirectoryAnswer(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' && code !== 0 && code !== 51 && code !== 52 && code !== 80;
}

function isInvalidCredentials(err: unknown): boolean {
  return (err as { code?: unknown } | undefined)?.code === 49;
}
