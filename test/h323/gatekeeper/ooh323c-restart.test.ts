import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startTestNode, uniqueOffset } from '../../helpers/lab-node.ts';
import {
  count,
  endpointProcesses,
  freeTcpPort,
  ooh323cBinary,
  ooh323cLauncher,
  waitFor,
} from '../../helpers/ooh323c.ts';

/**
 * Registration survives a node restart, with real endpoints: two ooh323c endpoints register to a started lab node
 * with a short timeToLive; the node is stopped and started again on the same data directory and ports; the
 * endpoints' next requests are answered as registered (their keep-alives recognised, or, should one have given up
 * meanwhile, a new full registration), under the same endpoint identifiers; then alice calls bob by H.323-ID and the
 * call connects through the restarted node and ends with a call record. Endpoints use 127.0.34.x.
 */
const bin = ooh323cBinary();

describe('H.323 registrations across a node restart (ooh323c)', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs = endpointProcesses();

  it('keep-alives after the restart are recognised and the next call connects', async () => {
    const input = {
      dataDir: mkdtempSync(join(tmpdir(), 'crossway-h323-restart-')),
      portOffset: uniqueOffset(),
      h323: { enabled: true, gatekeeper: { timeToLive: 3 } },
    };
    const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-restart-'));
    let node = await startTestNode(input);
    const out = { alice: '', bob: '' };
    try {
      const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
      const launch = ooh323cLauncher({ bin: bin!, cwd, gk: `${ras.address}:${ras.port}`, procs, out });
      const start = async (name: 'alice' | 'bob', ip: string, more: string[]) =>
        launch(name, ip, await freeTcpPort(ip), more);
      let gk = node.h323.get('core')!.gatekeeper;
      const diag = () =>
        `gk: ${JSON.stringify(gk.counters)}\nalice: ${out.alice.slice(-1200)}\nbob: ${out.bob.slice(-1200)}`;
      const bob = await start('bob', '127.0.34.3', ['--e164', '2001', '--auto-answer', '--listen']);
      const alice = await start('alice', '127.0.34.2', ['--listen']);
      await waitFor(() => gk.size === 2, 10_000, 'both registered', diag);
      const before = new Map(
        gk.list().map((r) => [r.aliases.find((a) => a.kind === 'h323-ID')!.value, r.endpointIdentifier]),
      );
      assert.equal(before.size, 2);

      await node.close();
      node = await startTestNode(input);
      gk = node.h323.get('core')!.gatekeeper;
      assert.equal(gk.size, 2, 'both registrations restored from the store');
      // each endpoint is heard from again, as registered: a keep-alive recognised or a full RRQ
      const heard = () => (gk.counters.received.registrationRequest ?? 0) >= 2;
      await waitFor(heard, 10_000, 'both endpoints to refresh after the restart', diag);
      await waitFor(() => (gk.counters.sent.registrationConfirm ?? 0) >= 2, 10_000, 'both confirmed', diag);
      assert.equal(gk.size, 2);
      const after = new Map(
        gk.list().map((r) => [r.aliases.find((a) => a.kind === 'h323-ID')!.value, r.endpointIdentifier]),
      );
      assert.deepEqual(after, before, 'the same endpoint identifiers');
      assert.equal(gk.counters.expired, 0);
      // a keep-alive is recognised (RCF) or answered fullRegistrationRequired and followed by a full RRQ; nothing else
      const otherRrj = Object.keys(gk.counters.rejected).filter(
        (k) => k.startsWith('registrationReject') && k !== 'registrationReject:fullRegistrationRequired',
      );
      assert.deepEqual(otherRrj, [], JSON.stringify(gk.counters));

      // no call attempt lost: alice calls bob by H.323-ID through the restarted node
      alice.stdin.write('c bob\n');
      await waitFor(
        () =>
          count(out.alice, '--->Starting transmit channel') > 0 && count(out.bob, '--->Starting transmit channel') > 0,
        15_000,
        'the call to connect after the restart',
        diag,
      );
      assert.equal(gk.counters.sent.admissionReject ?? 0, 0, 'no ARJ');
      alice.stdin.write('h\n');
      await waitFor(() => count(out.alice, 'Ended') > 0 && count(out.bob, 'Ended') > 0, 10_000, 'the end', diag);
      let stored: Array<{ protocol: string; status: number }> = [];
      for (let i = 0; i < 50 && stored.length === 0; i++) {
        stored = node.sip
          .get('core')!
          .callStore!.recent(10)
          .filter((r) => r.protocol === 'h323');
        if (stored.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(stored.length, 1);
      assert.equal(stored[0]!.status, 200);
      alice.stdin.write('q\n');
      bob.stdin.write('q\n');
      await waitFor(() => gk.size === 0, 8_000, 'both unregistered', diag);
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await node.close();
    }
  });
});
