import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { callControl } from '../../src/roles/control.ts';
import { gnugkBinDir, gnugkListening, gnugkLog, startGnugk } from '../helpers/gnugk.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { count, endpointProcesses, freeTcpPort, ooh323cBinary, ooh323cLauncher, waitFor } from '../helpers/ooh323c.ts';

/**
 * Neighbor zones against the real GnuGk (../shared/peers/gnugk): GnuGk on 127.0.31.1 (its own RAS 1719 and call
 * signalling 1720 there, config in the test's temp dir) names a started lab node's core gatekeeper as a neighbor; the
 * node has a routing zone `type: neighbor, protocol: h323` naming GnuGk and a search rule sending aliases it does not
 * have to that zone. An ooh323c endpoint registered to GnuGk (alice, 127.0.31.3) calls one registered to Crossway
 * (bob, 127.0.31.4) and back, by H.323-ID and by E.164; each call is resolved by LRQ/LCF between the gatekeepers and
 * connects through both (both gatekeeper-routed). Both endpoints send RTP test media: Crossway anchors it on its
 * relay, so bob's media always goes to and comes from the relay. Twice: GnuGk with `[Proxy] Enable=0` and
 * `H245Routed=0` passes the fast-start channels through untouched, so alice's media goes straight to and from
 * Crossway's relay too; GnuGk with `H245Routed=1` and `[Proxy] Enable=1` anchors alice's side on its own proxy, so
 * her media goes to and comes from GnuGk (and on from there to Crossway's relay). Bob also dials 93001: a search
 * rule strips the 9 and sends 3001 to GnuGk, which gets a Setup for 3001 and routes it to alice. Each call leaves one
 * stored call record naming the routing zones (GnuGk's calls from zone GnuGk to LocalZone, bob's the other way).
 */
const gnugk = gnugkBinDir();
const bin = ooh323cBinary();
const skip = 'reason' in gnugk ? gnugk.reason : bin ? false : 'ooh323c peer not available';
if (skip) console.warn(`SKIPPED gnugk-neighbour.test.ts: ${skip}`);

/** The node's gatekeeper identifier, as GnuGk's neighbor section names it. */
const CROSSWAY_ID = 'crossway-test';

/** GnuGk's configuration: routed Q.931, H.245 and media routed or not, Crossway's core gatekeeper as its neighbor. */
const gnugkIni = (home: string, proxy: boolean, neighbour: { address: string; port: number }) => `[Gatekeeper::Main]
Name=GnuGkTest
Home=${home}
TimeToLive=60
UseMulticastListener=0
[RoutedMode]
GKRouted=1
H245Routed=${proxy ? 1 : 0}
CallSignalPort=1720
AcceptUnregisteredCalls=0
[Proxy]
Enable=${proxy ? 1 : 0}
[Gatekeeper::Auth]
default=allow
[RasSrv::Neighbors]
Crossway=GnuGk
[Neighbor::Crossway]
GatekeeperIdentifier=${CROSSWAY_ID}
Host=${neighbour.address}:${neighbour.port}
SendPrefixes=*
AcceptPrefixes=*
[RasSrv::LRQFeatures]
NeighborTimeout=3
`;

