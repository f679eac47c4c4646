import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { systemClock } from '../../../src/common/timers.ts';
import { Gatekeeper, type GatekeeperEvent } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { RasServer } from '../../../src/h323/gatekeeper/ras-server.ts';
import { endpointProcesses, freeTcpPort, ooh323cBinary, ooh323cLauncher, waitFor } from '../../helpers/ooh323c.ts';

/**
 * The real ooh323c endpoint (../shared/peers/ooh323c) against our gatekeeper on a UDP socket: discovery,
 * registration by H.323-ID and E.164, lightweight keep-alives with a 2 s timeToLive, a call to an alias nobody
 * registered refused with ARJ, removal by an administrator (URQ from the gatekeeper), URQ at quit.
 * Endpoints use 127.0.24.x so that other suites running ooh323c at the same time do not collide.
 */
const bin = ooh323cBinary();

describe('ooh323c endpoints against the Crossway gatekeeper', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs = endpointProcesses();

  it('GRQ/GCF, RRQ/RCF, keep-alives with a short timeToLive, ARJ for an unknown alias, URQ both ways', async () => {
    const gk = new Gatekeeper(
      {
        gatekeeperIdentifier: 'crossway-test',
        rasAddress: { ip: '127.0.0.1', port: 0 },
        callSignalAddress: { ip: '127.0.0.1', port: 1 },
        timeToLive: 2,
        expiryGraceSeconds: 2,
        maxRegistrations: 100,
        policy: { mode: 'allow-all', patterns: [] },
        allowDialledIp: false,
        maxBandwidthPerCall: 20_000,
      },
      systemClock,
    );
    const server = await RasServer.start(gk, '127.0.0.1', 0);
    // the GCF must name the address we really listen on
    gk.setAddresses({ rasAddress: server.address() });
    const events: GatekeeperEvent[] = [];
    gk.on((e) => events.push(e));

    const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-gk-'));
    const out = { alice: '', bob: '' };
    const start = ooh323cLauncher({ bin: bin!, cwd, gk: `127.0.0.1:${server.address().port}`, procs, out });
    const diag = () =>
      `counters: ${JSON.stringify(gk.counters)}\nalice: ${out.alice.slice(-1200)}\nbob: ${out.bob.slice(-1200)}`;

    const bob = start('bob', '127.0.24.3', await freeTcpPort('127.0.24.3'), [
      '--e164',
      '2001',
      '--auto-answer',
      '--listen',
    ]);
    await waitFor(() => gk.resolve([{ kind: 'h323-ID', value: 'bob' }]) !== undefined, 10_000, 'bob registered', diag);
    const alice = start('alice', '127.0.24.2', await freeTcpPort('127.0.24.2'), ['--listen']);
    await waitFor(() => gk.size === 2, 10_000, 'alice registered', diag);
    // both registered: two full RRQs; then the keep-alives of a 2 s timeToLive
    await waitFor(() => gk.counters.keepAlives >= 2, 8_000, 'lightweight keep-alives', diag);
    assert.equal(gk.counters.received.gatekeeperRequest, 2);
    const bobReg = gk.resolve([{ kind: 'dialledDigits', value: '2001' }]);
    assert.ok(bobReg?.kind === 'endpoint' && bobReg.registration.aliases.some((a) => a.value === 'bob'));
    assert.equal(gk.counters.expired, 0, 'keep-alives arrived before timeToLive + grace');

    alice.stdin.write('c nobody\n');
    await waitFor(
      () => (gk.counters.rejected['admissionReject:calledPartyNotRegistered'] ?? 0) >= 1,
      8_000,
      'ARJ',
      diag,
    );

    // an administrator removes bob: URQ from the gatekeeper, answered with UCF
    assert.ok(bobReg?.kind === 'endpoint');
    assert.equal(gk.unregister(bobReg.registration.endpointIdentifier), true);
    await waitFor(() => (gk.counters.received.unregistrationConfirm ?? 0) >= 1, 8_000, 'UCF from bob', diag);

    alice.stdin.write('q\n');
    bob.stdin.write('q\n');
    await waitFor(() => (gk.counters.received.unregistrationRequest ?? 0) >= 1, 8_000, "alice's URQ", diag);
    await waitFor(() => gk.resolve([{ kind: 'h323-ID', value: 'alice' }]) === undefined, 5_000, 'alice gone', diag);
    assert.equal(gk.counters.malformed, 0);
    assert.ok(events.some((e) => e.kind === 'unregistered' && e.reason === 'administrator'));
    assert.ok(events.some((e) => e.kind === 'unregistered' && e.reason === 'endpoint'));
    await server.close();
  });
});
