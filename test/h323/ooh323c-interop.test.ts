import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  buildAcf,
  buildAudioOlc,
  buildGcf,
  buildRcf,
  buildReleaseComplete,
  buildSetup,
  fromH225Address,
  h245Address,
  type IpPort,
  olcAddresses,
  readArq,
} from '../../src/h323/api.ts';
import type { OpenLogicalChannel, RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  decodeFastStart,
  encodeCallSignalling,
  tunnelledH245,
} from '../../src/h323/q931/call-signalling.ts';
import { q931MessageName } from '../../src/h323/q931/q931.ts';
import { encodeTpkt, TpktFramer } from '../../src/h323/transport/tpkt.ts';
import { endpointProcesses, freeTcpPort, ooh323cBinary, ooh323cLauncher, waitFor } from '../helpers/ooh323c.ts';

/**
 * A real H.323 stack (ooh323c's `simple` endpoint, from ../shared/peers) against RAS answers built with our codec:
 * two endpoints discover and register, call each other through admission, hang up and unregister. Every RAS PDU
 * they send must decode and re-encode to the same bytes; that they go on (keep-alive RRQs carrying the endpoint
 * identifier of our RCF, a Setup sent to the address in our ACF) shows ooh323c decoded our answers.
 * Endpoints use 127.0.23.x so that other suites running ooh323c on 127.0.0.x at the same time do not collide.
 */
const bin = ooh323cBinary();

