import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { freeUdpPort, SCENARIOS, type SippRun, settle, sipp } from '../sip/proxy/sipp-peers.ts';

const show = (r: SippRun) => `exit ${r.exitCode}, ok ${r.successful}, failed ${r.failed}\n${r.output.slice(-3000)}`;
const CALLS = 500;
/*
 * RTP: the first RTP_CALLS calls of call-uac-rtp.xml play sipp's own G.711 recording (PCAP, 236 packets over 7 s) to the
 * media address of the 200, the uas echoes every packet back to its sender (-rtp_echo). sipp keeps no RTP statistics
 * for either, and holds both media ports itself, so the packets reaching each sipp's media port are counted by a capture
 * on loopback (tshark), with their source: the uas must hear only the core's relay, the uac only the edge's. Raw
 * sockets (sipp's PCAP play) and capture need root; without it the calls are signalling only and the test says so.
 */
const RTP_CALLS = 10;
const PCAP = '/usr/share/sip-tester/g711a.pcap';
const PCAP_PACKETS = 236;
const PCAP_UDP_LENGTH = 8 + 12 + 240;
const hasTshark = () => {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const rtpSkip =
  process.getuid?.() !== 0
    ? 'sipp plays a PCAP on a raw socket and tshark captures, both need root'
    : !existsSync(PCAP)
      ? `${PCAP} missing (Debian sip-tester ships it)`
      : !hasTshark()
        ? 'tshark not installed'
        : undefined;

/** Counts UDP packets on loopback to each of `ports` (address:port), by source; `stop()` ends the capture. */
async function captureUdp(dests: string[]) {
  const filter = dests
    .map((d) => {
      const [host, port] = d.split(':');
      return `(dst host ${host} and dst port ${port})`;
    })
    .join(' or ');
  const child = spawn(
    'tshark',
    ['-i', 'lo', '-l', '-n', '-f', `udp and (${filter})`, '-T', 'fields', '-e', 'ip.src', '-e', 'udp.srcport'].concat([
      '-e',
      'ip.dst',
      '-e',
      'udp.dstport',
      '-e',
      'udp.length',
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const counts = new Map<string, Map<string, number>>();
  let lengths = 0;
  let rest = '';
  child.stdout.on('data', (d: Buffer) => {
    const lines = (rest + d.toString()).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      const [src, sport, dst, dport, len] = line.split('\t');
      if (!dport) continue;
      const to = `${dst}:${dport}`;
      const by = counts.get(to) ?? new Map<string, number>();
      by.set(`${src}:${sport}`, (by.get(`${src}:${sport}`) ?? 0) + 1);
      counts.set(to, by);
      if (Number(len) !== PCAP_UDP_LENGTH) lengths++;
    }
  });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start: ${err}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('Capturing on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', () => reject(new Error(`tshark exited: ${err}`)));
  });
  return {
    counts,
    /** Packets of another size than the recording's. */
    otherLengths: () => lengths,
    stop: async () => {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('close', r));
      child.kill('SIGINT');
      await done;
    },
  };
}

