import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { NodeStatus } from '../../../src/calls/status.ts';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../../../src/h323/api.ts';
import type { RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { callControl } from '../../../src/roles/control.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../../src/store/database.ts';
import { endpointSignRas } from '../../helpers/h235-endpoint.ts';
import { startTestNode, uniqueOffset } from '../../helpers/lab-node.ts';

/** Our signing endpoint (test/helpers/h235-endpoint.ts) with positional ClearToken fields. */
function signed(m: RasMessage, password: string, sendersID: string, generalID: string, random: number): Uint8Array {
  return endpointSignRas(m, password, { sendersID, generalID, random });
}

async function udp(ip: string): Promise<{ sock: dgram.Socket; port: number; answers: RasMessage[] }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, ip, () => r()));
  const answers: RasMessage[] = [];
  sock.on('message', (b) => {
    const d = rasCodec.decode(b);
    if (d.ok) answers.push(d.value);
  });
  return { sock, port: sock.address().port, answers };
}

async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  for (let t = 0; t < ms && !cond(); t += 10) await new Promise((r) => setTimeout(r, 10));
  return cond();
}

const reason = (m: RasMessage | undefined) =>
  (m?.value as { rejectReason?: { choice: string } } | undefined)?.rejectReason?.choice;

test('a node with H.235.1 required: signed RRQ registers and is listed with SIP bindings; bad tokens, malformed RAS, RRQ and Setup floods are counted and blocked by intrusion protection', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h235-'));
  const seed = NodeStore.open(join(dataDir, 'core'));
  new LocalCredentialStore(seed).add('example.com', 'alice', 'alice-secret');
  seed.close();
  const node = await startTestNode({
    dataDir,
    h323: {
      enabled: true,
      gatekeeper: {
        timeToLive: 60,
        security: { mode: 'required', realm: 'example.com' },
        floodLimits: { rasPerSecondPerSource: 5, setupsPerSecondPerSource: 3 },
      },
    },
    security: {
      intrusion: {
        exempt: [],
        authFailures: { threshold: 3, windowSeconds: 60, blockSeconds: 600 },
        malformed: { threshold: 4, windowSeconds: 60, blockSeconds: 600 },
        flood: { threshold: 10, windowSeconds: 10, blockSeconds: 600 },
      },
    },
  });
  const socks: dgram.Socket[] = [];
  try {
    const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const q931 = node.sockets().find((s) => s.listener === 'h323-q931' && s.node === 'core')!;
    const gkId = 'crossway-core';
    const rrq = (alias: string, csaPort: number, rasPort: number): RasMessage => ({
      choice: 'registrationRequest',
      value: {
        requestSeqNum: 1,
        protocolIdentifier: H225_PROTOCOL_ID,
        discoveryComplete: true,
        callSignalAddress: [h225Address('127.0.0.1', csaPort)],
        rasAddress: [h225Address('127.0.0.1', rasPort)],
        terminalType: { terminal: {}, mc: false, undefinedNode: false },
        terminalAlias: [aliasFromText(alias), aliasFromText('2001')],
        endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      },
    });

    // 1. a signed RRQ registers; the registration shows in calls.status and in management's listing and count
    const a = await udp('127.0.0.1');
    socks.push(a.sock);
    a.sock.send(signed(rrq('alice', 11720, a.port), 'alice-secret', 'alice', gkId, 1), ras.port, ras.address);
    assert.ok(await waitFor(() => a.answers.length > 0), 'RCF');
    assert.equal(a.answers[0]!.choice, 'registrationConfirm', JSON.stringify(a.answers[0]));
    const id = (a.answers[0]!.value as { endpointIdentifier: string }).endpointIdentifier;
    const status = (await callControl(dataDir, 'calls.status')) as NodeStatus[];
    const core = status.find((s) => s.node === 'core')!;
    assert.equal(core.registrations.h323, 1);
    assert.deepEqual(
      core.registrations.h323List.map((r) => [r.endpointIdentifier, r.aliases, r.callSignalAddress, r.timeToLive]),
      [[id, ['h323-ID:alice', 'dialledDigits:2001'], '127.0.0.1:11720', 60]],
    );
    assert.equal(core.registrations.h323List[0]!.authUser, 'alice');
    const mgmt = node.management?.nodes.get('core');
    assert.ok(mgmt, 'management runs');
    const listing = mgmt.status.get('registrations') as Array<{ protocol: string; endpointIdentifier?: string }>;
    assert.deepEqual(
      listing.filter((r) => r.protocol === 'h323').map((r) => r.endpointIdentifier),
      [id],
    );
    assert.equal(mgmt.counts().registrations, 1);

    // 2. wrong password from 127.0.0.2: RRJ securityDenial, then blocked (auth threshold 3)
    const b = await udp('127.0.0.2');
    socks.push(b.sock);
    for (let i = 0; i < 3; i++) {
      b.sock.send(signed(rrq('alice', 11721, b.port), 'guess', 'alice', gkId, 10 + i), ras.port, ras.address);
      assert.ok(await waitFor(() => b.answers.length === i + 1), `answer ${i}`);
      assert.equal(reason(b.answers[i]), 'securityDenial');
    }
    const blocks = async () =>
      (
        (await callControl(dataDir, 'security.blocks.list', { node: 'core' })) as Array<{
          blocks: Array<{ address: string; category: string }>;
        }>
      )[0]!.blocks;
    assert.deepEqual(
      (await blocks()).map((x) => [x.address, x.category]),
      [['127.0.0.2', 'auth']],
    );
    b.sock.send(signed(rrq('alice', 11721, b.port), 'alice-secret', 'alice', gkId, 20), ras.port, ras.address);
    assert.equal(await waitFor(() => b.answers.length > 3, 300), false, 'a blocked source gets no answer');

    // 3. malformed RAS from 127.0.0.3: dropped, counted, blocked at the malformed threshold
    const c = await udp('127.0.0.3');
    socks.push(c.sock);
    for (let i = 0; i < 4; i++) c.sock.send(Buffer.from([0xff, 0xff, 0x00, i]), ras.port, ras.address);
    const h323 = async () =>
      (
        (await callControl(dataDir, 'h323.status')) as Array<{
          node: string;
          counters: { malformed: number; rateLimited: number; blocked: number };
          calls: { counters: { refused: number; accepted: number } } | null;
        }>
      ).find((s) => s.node === 'core')!;
    let malformed = 0;
    for (let t = 0; t < 100 && malformed < 4; t++) {
      malformed = (await h323()).counters.malformed;
      if (malformed < 4) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(malformed, 4);
    assert.ok((await blocks()).some((x) => x.address === '127.0.0.3' && x.category === 'malformed'));

    // 4. an RRQ flood from 127.0.0.4: over 5/s dropped and counted; 10 excess → blocked (flood)
    const d = await udp('127.0.0.4');
    socks.push(d.sock);
    for (let i = 0; i < 30; i++) d.sock.send(rasCodec.encode(rrq('eve', 11722, d.port)), ras.port, ras.address);
    await waitFor(() => false, 300);
    assert.ok(d.answers.length <= 5, `at most 5 answered, got ${d.answers.length}`);
    assert.ok(d.answers.length >= 1, 'the first ones are answered (securityDenial: unsigned)');
    const counters = (await h323()).counters;
    assert.ok(counters.rateLimited + counters.blocked >= 25, JSON.stringify(counters));
    assert.ok((await blocks()).some((x) => x.address === '127.0.0.4' && x.category === 'flood'));

    // 5. a Setup flood from 127.0.0.5: new call signalling connections over 3/s refused
    const conns: net.Socket[] = [];
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        () =>
          new Promise<'open' | 'closed'>((resolve) => {
            const s = net.connect({ host: q931.address, port: q931.port, localAddress: '127.0.0.5' });
            conns.push(s);
            s.on('error', () => resolve('closed'));
            s.on('close', () => resolve('closed'));
            s.on('connect', () => setTimeout(() => resolve(s.destroyed ? 'closed' : 'open'), 150));
          }),
      ),
    );
    for (const s of conns) s.destroy();
    const calls = (await h323()).calls!;
    assert.equal(calls.counters.refused, 5, JSON.stringify(calls.counters));
    assert.equal(results.filter((r) => r === 'open').length, 3);
  } finally {
    for (const s of socks) s.close();
    await node.close();
  }
});

