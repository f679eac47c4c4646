import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { FakeClock } from '../../src/common/timers.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { createRequest } from '../../src/sip/message/index.ts';
import type { SipResponse } from '../../src/sip/message/types.ts';
import type { ServerTransactionHandle, TransportInfo } from '../../src/sip/transaction/types.ts';
import { TraversalServerZone } from '../../src/traversal/server-zone.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { seedCredentials } from '../roles/helpers-ua.ts';

/*
 * TLS verify subject name on a traversal zone (docs/traversal.md): the edge checks the name in the core's client
 * certificate, the core checks the name in the edge's server certificate; a mismatch refuses the zone with the reason.
 */

function keepalive() {
  return createRequest({
    method: 'OPTIONS',
    uri: 'sip:192.0.2.1:7001;transport=tls',
    headers: [
      ['Via', 'SIP/2.0/TLS 10.0.0.2:5061;branch=z9hG4bKtls'],
      ['From', '<sip:tz1@10.0.0.2>;tag=a'],
      ['To', '<sip:192.0.2.1:7001>'],
      ['Call-ID', 'c1'],
      ['CSeq', '1 OPTIONS'],
    ],
  });
}

function tx() {
  const sent: SipResponse[] = [];
  const handle = { respond: (r: SipResponse) => sent.push(r) > 0 } as unknown as ServerTransactionHandle;
  return { handle, sent };
}

const cert = (cn: string, san?: string) =>
  ({ subject: { CN: cn }, ...(san ? { subjectaltname: san } : {}) }) as unknown as PeerCertificate;

const onFlow = (peer: PeerCertificate | undefined, transport = 'TLS'): TransportInfo => ({
  transport,
  reliable: true,
  source: { address: '10.0.0.2', port: 25001 },
  local: { address: '192.0.2.1', port: 7001 },
  connectionId: 'c-1',
  ...(peer ? { tlsPeerCertificate: peer } : {}),
});

const zone = () =>
  new TraversalServerZone({
    name: 'tz1',
    port: 7001,
    realm: 'traversal',
    verifySubjectName: 'core.example.com',
    clock: new FakeClock(),
  });

test('edge TLS verify subject name: a client certificate naming the zone (SAN, or CN without SAN) makes the flow', () => {
  for (const c of [cert('whatever', 'DNS:core.example.com, IP Address:10.0.0.2'), cert('core.example.com')]) {
    const z = zone();
    const t = tx();
    assert.equal(z.handle(keepalive(), t.handle, onFlow(c)), false, 'passed on to the basic UAS');
    assert.equal(z.state, 'active');
    assert.deepEqual(t.sent, []);
  }
});

test('edge TLS verify subject name: another name, no verified certificate or no TLS is refused 403, zone failed with the reason', () => {
  const cases: [TransportInfo, RegExp][] = [
    [
      onFlow(cert('core.other.org', 'DNS:core.other.org')),
      /^TLS verify subject name core\.example\.com: client certificate CN=core\.other\.org \(DNS:core\.other\.org\) from 10\.0\.0\.2:25001 does not match$/,
    ],
    [onFlow(undefined), /no verified client certificate from 10\.0\.0\.2:25001/],
    [onFlow(undefined, 'TCP'), /is not TLS/],
  ];
  for (const [info, why] of cases) {
    const z = zone();
    const t = tx();
    assert.equal(z.handle(keepalive(), t.handle, info), true);
    assert.equal(t.sent[0]?.status, 403);
    assert.equal(z.state, 'failed');
    assert.match(z.status().lastError ?? '', why);
    assert.equal(z.flow, undefined);
  }
});

async function waitFor<T>(what: string, fn: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A lab (edge and core share the lab's certificate: CN and SAN localhost, 127.0.0.1, 127.0.0.2). */
async function lab(name: string, verifyPeer = true): Promise<RunningNode> {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-tlsname-'));
  seedCredentials(dataDir, 'edge', [['traversal', 'tz1-core', 'zone-secret']]);
  return startTestNode({
    dataDir,
    tls: { verifyPeer },
    traversalZones: [
      {
        name: 'tz1',
        keepaliveSeconds: 1,
        retryMinSeconds: 0.1,
        retryMaxSeconds: 0.5,
        username: 'tz1-core',
        password: 'zone-secret',
        tlsVerifySubjectName: name,
      },
    ],
  });
}

test('lab TLS verify subject name: both certificates carry the name, the zone is active at both ends', async () => {
  const node = await lab('localhost');
  try {
    const core = node.sip.get('core')!;
    const edge = node.sip.get('edge')!;
    await waitFor('core zone active', () => core.zones().find((z) => z.state === 'active'));
    // The edge asked for the core's certificate and checked it (with no certificate the flow would be refused).
    const sz = await waitFor('edge zone active', () => edge.serverZones().find((z) => z.state === 'active'));
    assert.equal(sz.lastError, undefined);
  } finally {
    await node.close();
  }
});

test("lab TLS verify subject name: the edge's certificate does not carry the name, the core refuses the zone", async () => {
  const node = await lab('edge.example.test');
  try {
    const core = node.sip.get('core')!;
    const z = await waitFor('core zone failed', () => core.zones().find((x) => x.state === 'failed'));
    assert.match(
      z.lastError ?? '',
      /^OPTIONS: transport failure: TLS handshake with edge\.example\.test: Hostname\/IP does not match certificate's altnames/,
    );
    assert.notEqual(node.sip.get('edge')!.serverZones()[0]!.state, 'active');
  } finally {
    await node.close();
  }
});

test("lab TLS verify subject name: the core's certificate does not carry the name, the edge refuses the zone", async () => {
  // The core does not check the edge's name here (verifyPeer off), so the edge's own check is what refuses.
  const node = await lab('core.example.test', false);
  try {
    const edge = node.sip.get('edge')!;
    const sz = await waitFor('edge zone failed', () => edge.serverZones().find((x) => x.state === 'failed'));
    assert.match(
      sz.lastError ?? '',
      /^TLS verify subject name core\.example\.test: client certificate CN=.* does not match$/,
    );
    const cz = await waitFor('core zone failed', () =>
      node.sip
        .get('core')!
        .zones()
        .find((x) => x.state === 'failed'),
    );
    assert.match(cz.lastError ?? '', /403/);
  } finally {
    await node.close();
  }
});
