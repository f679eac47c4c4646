import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { NodeStatus } from '../../../src/calls/status.ts';
import { formatStatus } from '../../../src/cli/commands/status.ts';
import type { RelaySessionPorts } from '../../../src/h323/calls/media-anchor.ts';
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
 * Two real ooh323c endpoints discover (GRQ) and register with a started lab node's core gatekeeper, keep alive with
 * lightweight RRQs (a short timeToLive), and call each other in the gatekeeper-routed model: the ACF sends the
 * caller's Setup to the node's call signalling server, which opens its own leg to the callee from the outbound range
 * and relays Q.931/H.225.0 and H.245; media is anchored on the node's relay (each side must receive what the other
 * sent, from the relay's address). Each call leaves one stored call record. Endpoints use 127.0.25.x–127.0.29.x.
 */
const bin = ooh323cBinary();

const hasTool = (name: string) => {
  try {
    execFileSync(name, ['--version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
};
/** Loopback capture of a test's signalling, when dumpcap may capture here (root or the capture capability). */
const canCapture = hasTool('dumpcap') && hasTool('tshark');

/** Starts dumpcap on lo; resolves once it captures (or undefined when it cannot). Stopped with SIGINT. */
async function startCapture(file: string, filter: string): Promise<ChildProcess | undefined> {
  if (!canCapture) return undefined;
  const p = spawn('dumpcap', ['-q', '-i', 'lo', '-f', filter, '-w', file, '-a', 'duration:120'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  const ok = await new Promise<boolean>((resolve) => {
    const t = setTimeout(() => resolve(true), 1500);
    p.once('exit', () => {
      clearTimeout(t);
      resolve(false);
    });
    p.stderr!.on('data', () => {
      if (/Capturing on/.test(err)) {
        clearTimeout(t);
        setTimeout(() => resolve(true), 200);
      }
    });
  });
  return ok ? p : undefined;
}

async function stopCapture(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (p.exitCode === null) p.kill('SIGKILL');
}

/**
 * tshark's summary lines for `filter` in `file` (bounded in time). The node's ports move with its port offset and can
 * land on a port tshark gives to another protocol (UDP 3343 is MS-RCP): the RAS port is decoded as H.225.0 RAS, and
 * TCP tries the heuristic dissectors (TPKT, Q.931) before the port table.
 */
const tsharkLines = (file: string, rasPort: number, filter: string) =>
  execFileSync(
    'tshark',
    ['-r', file, '-o', 'tcp.try_heuristic_first:TRUE', '-d', `udp.port==${rasPort},h225`, '-Y', filter],
    { encoding: 'utf8', timeout: 60_000 },
  )
    .split('\n')
    .filter((l) => l.trim() !== '');

/** Seconds of timeToLive the node grants: short, so that lightweight keep-alives come during each mode's calls. */
const TTL = 3;

/**
 * While a fast-start call by E.164 is up: it is an active h323 call in `crossway status` (calls.status) with the
 * aliases, the callee's address, the codecs each side sends and the relay ports facing each, and `h323.status` shows
 * the same codecs and one relay port pair per side.
 */
async function liveStatus(dataDir: string, status: () => Promise<NodeStatus>, net4: string): Promise<void> {
  const up = (await status()).calls.active.filter((c) => c.protocol === 'h323');
  assert.equal(up.length, 1, JSON.stringify(up));
  assert.equal(up[0]!.state, 'active');
  assert.match(up[0]!.from, /h323-ID:alice/);
  assert.equal(up[0]!.to, 'dialledDigits:2001');
  assert.equal(up[0]!.legs[0]!.target.split(':')[0], `${net4}.3`);
  assert.deepEqual(up[0]!.mediaPath?.codecs, { caller: ['audio:g711Ulaw'], callee: ['audio:g711Ulaw'] });
  assert.equal(up[0]!.mediaPath?.relay.length, 1);
  assert.match(
    formatStatus(await status()),
    /media: caller sends audio:g711Ulaw, callee sends audio:g711Ulaw; relay session 1 \S+ caller \d+\/\d+ callee \d+\/\d+/,
  );
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
}

describe('routed calls between ooh323c endpoints through a started Crossway node', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs = endpointProcesses();

  const none = ['--no-faststart', '--no-tunneling'];
  const modes = [
    {
      mode: 'fast start + tunnelling',
      net4: '127.0.25',
      alice: [],
      bob: [],
      h245: ['tunnelled', 'tunnelled'],
      // this mode also checks the live call status (calls.status, h323.status) and the recent calls listing
      detailed: true,
    },
    {
      mode: 'no fast start, no tunnelling (separate H.245 connections)',
      net4: '127.0.26',
      alice: none,
      bob: none,
      h245: ['separate', 'separate'],
    },
    {
      mode: 'mixed: caller fast start + tunnelling, callee separate H.245',
      net4: '127.0.27',
      alice: [],
      bob: none,
      h245: ['tunnelled', 'separate'],
    },
    {
      mode: 'mixed: caller separate H.245, callee fast start + tunnelling',
      net4: '127.0.28',
      alice: none,
      bob: [],
      h245: ['separate', 'tunnelled'],
    },
    {
      mode: 'tunnelling without fast start',
      net4: '127.0.29',
      alice: ['--no-faststart'],
      bob: ['--no-faststart'],
      h245: ['tunnelled', 'tunnelled'],
    },
  ];
  for (const { mode, net4, alice: aliceFlags, bob: bobFlags, h245, detailed = false } of modes) {
    const separate = h245.includes('separate');
    it(`GRQ, RRQ, keep-alives; A calls B by H.323-ID and by E.164, B auto-answers, media anchored, A hangs up; DRQs answered; call records (${mode})`, async (t) => {
      // a started node per mode: a timeToLive short enough that keep-alives come during the calls
      const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323-routed-'));
      const node = await startTestNode({ dataDir, h323: { enabled: true, gatekeeper: { timeToLive: TTL } } });
      const svc = node.h323.get('core')!;
      const gk = svc.gatekeeper;
      const calls = svc.calls!;
      const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
      // the relay's address toward endpoints: where the endpoints must send media and receive it from
      const relayIp = node.addresses.get('core')!.private;
      const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-routed-'));
      const pcap = join(cwd, 'capture.pcapng');
      // the endpoints' RAS and every TCP connection (Q.931, H.245) they have with the node; RTP left out
      const capture = await startCapture(pcap, `(host ${net4}.2 or host ${net4}.3) and (tcp or udp port ${ras.port})`);
      try {
        if (process.env.H323_TRACE) console.log(`trace in ${cwd}`);
        const out = { alice: '', bob: '' };
        const launch = ooh323cLauncher({
          bin: bin!,
          cwd,
          gk: `${ras.address}:${ras.port}`,
          procs,
          out,
          lead: process.env.H323_TRACE ? ['-t', '-t', '-t'] : [],
        });
        const start = (name: 'alice' | 'bob', ip: string, port: number, more: string[]) =>
          launch(name, ip, port, [...(name === 'alice' ? aliceFlags : bobFlags), ...more]);
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
        // each discovered the gatekeeper first (GRQ → GCF), then registered
        assert.equal(gk.counters.received.gatekeeperRequest, 2, diag());
        assert.equal(gk.counters.sent.gatekeeperConfirm, 2, diag());
        // lightweight keep-alives (a TTL-second timeToLive): waiting for them also means both endpoints have read
        // their RCF (the node counts a registration when it sends the RCF, and ooh323c ignores a command until it
        // has read it)
        await waitFor(() => gk.counters.keepAlives >= 2, (TTL + 2) * 1000, 'lightweight keep-alives', diag);
        const status = async () =>
          ((await callControl(dataDir, 'calls.status')) as NodeStatus[]).find((x) => x.node === 'core')!;
        assert.equal((await status()).registrations.h323, 2);

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
          assert.deepEqual(active[0]!.h245, { a: h245[0], b: h245[1] }, 'how each leg carries H.245');
          // the node ran master/slave determination with each endpoint itself (its terminalType 190 beats their 50)
          await waitFor(
            () => JSON.stringify(calls.active()[0]?.masterSlave) === JSON.stringify({ a: 'master', b: 'master' }),
            5_000,
            'the node master on both legs',
            diag,
          );
          if (detailed && i === 1) await liveStatus(dataDir, status, net4);
          // DTMF: ooh323c sends UserInputIndication (alphanumeric, as both offer it in their capabilities); it
          // crosses the node's H.245 relay in every mode and bob reports it
          // (ooh323c sends DTMF as a Q.931 keypad until it has the other side's capabilities: the exchange ends
          // within milliseconds of the connect, so wait a little first; meanwhile RTP flows)
          await new Promise((r) => setTimeout(r, 1000));
          const dtmf = i === 0 ? '1234' : '#*9';
          alice.stdin.write(`d ${dtmf}\n`);
          await waitFor(
            () => out.bob.includes(`--->Received user input ${dtmf}`),
            5_000,
            `bob to get DTMF ${dtmf}`,
            diag,
          );
          await new Promise((r) => setTimeout(r, 300));
          alice.stdin.write('h\n');
          await waitFor(() => (gk.counters.sent.disengageConfirm ?? 0) >= 2 * (i + 1), 10_000, 'two DCFs', diag);
          await waitFor(() => calls.ended.length === i + 1, 5_000, 'the call to end on the node', diag);
          await waitFor(() => count(out.bob, 'Ended') > i, 5_000, 'bob to see the call end', diag);
          await waitFor(() => count(out.alice, 'Ended') > i, 5_000, 'alice to see the call end', diag);
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
              assert.equal(tx[1], relayIp, `sends to the relay: ${tx[0]}`);
              const rx = last(me, /--->RTP received (\d+) packets, last from ([\d.]+):(\d+)/g)!;
              const sent = Number(last(peer, /--->RTP sent (\d+) packets/g)![1]);
              assert.equal(rx[2], relayIp, `receives from the relay: ${rx[0]}`);
              assert.ok(sent > 0 && Number(rx[1]) >= 0.9 * sent, `${rx[0]} of ${sent} sent`);
            }
          }
        }
        // both sides asked admission for each call (caller and answerCall), each answered with a routed ACF
        assert.equal(gk.counters.sent.admissionConfirm, 4);
        // keep-alives kept both registered through the calls: none expired
        assert.equal(gk.counters.expired, 0, diag());
        // one stored call record per call: both sides' aliases, answered, the cause
        const stored = node.sip
          .get('core')!
          .callStore!.recent(10)
          .filter((r) => r.protocol === 'h323')
          .sort((x, y) => x.startedAt - y.startedAt);
        assert.deepEqual(
          stored.map((r) => [r.state, r.status, r.to, r.cause]),
          [
            ['ended', 200, 'h323-ID:bob', 'released by caller'],
            ['ended', 200, 'dialledDigits:2001', 'released by caller'],
          ],
          JSON.stringify(stored),
        );
        for (const r of stored) {
          assert.match(r.from, /h323-ID:alice/);
          assert.ok(r.answeredAt !== null && r.endedAt >= r.answeredAt && r.endedAt - r.answeredAt < 30_000);
        }
        if (detailed) {
          const recent = (await status()).calls.recent.filter((c) => c.protocol === 'h323');
          assert.equal(recent.length, 2, JSON.stringify(recent));
          assert.equal((await status()).calls.active.length, 0);
        }
        assert.equal(calls.counters.malformed, 0);
        assert.deepEqual(
          calls.ended.map((c) => c.endReason),
          ['released by caller', 'released by caller'],
        );
        alice.stdin.write('q\n');
        bob.stdin.write('q\n');
        await waitFor(() => gk.size === 0, 8_000, 'both unregistered', diag);
        if (capture) {
          // what went on the wire dissects clean in Wireshark; separate H.245 connections run through the node
          await stopCapture(capture);
          const signalling = tsharkLines(pcap, ras.port, 'h225 || h245');
          // on the wire too: each endpoint's GRQ, and lightweight RRQs (keepAlive) from both
          for (const ip of [`${net4}.2`, `${net4}.3`]) {
            assert.equal(
              tsharkLines(pcap, ras.port, `ip.src == ${ip} && h225.RasMessage == 0`).length,
              1,
              `GRQ of ${ip}`,
            );
            assert.ok(
              tsharkLines(pcap, ras.port, `ip.src == ${ip} && h225.keepAlive == 1`).length >= 1,
              `keep-alive of ${ip}`,
            );
          }
          assert.ok(signalling.length > 20, `signalling captured: ${signalling.length} PDUs`);
          const bad = tsharkLines(pcap, ras.port, '_ws.malformed || _ws.expert.severity == error');
          if (bad.length > 0) {
            // the capture is kept for the diagnosis
            const dir = new URL('../../../test-artifacts/', import.meta.url).pathname;
            mkdirSync(dir, { recursive: true });
            copyFileSync(pcap, join(dir, `ooh323c-routed-${net4}-ras${ras.port}.pcapng`));
          }
          assert.deepEqual(bad, [], `capture kept in test-artifacts/ooh323c-routed-${net4}-ras${ras.port}.pcapng`);
          // the DTMF went as H.245 UserInputIndication (not as a Q.931 keypad): alice → node, node → bob, two calls
          const dtmfOnWire = tsharkLines(pcap, ras.port, 'h245.alphanumeric');
          assert.ok(dtmfOnWire.length >= 4, `UserInputIndication relayed: ${dtmfOnWire.join('\n')}`);
          // H.245 terminated per leg: each endpoint gets the node's MasterSlaveDetermination (terminalType 190) and is
          // told it is the slave; the endpoints' own determination (terminalType 50) never leaves the node
          for (const ip of [`${net4}.2`, `${net4}.3`]) {
            const fromNode = `ip.src == ${relayIp} && ip.dst == ${ip}`;
            assert.ok(
              tsharkLines(pcap, ras.port, `${fromNode} && h245.terminalType == 190`).length >= 2,
              `MSD to ${ip}`,
            );
            assert.ok(tsharkLines(pcap, ras.port, `${fromNode} && h245.decision == 1`).length >= 2, `${ip} told slave`);
            assert.deepEqual(tsharkLines(pcap, ras.port, `ip.src == ${ip} && h245.decision == 1`), [], `${ip} agrees`);
          }
          assert.deepEqual(
            tsharkLines(pcap, ras.port, `ip.src == ${relayIp} && h245.terminalType == 50`),
            [],
            "an endpoint's MasterSlaveDetermination is not relayed",
          );
          const h245OnItsOwn = tsharkLines(pcap, ras.port, `h245 && !h225 && ip.addr == ${relayIp}`);
          if (separate) assert.ok(h245OnItsOwn.length > 0, 'H.245 connections with the node');
          else assert.deepEqual(h245OnItsOwn, [], 'all H.245 tunnelled');
        } else if (process.env.CI) {
          // CI runs as root with tshark (and its dumpcap) installed by scripts/setup.sh: the wire check must run there
          assert.fail('no loopback capture in CI (dumpcap/tshark missing or not permitted): wire not checked');
        } else t.diagnostic('no loopback capture here (dumpcap/tshark missing or not permitted): wire not checked');
      } finally {
        if (capture) await stopCapture(capture);
        for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
        if (!process.env.H323_TRACE) rmSync(cwd, { recursive: true, force: true });
        await node.close();
      }
    });
  }
});
