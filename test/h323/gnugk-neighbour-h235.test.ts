import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gnugkBinDir, gnugkListening, gnugkLog, startGnugk } from '../helpers/gnugk.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { count, endpointProcesses, freeTcpPort, ooh323cBinary, ooh323cLauncher, waitFor } from '../helpers/ooh323c.ts';

/**
 * H.235 between neighbour gatekeepers against the real GnuGk (../shared/peers/gnugk): GnuGk's `[Neighbor::Crossway]`
 * has `Password` (it checks the MD5 pwdHash of the LRQs we send it) and `SendPassword` (it signs its LRQs to us), the
 * node's h323 zone naming GnuGk has `authentication: { username, password }`. With the same password on both sides
 * an endpoint registered to GnuGk (alice) calls one registered to Crossway (bob) and back, each call resolved by
 * LRQ/LCF and connected, GnuGk's LRQs counted as authenticated by the node. With another password on the node, both
 * directions fail and the node's counters say why: GnuGk's LRQs are refused with LRJ securityDenial, and GnuGk
 * refuses ours the same way (LRJ securityDenial), so bob's ARQ gets ARJ; no call connects.
 */
const gnugk = gnugkBinDir();
const bin = ooh323cBinary();
const skip = 'reason' in gnugk ? gnugk.reason : bin ? false : 'ooh323c peer not available';
if (skip) console.warn(`SKIPPED gnugk-neighbour-h235.test.ts: ${skip}`);

const CROSSWAY_ID = 'crossway-h235';
const GNUGK_ID = 'GnuGkH235';
const GNUGK_PASSWORD = 'n3ighbour-Secret';
const NET = '127.0.37.';
const GNUGK_IP = `${NET}1`;
const ALICE_IP = `${NET}3`;
const BOB_IP = `${NET}4`;

const gnugkIni = (neighbour: { address: string; port: number }) => `[Gatekeeper::Main]
Name=${GNUGK_ID}
Home=${GNUGK_IP}
TimeToLive=60
UseMulticastListener=0
[RoutedMode]
GKRouted=1
H245Routed=0
CallSignalPort=1720
AcceptUnregisteredCalls=0
[Proxy]
Enable=0
[Gatekeeper::Auth]
default=allow
[RasSrv::Neighbors]
Crossway=GnuGk
[Neighbor::Crossway]
GatekeeperIdentifier=${CROSSWAY_ID}
Host=${neighbour.address}:${neighbour.port}
SendPrefixes=*
AcceptPrefixes=*
Password=${GNUGK_PASSWORD}
SendPassword=${GNUGK_PASSWORD}
[RasSrv::LRQFeatures]
NeighborTimeout=3
`;

