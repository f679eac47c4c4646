import assert from 'node:assert/strict';
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { silentLogger } from '../../src/common/log.ts';
import { systemClock } from '../../src/common/timers.ts';
import { CallServer } from '../../src/h323/calls/call-server.ts';
import { Gatekeeper } from '../../src/h323/gatekeeper/gatekeeper.ts';
import { Neighbours } from '../../src/h323/gatekeeper/neighbours.ts';
import { RasServer } from '../../src/h323/gatekeeper/ras-server.ts';
import { routingConfigSchema } from '../../src/routing/config.ts';
import { gnugkBinDir, startGnugk } from '../helpers/gnugk.ts';
import { freeTcpPort, ooh323cBinary, waitFor } from '../helpers/ooh323c.ts';

/**
 * Neighbor zones against the real GnuGk (../shared/peers/gnugk): GnuGk on 127.0.31.1 (its own RAS 1719 and call
 * signalling 1720 there, config in the test's temp dir) names Crossway as a neighbor, Crossway (127.0.31.2,
 * ephemeral ports) has a routing zone `protocol: h323` naming GnuGk and a search rule sending aliases it does not
 * have to that zone. An ooh323c endpoint registered to GnuGk (alice, 127.0.31.3) calls one registered to Crossway
 * (bob, 127.0.31.4) and back; each call is resolved by LRQ/LCF between the gatekeepers and connects through both
 * (GnuGk routed, Crossway routed).
 */
const gnugk = gnugkBinDir();
const ooh = ooh323cBinary();
const skip = 'reason' in gnugk ? gnugk.reason : ooh ? false : 'ooh323c peer not available';
if (skip) console.warn(`SKIPPED gnugk-neighbour.test.ts: ${skip}`);

const GNUGK_IP = '127.0.31.1';
const NODE_IP = '127.0.31.2';
const ALICE_IP = '127.0.31.3';
const BOB_IP = '127.0.31.4';

const count = (s: string, needle: string) => s.split(needle).length - 1;

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

