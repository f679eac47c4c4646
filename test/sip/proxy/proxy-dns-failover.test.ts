import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeaders, getTopVia } from '../../../src/sip/message/index.ts';
import { sipZoneSearcher } from '../../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../../src/sip/proxy/resolver.ts';
import type { TransportInfo } from '../../../src/sip/transaction/types.ts';
import { answer, makeProxy, request, serverTx, settle } from './proxy-fakes.ts';

/*
 * RFC 3263 through the whole path a call to a DNS zone takes: the search rule sends the alias to the DNS zone, the SIP
 * zone searcher resolves the domain (NAPTR → SRV → A) into an ordered destination list, the proxy sends to the first,
 * and on a 503 or a timeout before any response it fails over to the next (RFC 3263 §4.3, RFC 3261 §16.7/§16.8).
 */

const UDP_IN: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '198.51.100.7', port: 5060 },
  local: { address: '192.0.2.1', port: 5060 },
};

/** example.net: a NAPTR to UDP SRV; the SRV gives two servers (listed out of order), each with one A record. */
function zoneDns() {
  const queries: string[] = [];
  const dns: DnsLookup = {
    async naptr(name) {
      queries.push(`NAPTR ${name}`);
      return name === 'example.net'
        ? [{ order: 10, preference: 10, flags: 's', service: 'SIP+D2U', replacement: '_sip._udp.example.net' }]
        : [];
    },
    async srv(name) {
      queries.push(`SRV ${name}`);
      return name === '_sip._udp.example.net'
        ? [
            { priority: 20, weight: 0, port: 5070, name: 'backup.example.net' },
            { priority: 10, weight: 0, port: 5060, name: 'main.example.net' },
          ]
        : [];
    },
    async a(name) {
      queries.push(`A ${name}`);
      return (
        ({ 'main.example.net': ['192.0.2.61'], 'backup.example.net': ['192.0.2.62'] } as Record<string, string[]>)[
          name
        ] ?? []
      );
    },
    async aaaa() {
      return [];
    },
  };
  return { dns, queries };
}

function dnsZoneProxy(dns: DnsLookup) {
  return makeProxy({
    routing: {
      zones: [{ name: 'Internet', type: 'dns' }],
      searchRules: [{ name: 'internet', pattern: { type: 'anyAlias' }, targetZone: 'Internet' }],
    },
    searcher: sipZoneSearcher({ dns }),
    dns,
    listeners: [{ transport: 'UDP', address: '192.0.2.1', port: 5060 }],
  });
}

describe('proxy: DNS zone, RFC 3263 resolution and failover', () => {
  test('the DNS zone searcher turns NAPTR → SRV → A into the destinations, in SRV priority order', async () => {
    const { dns, queries } = zoneDns();
    const targets = await sipZoneSearcher({ dns }).search(
      { name: 'Internet', type: 'dns' } as never,
      'bob@example.net',
    );
    assert.deepEqual(targets, [
      {
        uri: 'sip:bob@example.net',
        routes: [],
        destinations: [
          { transport: 'UDP', address: '192.0.2.61', port: 5060 },
          { transport: 'UDP', address: '192.0.2.62', port: 5070 },
        ],
      },
    ]);
    assert.deepEqual(queries, [
      'NAPTR example.net',
      'SRV _sip._udp.example.net',
      'A main.example.net',
      'A backup.example.net',
    ]);
    const none = await sipZoneSearcher({ dns }).search(
      { name: 'Internet', type: 'dns' } as never,
      'bob@nowhere.example',
    );
    assert.deepEqual(none, [], 'a domain with no records is not found in the DNS zone');
  });

  test('the first server answers 503: the INVITE goes to the second, whose 200 reaches the caller', async () => {
    const { dns } = zoneDns();
    const { proxy, layer, router } = dnsZoneProxy(dns);
    const r = request({ uri: 'sip:bob@example.net' });
    const s = serverTx(r, UDP_IN);
    assert.equal(proxy.handle(r, s.tx, UDP_IN), true);
    await settle();
    assert.equal(layer.sent.length, 1);
    assert.deepEqual(layer.sent[0]!.dest, { transport: 'UDP', address: '192.0.2.61', port: 5060 });
    assert.equal(layer.sent[0]!.req.uri, 'sip:bob@example.net', 'the Request-URI stays the domain (RFC 3263 §4)');

    proxy.onResponse(answer(layer.sent[0]!.req, 503), layer.sent[0]!.tx);
    assert.equal(layer.sent.length, 2, 'failed over to the next destination');
    assert.deepEqual(layer.sent[1]!.dest, { transport: 'UDP', address: '192.0.2.62', port: 5070 });
    assert.equal(getHeaders(layer.sent[1]!.req, 'via').length, 2, "one Via of ours, on top of the caller's");
    const via = getTopVia(layer.sent[1]!.req);
    assert.ok(via?.ok && via.value.host === '192.0.2.1');
    assert.equal(s.responses.length, 0, 'the 503 is not sent upstream');

    proxy.onResponse(answer(layer.sent[1]!.req, 200), layer.sent[1]!.tx);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [200],
    );
    assert.equal(proxy.counters.failovers, 1);
    const rec = router.history.recent()[0]!;
    assert.deepEqual(
      rec.rules.map((x) => `${x.rule}:${x.result}`),
      ['internet:found'],
    );
  });

  test('the first server never answers (Timer B): the second is tried; both failing gives the caller 500', async () => {
    const { dns } = zoneDns();
    const { proxy, layer } = dnsZoneProxy(dns);
    const r = request({ uri: 'sip:bob@example.net' });
    const s = serverTx(r, UDP_IN);
    proxy.handle(r, s.tx, UDP_IN);
    await settle();
    assert.equal(proxy.onTimeout(layer.sent[0]!.tx), true);
    assert.equal(layer.sent.length, 2);
    assert.deepEqual(layer.sent[1]!.dest, { transport: 'UDP', address: '192.0.2.62', port: 5070 });
    assert.equal(proxy.counters.failovers, 1);
    assert.equal(s.responses.length, 0);

    // No destination left: the 503 of the last one is the branch's answer, sent upstream as 500 (§16.7 step 6).
    proxy.onResponse(answer(layer.sent[1]!.req, 503), layer.sent[1]!.tx);
    assert.equal(layer.sent.length, 2, 'nothing more to try');
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [500],
    );
    assert.equal(proxy.counters.failovers, 1);
  });

  test('a MESSAGE whose server sent 100 Trying and then nothing (Timer F): reached, so 408 and no failover', async () => {
    const { dns } = zoneDns();
    const { proxy, layer } = dnsZoneProxy(dns);
    const r = request({ uri: 'sip:bob@example.net', method: 'MESSAGE' });
    const s = serverTx(r, UDP_IN);
    proxy.handle(r, s.tx, UDP_IN);
    await settle();
    assert.equal(layer.sent.length, 1);
    proxy.onResponse(answer(layer.sent[0]!.req, 100), layer.sent[0]!.tx);
    proxy.onTimeout(layer.sent[0]!.tx);
    assert.equal(layer.sent.length, 1, 'the request reached that server: no second copy');
    assert.equal(proxy.counters.failovers, 0);
    assert.deepEqual(
      s.responses.map((x) => x.status),
      [408],
      'the 100 is absorbed; the timeout is a 408',
    );
  });
});
