import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { GatekeeperEvent, H323Registration } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { callControl } from '../../../src/roles/control.ts';
import { startTestNode } from '../../helpers/lab-node.ts';
import {
  count,
  endpointProcesses,
  freeTcpPort,
  ooh323cBinary,
  ooh323cLauncher,
  waitFor,
} from '../../helpers/ooh323c.ts';

/**
 * The real ooh323c endpoint (../shared/peers/ooh323c) against a started lab node's core gatekeeper: discovery,
 * registration by H.323-ID and E.164, lightweight keep-alives with a 2 s timeToLive and no expiry, a call to an alias
 * nobody registered refused with ARJ calledPartyNotRegistered (the caller sees the call cleared, no call is stored as
 * connected), removal by an administrator through the control socket (`h323.registrations` then `h323.unregister`:
 * a URQ from the gatekeeper, answered with UCF), URQ at quit. Endpoints use 127.0.24.x so that other suites running
 * ooh323c at the same time do not collide.
 */
const bin = ooh323cBinary();

/** timeToLive granted, and grace before expiry: short, so keep-alives come (and a missed one would expire) in seconds. */
const TTL = 2;

describe('ooh323c endpoints against the gatekeeper of a started Crossway node', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs = endpointProcesses();

  it('GRQ/GCF, RRQ/RCF, keep-alives with a short timeToLive, ARJ for an unknown alias, URQ both ways', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-gk-'));
    const node = await startTestNode({
      dataDir,
      h323: { enabled: true, gatekeeper: { timeToLive: TTL, expiryGraceSeconds: TTL } },
    });
    const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-gk-'));
    try {
      const svc = node.h323.get('core')!;
      const gk = svc.gatekeeper;
      const calls = svc.calls!;
      const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
      const events: GatekeeperEvent[] = [];
      gk.on((e) => events.push(e));

      const out = { alice: '', bob: '' };
      const start = ooh323cLauncher({ bin: bin!, cwd, gk: `${ras.address}:${ras.port}`, procs, out });
      const diag = () =>
        `counters: ${JSON.stringify(gk.counters)}\nalice: ${out.alice.slice(-1200)}\nbob: ${out.bob.slice(-1200)}`;
      const registrations = async () =>
        (
          (await callControl(dataDir, 'h323.registrations')) as Array<{
            node: string;
            registrations: H323Registration[];
          }>
        ).find((x) => x.node === 'core')!.registrations;
      const h323Id = (r: H323Registration) => r.aliases.find((a) => a.kind === 'h323-ID')?.value;

      const bob = start('bob', '127.0.24.3', await freeTcpPort('127.0.24.3'), [
        '--e164',
        '2001',
        '--auto-answer',
        '--listen',
      ]);
      await waitFor(
        () => gk.resolve([{ kind: 'h323-ID', value: 'bob' }]) !== undefined,
        10_000,
        'bob registered',
        diag,
      );
      const alice = start('alice', '127.0.24.2', await freeTcpPort('127.0.24.2'), ['--listen']);
      await waitFor(() => gk.size === 2, 10_000, 'alice registered', diag);
      // each discovered the gatekeeper first (GRQ → GCF), then registered with a full RRQ
      assert.equal(gk.counters.received.gatekeeperRequest, 2, diag());
      assert.equal(gk.counters.sent.gatekeeperConfirm, 2, diag());
      // two rounds of lightweight keep-alives (every TTL seconds from each): past timeToLive + grace of the first
      // registration, so a keep-alive the node failed to take would have expired it
      await waitFor(() => gk.counters.keepAlives >= 4, (3 * TTL + 4) * 1000, 'lightweight keep-alives', diag);
      assert.equal(gk.counters.expired, 0, 'keep-alives arrived before timeToLive + grace');
      assert.equal(gk.size, 2, diag());
      // bob is found by E.164 too, and the node's listing shows both
      const bobReg = gk.resolve([{ kind: 'dialledDigits', value: '2001' }]);
      assert.ok(bobReg?.kind === 'endpoint' && h323Id(bobReg.registration) === 'bob', JSON.stringify(bobReg));
      const listed = await registrations();
      assert.deepEqual(listed.map(h323Id).sort(), ['alice', 'bob']);
      for (const r of listed) {
        assert.equal(r.timeToLive, TTL);
        assert.ok(r.refreshedAt > r.registeredAt, `${h323Id(r)} kept alive: ${JSON.stringify(r)}`);
      }

      // a call to an alias nobody registered: ARJ calledPartyNotRegistered, and alice sees the call cleared for it
      alice.stdin.write('c nobody\n');
      await waitFor(
        () => (gk.counters.rejected['admissionReject:calledPartyNotRegistered'] ?? 0) >= 1,
        8_000,
        'ARJ',
        diag,
      );
      await waitFor(() => count(out.alice, 'Ended -') >= 1, 5_000, 'alice to see the call cleared', diag);
      assert.match(out.alice, /--->Call \S+ Ended - OO_REASON_GK_NOCALLEDUSER/);
      assert.equal(gk.counters.sent.admissionConfirm ?? 0, 0, 'no ACF');
      // no Setup reached the node, and no call to nobody is stored as connected
      assert.equal(calls.active().length, 0);
      assert.equal(calls.ended.length, 0);
      const stored = node.sip.get('core')!.callStore!.recent(50);
      assert.deepEqual(
        stored.filter((r) => r.to.includes('nobody') && (r.status === 200 || r.answeredAt !== null)),
        [],
        JSON.stringify(stored),
      );
      assert.equal(count(out.bob, '--->Incoming call'), 0, 'bob was not called');

      // an administrator lists the registrations and removes bob's through the control socket: a URQ from the
      // gatekeeper, answered with UCF
      const bobId = (await registrations()).find((r) => h323Id(r) === 'bob')!.endpointIdentifier;
      assert.equal(await callControl(dataDir, 'h323.unregister', { endpointIdentifier: 'ffffffffffff' }), false);
      assert.equal(gk.size, 2, 'an unknown identifier removes nothing');
      assert.equal(await callControl(dataDir, 'h323.unregister', { endpointIdentifier: bobId }), true);
      assert.equal(gk.counters.sent.unregistrationRequest, 1, diag());
      await waitFor(() => (gk.counters.received.unregistrationConfirm ?? 0) >= 1, 8_000, 'UCF from bob', diag);
      assert.ok(
        events.some(
          (e) =>
            e.kind === 'unregistered' && e.reason === 'administrator' && e.registration.endpointIdentifier === bobId,
        ),
        JSON.stringify(events.map((e) => [e.kind, e.kind === 'unregistered' ? e.reason : '', h323Id(e.registration)])),
      );
      assert.equal(gk.get(bobId), undefined, 'the removed registration is gone');

      alice.stdin.write('q\n');
      bob.stdin.write('q\n');
      await waitFor(() => (gk.counters.received.unregistrationRequest ?? 0) >= 1, 8_000, "alice's URQ", diag);
      await waitFor(() => gk.resolve([{ kind: 'h323-ID', value: 'alice' }]) === undefined, 5_000, 'alice gone', diag);
      assert.ok(
        events.some((e) => e.kind === 'unregistered' && e.reason === 'endpoint' && h323Id(e.registration) === 'alice'),
      );
      assert.equal(gk.counters.malformed, 0);
      assert.equal(gk.counters.expired, 0);
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      rmSync(cwd, { recursive: true, force: true });
      await node.close();
    }
  });
});
