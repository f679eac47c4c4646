import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { routingConfigSchema } from '../../../src/routing/config.ts';
import { Router } from '../../../src/routing/router.ts';
import { parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { StatefulProxy, sipZoneSearcher } from '../../../src/sip/proxy/proxy.ts';
import type { DnsLookup } from '../../../src/sip/proxy/resolver.ts';
import type { ProxyTransactions, SipTarget } from '../../../src/sip/proxy/types.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransportInfo,
} from '../../../src/sip/transaction/types.ts';
import { DOMAIN, harness, register, UDP_INFO } from '../registrar/harness.ts';

/*
 * The proxy side of RFC 5626 and RFC 3581: a binding made by the real registrar is turned by the local-zone searcher
 * (sipZoneSearcher) into the destination the proxy sends to, and the proxy hands that destination to the transaction
 * layer. The endpoint behind NAT must be reached where its REGISTER came from (its connection, or the received/rport
 * address), never at the private address in its Contact.
 */

const INSTANCE = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"';
const LOCAL_ZONE = { name: 'LocalZone', type: 'local' } as const;

/** Any DNS question is a test failure: a registered endpoint is found without DNS. */
const failDns: DnsLookup = {
  naptr: async () => assert.fail('no NAPTR query for a registered endpoint'),
  srv: async () => assert.fail('no SRV query for a registered endpoint'),
  a: async () => assert.fail('no A query for a registered endpoint'),
  aaaa: async () => assert.fail('no AAAA query for a registered endpoint'),
};

const TCP_NAT: TransportInfo = {
  transport: 'TCP',
  reliable: true,
  source: { address: '203.0.113.7', port: 40123 },
  local: { address: '198.51.100.1', port: 5060 },
  connectionId: 'conn-7',
};
const UDP_NAT: TransportInfo = { ...UDP_INFO, source: { address: '203.0.113.50', port: 61000 } };

async function searchAlice(h: ReturnType<typeof harness>): Promise<SipTarget[]> {
  return sipZoneSearcher({ location: h.table, dns: failDns }).search(LOCAL_ZONE, `alice@${DOMAIN}`);
}

