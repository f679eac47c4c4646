/**
 * Asserted identity inside a trust domain (RFC 3325). A request from an untrusted source loses any
 * P-Asserted-Identity it carries; an authenticated request gets one added when it goes to a trusted zone, chosen
 * from its P-Preferred-Identity when the user may use it; P-Preferred-Identity never leaves the proxy; and toward an
 * untrusted zone a request asking for privacy (`Privacy: id`) loses its P-Asserted-Identity.
 */
import {
  addHeader,
  findHeaders,
  formatNameAddr,
  formatUri,
  getHeaders,
  type NameAddr,
  parseNameAddrList,
  parseUri,
  removeHeader,
  type SipRequest,
} from '../message/index.ts';

const PAI = 'P-Asserted-Identity';
const PPI = 'P-Preferred-Identity';

/**
 * RFC 3325 §5: "a proxy [...] MUST remove any P-Asserted-Identity header fields" received from an element it does
 * not trust. Call on every request as it arrives; returns how many header lines were removed.
 */
export function removeUntrustedIdentity(request: SipRequest, sourceTrusted: boolean): number {
  if (sourceTrusted) return 0;
  return removeHeader(request, PAI);
}

/** True when the request asks for its identity to be withheld (RFC 3323 `Privacy: id`, RFC 3325 §9.3). */
export function wantsIdentityPrivacy(request: SipRequest): boolean {
  for (const v of getHeaders(request, 'Privacy')) {
    // RFC 3323 §4.2: Privacy = priv-value *(";" priv-value); values may also come comma-separated.
    for (const p of v.split(/[;,]/)) if (p.trim().toLowerCase() === 'id') return true;
  }
  return false;
}

export interface AssertOptions {
  /** The authenticated identity, e.g. `sip:alice@example.com`. Absent: the request was not authenticated. */
  identity?: string;
  displayName?: string;
  /** Whether the next hop (the zone the request goes to) is trusted. */
  toTrusted: boolean;
  /** RFC 3325 §6: may this user be asserted as `uri` (one of their P-Preferred-Identity values)? */
  mayUse?: (uri: string) => boolean;
}

/**
 * Prepares the identity headers of a request about to be forwarded. Toward a trusted zone, an authenticated request
 * gets a P-Asserted-Identity (replacing none already vouched for by a trusted source); toward an untrusted one, no
 * identity is added and RFC 3325 §5's privacy rule applies. P-Preferred-Identity is always removed (§6).
 */
export function assertIdentity(request: SipRequest, o: AssertOptions): void {
  const preferred: NameAddr[] = [];
  for (const h of findHeaders(request, PPI)) {
    const list = parseNameAddrList(h.value);
    if (list.ok) preferred.push(...list.value);
  }
  removeHeader(request, PPI);
  if (!o.toTrusted) {
    // RFC 3325 §5: "If the proxy [...] is forwarding to an element outside the Trust Domain [and] the user requested
    // [...] privacy 'id', the proxy MUST remove all the P-Asserted-Identity header fields".
    if (wantsIdentityPrivacy(request)) removeHeader(request, PAI);
    return;
  }
  if (o.identity === undefined) return;
  if (findHeaders(request, PAI).length > 0) return; // already asserted by a trusted element
  // RFC 3325 §6: a P-Preferred-Identity the user is allowed to use picks the asserted identity.
  const chosen = preferred.find((p) => o.mayUse?.(formatUriOf(p)) === true);
  const value = chosen
    ? formatNameAddr(chosen)
    : formatNameAddr({
        ...(o.displayName ? { displayName: o.displayName } : {}),
        uri: parsedOrThrow(o.identity),
        params: [],
      });
  addHeader(request, PAI, value);
}

function formatUriOf(n: NameAddr): string {
  return formatUri(n.uri);
}

function parsedOrThrow(uri: string) {
  const u = parseUri(uri);
  if (!u.ok) throw new RangeError(`not a SIP URI: ${uri}`);
  return u.value;
}
