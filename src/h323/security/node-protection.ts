import { ConfigError } from '../../common/errors.ts';
import type { Logger } from '../../common/log.ts';
import type { Clock } from '../../common/timers.ts';
import type { IntrusionGuard } from '../../security/intrusion.ts';
import { SourceRateLimiter } from '../../security/source-rate.ts';
import { LocalCredentialStore } from '../../sip/auth/local-credentials.ts';
import type { NodeStore } from '../../store/database.ts';
import type { AliasText } from '../api.ts';
import type { CallServer } from '../calls/call-server.ts';
import type { H323Config } from '../config.ts';
import type { Gatekeeper } from '../gatekeeper/gatekeeper.ts';
import { CallSecurity } from './call-security.ts';
import { RasSecurity } from './ras-security.ts';

export interface GatekeeperProtectionOptions {
  gatekeeper: Gatekeeper;
  calls: CallServer | undefined;
  config: Readonly<H323Config>;
  /** `sip.domains` and `auth.realms`: the default H.235.1 realm is the realm of the only SIP domain. */
  sip: { domains: readonly string[]; realms: Readonly<Record<string, string>> };
  /** The node's intrusion guard (the one SIP uses). */
  guard: IntrusionGuard | undefined;
  store: NodeStore;
  clock: Clock;
  log: Logger;
  /**
   * H.323 neighbor zones: Setups from a zone's address are not asked for H.235.1 tokens, and its RAS and call
   * signalling connections have the `…PerNeighbour` flood limits instead of the per-source ones.
   */
  neighbours?: { zoneOf(ip: string): unknown };
}

/** The realm whose users sign RAS: configured, else the realm of the only SIP domain. */
export function h235Realm(config: Readonly<H323Config>, sip: GatekeeperProtectionOptions['sip']): string {
  const r = config.gatekeeper.security.realm;
  if (r) return r;
  if (sip.domains.length === 1) {
    const d = sip.domains[0]!.toLowerCase();
    return sip.realms[d] ?? d;
  }
  throw new ConfigError([
    {
      path: 'h323.gatekeeper.security.realm',
      message: `H.235.1 needs the realm of its users (${sip.domains.length} SIP domains configured, none chosen)`,
    },
  ]);
}

/**
 * Wires a node's gatekeeper and call server to its security: H.235.1 checks of RAS and of the Setups endpoints send
 * to the call signalling port against the local credential store (`h323.gatekeeper.security`), intrusion protection (blocked sources dropped; malformed RAS, bad tokens and
 * floods counted against their source) and the per-source flood limits on RAS requests and new call signalling
 * connections (`h323.gatekeeper.floodLimits`; sources in `security.intrusion.exempt` are not limited; a neighbour
 * zone's address has its own higher limits, and going over them is not a flood event).
 */
export function protectGatekeeper(o: GatekeeperProtectionOptions): {
  security: RasSecurity | undefined;
  callSecurity: CallSecurity | undefined;
} {
  const g = o.config.gatekeeper;
  let security: RasSecurity | undefined;
  let callSecurity: CallSecurity | undefined;
  if (g.security.mode !== 'off') {
    const realm = h235Realm(o.config, o.sip);
    const local = new LocalCredentialStore(o.store);
    const options = {
      mode: g.security.mode,
      keys: { keyFor: (user: string) => local.h235Key(realm, user) },
      timestampWindowSeconds: g.security.timestampWindowSeconds,
      everyCallMessage: g.security.everyCallMessage,
      wallNow: () => o.clock.wallNow(),
    };
    security = new RasSecurity(options);
    o.gatekeeper.setSecurity(security);
    o.log.info({ category: 'h323.gk', mode: g.security.mode, realm }, 'H.235.1 RAS and Setup authentication on');
    if (o.calls) {
      const cs = new CallSecurity(options);
      callSecurity = cs;
      const gk = o.gatekeeper;
      const regs = {
        get: (id: string) => gk.get(id),
        byAlias: (alias: AliasText) => {
          const t = gk.resolve([alias]);
          return t?.kind === 'endpoint' ? t.registration : undefined;
        },
        get gatekeeperIdentifier() {
          return gk.gatekeeperIdentifier;
        },
      };
      o.calls.admitSetup = (pdu, from) => {
        const v = cs.checkSetup(pdu, regs, o.neighbours?.zoneOf(from.ip) !== undefined);
        if (v.kind === 'deny' && v.failure) o.guard?.onAuthFailure(from.ip);
        return v;
      };
      o.calls.admitMessage = (pdu, from, user) => {
        const v = cs.checkMessage(pdu, user, gk.gatekeeperIdentifier);
        if (v.kind === 'deny' && v.failure) o.guard?.onAuthFailure(from.ip);
        return v;
      };
      // the node's own call signalling to an endpoint holding a key: generalID the endpoint, sendersID the gatekeeper
      o.calls.signFor = (pdu, user, endpoint) => cs.signMessage(pdu, user, endpoint, gk.gatekeeperIdentifier);
    }
  }
  const now = () => o.clock.now();
  const guard = o.guard;
  const nb = o.neighbours;
  // a neighbour zone's address (as configured, or as its host name last resolved) has its own limits
  const isNeighbour = (ip: string) => nb !== undefined && nb.zoneOf(ip) !== undefined;
  const ras = new SourceRateLimiter(g.floodLimits.rasPerSecondPerSource, now);
  const rasNeighbour = new SourceRateLimiter(g.floodLimits.rasPerSecondPerNeighbour, now, 1000);
  o.gatekeeper.setProtection(
    guard && {
      allows: (ip) => guard.allows(ip),
      isExempt: (ip) => guard.isExempt(ip),
      onMalformed: (ip) => guard.onMalformed(ip),
      onAuthFailure: (ip) => guard.onAuthFailure(ip),
      // over its own limit a neighbour's RAS is dropped, never counted as a flood (that would block the whole zone)
      onFlood: (ip) => {
        if (!isNeighbour(ip)) guard.onFlood(ip);
      },
    },
    { allow: (ip) => (isNeighbour(ip) ? rasNeighbour.allow(ip) : ras.allow(ip)) },
  );
  const calls = o.calls;
  if (calls) {
    const setups = new SourceRateLimiter(g.floodLimits.setupsPerSecondPerSource, now);
    const setupsNeighbour = new SourceRateLimiter(g.floodLimits.setupsPerSecondPerNeighbour, now, 1000);
    calls.allowConnection = (address) => {
      if (guard && !guard.allowsConnection(address)) return false;
      if (isNeighbour(address)) return setupsNeighbour.allow(address) || guard?.isExempt(address) === true;
      if (setups.allow(address) || guard?.isExempt(address)) return true;
      guard?.onFlood(address);
      return false;
    };
  }
  return { security, callSecurity };
}