/** A proxy whose only search rule is the local zone, searched by sipZoneSearcher over the registrar's table. */
function proxyOver(h: ReturnType<typeof harness>) {
  const sent: { req: SipRequest; dest: Destination }[] = [];
  const layer: ProxyTransactions = {
    sendRequest(request, destination) {
      sent.push({ req: request, dest: destination });
      return { key: `c${sent.length}`, kind: 'ict', request, destination } as unknown as ClientTransactionHandle;
    },
    cancel: () => ({ status: 'pending' as const }),
    sendStateless: () => {},
  };
  const config = routingConfigSchema.parse({
    searchRules: [{ name: 'registered', pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' }],
  });
  const router = new Router<SipTarget>({
    config,
    domains: [DOMAIN],
    wallNow: () => h.clock.wallNow(),
    searcher: sipZoneSearcher({ location: h.table, dns: failDns }),
  });
  const proxy = new StatefulProxy({
    settings: config.proxy,
    router,
    transactions: layer,
    listeners: () => [
      { transport: 'UDP', address: '198.51.100.1', port: 5060 },
      { transport: 'TCP', address: '198.51.100.1', port: 5060 },
    ],
    domains: [DOMAIN],
    clock: h.clock,
    dns: failDns,
  });
  return { proxy, sent };
}

/** An INVITE for alice from a caller on the Internet, offered to the proxy; resolves once the proxy has forwarded. */
async function inviteAlice(proxy: StatefulProxy): Promise<void> {
  const text =
    `INVITE sip:alice@${DOMAIN} SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.77:5060;branch=z9hG4bKinv1;rport\r\n` +
    `Max-Forwards: 70\r\nFrom: <sip:carol@${DOMAIN}>;tag=c1\r\nTo: <sip:alice@${DOMAIN}>\r\nCall-ID: flows-1\r\n` +
    'CSeq: 1 INVITE\r\nContact: <sip:carol@192.0.2.77>\r\nContent-Length: 0\r\n\r\n';
  const r = parseMessage(Buffer.from(text));
  assert.ok(r.ok && r.value.kind === 'request');
  const req = r.value;
  const info: TransportInfo = { ...UDP_INFO, source: { address: '192.0.2.77', port: 5060 } };
  const tx = {
    key: 's1',
    kind: 'ist',
    state: 'Proceeding',
    request: req,
    transportInfo: info,
    respond: () => true,
  } as unknown as ServerTransactionHandle;
  assert.equal(proxy.handle(req, tx, info), true);
  for (let i = 0; i < 10; i++) await new Promise((res) => setImmediate(res));
}

describe('proxy local zone: registered endpoints behind NAT', () => {
  test('RFC 5626 §5.3: an outbound binding is reached on its connection (the flow it registered on)', async () => {
    const h = harness();
    const res = h.send(
      register({
        contacts: [`<sip:alice@10.0.0.5:5060;transport=tcp>;${INSTANCE};reg-id=1`],
        extra: ['Supported: outbound'],
      }),
      TCP_NAT,
    );
    assert.equal(res.status, 200);
    const targets = await searchAlice(h);
    assert.deepEqual(targets, [
      {
        uri: 'sip:alice@10.0.0.5:5060;transport=tcp',
        routes: [],
        destinations: [
          {
            transport: 'TCP',
            address: '203.0.113.7',
            port: 40123,
            connectionId: 'conn-7',
            local: { address: '198.51.100.1', port: 5060 },
          },
        ],
      },
    ]);

    const { proxy, sent } = proxyOver(h);
    await inviteAlice(proxy);
    assert.equal(sent.length, 1);
    // Sent back out of the listener the REGISTER arrived on (docs/routing.md, "Which listener a request leaves from").
    assert.deepEqual(sent[0]!.dest, {
      transport: 'TCP',
      address: '203.0.113.7',
      port: 40123,
      connectionId: 'conn-7',
      local: { address: '198.51.100.1', port: 5060 },
    });
    assert.equal(sent[0]!.req.uri, 'sip:alice@10.0.0.5:5060;transport=tcp', 'the Request-URI is the Contact');
  });

  test('RFC 5626 §5.3: after the endpoint re-registers on a new connection, requests go on the new one', async () => {
    const h = harness();
    h.send(register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`], callId: 'a' }), TCP_NAT);
    h.send(register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`], callId: 'b' }), {
      ...TCP_NAT,
      source: { address: '203.0.113.7', port: 40999 },
      connectionId: 'conn-8',
    });
    const targets = await searchAlice(h);
    assert.deepEqual(
      targets.map((t) => t.destinations),
      [
        [
          {
            transport: 'TCP',
            address: '203.0.113.7',
            port: 40999,
            connectionId: 'conn-8',
            local: { address: '198.51.100.1', port: 5060 },
          },
        ],
      ],
    );
  });

  test('RFC 3581: a NATed UDP binding is reached at its received/rport address, not its Contact', async () => {
    const h = harness();
    assert.equal(h.send(register({ contacts: ['<sip:alice@192.168.1.20:5060>'] }), UDP_NAT).status, 200);
    const targets = await searchAlice(h);
    assert.equal(targets.length, 1);
    assert.equal(targets[0]!.uri, 'sip:alice@192.168.1.20:5060');
    assert.deepEqual(targets[0]!.destinations, [
      { transport: 'UDP', address: '203.0.113.50', port: 61000, local: { address: '198.51.100.1', port: 5060 } },
    ]);

    const { proxy, sent } = proxyOver(h);
    await inviteAlice(proxy);
    assert.equal(sent.length, 1);
    assert.deepEqual(sent[0]!.dest, {
      transport: 'UDP',
      address: '203.0.113.50',
      port: 61000,
      local: { address: '198.51.100.1', port: 5060 },
    });
    assert.notEqual(sent[0]!.dest.address, '192.168.1.20');
  });

  test('every binding of the AOR becomes its own target, each at its own flow', async () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:alice@192.168.1.20:5060>'], callId: 'udp' }), UDP_NAT);
    h.send(register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`], callId: 'tcp' }), TCP_NAT);
    const targets = await searchAlice(h);
    const byUri = new Map(targets.map((t) => [t.uri, t.destinations]));
    assert.deepEqual(byUri.get('sip:alice@192.168.1.20:5060'), [
      { transport: 'UDP', address: '203.0.113.50', port: 61000, local: { address: '198.51.100.1', port: 5060 } },
    ]);
    assert.deepEqual(byUri.get('sip:alice@10.0.0.5'), [
      {
        transport: 'TCP',
        address: '203.0.113.7',
        port: 40123,
        connectionId: 'conn-7',
        local: { address: '198.51.100.1', port: 5060 },
      },
    ]);
    assert.equal(targets.length, 2);
  });

  test('an AOR with no binding gives no target (and no DNS question)', async () => {
    const h = harness();
    assert.deepEqual(await searchAlice(h), []);
  });
});
