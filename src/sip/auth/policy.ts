/**
 * Per-zone authentication policy (as a gateway administrator sets it on each zone): `check` challenges and verifies
 * credentials, `treat-as-authenticated` trusts the zone (the identity is the From user, no challenge), `do-not-check`
 * lets requests through unauthenticated. The proxy calls `authenticateForZone` with the zone a request arrived on.
 */
import { getFrom, type SipRequest } from '../message/index.ts';
import type { AuthPolicy } from './config.ts';
import type { AuthContext, AuthResult, RequestAuthenticator } from './types.ts';

/** What a zone's policy decided: an `AuthResult`, or `unchecked` (do-not-check: neither challenged nor trusted). */
export type ZoneAuthResult = AuthResult | { kind: 'unchecked' };

/** The policy of `zone`: its own entry, else `default`, else `check`. */
export function policyFor(zones: Readonly<Record<string, AuthPolicy>>, zone: string): AuthPolicy {
  return zones[zone] ?? zones['default'] ?? 'check';
}

/** Applies a zone's policy to one request. */
export async function authenticateForZone(
  policy: AuthPolicy,
  authenticator: RequestAuthenticator,
  request: SipRequest,
  ctx: AuthContext,
): Promise<ZoneAuthResult> {
  switch (policy) {
    case 'check':
      return authenticator.authenticate(request, ctx);
    case 'treat-as-authenticated': {
      const from = getFrom(request);
      const user = from?.ok ? from.value.uri.user : undefined;
      // Nothing to assert without a user part: the request is let through, but not as anyone.
      if (user === undefined || user === '') return { kind: 'unchecked' };
      return { kind: 'authenticated', username: user, realm: ctx.realm, method: 'policy' };
    }
    case 'do-not-check':
      return { kind: 'unchecked' };
  }
}
