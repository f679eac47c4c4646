import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseUri } from '../../../src/sip/message/index.ts';
import { type DnsLookup, resolveUri } from '../../../src/sip/proxy/resolver.ts';

/** A DNS with fixed records; records every query. */
function dns(records: {
  naptr?: Record<string, { order: number; preference: number; flags: string; service: string; replacement: string }[]>;
  srv?: Record<string, { priority: number; weight: number; port: number; name: string }[]>;
  a?: Record<string, string[]>;
  aaaa?: Record<string, string[]>;
}): DnsLookup & { queries: string[] } {
  const queries: string[] = [];
  return {
    queries,
    naptr: async (n) => {
      queries.push(`NAPTR ${n}`);
      return records.naptr?.[n] ?? [];
    },
    srv: async (n) => {
      queries.push(`SRV ${n}`);
      return records.srv?.[n] ?? [];
    },
    a: async (n) => {
      queries.push(`A ${n}`);
      return records.a?.[n] ?? [];
    },
    aaaa: async (n) => {
      queries.push(`AAAA ${n}`);
      return records.aaaa?.[n] ?? [];
    },
  };
}

const uri = (s: string) => {
  const u = parseUri(s);
  assert.ok(u.ok);
  return u.value;
};
const flat = (ds: { transport: string; address: string; port: number }[]) =>
  ds.map((d) => `${d.transport} ${d.address}:${d.port}`);

test('RFC 3263 §4.2: a numeric host is used as is, no DNS; the transport parameter and sips: pick the transport', async () => {
  const d = dns({});
  assert.deepEqual(flat(await resolveUri(uri('sip:bob@192.0.2.1'), d)), ['UDP 192.0.2.1:5060']);
  assert.deepEqual(flat(await resolveUri(uri('sip:bob@192.0.2.1;transport=tcp'), d)), ['TCP 192.0.2.1:5060']);
  assert.deepEqual(flat(await resolveUri(uri('sips:bob@[2001:db8::1]'), d)), ['TLS 2001:db8::1:5061']);
  assert.deepEqual(d.queries, []);
});

test('a host name with a port: A/AAAA only, no NAPTR or SRV', async () => {
  const d = dns({ a: { 'pbx.example.com': ['192.0.2.9'] }, aaaa: { 'pbx.example.com': ['2001:db8::9'] } });
  assert.deepEqual(flat(await resolveUri(uri('sip:pbx.example.com:5070'), d)), [
    'UDP 192.0.2.9:5070',
    'UDP 2001:db8::9:5070',
  ]);
  assert.deepEqual(d.queries.sort(), ['A pbx.example.com', 'AAAA pbx.example.com']);
});

test('NAPTR → SRV → A, ordered by NAPTR order/preference and SRV priority/weight; unusable services skipped', async () => {
  const d = dns({
    naptr: {
      'example.com': [
        { order: 20, preference: 10, flags: 's', service: 'SIP+D2U', replacement: '_sip._udp.example.com' },
        { order: 10, preference: 10, flags: 's', service: 'SIP+D2T', replacement: '_sip._tcp.example.com' },
        { order: 5, preference: 10, flags: 's', service: 'SIP+D2W', replacement: '_sip._ws.example.com' },
      ],
    },
    srv: {
      '_sip._tcp.example.com': [
        { priority: 20, weight: 0, port: 5060, name: 'backup.example.com' },
        { priority: 10, weight: 5, port: 5080, name: 'main.example.com' },
      ],
      '_sip._udp.example.com': [{ priority: 10, weight: 0, port: 5060, name: 'main.example.com' }],
    },
    a: { 'main.example.com': ['192.0.2.10'], 'backup.example.com': ['192.0.2.11'] },
  });
  assert.deepEqual(flat(await resolveUri(uri('sip:alice@example.com'), d)), [
    'TCP 192.0.2.10:5080',
    'TCP 192.0.2.11:5060',
    'UDP 192.0.2.10:5060',
  ]);
  assert.ok(!d.queries.includes('SRV _sip._ws.example.com'));
});

test('no NAPTR: SRV for each transport; no SRV either: A on UDP 5060 (TLS 5061 for sips:)', async () => {
  const d = dns({
    srv: { '_sips._tcp.secure.example': [{ priority: 1, weight: 1, port: 5061, name: 'edge.secure.example' }] },
    a: { 'edge.secure.example': ['192.0.2.20'], 'plain.example': ['192.0.2.30'] },
  });
  const tls = await resolveUri(uri('sip:bob@secure.example'), d);
  assert.deepEqual(flat(tls), ['TLS 192.0.2.20:5061']);
  assert.equal(tls[0]!.serverName, 'secure.example', 'TLS is verified against the domain');
  assert.deepEqual(flat(await resolveUri(uri('sip:bob@plain.example'), d)), ['UDP 192.0.2.30:5060']);
  assert.deepEqual(flat(await resolveUri(uri('sips:bob@plain.example'), d)), ['TLS 192.0.2.30:5061']);
  assert.deepEqual(await resolveUri(uri('sip:bob@nowhere.example'), d), []);
});

test('a failing DNS query is not fatal: the next step is tried', async () => {
  const d = dns({ a: { 'flaky.example': ['192.0.2.40'] } });
  d.naptr = async () => {
    throw Object.assign(new Error('timeout'), { code: 'ETIMEOUT' });
  };
  assert.deepEqual(flat(await resolveUri(uri('sip:bob@flaky.example'), d)), ['UDP 192.0.2.40:5060']);
});
