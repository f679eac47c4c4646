import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { AndFilter, Client, EqualityFilter, FilterParser, InvalidCredentialsError } from 'ldapts';
import type { z } from 'zod';
import type { AccessLevel, ldapServerSchema, managementLdapSchema } from '../../config/schema.ts';
import type { PortRange } from '../../ports/index.ts';

export type LdapServer = z.infer<typeof ldapServerSchema>;
export type AdminLdapConfig = z.infer<typeof managementLdapSchema>;

/** Outcome of an administrator login against the directory. */
export type DirectoryLogin =
  | { ok: true; level: AccessLevel; dn: string }
  /** `rejected`: wrong password, unknown user or no admin group; `outage`: no server could be used. */
  | { ok: false; kind: 'rejected' | 'outage'; reason: string };

export interface DirectoryOptions {
  servers: readonly LdapServer[];
  config: AdminLdapConfig;
  /** PEM CAs for the directory's certificate; absent: the system store. */
  ca?: string;
  /** Source ports of the connections (the plan's `ldap-outbound`, 30000–35999). */
  sourcePorts?: PortRange;
  /** Local address to connect from (the node's private side). */
  localAddress?: string;
}

const LEVEL_ORDER: readonly [AccessLevel, keyof AdminLdapConfig['groups']][] = [
  ['read-write', 'readWrite'],
  ['read-only', 'readOnly'],
  ['auditor', 'auditor'],
];

function isOutage(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') return true; // ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, TLS errors (ERR_TLS_…, CERT_…)
  const msg = (err as Error)?.message ?? '';
  return /timeout|timed out|closed|ECONN|socket|certificate|TLS|self.signed/i.test(msg);
}

/**
 * Administrator login against an LDAP directory: connect (ldaps://, or ldap:// upgraded with StartTLS, certificate
 * verified), bind with the service account, find the user by attribute, map group membership (groupOfNames `member`)
 * to an access level, and check the password with a bind as the user. Connections leave from the plan's LDAP
 * source ports.
 */
export class AdminDirectory {
  readonly #o: DirectoryOptions;

  constructor(options: DirectoryOptions) {
    this.#o = options;
  }

  /** Next source port: a cursor starting at a random place of the range, so a port in use is followed by another. */
  #cursor = -1;
  #sourcePort(): number | undefined {
    const r = this.#o.sourcePorts;
    if (!r) return undefined;
    const size = Math.floor((r.to - r.from) / r.step) + 1;
    if (this.#cursor < 0) this.#cursor = Math.floor(Math.random() * size);
    this.#cursor = (this.#cursor + 1) % size;
    return r.from + r.step * this.#cursor;
  }