describe('ooh323c endpoints against RAS answers from our codec', {
  skip: bin ? false : 'ooh323c peer not available',
}, () => {
  const procs = endpointProcesses();

  it('GRQ/GCF, RRQ/RCF with keep-alives, ARQ/ACF both sides, a connected call, DRQ/DCF, URQ/UCF', async () => {
    const gk = dgram.createSocket('udp4');
    await new Promise<void>((r) => gk.bind(0, '127.0.0.1', () => r()));
    const gkPort = gk.address().port;
    const seen: Array<{ from: string; msg: RasMessage }> = [];
    const failures: string[] = [];
    const endpoints = new Map<string, IpPort>(); // alias → call signalling address from its RRQ
    gk.on('message', (bytes, rinfo) => {
      const r = rasCodec.decode(bytes);
      if (!r.ok) {
        failures.push(r.reason.message);
        return;
      }
      if (!Buffer.from(rasCodec.encode(r.value)).equals(bytes))
        failures.push(`${r.value.choice} re-encodes differently`);
      const m = r.value;
      seen.push({ from: rinfo.address, msg: m });
      let reply: RasMessage | undefined;
      switch (m.choice) {
        case 'gatekeeperRequest':
          reply = buildGcf(m.value, {
            rasAddress: { ip: '127.0.0.1', port: gkPort },
            gatekeeperIdentifier: 'crossway',
          });
          break;
        case 'registrationRequest': {
          const alias = m.value.terminalAlias?.find((a) => a.choice === 'h323-ID')?.value as string | undefined;
          const csa = m.value.callSignalAddress[0] && fromH225Address(m.value.callSignalAddress[0]);
          if (alias && csa) endpoints.set(alias, csa);
          const ep = m.value.endpointIdentifier ?? `ep-${alias ?? 'x'}`;
          reply = buildRcf(m.value, { endpointIdentifier: ep, gatekeeperIdentifier: 'crossway', timeToLive: 2 });
          break;
        }
        case 'admissionRequest': {
          const arq = readArq(m.value);
          const to = arq.answerCall ? arq.destCallSignalAddress : endpoints.get(arq.destination[0]?.value ?? '');
          reply = to ? buildAcf(m.value, { destCallSignalAddress: to, callModel: 'direct' }) : undefined;
          break;
        }
        case 'disengageRequest':
          reply = { choice: 'disengageConfirm', value: { requestSeqNum: m.value.requestSeqNum } };
          break;
        case 'unregistrationRequest':
          reply = { choice: 'unregistrationConfirm', value: { requestSeqNum: m.value.requestSeqNum } };
          break;
        default:
          break;
      }
      if (reply) gk.send(rasCodec.encode(reply), rinfo.port, rinfo.address);
    });

    const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-'));
    const out = { bob: '', alice: '' };
    const start = ooh323cLauncher({ bin: bin!, cwd, gk: `127.0.0.1:${gkPort}`, procs, out });
    const diag = () =>
      `RAS seen: ${seen.map((x) => `${x.from} ${x.msg.choice}`).join(', ')}\nalice: ${out.alice.slice(-1500)}\nbob: ${out.bob.slice(-1500)}`;
    const registered = (ip: string) =>
      seen.some((s) => s.from === ip && s.msg.choice === 'registrationRequest' && s.msg.value.keepAlive);

    const bob = start('bob', '127.0.23.3', await freeTcpPort('127.0.23.3'), [
      '--e164',
      '2001',
      '--auto-answer',
      '--listen',
    ]);
    await waitFor(() => registered('127.0.23.3'), 10_000, 'bob to register and send a keep-alive RRQ');
    const alice = start('alice', '127.0.23.2', await freeTcpPort('127.0.23.2'), ['--listen']);
    await waitFor(() => registered('127.0.23.2'), 10_000, 'alice to register and send a keep-alive RRQ', diag);
    alice.stdin.write('c bob\n');
    await waitFor(
      () => out.alice.includes('--->Starting transmit channel') && out.bob.includes('--->Starting transmit channel'),
      15_000,
      'the call to connect',
      diag,
    );
    alice.stdin.write('h\n');
    await waitFor(() => seen.filter((s) => s.msg.choice === 'disengageRequest').length >= 2, 10_000, 'two DRQs', diag);
    alice.stdin.write('q\n');
    bob.stdin.write('q\n');
    await waitFor(
      () => seen.filter((s) => s.msg.choice === 'unregistrationRequest').length >= 2,
      10_000,
      'two URQs',
      diag,
    );
    gk.close();

    assert.deepEqual(failures, []);
    const kinds = new Set(seen.map((s) => s.msg.choice));
    for (const k of [
      'gatekeeperRequest',
      'registrationRequest',
      'admissionRequest',
      'disengageRequest',
      'unregistrationRequest',
    ])
      assert.ok(kinds.has(k as never), k);
    // the keep-alives carry the identifier our RCF assigned: ooh323c decoded it
    const keepAlives = seen.flatMap((s) =>
      s.msg.choice === 'registrationRequest' && s.msg.value.keepAlive ? [s.msg.value.endpointIdentifier] : [],
    );
    assert.ok(keepAlives.includes('ep-bob') && keepAlives.includes('ep-alice'), JSON.stringify(keepAlives));
    // both sides asked admission: alice to call bob, bob to answer
    const arqs = seen.flatMap((s) => (s.msg.choice === 'admissionRequest' ? [readArq(s.msg.value)] : []));
    assert.ok(arqs.some((a) => !a.answerCall && a.destination.some((d) => d.value === 'bob')));
    assert.ok(arqs.some((a) => a.answerCall));
    assert.match(out.bob, /--->Incoming call from/);
  });

  it('answers a Setup with fast start that we encoded: CallProceeding/Alerting/Connect, OLC answers, ReleaseComplete', async () => {
    const port = await freeTcpPort('127.0.23.4');
    const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-'));
    let stdout = '';
    const bob = spawn(
      bin!,
      [
        '--rtp-test',
        '--no-video',
        '--use-ip',
        '127.0.23.4',
        '--use-port',
        String(port),
        '--h323id',
        'bob',
        '--auto-answer',
        '--listen',
      ],
      {
        cwd,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    procs.push(bob);
    bob.stdout.on('data', (d) => {
      stdout += d;
    });
    await waitFor(
      () => stdout.includes('Listening for Calls At'),
      10_000,
      'bob to listen',
      () => stdout,
    );

    const callIdentifier = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    // H.323 §8.1.7.1: propose what we send (forward G.711) and what we receive (reverse G.711 to our RTP port)
    const transmit = buildAudioOlc(1, { ip: '127.0.0.1', port: 30001 });
    const receive: OpenLogicalChannel = {
      forwardLogicalChannelNumber: 2,
      forwardLogicalChannelParameters: {
        dataType: { choice: 'nullData', value: null },
        multiplexParameters: { choice: 'none', value: null },
      },
      reverseLogicalChannelParameters: {
        dataType: { choice: 'audioData', value: { choice: 'g711Ulaw64k', value: 20 } },
        multiplexParameters: {
          choice: 'h2250LogicalChannelParameters',
          value: {
            sessionID: 1,
            mediaChannel: h245Address('127.0.0.1', 30000),
            mediaControlChannel: h245Address('127.0.0.1', 30001),
          },
        },
      },
    };
    const setup = buildSetup({
      callReference: 77,
      callIdentifier,
      conferenceID: callIdentifier,
      source: [{ choice: 'h323-ID', value: 'crossway' }],
      destination: [{ choice: 'h323-ID', value: 'bob' }],
      destCallSignalAddress: { ip: '127.0.23.4', port },
      display: 'Crossway test',
      fastStart: [transmit, receive],
    });

    const socket = net.connect({ host: '127.0.23.4', port });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const framer = new TpktFramer();
    const got: CallSignallingMessage[] = [];
    const problems: string[] = [];
    socket.on('data', (chunk) => {
      const r = framer.push(chunk);
      if (!r.ok) return void problems.push(r.reason);
      for (const pdu of r.value) {
        const m = decodeCallSignalling(pdu);
        if (!m.ok) {
          problems.push(m.reason.message);
          continue;
        }
        if (!Buffer.from(encodeCallSignalling(m.value)).equals(Buffer.from(pdu))) problems.push('re-encoding differs');
        for (const t of m.value.uu ? tunnelledH245(m.value.uu) : []) if (!t.ok) problems.push(t.reason.message);
        got.push(m.value);
      }
    });
    socket.write(encodeTpkt(encodeCallSignalling(setup)));
    const names = () => got.map((m) => q931MessageName(m.q931.messageType));
    await waitFor(
      () => names().includes('connect'),
      10_000,
      'Connect',
      () => `${names().join(', ')}\n${stdout}`,
    );

    assert.deepEqual(problems, []);
    assert.ok(got.every((m) => m.q931.callReference === 77 && m.q931.fromDestination));
    // the fast-start answer: bob accepted our proposals and gives its own RTP/RTCP addresses (127.0.23.4)
    const answered = got.flatMap((m) => (m.uu ? decodeFastStart(m.uu) : []));
    assert.ok(answered.length >= 1, 'fast-start OLCs in the answer');
    const addrs = answered.flatMap((o) => (o.ok ? olcAddresses(o.value) : assert.fail(o.reason)));
    assert.ok(
      addrs.some((a) => a.address.ip === '127.0.23.4'),
      JSON.stringify(addrs),
    );
    assert.match(stdout, /--->Incoming call from/);

    socket.write(encodeTpkt(encodeCallSignalling(buildReleaseComplete(77, false, callIdentifier))));
    await waitFor(
      () => /Ended/.test(stdout),
      10_000,
      'bob to end the call',
      () => stdout,
    );
    socket.destroy();
    bob.stdin.write('q\n');
  });
});
