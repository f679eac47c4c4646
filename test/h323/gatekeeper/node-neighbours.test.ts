import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { aliasFromText, buildSetup, fromH225Address, h225Address } from '../../../src/h323/api.ts';
import type { LocationRequest, RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  encodeCallSignalling,
} from '../../../src/h323/q931/call-signalling.ts';
import { encodeTpkt, TpktFramer } from '../../../src/h323/transport/tpkt.ts';
import { callControl } from '../../../src/roles/control.ts';
import { startTestNode, uniqueOffset } from '../../helpers/lab-node.ts';
import { rasPeer, rrq } from '../../helpers/ras.ts';

/** The first call-signalling PDU read from a socket (5 s at most). */
function firstPdu(s: net.Socket): Promise<CallSignallingMessage> {
  const framer = new TpktFramer();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no PDU on leg B')), 5000);
    s.on('data', (d) => {
      const r = framer.push(d);
      const pdu = r.ok ? r.value[0] : undefined;
      if (!pdu) return;
      clearTimeout(t);
      const m = decodeCallSignalling(pdu);
      if (m.ok) resolve(m.value);
      else reject(new Error(`leg B PDU does not decode: ${m.reason.message}`));
    });
  });
}

/**
 * A lab node whose routing names an H.323 neighbour gatekeeper by host name (`localhost`: this test's socket, on
 * 127.0.0.1) and another by a name that resolves to nothing (under `.invalid`, RFC 2606): the node answers the
 * neighbour's LRQs by its registrations (LCF naming its own call signalling port), asks the neighbour for an alias it
 * does not have when an endpoint's ARQ names one (the unresolvable zone first: no LRQ, the search goes on; then
 * LRQ → our LCF → ACF), and shows the zones in h323.status. The rule toward the neighbour replaces the leading 9 with
 * 0044: the LRQ asks for 0044555, and the Setup the node sends to the neighbour's call signalling carries 0044555.
 */