test('restart with H.235.1 required: the restored registration keeps its user, so the signed keep-alive and the next ARQ are accepted; an unknown endpoint is told fullRegistrationRequired', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h235-restart-'));
  const seed = NodeStore.open(join(dataDir, 'core'));
  new LocalCredentialStore(seed).add('example.com', 'alice', 'alice-secret');
  seed.close();
  const input = {
    dataDir,
    portOffset: uniqueOffset(),
    h323: {
      enabled: true,
      gatekeeper: { timeToLive: 60, security: { mode: 'required' as const, realm: 'example.com' } },
    },
  };
  const a = await udp('127.0.0.1');
  const gkId = 'crossway-core';
  const base = (over: Record<string, unknown>): RasMessage => ({
    choice: 'registrationRequest',
    value: {
      requestSeqNum: 1,
      protocolIdentifier: H225_PROTOCOL_ID,
      discoveryComplete: true,
      callSignalAddress: [h225Address('127.0.0.1', 11730)],
      rasAddress: [h225Address('127.0.0.1', a.port)],
      terminalType: { terminal: {}, mc: false, undefinedNode: false },
      terminalAlias: [aliasFromText('alice')],
      endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      ...over,
    },
  });
  const exchange = async (bytes: Uint8Array, port: number, ip: string) => {
    const n = a.answers.length;
    a.sock.send(bytes, port, ip);
    assert.ok(await waitFor(() => a.answers.length > n), 'answered');
    return a.answers[n]!;
  };
  let node = await startTestNode(input);
  let id = '';
  try {
    const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const rcf = await exchange(signed(base({}), 'alice-secret', 'alice', gkId, 1), ras.port, ras.address);
    assert.equal(rcf.choice, 'registrationConfirm');
    id = (rcf.value as { endpointIdentifier: string }).endpointIdentifier;
  } finally {
    await node.close();
  }
  node = await startTestNode(input);
  try {
    const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const ka = await exchange(
      signed(base({ keepAlive: true, endpointIdentifier: id, terminalAlias: undefined }), 'alice-secret', id, gkId, 2),
      ras.port,
      ras.address,
    );
    assert.equal(ka.choice, 'registrationConfirm', JSON.stringify(ka));
    const arq: RasMessage = {
      choice: 'admissionRequest',
      value: {
        requestSeqNum: 3,
        callType: { choice: 'pointToPoint', value: null },
        endpointIdentifier: id,
        destinationInfo: [aliasFromText('alice')],
        srcInfo: [aliasFromText('alice')],
        bandWidth: 1280,
        callReferenceValue: 5,
        conferenceID: new Uint8Array(16).fill(1),
        activeMC: false,
        answerCall: false,
        callIdentifier: { guid: new Uint8Array(16).fill(2) },
      },
    };
    const acf = await exchange(signed(arq, 'alice-secret', id, gkId, 3), ras.port, ras.address);
    assert.equal(acf.choice, 'admissionConfirm', JSON.stringify(acf));
    const lost = await exchange(
      signed(
        base({ keepAlive: true, endpointIdentifier: 'not-ours', terminalAlias: undefined }),
        'alice-secret',
        'not-ours',
        gkId,
        4,
      ),
      ras.port,
      ras.address,
    );
    assert.equal(reason(lost), 'fullRegistrationRequired');
  } finally {
    a.sock.close();
    await node.close();
  }
});

