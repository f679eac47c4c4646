/**
 * The contract between SIP authentication and its callers (registrar, proxy). The registrar passes each REGISTER to a
 * {@link RequestAuthenticator} and answers with the challenge or rejection it gets back; on `authenticated` it goes
 * on with the registration under that identity.
 */
import type { SipRequest, SipResponse } from '../message/index.ts';

/** Outcome of authenticating one request. */
export type AuthResult =
  | {
      kind: 'authenticated';
      username: string;
      realm: string;
      /** How: a verified digest (default when absent) or a zone policy that treats requests as authenticated. */
      method?: 'digest' | 'policy';
    }
  /** 401 (registrar) / 407 (proxy) with the challenge header(s). */
  | { kind: 'challenge'; response: SipResponse }
  /** 403, 400 (bad Authorization syntax), 503 (directory down). */
  | { kind: 'rejected'; response: SipResponse };

/** Where the request comes from and in which role it is authenticated. */
export interface AuthContext {
  realm: string;
  mode: 'registrar' | 'proxy';
  source: { address: string; port: number };
}

/** Authenticates a request (digest, RFC 3261 §22 / RFC 7616 / RFC 8760). */
export interface RequestAuthenticator {
  authenticate(request: SipRequest, ctx: AuthContext): AuthResult | Promise<AuthResult>;
}
