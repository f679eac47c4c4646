import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { NodeStatus } from '../../src/calls/status.ts';
import { formatStatus } from '../../src/cli/commands/status.ts';
import type { RelaySessionPorts } from '../../src/h323/calls/media-anchor.ts';
import { callControl } from '../../src/roles/control.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { count, endpointProcesses, freeTcpPort, ooh323cBinary, ooh323cLauncher, waitFor } from '../helpers/ooh323c.ts';

/**
 * Two real ooh323c endpoints registered to a started lab node's core gatekeeper; alice calls bob through the node.
 * While the call is up it is an active H.323 call in `crossway status` (calls.status); after the hang-up one call
 * record is in the node's store (protocol h323, both sides' aliases, answered, the cause). Endpoints use 127.0.33.x.
 */
const bin = ooh323cBinary();

describe('H.323 call records of a real call through a node', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs = endpointProcesses();

  it('the call shows as an active h323 call while up and leaves one call record (aliases, status, cause)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-cdr-'));
    const node = await startTestNode({ dataDir, h323: { enabled: true, gatekeeper: { timeToLive: 30 } } });
    const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-cdr-'));
    try {
      const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
      const gk = node.h323.get('core')!.gatekeeper;
      const out = { alice: '', bob: '' };
      const launch = ooh323cLauncher({ bin: bin!, cwd, gk: `${ras.address}:${ras.port}`, procs, out });
      const start = async (name: 'alice' | 'bob', ip: string, more: string[]) =>
        launch(name, ip, await freeTcpPort(ip), more);
      const status = async () =>
        ((await callControl(dataDir, 'calls.status')) as NodeStatus[]).find((s) => s.node === 'core')!;
      const diag = () =>
        `gk: ${JSON.stringify(gk.counters)}\nalice: ${out.alice.slice(-1200)}\nbob: ${out.bob.slice(-1200)}`;
      const bob = await start('bob', '127.0.33.3', ['--e164', '2001', '--auto-answer', '--listen']);
      const alice = await start('alice', '127.0.33.2', ['--listen']);
      await waitFor(() => gk.size === 2, 10_000, 'both registered', diag);
      assert.equal((await status()).registrations.h323, 2);

      alice.stdin.write('c 2001\n');
      await waitFor(
        () =>
          count(out.alice, '--->Starting transmit channel') > 0 && count(out.bob, '--->Starting transmit channel') > 0,
        15_000,
        'the call to connect',
        diag,
      );
      const up = (await status()).calls.active.filter((c) => c.protocol === 'h323');
      assert.equal(up.length, 1, JSON.stringify(up));
      assert.equal(up[0]!.state, 'active');
      assert.match(up[0]!.from, /h323-ID:alice/);
      assert.equal(up[0]!.to, 'dialledDigits:2001');
      assert.match(up[0]!.legs[0]!.target, /^127\.0\.33\.3:\d+$/);
      // crossway status (calls.status) shows the same media path: codecs per side, relay ports facing each
      assert.deepEqual(up[0]!.mediaPath?.codecs, { caller: ['audio:g711Ulaw'], callee: ['audio:g711Ulaw'] });
      assert.equal(up[0]!.mediaPath?.relay.length, 1);
      assert.match(
        formatStatus(await status()),
        /media: caller sends audio:g711Ulaw, callee sends audio:g711Ulaw; relay session 1 \S+ caller \d+\/\d+ callee \d+\/\d+/,
      );
      // h323.status: the codecs each leg sends (fast start, G.711 µ-law from ooh323c) and the relay ports each was given
      const h323 = (await callControl(dataDir, 'h323.status')) as Array<{
        node: string;
        calls: { active: Array<{ codecs: Record<'a' | 'b', string[]>; relay: RelaySessionPorts[] }> } | null;
      }>;
      const [live] = h323.find((x) => x.node === 'core')!.calls!.active;
      assert.ok(live, JSON.stringify(h323));
      assert.deepEqual(live.codecs, { a: ['audio:g711Ulaw'], b: ['audio:g711Ulaw'] });
      assert.equal(live.relay.length, 1, JSON.stringify(live.relay));
      const rp = live.relay[0]!;
      assert.equal(rp.session, 1);
      assert.notEqual(rp.a.rtp, rp.b.rtp, 'a port pair facing each leg');
      assert.ok(
        [rp.a.rtp, rp.a.rtcp, rp.b.rtp, rp.b.rtcp].every((x) => x > 1024),
        JSON.stringify(rp),
      );

      await new Promise((r) => setTimeout(r, 500));
      alice.stdin.write('h\n');
      await waitFor(() => count(out.alice, 'Ended') > 0 && count(out.bob, 'Ended') > 0, 10_000, 'the end', diag);
      let recent: NodeStatus['calls']['recent'] = [];
      for (let i = 0; i < 50 && recent.length === 0; i++) {
        recent = (await status()).calls.recent.filter((c) => c.protocol === 'h323');
        if (recent.length === 0) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(recent.length, 1, JSON.stringify(recent));
      assert.equal((await status()).calls.active.length, 0);
      const stored = node.sip
        .get('core')!
        .callStore!.recent(10)
        .filter((r) => r.protocol === 'h323');
      assert.equal(stored.length, 1);
      const r = stored[0]!;
      assert.equal(r.state, 'ended');
      assert.equal(r.status, 200);
      assert.match(r.from, /h323-ID:alice/);
      assert.equal(r.to, 'dialledDigits:2001');
      assert.equal(r.cause, 'released by caller');
      assert.ok(r.answeredAt !== null && r.endedAt >= r.answeredAt && r.endedAt - r.answeredAt < 30_000);
      alice.stdin.write('q\n');
      bob.stdin.write('q\n');
      await waitFor(() => gk.size === 0, 8_000, 'both unregistered', diag);
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      await node.close();
    }
  });
});
