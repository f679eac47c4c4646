import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../../src/common/log.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import { H225_PROTOCOL_ID, h225Address } from '../../../src/h323/api.ts';
import type { CallServer } from '../../../src/h323/calls/call-server.ts';
import { h323ConfigSchema } from '../../../src/h323/config.ts';
import { Gatekeeper } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { protectGatekeeper } from '../../../src/h323/security/node-protection.ts';
import { IntrusionGuard } from '../../../src/security/intrusion.ts';
import { NodeStore } from '../../../src/store/database.ts';

/**
 * The flood limits `protectGatekeeper` sets, sans-I/O with a fake clock: a neighbour zone's address has its own
 * limits (`…PerNeighbour`); over them its RAS is dropped and connections refused, yet it is never counted as a flood
 * (which would block the zone); any other source has the per-source limits and is blocked as a flood.
 */
test('a neighbour over its own flood limit is dropped but never blocked; another source is blocked', () => {
  const clock = new FakeClock();
  const NEIGHBOUR = '192.0.2.9';
  const OTHER = '192.0.2.10';
  const gatekeeper = new Gatekeeper(
    {
      gatekeeperIdentifier: 'crossway-test',
      rasAddress: { ip: '192.0.2.1', port: 1719 },
      callSignalAddress: { ip: '192.0.2.1', port: 1720 },
      timeToLive: 60,
      expiryGraceSeconds: 5,
      maxRegistrations: 100,
      policy: { mode: 'allow-all', patterns: [] },
      allowDialledIp: false,
      maxBandwidthPerCall: 20_000,
    },
    clock,
  );
  const guard = new IntrusionGuard({
    clock,
    enabled: true,
    limits: {
      auth: { threshold: 5, windowMs: 60_000, blockMs: 600_000 },
      malformed: { threshold: 5, windowMs: 60_000, blockMs: 600_000 },
      flood: { threshold: 3, windowMs: 10_000, blockMs: 600_000 },
    },
    exempt: [],
    maxTrackedSources: 100,
  });
  // the call server only as protectGatekeeper sees it: the connection check it installs
  const calls = { allowConnection: () => true } as unknown as CallServer;
  const store = NodeStore.open(':memory:');
  protectGatekeeper({
    gatekeeper,
    calls,
    config: h323ConfigSchema.parse({
      gatekeeper: {
        floodLimits: {
          rasPerSecondPerSource: 2,
          rasPerSecondPerNeighbour: 6,
          setupsPerSecondPerSource: 1,
          setupsPerSecondPerNeighbour: 4,
        },
      },
    }),
    sip: { domains: [], realms: {} },
    guard,
    store,
    clock,
    log: silentLogger,
    neighbours: { zoneOf: (ip: string) => (ip === NEIGHBOUR ? { name: 'Peer' } : undefined) },
  });
  const grq = rasCodec.encode({
    choice: 'gatekeeperRequest',
    value: {
      requestSeqNum: 1,
      protocolIdentifier: H225_PROTOCOL_ID,
      rasAddress: h225Address('192.0.2.50', 1719),
      endpointType: { terminal: {}, mc: false, undefinedNode: false },
    },
  });
  const answered = (ip: string, n: number) => {
    let k = 0;
    for (let i = 0; i < n; i++) if (gatekeeper.handleDatagram(grq, { ip, port: 1719 }) !== undefined) k++;
    return k;
  };
  const accepted = (ip: string, n: number) => {
    let k = 0;
    for (let i = 0; i < n; i++) if (calls.allowConnection(ip)) k++;
    return k;
  };
  try {
    // second 1: the neighbour gets 6 answers of 20 and 4 connections of 10, the other source 2 and 1
    assert.equal(answered(NEIGHBOUR, 20), 6);
    assert.equal(accepted(NEIGHBOUR, 10), 4);
    assert.equal(answered(OTHER, 20), 2);
    assert.equal(gatekeeper.counters.rateLimited, 14 + 3, 'the other source is dropped unread once blocked');
    assert.equal(guard.blockOf(NEIGHBOUR), undefined, 'a neighbour over its limit is not a flood');
    assert.equal(guard.counters.events.flood, 3);
    assert.equal(guard.blockOf(OTHER)?.category, 'flood');
    // second 2: the neighbour's limits start again; the blocked source stays blocked
    clock.advance(1000);
    assert.equal(answered(NEIGHBOUR, 10), 6);
    assert.equal(accepted(NEIGHBOUR, 5), 4);
    assert.equal(answered(OTHER, 2), 0);
    assert.equal(accepted(OTHER, 1), 0);
    assert.equal(guard.blockOf(NEIGHBOUR), undefined);
  } finally {
    gatekeeper.close();
    store.close();
  }
});
