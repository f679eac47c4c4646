import { promises as dnsPromises } from 'node:dns';
import { isIP } from 'node:net';
import { getParam } from '../message/index.ts';
import type { SipUri } from '../message/types.ts';
import type { Destination } from '../transaction/types.ts';

/**
 * RFC 3263 server location: from a SIP URI to an ordered list of destinations (transport, address, port) to try in
 * turn. The DNS is injected ({@link DnsLookup}), so tests run without a network; `systemDns` wraps `node:dns`.
 */

/** The DNS queries RFC 3263 needs; each resolves to [] when the name has no such record. */
export interface DnsLookup {
  naptr(
    name: string,
  ): Promise<{ order: number; preference: number; flags: string; service: string; replacement: string }[]>;
  srv(name: string): Promise<{ priority: number; weight: number; port: number; name: string }[]>;
  a(name: string): Promise<string[]>;
  aaaa(name: string): Promise<string[]>;
}

const empty = (err: unknown): never[] => {
  const code = (err as { code?: string })?.code;
  if (code === 'ENODATA' || code === 'ENOTFOUND' || code === 'ENONAME' || code === 'NOTFOUND') return [];
  throw err;
};

/** `node:dns` as a {@link DnsLookup}: "no such record" answers are empty lists, other failures reject. */
export const systemDns: DnsLookup = {
  naptr: (n) => dnsPromises.resolveNaptr(n).catch(empty),
  srv: (n) => dnsPromises.resolveSrv(n).catch(empty),
  a: (n) => dnsPromises.resolve4(n).catch(empty),
  aaaa: (n) => dnsPromises.resolve6(n).catch(empty),
};

type Transport = 'UDP' | 'TCP' | 'TLS';

/** NAPTR services we can use (RFC 3263 §4.1), and the SRV prefixes of each transport. */
const SERVICES: Record<string, Transport> = { 'SIP+D2U': 'UDP', 'SIP+D2T': 'TCP', 'SIPS+D2T': 'TLS' };
const SRV_PREFIX: Record<Transport, string> = { UDP: '_sip._udp.', TCP: '_sip._tcp.', TLS: '_sips._tcp.' };
const defaultPort = (t: Transport) => (t === 'TLS' ? 5061 : 5060);

function transportParam(uri: SipUri): Transport | undefined {
  const t = getParam(uri.params, 'transport');
  if (typeof t !== 'string') return undefined;
  const u = t.toUpperCase();
  return u === 'UDP' || u === 'TCP' || u === 'TLS' ? u : undefined;
}

/** Orders SRV records by priority, then by weight (heaviest first: deterministic, RFC 2782's random pick aside). */
function sortSrv<T extends { priority: number; weight: number }>(records: T[]): T[] {
  return [...records].sort((a, b) => a.priority - b.priority || b.weight - a.weight);
}

async function hostAddresses(dns: DnsLookup, host: string): Promise<string[]> {
  if (isIP(host)) return [host];
  const [v4, v6] = await Promise.all([dns.a(host).catch(() => []), dns.aaaa(host).catch(() => [])]);
  return [...v4, ...v6];
}

/**
 * The destinations for a URI, in the order to try them (RFC 3263 §4). `sips:` allows only TLS (§4.1). A numeric host
 * or an explicit port skips NAPTR and SRV (§4.2); an explicit transport skips NAPTR. Without NAPTR records, SRV for
 * each supported transport is tried (§4.1), then A/AAAA on UDP (TLS for sips:).
 */
export async function resolveUri(uri: SipUri, dns: DnsLookup, maxTargets = 8): Promise<Destination[]> {
  const secure = uri.scheme === 'sips';
  let transport = transportParam(uri);
  if (secure) transport = 'TLS';
  const host = uri.host;
  const out: Destination[] = [];
  const push = (t: Transport, address: string, port: number, serverName?: string) => {
    if (out.length >= maxTargets) return;
    const d: Destination = { transport: t, address, port };
    if (t === 'TLS' && serverName !== undefined && !isIP(serverName)) d.serverName = serverName;
    out.push(d);
  };

  // RFC 3263 §4.2: "If the TARGET was a numeric IP address ... or if it was a host name with a port, the client
  // ... uses that address" (after an A/AAAA lookup for a name).
  if (isIP(host) || uri.port !== undefined) {
    const t = transport ?? 'UDP';
    for (const a of await hostAddresses(dns, host)) push(t, a, uri.port ?? defaultPort(t), host);
    return out;
  }

  const srvTargets = async (t: Transport, name: string) => {
    for (const s of sortSrv(await dns.srv(name).catch(() => []))) {
      for (const a of await hostAddresses(dns, s.name)) push(t, a, s.port, host);
    }
  };

  if (transport === undefined) {
    // RFC 3263 §4.1: NAPTR first; keep the services we support, ordered by order then preference.
    const naptr = (await dns.naptr(host).catch(() => []))
      .filter((r) => r.flags.toLowerCase() === 's' && SERVICES[r.service.toUpperCase()] !== undefined)
      .filter((r) => !secure || SERVICES[r.service.toUpperCase()] === 'TLS')
      .sort((a, b) => a.order - b.order || a.preference - b.preference);
    for (const r of naptr) await srvTargets(SERVICES[r.service.toUpperCase()]!, r.replacement);
    if (out.length > 0) return out;
    // "If no NAPTR records are found, the client constructs SRV queries for those transport protocols it supports".
    for (const t of secure ? (['TLS'] as const) : (['UDP', 'TCP', 'TLS'] as const)) {
      await srvTargets(t, SRV_PREFIX[t] + host);
    }
    if (out.length > 0) return out;
  } else {
    await srvTargets(transport, SRV_PREFIX[transport] + host);
    if (out.length > 0) return out;
  }
  // RFC 3263 §4.2: no SRV records → A/AAAA with the default port of the transport.
  const t = transport ?? 'UDP';
  for (const a of await hostAddresses(dns, host)) push(t, a, defaultPort(t), host);
  return out;
}
