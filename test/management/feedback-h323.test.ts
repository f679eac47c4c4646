/**
 * H.323 gatekeeper registrations reach a real HTTPS feedback receiver as `registration` / `unregistration` events
 * (protocol h323): an endpoint registering, registering again under its identifier (no event, as a SIP refresh), one
 * leaving by URQ and one whose keep-alives stop; every body valid against the served FeedbackEvent schema.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../../src/h323/api.ts';
import type { RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import { OPENAPI } from '../../src/management/api/openapi.ts';
import { checkJsonSchema } from '../helpers/json-schema.ts';
import { createTlsFixtures } from '../helpers/tls-fixtures.ts';
import { type MgmtNode, receiver, startMgmtNode, until } from './helpers.ts';

test('H.323 registrations and their ends arrive at the subscriber as registration events', {
  timeout: 60_000,
}, async () => {
  const tls = createTlsFixtures();
  const rx = receiver(tls);
  const sock = dgram.createSocket('udp4');
  let m: MgmtNode | undefined;
  try {
    const port = await rx.listen();
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const me = sock.address().port;
    m = await startMgmtNode({
      tls: { caCertificates: tls.ca.certPath },
      h323: { enabled: true, gatekeeper: { timeToLive: 60, expiryGraceSeconds: 0 } },
      feedback: {
        subscribers: [{ url: `https://localhost:${port}/nms`, events: ['registration', 'unregistration'] }],
      },
    });
    const ras = m.node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    let seq = 0;
    const ask = (msg: RasMessage) =>
      new Promise<RasMessage>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no answer to ${msg.choice}`)), 3000);
        sock.once('message', (b) => {
          clearTimeout(t);
          const d = rasCodec.decode(b);
          if (d.ok) resolve(d.value);
          else reject(new Error(d.reason.message));
        });
        sock.send(rasCodec.encode(msg), ras.port, ras.address);
      });
    const rrq = (aliases: string[], csPort: number, timeToLive: number): RasMessage => ({
      choice: 'registrationRequest',
      value: {
        requestSeqNum: ++seq,
        protocolIdentifier: H225_PROTOCOL_ID,
        discoveryComplete: false,
        callSignalAddress: [h225Address('127.0.0.1', csPort)],
        rasAddress: [h225Address('127.0.0.1', me)],
        terminalType: { terminal: {}, mc: false, undefinedNode: false },
        terminalAlias: aliases.map(aliasFromText),
        timeToLive,
        endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      },
    });
    const register = async (aliases: string[], csPort: number, ttl: number) => {
      const rcf = await ask(rrq(aliases, csPort, ttl));
      assert.equal(rcf.choice, 'registrationConfirm', JSON.stringify(rcf));
      return (rcf.value as { endpointIdentifier: string }).endpointIdentifier;
    };

    const alice = await register(['alice', '2001'], 11720, 60);
    assert.equal(await register(['alice', '2001'], 11720, 60), alice, 'the same endpoint keeps its identifier');
    const bob = await register(['bob'], 11721, 1);
    const ucf = await ask({
      choice: 'unregistrationRequest',
      value: { requestSeqNum: ++seq, callSignalAddress: [h225Address('127.0.0.1', 11720)], endpointIdentifier: alice },
    });
    assert.equal(ucf.choice, 'unregistrationConfirm');
    // bob sends no keep-alive: he expires after his 1 s time to live.
    const got = () => rx.got.map((g) => g.event).filter((e) => e.node === 'core');
    await until(() => got().length >= 4, 15_000);
    await new Promise((r) => setTimeout(r, 300)); // nothing more may follow
    assert.deepEqual(
      got().map((e) => [e.event, e.data.endpointIdentifier, e.data.aliases, e.data.callSignalAddress, e.data.reason]),
      [
        ['registration', alice, ['h323-ID:alice', 'dialledDigits:2001'], '127.0.0.1:11720', undefined],
        ['registration', bob, ['h323-ID:bob'], '127.0.0.1:11721', undefined],
        ['unregistration', alice, ['h323-ID:alice', 'dialledDigits:2001'], '127.0.0.1:11720', 'endpoint'],
        ['unregistration', bob, ['h323-ID:bob'], '127.0.0.1:11721', 'expired'],
      ],
    );
    for (const e of got()) {
      assert.equal(e.data.protocol, 'h323');
      assert.deepEqual(checkJsonSchema({ $ref: '#/components/schemas/FeedbackEvent' }, e, OPENAPI), [], e.event);
    }
  } finally {
    sock.close();
    await m?.node.close();
    await rx.close();
  }
});