/**
 * A neighbour gatekeeper (routing zone of type neighbor, protocol h323, at 127.0.0.6) sends LRQs well above the
 * per-source RAS limit (50/s by default) and opens more call signalling connections than the per-source Setup limit:
 * all are answered or accepted (its own limits, `…PerNeighbour`, are higher) and it is never blocked, although
 * loopback is not exempt here; another source (127.0.0.7) at the same rate is limited and blocked as a flood.
 */
test('a neighbour zone is not held to the per-source flood limits; another source at the same rate is', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-nbflood-'));
  const neighbour = await udp('127.0.0.6');
  const other = await udp('127.0.0.7');
  const node = await startTestNode({
    dataDir,
    h323: { enabled: true, gatekeeper: { floodLimits: { setupsPerSecondPerSource: 3 } } },
    routing: {
      zones: [{ name: 'Peer', type: 'neighbor', protocol: 'h323', address: '127.0.0.6', port: neighbour.port }],
      searchRules: [{ name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' }],
    },
    security: {
      intrusion: { exempt: [], flood: { threshold: 20, windowSeconds: 10, blockSeconds: 600 } },
    },
  });
  try {
    const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const q931 = node.sockets().find((s) => s.listener === 'h323-q931' && s.node === 'core')!;
    const lrq = (requestSeqNum: number, replyPort: number, ip: string): Uint8Array =>
      rasCodec.encode({
        choice: 'locationRequest',
        value: {
          requestSeqNum,
          destinationInfo: [aliasFromText(`nobody-${requestSeqNum}`)],
          replyAddress: h225Address(ip, replyPort),
          hopCount: 1,
        },
      });
    // 120 LRQs each, in 4 bursts of 30 (a few ms apart: well above 50 in one second, without overrunning a socket)
    const flood = async (s: { sock: dgram.Socket; port: number }, ip: string) => {
      for (let burst = 0; burst < 4; burst++) {
        for (let i = 0; i < 30; i++) s.sock.send(lrq(burst * 30 + i + 1, s.port, ip), ras.port, ras.address);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await flood(neighbour, '127.0.0.6');
    await flood(other, '127.0.0.7');
    assert.ok(await waitFor(() => neighbour.answers.length === 120, 5000), `${neighbour.answers.length} answered`);
    assert.ok(
      neighbour.answers.every((m) => m.choice === 'locationReject' && reason(m) === 'notRegistered'),
      'answered by the search (not requestDenied)',
    );
    await waitFor(() => false, 300);
    assert.ok(other.answers.length <= 50, `at most 50 answered, got ${other.answers.length}`);
    assert.ok(other.answers.length >= 1, 'the first ones are answered');
    assert.ok(
      other.answers.every((m) => reason(m) === 'requestDenied'),
      'not a neighbour',
    );

    const blocks = (
      (await callControl(dataDir, 'security.blocks.list', { node: 'core' })) as Array<{
        blocks: Array<{ address: string; category: string }>;
      }>
    )[0]!.blocks;
    assert.deepEqual(
      blocks.map((b) => [b.address, b.category]),
      [['127.0.0.7', 'flood']],
    );

    // call signalling: 8 connections at once from each; the neighbour's all accepted, 3 of the other's (blocked now)
    const connect = async (ip: string) => {
      const conns: net.Socket[] = [];
      const results = await Promise.all(
        Array.from(
          { length: 8 },
          () =>
            new Promise<'open' | 'closed'>((resolve) => {
              const s = net.connect({ host: q931.address, port: q931.port, localAddress: ip });
              conns.push(s);
              s.on('error', () => resolve('closed'));
              s.on('close', () => resolve('closed'));
              s.on('connect', () => setTimeout(() => resolve(s.destroyed ? 'closed' : 'open'), 150));
            }),
        ),
      );
      for (const s of conns) s.destroy();
      return results.filter((r) => r === 'open').length;
    };
    assert.equal(await connect('127.0.0.6'), 8);
    assert.equal(await connect('127.0.0.8'), 3);
    const st = (
      (await callControl(dataDir, 'h323.status')) as Array<{
        node: string;
        counters: { rateLimited: number; blocked: number };
        neighbours: { counters: { lrqReceived: number; unknownSource: number } };
      }>
    ).find((s) => s.node === 'core')!;
    assert.equal(st.neighbours.counters.lrqReceived - st.neighbours.counters.unknownSource, 120);
    assert.ok(st.counters.rateLimited + st.counters.blocked >= 70, JSON.stringify(st.counters));
  } finally {
    neighbour.sock.close();
    other.sock.close();
    await node.close();
  }
});
