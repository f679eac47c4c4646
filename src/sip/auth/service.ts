/**
 * SIP authentication of one node, built from its configuration: the credential source (local store, or LDAP through
 * the port plan's `ldap-outbound` source ports), the nonce issuer keyed by a secret kept in the store, the nc tracker,
 * and the digest authenticator; plus realm-per-domain and zone policy look-ups for the registrar and the proxy.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { Clock } from '../../common/timers.ts';
import type { CrosswayConfig } from '../../config/schema.ts';
import type { NodeStore } from '../../store/database.ts';
import type { SipRequest } from '../message/index.ts';
import type { PortRange } from '../transport/outbound-ports.ts';
import { type AuthFailureKind, DigestAuthenticator } from './authenticator.ts';
import type { AuthPolicy } from './config.ts';
import type { CredentialSource } from './credentials.ts';
import { LdapDirectory } from './ldap/directory.ts';
import { LdapCredentialSource } from './ldap/ldap-credentials.ts';
import { LocalCredentialStore, nodeSecret } from './local-credentials.ts';
import { NonceCountTracker } from './nc-tracker.ts';
import { NonceIssuer } from './nonce.ts';
import { authenticateForZone, policyFor, type ZoneAuthResult } from './policy.ts';
import type { AuthContext } from './types.ts';

export interface AuthServiceOptions {
  config: Readonly<CrosswayConfig>;
  store: NodeStore;
  clock: Clock;
  log: Logger;
  /** Source ports of LDAP connections (port plan `ldap-outbound`); required when the source is LDAP. */
  ldapSourcePorts?: PortRange;
  /** Local address LDAP connections leave from. */
  localAddress?: string;
  onFailure?: (source: AuthContext['source'], kind: AuthFailureKind) => void;
}

function readPem(path: string, field: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([{ path: field, message: `cannot read ${path}: ${(err as Error).message}` }]);
  }
}

/** Builds the credential source the configuration names. */
export function createCredentialSource(o: AuthServiceOptions): CredentialSource {
  const c = o.config.auth.credentials;
  if (c.source === 'local') return new LocalCredentialStore(o.store);
  const l = c.ldap!;
  if (o.config.ldap.servers.length === 0) {
    throw new ConfigError([
      { path: 'ldap.servers', message: 'auth.credentials.source ldap needs at least one server' },
    ]);
  }
  const caPath = l.caCertificates ?? o.config.tls.caCertificates;
  const bindPassword =
    l.bindPasswordFile !== undefined
      ? (readPem(l.bindPasswordFile, 'auth.credentials.ldap.bindPasswordFile').split(/\r?\n/)[0] ?? '')
      : l.bindPassword;
  const dir = new LdapDirectory({
    servers: o.config.ldap.servers,
    ...(l.bindDn ? { bindDn: l.bindDn } : {}),
    ...(bindPassword !== undefined ? { bindPassword } : {}),
    ...(caPath
      ? {
          ca: readPem(caPath, l.caCertificates ? 'auth.credentials.ldap.caCertificates' : 'tls.caCertificates'),
        }
      : {}),
    verifyCertificate: l.verifyCertificate,
    timeoutMs: l.timeoutMs,
    ...(o.ldapSourcePorts ? { sourcePorts: o.ldapSourcePorts } : {}),
    ...(o.localAddress ? { localAddress: o.localAddress } : {}),
    clock: o.clock,
    log: o.log,
  });
  return new LdapCredentialSource(dir, l, o.clock, o.log);
}

/** The authentication services of one node. */
export class AuthService {
  readonly authenticator: DigestAuthenticator;
  readonly credentials: CredentialSource;
  readonly #config: Readonly<CrosswayConfig>;

  constructor(o: AuthServiceOptions) {
    this.#config = o.config;
    const a = o.config.auth;
    this.credentials = createCredentialSource(o);
    const secret = nodeSecret(o.store, 'digest-nonce');
    this.authenticator = new DigestAuthenticator({
      credentials: this.credentials,
      nonces: new NonceIssuer({ secret, clock: o.clock, lifetimeMs: a.nonceLifetimeSeconds * 1000 }),
      // Nonces issued before this start are re-challenged once (stale=true): their counts were not kept.
      tracker: new NonceCountTracker(a.nonceTrackerEntries, o.clock.wallNow() - 1),
      opaque: nodeSecret(o.store, 'digest-opaque', 12).toString('base64url'),
      algorithms: a.algorithms,
      userhash: a.userhash,
      dummyKey: randomBytes(32),
      retryAfterSeconds: a.retryAfterSeconds,
      log: o.log,
      ...(o.onFailure ? { onFailure: o.onFailure } : {}),
    });
  }

  /** The realm of a SIP domain: `auth.realms[domain]`, else the domain itself (lower-cased). */
  realmFor(domain: string): string {
    const d = domain.toLowerCase();
    return this.#config.auth.realms[d] ?? this.#config.auth.realms[domain] ?? d;
  }

  /** The authentication policy of a zone (`default` for the default zone and zones not listed). */
  policyFor(zone: string): AuthPolicy {
    return policyFor(this.#config.auth.zones, zone);
  }

  /** Whether identities are asserted toward `zone` (RFC 3325 trust domain). */
  isTrustedZone(zone: string): boolean {
    return this.#config.auth.trustedZones.includes(zone);
  }

  /** Applies the policy of `zone` to a request (the proxy's entry point). */
  authenticateForZone(zone: string, request: SipRequest, ctx: AuthContext): Promise<ZoneAuthResult> {
    return authenticateForZone(this.policyFor(zone), this.authenticator, request, ctx);
  }

  async close(): Promise<void> {
    await this.credentials.close?.();
  }
}