test(`lab traversal with sipp: ${CALLS} calls from a uac at the edge cross the zone to a uas registered at the core, RTP echoed in ${RTP_CALLS}`, {
  timeout: 120_000,
}, async (t) => {
  let node: RunningNode | undefined;
  let capture: Awaited<ReturnType<typeof captureUdp>> | undefined;
  try {
    node = await startTestNode({
      sip: { transports: { udp: { enabled: true } } },
      // The sipp callee registers without digest (the digest path through the edge is lab-traversal-call's).
      registrar: { authenticate: false },
      traversalZones: [{ name: 'tz1', keepaliveSeconds: 2, retryMinSeconds: 0.1, authenticate: false }],
      routing: {
        zones: [{ name: 'tz1', type: 'traversal' }],
        // The uac dials answer@<edge>; both nodes read it as the core's user.
        transforms: [
          {
            pattern: { type: 'regex', value: '(.*)@127\\.0\\.0\\.1(:\\d+)?' },
            action: 'replace',
            value: '\\1@127.0.0.2',
          },
        ],
        searchRules: [
          { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
          { name: 'across', priority: 100, pattern: { type: 'anyAlias' }, targetZone: 'tz1' },
        ],
      },
    });
    const edge = node.sip.get('edge')!;
    const core = node.sip.get('core')!;
    const deadline = Date.now() + 10_000;
    while (edge.serverZones()[0]?.state !== 'active' && Date.now() < deadline) await settle(50);
    assert.equal(edge.serverZones()[0]?.state, 'active');
    const edgeUdp = edge.sockets().find((s) => s.listener === 'sip-udp')!;
    const coreUdp = core.sockets().find((s) => s.listener === 'sip-udp')!;
    // The callee lives inside, on 127.0.0.3 (127.0.0.1 is the edge: the core would send it up the zone).
    const uasPort = await freeUdpPort('127.0.0.3');
    const inside = ['-i', '127.0.0.3'];
    const reg = await sipp({
      scenario: join(SCENARIOS, 'uas-register.xml'),
      port: uasPort,
      target: `${coreUdp.address}:${coreUdp.port}`,
      service: 'answer',
      calls: 1,
      extra: inside,
    });
    assert.equal(reg.successful, 1, show(reg));
    // Media ports of both sipps: the uas echoes on its port (and port + 2), the uac plays from its own.
    const uasMedia = `127.0.0.3:${await freeUdpPort('127.0.0.3')}`;
    const uacMedia = `127.0.0.1:${await freeUdpPort('127.0.0.1')}`;
    if (!rtpSkip) capture = await captureUdp([uasMedia, uacMedia]);
    // The uas's -m is a bound, not the count: on a loaded machine a late retransmission (the core's BYE after Timer E,
    // an ACK for a re-sent 200) can reach it after its 500 ms timewait ended that call; sipp takes it for a new call,
    // aborts it, and with -m 500 it would stop before the last real call. It is stopped once the uac is done.
    const stopUas = new AbortController();
    const uas = sipp({
      scenario: join(SCENARIOS, 'uas-answer.xml'),
      port: uasPort,
      calls: CALLS + 100,
      signal: stopUas.signal,
      timeoutSeconds: 90,
      extra: [...inside, '-mi', '127.0.0.3', '-mp', uasMedia.split(':')[1]!, ...(rtpSkip ? [] : ['-rtp_echo'])],
    });
    await settle();
    const uac = await sipp({
      scenario: join(SCENARIOS, rtpSkip ? 'call-uac.xml' : 'call-uac-rtp.xml'),
      port: await freeUdpPort(),
      target: `${edgeUdp.address}:${edgeUdp.port}`,
      service: 'answer',
      calls: CALLS,
      // About 40 calls at once: each holds a port pair per relay, and parallel test files share the media range.
      rate: 25,
      limit: 60,
      timeoutSeconds: 90,
      extra: ['-mi', '127.0.0.1', '-mp', uacMedia.split(':')[1]!],
    });
    // The uas's statistics file is written every second (-fd 1): let the last call's timewait end and one more dump go.
    await settle(2500);
    stopUas.abort();
    const callee = await uas;
    assert.equal(uac.successful, CALLS, show(uac));
    assert.equal(uac.failed, 0, show(uac));
    assert.equal(callee.successful, CALLS, show(callee));
    // Every call crossed both nodes' relays and gave its ports back.
    await settle(500);
    const edgeRelay = node.media.get('edge')!.core;
    const coreRelay = node.media.get('core')!.core;
    // A pair another process held when the relay tried it (parallel test files share the media range) stays out of
    // the pool for a minute: those are the only ones still counted.
    assert.equal(edgeRelay.portsInUse, edgeRelay.counters.bindFailures);
    assert.equal(coreRelay.portsInUse, coreRelay.counters.bindFailures);
    assert.equal(edgeRelay.callCount, 0);
    assert.equal(coreRelay.callCount, 0);
    // Every call was anchored on both relays (the edge's own zone probes carry no SDP).
    assert.ok(edgeRelay.counters.callsTotal >= CALLS, `edge anchored ${edgeRelay.counters.callsTotal}`);
    assert.ok(coreRelay.counters.callsTotal >= CALLS, `core anchored ${coreRelay.counters.callsTotal}`);
    assert.equal(edge.calls!.history(1)[0]!.targetZone, 'tz1');
    if (rtpSkip) {
      t.diagnostic(`SKIPPED LOUDLY (RTP part): ${rtpSkip}`);
      return;
    }
    assert.match(uac.output, /npkts 236/, 'sipp read its recording');
    await settle(500);
    await capture!.stop();
    const sent = RTP_CALLS * PCAP_PACKETS;
    const atUas = capture!.counts.get(uasMedia) ?? new Map<string, number>();
    const atUac = capture!.counts.get(uacMedia) ?? new Map<string, number>();
    const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(
      `RTP: ${sent} packets played; at the uas ${total(atUas)} from ${[...atUas.keys()].length} relay ports, at the ` +
        `uac ${total(atUac)} from ${[...atUac.keys()].length}; relayed: edge ${edgeRelay.counters.packetsRelayed}, ` +
        `core ${coreRelay.counters.packetsRelayed}`,
    );
    assert.equal(capture!.otherLengths(), 0, 'only the recording packets reach the endpoints');
    // Each endpoint hears only its own node's relay: the core's (127.0.0.2) inside, the edge's (127.0.0.1) outside.
    assert.ok(
      [...atUas.keys()].every((src) => src.startsWith('127.0.0.2:')),
      [...atUas.keys()].join(' '),
    );
    assert.ok(
      [...atUac.keys()].every((src) => src.startsWith('127.0.0.1:')),
      [...atUac.keys()].join(' '),
    );
    // Loopback loses next to nothing; 90 % leaves room for a loaded machine, not for media that bypasses a relay.
    assert.ok(total(atUas) >= sent * 0.9 && total(atUas) <= sent, `${total(atUas)} of ${sent} reached the uas`);
    assert.ok(total(atUac) >= sent * 0.9 && total(atUac) <= total(atUas), `${total(atUac)} came back to the uac`);
    // Each call's media went through its own relay ports (one source per call on each side).
    assert.equal(atUas.size, RTP_CALLS);
    assert.equal(atUac.size, RTP_CALLS);
    assert.ok(edgeRelay.counters.packetsRelayed >= total(atUas) + total(atUac));
    assert.ok(coreRelay.counters.packetsRelayed >= total(atUas) + total(atUac));
  } finally {
    await capture?.stop();
    await node?.close();
  }
});