describe('GnuGk as a neighbor gatekeeper of a started node: LRQ/LCF both ways, calls and media through both', {
  skip,
}, () => {
  const procs = endpointProcesses();

  const modes = [
    { mode: 'GnuGk passes media through', net: '127.0.31.', proxy: false },
    { mode: 'GnuGk routes H.245 and proxies media', net: '127.0.31.1', proxy: true },
  ];
  for (const { mode, net, proxy } of modes) {
    const GNUGK_IP = `${net}1`;
    const ALICE_IP = `${net}3`;
    const BOB_IP = `${net}4`;
    it(`alice (registered to GnuGk) calls bob (registered to Crossway) and bob calls alice back, by H.323-ID and E.164, media anchored on Crossway (${mode})`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'crossway-gnugk-nb-'));
      const node = await startTestNode({
        dataDir,
        h323: { enabled: true, gatekeeper: { identifier: CROSSWAY_ID } },
        routing: {
          zones: [
            {
              name: 'GnuGk',
              type: 'neighbor',
              protocol: 'h323',
              address: GNUGK_IP,
              port: 1719,
              gatekeeperIdentifier: 'GnuGkTest',
              hopCount: 1,
              lrqTimeoutMs: 3000,
            },
          ],
          searchRules: [
            { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
            // an outside-line prefix: 9 is stripped, GnuGk is asked for the rest and gets a Setup for the rest
            {
              name: 'gnugk-9',
              priority: 90,
              source: 'localZone',
              pattern: { type: 'prefix', value: '9' },
              onMatch: 'strip',
              targetZone: 'GnuGk',
            },
            { name: 'gnugk', priority: 100, source: 'localZone', pattern: { type: 'anyAlias' }, targetZone: 'GnuGk' },
          ],
        },
      });
      const svc = node.h323.get('core')!;
      const gk = svc.gatekeeper;
      const nb = svc.neighbours;
      const calls = svc.calls!;
      const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
      // the relay's address toward endpoints: where both endpoints must send media and receive it from
      const relayIp = node.addresses.get('core')!.private;
      const cwd = mkdtempSync(join(tmpdir(), 'gnugk-neighbour-'));
      let gkProc: ChildProcess | undefined;
      try {
        gkProc = startGnugk(
          (gnugk as { dir: string }).dir,
          cwd,
          gnugkIni(GNUGK_IP, proxy, ras),
          process.env.H323_TRACE ? 3 : 2,
        );
        const gkLog = () => gnugkLog(cwd);
        await gnugkListening(gkProc, cwd, GNUGK_IP);

        const out = { alice: '', bob: '' };
        const launcher = (gkAddr: string) =>
          ooh323cLauncher({ bin: bin!, cwd, gk: gkAddr, procs, out, lead: process.env.H323_TRACE ? ['-t', '-t'] : [] });
        const common = ['--auto-answer', '--listen'];
        const diag = () =>
          `crossway gk: ${JSON.stringify(gk.counters)}\nneighbours: ${JSON.stringify(nb.status())}\nsearches: ${JSON.stringify(nb.router.history.recent(6))}\ncalls: ${JSON.stringify([calls.counters, calls.active(), calls.ended])}\nalice: ${out.alice.slice(-1500)}\nbob: ${out.bob.slice(-1500)}\ngnugk log: ${gkLog().slice(-3000)}`;

        const alice = launcher(`${GNUGK_IP}:1719`)('alice', ALICE_IP, await freeTcpPort(ALICE_IP), [
          '--e164',
          '3001',
          ...common,
        ]);
        const bob = launcher(`${ras.address}:${ras.port}`)('bob', BOB_IP, await freeTcpPort(BOB_IP), [
          '--e164',
          '2002',
          ...common,
        ]);
        await waitFor(() => gk.size === 1, 10_000, 'bob registered to Crossway', diag);
        await waitFor(() => /RCF|registrationConfirm/.test(gkLog()), 10_000, 'alice registered to GnuGk', diag);
        // ooh323c ignores commands until it has read its RCF: the RCFs are sent, give them a moment to be read
        await new Promise((r) => setTimeout(r, 500));

        const steps = [
          { caller: alice, from: 'alice', callee: 'bob', to: 'h323-ID:bob', dir: 'GnuGk → Crossway' },
          { caller: bob, from: 'bob', callee: 'alice', to: 'h323-ID:alice', dir: 'Crossway → GnuGk' },
          { caller: alice, from: 'alice', callee: '2002', to: 'dialledDigits:2002', dir: 'GnuGk → Crossway (E.164)' },
          { caller: bob, from: 'bob', callee: '3001', to: 'dialledDigits:3001', dir: 'Crossway → GnuGk (E.164)' },
          {
            caller: bob,
            from: 'bob',
            callee: '93001',
            to: 'dialledDigits:93001',
            dir: 'Crossway → GnuGk (E.164, prefix 9 stripped by the search rule)',
          },
        ] as const;
        const last = (s: string, re: RegExp) => [...s.matchAll(re)].at(-1);
        for (const [i, step] of steps.entries()) {
          const before = { ...nb.counters };
          step.caller.stdin.write(`c ${step.callee}\n`);
          await waitFor(
            () =>
              count(out.alice, '--->Starting transmit channel') > i &&
              count(out.bob, '--->Starting transmit channel') > i,
            20_000,
            `the call ${step.dir} to ${step.callee} to connect`,
            diag,
          );
          const active = calls.active();
          assert.equal(active.length, 1, diag());
          assert.equal(active[0]!.state, 'connected');
          if (step.caller === alice) {
            // GnuGk asked us (LRQ) and we confirmed; its Setup came to us and went on to bob
            assert.ok(nb.counters.lrqReceived > before.lrqReceived, diag());
            assert.ok(nb.counters.lcfSent > before.lcfSent, diag());
            assert.equal(active[0]!.target?.ip, BOB_IP);
          } else {
            // we asked GnuGk (LRQ, or the LCF the ARQ just got) and sent the Setup to GnuGk's call signalling; 93001 is
            // 3001 once the rule strips the 9, which GnuGk confirmed moments ago (LCF reused)
            if (step.callee === '93001') assert.ok(nb.counters.cacheHits > before.cacheHits, diag());
            else {
              assert.ok(nb.counters.lrqSent > before.lrqSent, diag());
              assert.ok(nb.counters.lcfReceived > before.lcfReceived, diag());
            }
            assert.deepEqual(active[0]!.target, { ip: GNUGK_IP, port: 1720 });
          }
          // let test media flow both ways for a while
          await new Promise((r) => setTimeout(r, 1000));
          step.caller.stdin.write('h\n');
          await waitFor(() => calls.ended.length === i + 1, 8_000, 'the call to end on the node', diag);
          await waitFor(
            () => count(out.alice, 'Ended') > i && count(out.bob, 'Ended') > i,
            8_000,
            'both ends to see the call end',
            diag,
          );
          // media anchored on Crossway's relay: bob sends to it and receives from it, alice too unless GnuGk proxies her
          // side; each gets ≥ 90 % of what the other sent
          for (const [me, peer, anchor] of [
            [out.alice, out.bob, proxy ? GNUGK_IP : relayIp],
            [out.bob, out.alice, relayIp],
          ] as const) {
            await waitFor(
              () => count(me, '--->RTP received') > i && count(peer, '--->RTP sent') > i,
              5_000,
              'RTP counts',
              diag,
            );
            const tx = last(me, /--->Starting transmit channel to ([\d.]+):(\d+)/g)!;
            assert.equal(tx[1], anchor, `${step.dir}: sends to ${anchor}: ${tx[0]}`);
            const rx = last(me, /--->RTP received (\d+) packets, last from ([\d.]+):(\d+)/g)!;
            const sent = Number(last(peer, /--->RTP sent (\d+) packets/g)![1]);
            assert.equal(rx[2], anchor, `${step.dir}: receives from ${anchor}: ${rx[0]}`);
            assert.ok(sent > 0 && Number(rx[1]) >= 0.9 * sent, `${step.dir}: ${rx[0]} of ${sent} sent`);
          }
        }
        if (process.env.H323_TRACE) console.log(diag());
        assert.equal(nb.counters.timeouts, 0, diag());
        assert.deepEqual(nb.counters.lrjSent, {}, diag());
        assert.equal(calls.counters.malformed, 0);
        assert.deepEqual(
          calls.ended.map((c) => c.endReason),
          steps.map(() => 'released by caller'),
        );

        // one stored call record per call on the node: the callee's alias, the caller's, answered, the cause
        const stored = node.sip
          .get('core')!
          .callStore!.recent(10)
          .filter((r) => r.protocol === 'h323')
          .sort((x, y) => x.startedAt - y.startedAt);
        assert.deepEqual(
          stored.map((r) => [r.state, r.status, r.to, r.cause]),
          steps.map((s) => ['ended', 200, s.to, 'released by caller']),
          JSON.stringify(stored),
        );
        for (const [k, r] of stored.entries()) {
          assert.match(r.from, new RegExp(`h323-ID:${steps[k]!.from}`), JSON.stringify(r));
          // routing's zones, named as SIP records name them: GnuGk's calls come from its zone and were found among
          // the registrations (LocalZone); bob's come from LocalZone and went to GnuGk
          assert.deepEqual(
            [r.sourceZone, r.targetZone],
            steps[k]!.caller === alice ? ['GnuGk', 'LocalZone'] : ['LocalZone', 'GnuGk'],
            JSON.stringify(r),
          );
          assert.ok(r.answeredAt !== null && r.endedAt >= r.answeredAt && r.endedAt - r.answeredAt < 30_000);
        }
        const st = ((await callControl(dataDir, 'h323.status')) as Array<{ node: string; neighbours: unknown }>).find(
          (x) => x.node === 'core',
        )!;
        assert.deepEqual(
          (st.neighbours as { zones: Array<{ name: string }> }).zones.map((z) => z.name),
          ['GnuGk'],
        );

        alice.stdin.write('q\n');
        bob.stdin.write('q\n');
        await waitFor(() => gk.size === 0, 8_000, 'bob unregistered', diag);
      } finally {
        for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
        if (gkProc && gkProc.exitCode === null) gkProc.kill('SIGKILL');
        await node.close();
        if (!process.env.H323_TRACE) rmSync(cwd, { recursive: true, force: true });
      }
    });
  }
});