describe('GnuGk as a neighbor gatekeeper: LRQ/LCF both ways, calls connected through both', { skip }, () => {
  const procs: Array<ChildProcess | ChildProcessWithoutNullStreams> = [];
  after(() => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  });

  it('alice (registered to GnuGk) calls bob (registered to Crossway) and bob calls alice back, by H.323-ID and E.164', async () => {
    const routing = routingConfigSchema.parse({
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
        { name: 'gnugk', priority: 100, source: 'localZone', pattern: { type: 'anyAlias' }, targetZone: 'GnuGk' },
      ],
    });
    const gk = new Gatekeeper(
      {
        gatekeeperIdentifier: 'crossway-test',
        rasAddress: { ip: NODE_IP, port: 0 },
        callSignalAddress: { ip: NODE_IP, port: 0 },
        timeToLive: 30,
        expiryGraceSeconds: 5,
        maxRegistrations: 100,
        policy: { mode: 'allow-all', patterns: [] },
        allowDialledIp: false,
        maxBandwidthPerCall: 20_000,
      },
      systemClock,
    );
    const nb = new Neighbours({ gatekeeper: gk, routing, clock: systemClock });
    gk.neighbours = nb;
    const ras = await RasServer.start(gk, NODE_IP, 0);
    const base = 20_000 + Math.floor(Math.random() * 3900);
    const calls = await CallServer.start({
      gatekeeper: gk,
      listen: { ip: NODE_IP, port: 0 },
      outboundPorts: { from: base, to: base + 99 },
      clock: systemClock,
      log: silentLogger,
      route: (dest, src, from) => nb.routeSetup(dest, src, from),
    });
    gk.setAddresses({ rasAddress: ras.address(), callSignalAddress: calls.address() });

    const cwd = mkdtempSync(join(tmpdir(), 'gnugk-neighbour-'));
    const gkProc = startGnugk(
      (gnugk as { dir: string }).dir,
      cwd,
      `[Gatekeeper::Main]
Name=GnuGkTest
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
GatekeeperIdentifier=crossway-test
Host=${NODE_IP}:${ras.address().port}
SendPrefixes=*
AcceptPrefixes=*
[RasSrv::LRQFeatures]
NeighborTimeout=3
`,
      2,
    );
    procs.push(gkProc);
    const gkLog = () => (existsSync(join(cwd, 'gk.log')) ? readFileSync(join(cwd, 'gk.log'), 'utf8') : '');
    try {
      let up = false;
      await waitFor(
        () => {
          void tcpOpen(GNUGK_IP, 1720).then((ok) => {
            up ||= ok;
          });
          return up || gkProc.exitCode !== null;
        },
        10_000,
        'GnuGk to listen',
      );
      assert.equal(gkProc.exitCode, null, `GnuGk exited: ${gkLog().slice(-2000)}`);

      const out = { alice: '', bob: '' };
      const start = (name: 'alice' | 'bob', ip: string, port: number, gkAddr: string, e164: string) => {
        const p = spawn(
          ooh!,
          [
            '--rtp-test',
            '--no-video',
            '--use-ip',
            ip,
            '--use-port',
            String(port),
            '--h323id',
            name,
            '--e164',
            e164,
            '--gk',
            gkAddr,
            '--auto-answer',
            '--listen',
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
        `crossway gk: ${JSON.stringify(gk.counters)}\nneighbours: ${JSON.stringify(nb.status())}\nsearches: ${JSON.stringify(nb.router.history.recent(6))}\ncalls: ${JSON.stringify([calls.counters, calls.active(), calls.ended])}\nalice: ${out.alice.slice(-1200)}\nbob: ${out.bob.slice(-1200)}\ngnugk log: ${gkLog().slice(-3000)}`;

      const alice = start('alice', ALICE_IP, await freeTcpPort(ALICE_IP), `${GNUGK_IP}:1719`, '3001');
      const bob = start('bob', BOB_IP, await freeTcpPort(BOB_IP), `${NODE_IP}:${ras.address().port}`, '2002');
      await waitFor(() => gk.size === 1, 10_000, 'bob registered to Crossway', diag);
      await waitFor(() => /RCF|registrationConfirm/.test(gkLog()), 10_000, 'alice registered to GnuGk', diag);

      const steps = [
        { caller: alice, callee: 'bob', dir: 'GnuGk → Crossway' },
        { caller: bob, callee: 'alice', dir: 'Crossway → GnuGk' },
        { caller: alice, callee: '2002', dir: 'GnuGk → Crossway (E.164)' },
        { caller: bob, callee: '3001', dir: 'Crossway → GnuGk (E.164)' },
      ] as const;
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
          // we asked GnuGk (LRQ, or the LCF the ARQ just got) and sent the Setup to GnuGk's call signalling
          assert.ok(nb.counters.lcfReceived > 0, diag());
          assert.deepEqual(active[0]!.target, { ip: GNUGK_IP, port: 1720 });
        }
        await new Promise((r) => setTimeout(r, 500));
        step.caller.stdin.write('h\n');
        await waitFor(() => calls.ended.length === i + 1, 8_000, 'the call to end on the node', diag);
        await waitFor(
          () => count(out.alice, 'Ended') > i && count(out.bob, 'Ended') > i,
          8_000,
          'both ends to see the call end',
          diag,
        );
      }
      if (process.env.H323_TRACE) console.log(diag());
      // media flowed end to end on every call (direct here: neither side anchors it in this test)
      assert.equal(count(out.alice, '--->RTP received'), steps.length, diag());
      assert.ok(
        ![
          ...out.alice.matchAll(/--->RTP received (\d+) packets/g),
          ...out.bob.matchAll(/--->RTP received (\d+) packets/g),
        ].some((m) => Number(m[1]) === 0),
        diag(),
      );
      assert.equal(nb.counters.timeouts, 0, diag());
      assert.deepEqual(nb.counters.lrjSent, {}, diag());
      assert.equal(calls.counters.malformed, 0);
      alice.stdin.write('q\n');
      bob.stdin.write('q\n');
      await waitFor(() => gk.size === 0, 8_000, 'bob unregistered', diag);
    } finally {
      for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
      nb.close();
      await calls.close();
      await ras.close();
    }
  });
});