describe('GnuGk as a neighbour sharing a password with a started node (H.235 on LRQs both ways)', { skip }, () => {
  const procs = endpointProcesses();

  for (const same of [true, false]) {
    const title = same
      ? 'the same password on both sides: alice (GnuGk) calls bob (Crossway) and back, LRQs authenticated'
      : 'another password on the node: neither direction locates the callee, the node counts why';
    it(title, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'crossway-gnugk-h235-'));
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
              gatekeeperIdentifier: GNUGK_ID,
              hopCount: 1,
              lrqTimeoutMs: 3000,
              authentication: { username: CROSSWAY_ID, password: same ? GNUGK_PASSWORD : 'not-the-password' },
            },
          ],
          searchRules: [
            { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
            { name: 'gnugk', priority: 100, source: 'localZone', pattern: { type: 'anyAlias' }, targetZone: 'GnuGk' },
          ],
        },
      });
      const svc = node.h323.get('core')!;
      const gk = svc.gatekeeper;
      const nb = svc.neighbours;
      const calls = svc.calls!;
      const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
      const cwd = mkdtempSync(join(tmpdir(), 'gnugk-neighbour-h235-'));
      let gkProc: ChildProcess | undefined;
      try {
        gkProc = startGnugk((gnugk as { dir: string }).dir, cwd, gnugkIni(ras), process.env.H323_TRACE ? 5 : 2);
        const gkLog = () => gnugkLog(cwd);
        await gnugkListening(gkProc, cwd, GNUGK_IP);
        const out = { alice: '', bob: '' };
        const launcher = (gkAddr: string) =>
          ooh323cLauncher({ bin: bin!, cwd, gk: gkAddr, procs, out, lead: process.env.H323_TRACE ? ['-t', '-t'] : [] });
        const diag = () =>
          `crossway gk: ${JSON.stringify(gk.counters)}\nneighbours: ${JSON.stringify(nb.status())}\ncalls: ${JSON.stringify([calls.counters, calls.active()])}\nalice: ${out.alice.slice(-1500)}\nbob: ${out.bob.slice(-1500)}\ngnugk log: ${gkLog().slice(-3000)}`;
        const alice = launcher(`${GNUGK_IP}:1719`)('alice', ALICE_IP, await freeTcpPort(ALICE_IP), [
          '--auto-answer',
          '--listen',
        ]);
        const bob = launcher(`${ras.address}:${ras.port}`)('bob', BOB_IP, await freeTcpPort(BOB_IP), [
          '--auto-answer',
          '--listen',
        ]);
        await waitFor(() => gk.size === 1, 10_000, 'bob registered to Crossway', diag);
        await waitFor(() => /RCF|registrationConfirm/.test(gkLog()), 10_000, 'alice registered to GnuGk', diag);
        await new Promise((r) => setTimeout(r, 500));

        if (same) {
          const steps = [
            { caller: alice, callee: 'bob', dir: 'GnuGk → Crossway' },
            { caller: bob, callee: 'alice', dir: 'Crossway → GnuGk' },
          ];
          for (const [i, step] of steps.entries()) {
            const before = { ...nb.counters };
            step.caller.stdin.write(`c ${step.callee}\n`);
            await waitFor(
              () =>
                count(out.alice, '--->Starting transmit channel') > i &&
                count(out.bob, '--->Starting transmit channel') > i,
              20_000,
              `the call ${step.dir} to connect`,
              diag,
            );
            assert.equal(calls.active()[0]?.state, 'connected', diag());
            if (step.caller === alice) {
              // GnuGk's LRQ carried its pwdHash, good for the zone's password: answered LCF
              assert.ok(nb.counters.authenticated > before.authenticated, diag());
              assert.ok(nb.counters.lcfSent > before.lcfSent, diag());
            } else {
              // ours carried the pwdHash GnuGk checks (`Password`): it confirmed
              assert.ok(nb.counters.lcfReceived > before.lcfReceived, diag());
            }
            step.caller.stdin.write('h\n');
            await waitFor(() => calls.ended.length === i + 1, 8_000, 'the call to end on the node', diag);
            await waitFor(
              () => count(out.alice, 'Ended') > i && count(out.bob, 'Ended') > i,
              8_000,
              'both ends to see the call end',
              diag,
            );
          }
          assert.equal(nb.counters.securityDenied, 0, diag());
          assert.equal(nb.counters.timeouts, 0, diag());
          assert.deepEqual(nb.counters.lrjReceived, {}, diag());
        } else {
          // alice → bob: GnuGk's LRQ is signed with GnuGk's password, not the zone's: LRJ securityDenial
          alice.stdin.write('c bob\n');
          await waitFor(() => nb.counters.securityDenied >= 1, 10_000, "GnuGk's LRQ to be refused", diag);
          assert.ok((nb.counters.lrjSent.securityDenial ?? 0) >= 1, diag());
          assert.equal(nb.counters.authenticated, 0, diag());
          // bob → alice: GnuGk does not confirm our LRQ (its Password check fails), so bob gets ARJ
          const arjs = () => gk.counters.rejected['admissionReject:calledPartyNotRegistered'] ?? 0;
          bob.stdin.write('c alice\n');
          await waitFor(
            () => arjs() >= 1 && nb.counters.lcfReceived === 0,
            10_000,
            'bob to be refused, alice not located',
            diag,
          );
          // GnuGk answers an LRQ whose token fails its Password check with LRJ securityDenial
          assert.ok((nb.counters.lrjReceived.securityDenial ?? 0) >= 1, diag());
          await new Promise((r) => setTimeout(r, 1000));
          assert.equal(calls.active().length, 0, diag());
          assert.equal(count(out.alice, '--->Starting transmit channel'), 0, diag());
          assert.equal(count(out.bob, '--->Starting transmit channel'), 0, diag());
          if (process.env.H323_TRACE) console.log(diag());
        }
        alice.stdin.write('q\n');
        bob.stdin.write('q\n');
        await waitFor(() => gk.size === 0, 8_000, 'bob unregistered', diag);
      } finally {
        for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
        if (gkProc && gkProc.exitCode === null) gkProc.kill('SIGKILL');
        await node.close();
        if (!process.env.H323_TRACE) rmSync(cwd, { recursive: true, force: true });
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }
});
