import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../../src/common/log.ts';
import { systemClock } from '../../../src/common/timers.ts';
import { CallServer } from '../../../src/h323/calls/call-server.ts';
import { Gatekeeper } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { RasServer } from '../../../src/h323/gatekeeper/ras-server.ts';
import { mediaConfigSchema, startMediaRelay } from '../../../src/media/index.ts';
import { freeTcpPort, ooh323cBinary, waitFor } from '../../helpers/ooh323c.ts';

/**
 * Two real ooh323c endpoints registered to our gatekeeper call each other in the gatekeeper-routed model: the ACF
 * sends the caller's Setup to our call signalling server, which opens its own leg to the callee from the outbound
 * range and relays Q.931/H.225.0; fast-start media is anchored on the node's relay (each side must receive what the
 * other sent, from the relay's address). Endpoints use 127.0.25.x.
 */
const bin = ooh323cBinary();

const count = (s: string, needle: string) => s.split(needle).length - 1;

describe('routed calls between ooh323c endpoints through the Crossway gatekeeper', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs: ChildProcessWithoutNullStreams[] = [];
  after(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  });

  const none = ['--no-faststart', '--no-tunneling'];
  const modes = [
    { mode: 'fast start + tunnelling', net4: '127.0.25', alice: [], bob: [] },
    { mode: 'no fast start, no tunnelling (separate H.245 connections)', net4: '127.0.26', alice: none, bob: none },
    { mode: 'mixed: caller fast start + tunnelling, callee separate H.245', net4: '127.0.27', alice: [], bob: none },
    { mode: 'mixed: caller separate H.245, callee fast start + tunnelling', net4: '127.0.28', alice: none, bob: [] },
    {
      mode: 'tunnelling without fast start',
      net4: '127.0.29',
      alice: ['--no-faststart'],
      bob: ['--no-faststart'],
    },
  ];
  for (const { mode, net4, alice: aliceFlags, bob: bobFlags } of modes) {
    it(`A calls B by H.323-ID and by E.164, B auto-answers, media anchored, A hangs up; DRQs answered (${mode})`, async () => {
      const gk = new Gatekeeper(
        {
          gatekeeperIdentifier: 'crossway-test',
          rasAddress: { ip: '127.0.0.1', port: 0 },
          callSignalAddress: { ip: '127.0.0.1', port: 0 },
          timeToLive: 30,
          expiryGraceSeconds: 5,
          maxRegistrations: 100,
          policy: { mode: 'allow-all', patterns: [] },
          allowDialledIp: false,
          maxBandwidthPerCall: 20_000,
        },
        systemClock,
      );
      const ras = await RasServer.start(gk, '127.0.0.1', 0);
      const base = 20_000 + Math.floor(Math.random() * 3900);
      const mediaBase = 44_000 + 2 * Math.floor(Math.random() * 5000);
      const relay = await startMediaRelay({
        node: 'core',
        config: mediaConfigSchema.parse({}),
        pool: { ranges: [{ from: mediaBase, to: mediaBase + 99, step: 1 }] },
        addresses: {
          endpoint: { bind: '127.0.0.1', advertise: '127.0.0.1' },
          traversal: { bind: '127.0.0.1', advertise: '127.0.0.1' },
        },
        clock: systemClock,
      });
      const calls = await CallServer.start({
        media: relay.core,
        gatekeeper: gk,
        listen: { ip: '127.0.0.1', port: 0 },
        outboundPorts: { from: base, to: base + 99 },
        clock: systemClock,
        log: silentLogger,
      });
      gk.setAddresses({ rasAddress: ras.address(), callSignalAddress: calls.address() });
      try {
        const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-routed-'));
        if (process.env.H323_TRACE) console.log(`trace in ${cwd}`);
        const out = { alice: '', bob: '' };
        const start = (name: 'alice' | 'bob', ip: string, port: number, more: string[]) => {
          const extra = name === 'alice' ? aliceFlags : bobFlags;
          const p = spawn(
            bin!,
            [
              ...(process.env.H323_TRACE ? ['-t', '-t', '-t'] : []),
              '--rtp-test',
              '--no-video',
              '--use-ip',
              ip,
              '--use-port',
              String(port),
              '--h323id',
              name,
              '--gk',
              `127.0.0.1:${ras.address().port}`,
              ...extra,
              ...more,
            ],
            { cwd, stdio: ['pipe', 'pipe', 'pipe'] },
          );
          procs.push(p);
          p.stdout.on('data', (d) => {
            out[name] += d;
          });
          return p;
        };
        const diag = () =>
          `gk: ${JSON.stringify(gk.counters)}\ncalls: ${JSON.stringify([calls.counters, calls.active(), calls.ended])}\nalice: ${out.alice.slice(-1500)}\nbob: ${out.bob.slice(-1500)}`;
        const bob = start('bob', `${net4}.3`, await freeTcpPort(`${net4}.3`), [
          '--e164',
          '2001',
          '--auto-answer',
          '--listen',
        ]);
        const alice = start('alice', `${net4}.2`, await freeTcpPort(`${net4}.2`), ['--listen']);
        await waitFor(() => gk.size === 2, 10_000, 'both registered', diag);

        for (const [i, dest] of ['bob', '2001'].entries()) {
          alice.stdin.write(`c ${dest}\n`);
          await waitFor(
            () =>
              count(out.alice, '--->Starting transmit channel') > i &&
              count(out.bob, '--->Starting transmit channel') > i,
            15_000,
            `the call to ${dest} to connect`,
            diag,
          );
          const active = calls.active();
          assert.equal(active.length, 1, diag());
          assert.equal(active[0]!.state, 'connected');
          assert.ok(active[0]!.destination.some((d) => d.value === dest));
          assert.equal(active[0]!.target?.ip, `${net4}.3`);
          await new Promise((r) => setTimeout(r, 1000));
          alice.stdin.write('h\n');
          await waitFor(() => (gk.counters.sent.disengageConfirm ?? 0) >= 2 * (i + 1), 10_000, 'two DCFs', diag);
          await waitFor(() => calls.ended.length === i + 1, 5_000, 'the call to end on the node', diag);
          await waitFor(() => count(out.bob, 'Ended') > i, 5_000, 'bob to see the call end', diag);
          {
            // media anchored: each side sends to the relay and receives from it, and gets ≥ 90 % of what the other sent
            const last = (who: string, re: RegExp) => [...who.matchAll(re)].at(-1);
            for (const [me, peer] of [
              [out.alice, out.bob],
              [out.bob, out.alice],
            ] as const) {
              await waitFor(
                () => count(me, '--->RTP received') > i && count(peer, '--->RTP sent') > i,
                5_000,
                'RTP counts',
                diag,
              );
              const tx = last(me, /--->Starting transmit channel to ([\d.]+):(\d+)/g)!;
              assert.equal(tx[1], '127.0.0.1', `sends to the relay: ${tx[0]}`);
              const rx = last(me, /--->RTP received (\d+) packets, last from ([\d.]+):(\d+)/g)!;
              const sent = Number(last(peer, /--->RTP sent (\d+) packets/g)![1]);
              assert.equal(rx[2], '127.0.0.1', `receives from the relay: ${rx[0]}`);
              assert.ok(sent > 0 && Number(rx[1]) >= 0.9 * sent, `${rx[0]} of ${sent} sent`);
            }
          }
        }
        // both sides asked admission for each call (caller and answerCall), each answered with a routed ACF
        assert.equal(gk.counters.sent.admissionConfirm, 4);
        assert.equal(calls.counters.malformed, 0);
        assert.deepEqual(
          calls.ended.map((c) => c.endReason),
          ['released by caller', 'released by caller'],
        );
        alice.stdin.write('q\n');
        bob.stdin.write('q\n');
        await waitFor(() => gk.size === 0, 8_000, 'both unregistered', diag);
      } finally {
        for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
        await calls.close();
        await ras.close();
        relay.close();
      }
    });
  }
});