test('a node with an h323 neighbor zone answers LRQs and asks the neighbour on an ARQ', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-nb-'));
  const portOffset = uniqueOffset();
  const { socket: peer, port: me, next } = await rasPeer(4000); // the neighbour gatekeeper, and the endpoint
  // the neighbour's call signalling: where its LCF sends the node's Setups
  const legs: net.Socket[] = [];
  const peerQ931 = net.createServer((s) => legs.push(s));
  await new Promise<void>((r) => peerQ931.listen(0, '127.0.0.1', () => r()));
  const peerQ931Port = (peerQ931.address() as net.AddressInfo).port;
  let caller: net.Socket | undefined;
  const node = await startTestNode({
    dataDir,
    portOffset,
    h323: { enabled: true },
    routing: {
      zones: [
        { name: 'Peer', type: 'neighbor', protocol: 'h323', address: 'localhost', port: me, lrqTimeoutMs: 3000 },
        { name: 'Gone', type: 'neighbor', protocol: 'h323', address: 'crossway-gone.invalid', lrqTimeoutMs: 3000 },
      ],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
        {
          name: 'gone',
          priority: 90,
          source: 'localZone',
          pattern: { type: 'prefix', value: '9' },
          targetZone: 'Gone',
        },
        {
          // the neighbour knows 9… numbers as 0044…: the rule's replace is what it is asked for, by LRQ and in Setups
          name: 'peer',
          priority: 100,
          source: 'localZone',
          pattern: { type: 'prefix', value: '9' },
          onMatch: 'replace',
          replace: '0044',
          targetZone: 'Peer',
        },
      ],
    },
  });
  try {
    const core = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const q931 = node.sockets().find((s) => s.listener === 'h323-q931' && s.node === 'core')!;
    const send = (m: RasMessage) => peer.send(rasCodec.encode(m), core.port, core.address);
    const lrq = (alias: string, requestSeqNum: number): RasMessage => ({
      choice: 'locationRequest',
      value: {
        requestSeqNum,
        destinationInfo: [aliasFromText(alias)],
        replyAddress: h225Address('127.0.0.1', me),
        hopCount: 1,
      },
    });

    // the LRQ comes from 127.0.0.1, what `localhost` resolves to: it is the Peer zone's (not requestDenied)
    send(lrq('alice', 11));
    const lrj = await next('locationReject');
    assert.equal((lrj.value as { rejectReason: { choice: string } }).rejectReason.choice, 'notRegistered');

    send(rrq(12, ['alice', '2001'], 11720, me));
    const rcf = await next('registrationConfirm');
    const endpointIdentifier = (rcf.value as { endpointIdentifier: string }).endpointIdentifier;

    send(lrq('2001', 13));
    const lcf = await next('locationConfirm');
    const v = lcf.value as unknown as { callSignalAddress: never; rasAddress: never };
    assert.deepEqual(fromH225Address(v.callSignalAddress), { ip: q931.address, port: q931.port });
    assert.deepEqual(fromH225Address(v.rasAddress), { ip: core.address, port: core.port });

    // alice asks to call 9555: Gone first (its name resolves to nothing: no LRQ), then Peer (us), which confirms
    send({
      choice: 'admissionRequest',
      value: {
        requestSeqNum: 14,
        callType: { choice: 'pointToPoint', value: null },
        endpointIdentifier,
        destinationInfo: [aliasFromText('9555')],
        srcInfo: [aliasFromText('alice')],
        bandWidth: 640,
        callReferenceValue: 3,
        conferenceID: new Uint8Array(16).fill(3),
        activeMC: false,
        answerCall: false,
        callIdentifier: { guid: new Uint8Array(16).fill(4) },
      },
    });
    const out = await next('locationRequest');
    const l = out.value as LocationRequest;
    assert.deepEqual(l.destinationInfo, [aliasFromText('0044555')], 'the LRQ asks for the rewritten alias');
    send({
      choice: 'locationConfirm',
      value: {
        requestSeqNum: l.requestSeqNum,
        callSignalAddress: h225Address('127.0.0.1', peerQ931Port),
        rasAddress: h225Address('127.0.0.1', me),
      },
    });
    const acf = await next('admissionConfirm');
    assert.deepEqual(
      fromH225Address((acf.value as unknown as { destCallSignalAddress: never }).destCallSignalAddress),
      {
        ip: q931.address,
        port: q931.port,
      },
    );

    const status = (await callControl(dataDir, 'h323.status')) as Array<{
      node: string;
      neighbours: {
        zones: Array<{ name: string; host: string; address: { ip: string; port: number } | null }>;
        counters: Record<string, unknown>;
        dns: Record<string, number>;
      };
    }>;
    const st = status.find((s) => s.node === 'core')!;
    assert.deepEqual(
      st.neighbours.zones.map((z) => [z.name, z.host, z.address]),
      [
        ['Peer', 'localhost', { ip: '127.0.0.1', port: me }],
        ['Gone', 'crossway-gone.invalid', null],
      ],
    );
    assert.equal(st.neighbours.counters.lrqReceived, 2);
    assert.equal(st.neighbours.counters.lrqSent, 1, 'no LRQ toward Gone');
    assert.equal(st.neighbours.counters.lcfReceived, 1);
    assert.equal(st.neighbours.counters.unresolved, 1, JSON.stringify(st.neighbours));
    assert.ok(
      (st.neighbours.dns.failures ?? 0) + (st.neighbours.dns.timeouts ?? 0) >= 1,
      JSON.stringify(st.neighbours.dns),
    );

    // alice's Setup for 9555 (from another loopback address than the neighbour's, so it is hers, not the zone's): the
    // node opens leg B to the address of the neighbour's LCF, and its Setup asks for 0044555
    caller = net.connect({ host: q931.address, port: q931.port, localAddress: '127.0.0.5' });
    await new Promise<void>((r, j) => caller!.once('connect', r).once('error', j));
    caller.write(
      encodeTpkt(
        encodeCallSignalling(
          buildSetup({
            callReference: 7,
            callIdentifier: new Uint8Array(16).fill(4),
            conferenceID: new Uint8Array(16).fill(3),
            source: [aliasFromText('alice')],
            destination: [aliasFromText('9555')],
          }),
        ),
      ),
    );
    for (let i = 0; i < 50 && legs.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(legs.length, 1, 'leg B opened to the neighbour');
    const setup = await firstPdu(legs[0]!);
    const body = setup.uu?.['h323-uu-pdu']['h323-message-body'];
    assert.ok(body?.choice === 'setup', body?.choice);
    assert.deepEqual(body.value.destinationAddress, [aliasFromText('0044555')]);
    const live = node.h323.get('core')!.calls!.active();
    assert.deepEqual(
      live.map((c) => [c.sourceZone, c.targetZone]),
      [['LocalZone', 'Peer']],
    );
  } finally {
    caller?.destroy();
    for (const s of legs) s.destroy();
    await node.close();
    peer.close();
    peerQ931.close();
  }
});

/**
 * Neighbour zones named by host name are looked up when the gatekeeper starts, without holding the start: a zone
 * named `localhost` is known by 127.0.0.1 shortly after start, before any search or LRQ (so the flood limits and the
 * Setup check recognise it from the start), and a name under `.invalid` neither fails nor delays the start; its
 * failure is counted.
 */
test('a node looks its host-named neighbour zones up at start: zoneOf knows localhost without any search', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-nbstart-'));
  const node = await startTestNode({
    dataDir,
    h323: { enabled: true },
    routing: {
      zones: [
        { name: 'Peer', type: 'neighbor', protocol: 'h323', address: 'localhost', port: 1 },
        { name: 'Gone', type: 'neighbor', protocol: 'h323', address: 'crossway-gone.invalid' },
      ],
    },
  });
  try {
    const nb = node.h323.get('core')!.neighbours;
    let zone: string | undefined;
    for (let i = 0; i < 200 && zone === undefined; i++) {
      zone = nb.zoneOf('127.0.0.1')?.name;
      if (zone === undefined) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(zone, 'Peer');
    const st = nb.status() as { counters: Record<string, number>; dns: Record<string, number> };
    assert.equal(st.counters.lrqSent, 0, 'no search');
    assert.equal(st.counters.lrqReceived, 0);
    for (let i = 0; i < 200 && (st.dns.failures ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual([st.dns.lookups, st.dns.failures, st.dns.timeouts], [2, 1, 0], JSON.stringify(st.dns));
  } finally {
    await node.close();
  }
});