  #client(server: LdapServer): Client {
    const cfg = this.#o.config;
    const tlsOptions: ConnectionOptions = {
      rejectUnauthorized: cfg.verifyCertificate,
      minVersion: 'TLSv1.2',
      ...(this.#o.ca ? { ca: this.#o.ca } : {}),
    };
    const url = new URL(server.url);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    // RFC 6066 §3: no IP address as server name (the certificate's IP SAN is checked all the same).
    const servername = isIP(host) ? undefined : host;
    const local = () => {
      const p = this.#sourcePort();
      return {
        ...(this.#o.localAddress ? { localAddress: this.#o.localAddress } : {}),
        ...(p !== undefined ? { localPort: p } : {}),
      };
    };
    const createConnection = ((port: number, host: string): Socket =>
      netConnect({ port, host, ...local() })) as unknown as typeof netConnect;
    const createSecureConnection = ((a: unknown, b?: unknown, c?: unknown) => {
      // ldaps:// → (port, host, tlsOptions); StartTLS → (options with the plain socket).
      if (typeof a === 'number') {
        return tlsConnect({
          ...(c as ConnectionOptions),
          ...tlsOptions,
          port: a,
          host: b as string,
          ...(servername ? { servername } : {}),
          ...local(),
        });
      }
      return tlsConnect({ ...(servername ? { servername } : {}), ...(a as ConnectionOptions) });
    }) as unknown as typeof tlsConnect;
    return new Client({
      url: server.url,
      timeout: cfg.timeoutMs,
      connectTimeout: cfg.timeoutMs,
      // No client-level tlsOptions: with them ldapts breaks StartTLS on ldap:// (the handshake is cut). ldaps:// gets
      // them in createSecureConnection, StartTLS in startTLS().
      createConnection,
      createSecureConnection,
    });
  }

  /** Authenticates `user` with `password`; tries the next server only when one is unreachable. */
  async login(user: string, password: string): Promise<DirectoryLogin> {
    if (!password) return { ok: false, kind: 'rejected', reason: 'empty password' }; // RFC 4513 §5.1.2
    if (this.#o.servers.length === 0) return { ok: false, kind: 'outage', reason: 'no LDAP server configured' };
    let last = 'no server';
    for (const server of this.#o.servers) {
      let r = await this.#loginOn(server, user, password);
      // A source port someone else holds: the next one of the range (a few times).
      for (let i = 0; i < 4 && !r.ok && r.kind === 'outage' && /EADDRINUSE/.test(r.reason); i++) {
        r = await this.#loginOn(server, user, password);
      }
      if (r.ok || r.kind === 'rejected') return r;
      last = `${server.url}: ${r.reason}`;
    }
    return { ok: false, kind: 'outage', reason: last };
  }

  async #loginOn(server: LdapServer, user: string, password: string): Promise<DirectoryLogin> {
    const cfg = this.#o.config;
    const client = this.#client(server);
    try {
      if (server.url.startsWith('ldap://') && server.startTls) {
        await client.startTLS({
          rejectUnauthorized: cfg.verifyCertificate,
          minVersion: 'TLSv1.2',
          ...(this.#o.ca ? { ca: this.#o.ca } : {}),
        });
      }
      if (cfg.bindDn) await client.bind(cfg.bindDn, cfg.bindPassword ?? '');
      const match = new EqualityFilter({ attribute: cfg.userAttribute, value: user });
      const filter = cfg.userFilter
        ? new AndFilter({ filters: [match, FilterParser.parseString(cfg.userFilter)] })
        : match;
      const { searchEntries } = await client.search(cfg.baseDn, {
        scope: 'sub',
        filter,
        attributes: ['dn'],
        sizeLimit: 2,
      });
      if (searchEntries.length !== 1) {
        return { ok: false, kind: 'rejected', reason: searchEntries.length ? 'user is ambiguous' : 'unknown user' };
      }
      const dn = searchEntries[0]!.dn;
      let level: AccessLevel | undefined;
      for (const [lvl, key] of LEVEL_ORDER) {
        for (const group of cfg.groups[key]) {
          const { searchEntries: hit } = await client.search(group, {
            scope: 'base',
            filter: new EqualityFilter({ attribute: 'member', value: dn }),
            attributes: ['dn'],
          });
          if (hit.length > 0) {
            level = lvl;
            break;
          }
        }
        if (level) break;
      }
      try {
        await client.bind(dn, password);
      } catch (err) {
        if (err instanceof InvalidCredentialsError) return { ok: false, kind: 'rejected', reason: 'wrong password' };
        throw err;
      }
      if (!level) return { ok: false, kind: 'rejected', reason: 'not in an administrator group' };
      return { ok: true, level, dn };
    } catch (err) {
      if (err instanceof InvalidCredentialsError) {
        return { ok: false, kind: 'outage', reason: 'service account bind refused' };
      }
      if (isOutage(err)) return { ok: false, kind: 'outage', reason: (err as Error).message };
      return { ok: false, kind: 'rejected', reason: (err as Error).message };
    } finally {
      await client.unbind().catch(() => undefined);
    }
  }
}
