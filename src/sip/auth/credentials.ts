/**
 * Where digest credentials come from: the local store (`local-credentials.ts`) or an LDAP directory
 * (`ldap/ldap-credentials.ts`). A source answers per user with the HA1 of each algorithm it can produce — never a
 * plaintext password — or says it does not know the user, or that it cannot tell right now (directory down: the
 * authenticator answers 503, never accepts).
 */
import type { DigestAlgorithm } from './digest.ts';

/** What a source says about one user of one realm. */
export type CredentialLookup =
  | {
      kind: 'found';
      /** The user name as stored (the one looked up, or the one behind a userhash). */
      username: string;
      /** HA1 (lower-case hex) per algorithm the source holds for this user. */
      ha1: Partial<Record<DigestAlgorithm, string>>;
    }
  | { kind: 'unknown' }
  | { kind: 'unavailable'; reason: string };

/** A lookup: by user name, or by RFC 7616 §3.4.4 userhash of the given algorithm. */
export interface CredentialQuery {
  realm: string;
  username: string;
  userhash?: DigestAlgorithm;
  /** The algorithm whose HA1 is needed: a source may return only that one (the others are not used). */
  algorithm?: DigestAlgorithm;
}

/** A source of digest credentials. */
export interface CredentialSource {
  /** For logs and status (`local`, `ldap`). */
  readonly name: string;
  /** Algorithms whose HA1 the source can produce for every user (only these are offered in challenges). */
  readonly algorithms: readonly DigestAlgorithm[];
  /** Whether lookups by userhash work. */
  readonly supportsUserhash: boolean;
  lookup(query: CredentialQuery): CredentialLookup | Promise<CredentialLookup>;
  close?(): void | Promise<void>;
}
