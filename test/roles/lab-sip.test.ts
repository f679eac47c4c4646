import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { RunningNode } from '../../src/roles/start.ts';
import { getCallId, parseMessage } from '../../src/sip/message/index.ts';
import type { SipResponse } from '../../src/sip/message/types.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { runSipp } from '../helpers/sipp.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';

const SCENARIOS = new URL('../sipp/', import.meta.url).pathname;

function options(transport: string, host: string, port: number, branch: string): string {
  return (
    `OPTIONS sip:${host}:${port} SIP/2.0\r\n` +
    `Via: SIP/2.0/${transport} 127.0.0.1:9;branch=z9hG4bK${branch};rport\r\n` +
    'Max-Forwards: 70\r\n' +
    `From: <sip:tester@127.0.0.1>;tag=t${branch}\r\n` +
    `To: <sip:${host}>\r\n` +
    `Call-ID: ${branch}@test\r\n` +
    'CSeq: 1 OPTIONS\r\n' +
    'Content-Length: 0\r\n\r\n'
  );
}

/** Reads one SIP response from a stream socket (Content-Length 0 or with body). */
function readResponse(sock: TLSSocket | import('node:net').Socket, timeoutMs = 5000): Promise<SipResponse> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('no response')), timeoutMs);
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const parsed = parseMessage(buf);
      if (parsed.ok && parsed.value.kind === 'response') {
        clearTimeout(timer);
        sock.off('data', onData);
        resolve(parsed.value);
      }
    };
    sock.on('data', onData);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.once('close', () => {
      clearTimeout(timer);
      reject(new Error('closed before a response'));
    });
  });
}

function udpRequest(host: string, port: number, payload: Buffer, timeoutMs = 3000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on('message', (m) => {
      clearTimeout(t);
      s.close();
      resolve(m);
    });
    s.send(payload, port, host);
  });
}

describe('lab node: SIP foundation against real clients', () => {
  let node: RunningNode;
  let pki: TlsFixtures;
  let core: { udp: number; tcp: number; tls: number; mtls: number };

  before(async () => {
    pki = createTlsFixtures({ extraIps: ['127.0.0.2'] });
    node = await startTestNode({
      tls: { certificate: pki.server.certPath, privateKey: pki.server.keyPath, caCertificates: pki.ca.certPath },
    });
    const p = node.plan.node('core');
    core = { udp: p.port('sip-udp'), tcp: p.port('sip-tcp'), tls: p.port('sip-tls'), mtls: p.port('sip-mtls') };
  });

  after(async () => {
    await node?.close();
    pki?.cleanup();
  });

  test('sipp OPTIONS over UDP gets 200 with Allow, Accept and Supported', async () => {
    const r = await runSipp({ scenario: `${SCENARIOS}options.xml`, target: `127.0.0.2:${core.udp}`, calls: 20 });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.successful, 20);
    assert.equal(r.failed, 0);
  });

  test('sipp OPTIONS over TCP gets 200', async () => {
    const r = await runSipp({
      scenario: `${SCENARIOS}options.xml`,
      target: `127.0.0.2:${core.tcp}`,
      transport: 't1',
      calls: 20,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.successful, 20);
  });

  test('a burst of 10,000 OPTIONS over UDP completes with zero failed transactions', async () => {
    const before = node.sip.get('core')!.user.counters.requests['OPTIONS'] ?? 0;
    const r = await runSipp({
      scenario: `${SCENARIOS}options.xml`,
      target: `127.0.0.2:${core.udp}`,
      calls: 10_000,
      rate: 2500,
      limit: 500,
      timeoutSeconds: 90,
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.successful, 10_000);
    assert.equal(r.failed, 0);
    const seen = (node.sip.get('core')!.user.counters.requests['OPTIONS'] ?? 0) - before;
    assert.ok(seen >= 10_000, `the node's transaction user saw ${seen} OPTIONS`);
  });

  test('retransmitted OPTIONS are absorbed by the server transaction and answered again', async () => {
    const svc = node.sip.get('core')!;
    const seenBefore = svc.user.counters.requests['OPTIONS'] ?? 0;
    const absorbedBefore = svc.transactions.counters.requestRetransmissionsAbsorbed;
    const r = await runSipp({
      scenario: `${SCENARIOS}options-retransmit.xml`,
      target: `127.0.0.2:${core.udp}`,
      calls: 200,
      rate: 200,
      // sipp answers a repeated response by re-sending its last message, which with our (correct) re-sent 200
      // would ping-pong forever; -nr turns that off. The copies are the scenario's own sends.
      extraArgs: ['-nr'],
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.successful, 200);
    // Each call sends the same request three times: the TU sees it once, the other two copies are absorbed.
    assert.equal((svc.user.counters.requests['OPTIONS'] ?? 0) - seenBefore, 200);
    assert.equal(svc.transactions.counters.requestRetransmissionsAbsorbed - absorbedBefore, 400);
  });

  test('TLS: a verifying client completes a handshake on the TLS port and gets 200 to OPTIONS', async () => {
    const sock = tlsConnect({ host: '127.0.0.2', port: core.tls, ca: pki.ca.cert, servername: 'localhost' });
    await new Promise<void>((res, rej) => {
      sock.once('secureConnect', res);
      sock.once('error', rej);
    });
    assert.ok(sock.authorized, 'server certificate verified');
    assert.match(sock.getProtocol() ?? '', /^TLSv1\.[23]$/);
    const pending = readResponse(sock);
    sock.write(options('TLS', '127.0.0.2', core.tls, 'tls1'));
    const res = await pending;
    assert.equal(res.status, 200);
    sock.destroy();
  });

  test('MTLS: a client without a certificate is refused', async () => {
    const sock = tlsConnect({ host: '127.0.0.2', port: core.mtls, ca: pki.ca.cert, servername: 'localhost' });
    const outcome = await new Promise<string>((resolve) => {
      sock.once('secureConnect', () => {
        // TLS 1.3: the server's refusal of a missing certificate arrives after the client's handshake completes.
        sock.write(options('TLS', '127.0.0.2', core.mtls, 'mtls0'));
        readResponse(sock, 3000).then(
          (r) => resolve(`answered ${r.status}`),
          (e: Error) => resolve(`refused: ${e.message}`),
        );
      });
      sock.once('error', (e) => resolve(`refused: ${e.message}`));
    });
    assert.match(outcome, /^refused/);
    sock.destroy();
  });

  test('MTLS: a client with a certificate signed by the configured CA gets 200; another CA is refused', async () => {
    const good = tlsConnect({
      host: '127.0.0.2',
      port: core.mtls,
      ca: pki.ca.cert,
      cert: pki.client.cert,
      key: pki.client.key,
      servername: 'localhost',
    });
    await new Promise<void>((res, rej) => {
      good.once('secureConnect', res);
      good.once('error', rej);
    });
    const pending = readResponse(good);
    good.write(options('TLS', '127.0.0.2', core.mtls, 'mtls1'));
    assert.equal((await pending).status, 200);
    good.destroy();

    const foreign = tlsConnect({
      host: '127.0.0.2',
      port: core.mtls,
      ca: pki.ca.cert,
      cert: pki.foreignClient.cert,
      key: pki.foreignClient.key,
      servername: 'localhost',
    });
    const outcome = await new Promise<string>((resolve) => {
      foreign.once('secureConnect', () => {
        foreign.write(options('TLS', '127.0.0.2', core.mtls, 'mtls2'));
        readResponse(foreign, 3000).then(
          (r) => resolve(`answered ${r.status}`),
          (e: Error) => resolve(`refused: ${e.message}`),
        );
      });
      foreign.once('error', (e) => resolve(`refused: ${e.message}`));
    });
    assert.match(outcome, /^refused/);
    foreign.destroy();
  });

  test('the edge keeps UDP and TCP 5060 closed by default and serves TLS', () => {
    const edge = node.sip
      .get('edge')!
      .sockets()
      .map((s) => s.protocol);
    assert.deepEqual([...edge].sort(), ['mtls', 'tls']);
    const coreSockets = node.sip
      .get('core')!
      .sockets()
      .map((s) => s.protocol);
    assert.deepEqual([...coreSockets].sort(), ['mtls', 'tcp', 'tls', 'udp']);
  });

  // RFC 4475: every message the index calls invalid, sent to the started core over UDP. What the parser rejects with
  // a partial request is answered statelessly with its status and the reason naming the fault; what it rejects
  // without one (a response to drop, or a request with nothing to build a response from) gets no answer and is
  // counted; what it accepts must be one the RFC allows to be accepted liberally ("may").
  test('RFC 4475 invalid messages over UDP: answered with the parser reason, or dropped and counted', async () => {
    const svc = node.sip.get('core')!;
    const vectors = new URL('../vectors/sip/rfc4475/', import.meta.url);
    const invalid = readFileSync(new URL('index.tsv', vectors), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t'))
      .filter((r) => r[3] === 'invalid');
    assert.ok(invalid.length >= 20, `the index lists the RFC's invalid messages (${invalid.length})`);
    let answered = 0;
    let dropped = 0;
    for (const [file, , , , expected] of invalid) {
      const bytes = readFileSync(new URL(file!, vectors));
      const verdict = parseMessage(bytes, node.config.sip.limits, { transport: 'datagram' });
      if (verdict.ok) {
        assert.match(expected!, /\bmay\b/, `${file} is accepted, and the RFC allows accepting it`);
        continue;
      }
      const { partial, status, reason, code } = verdict.reason;
      if (partial?.kind === 'request' && partial.method !== 'ACK') {
        const got = await udpRequest('127.0.0.2', core.udp, bytes);
        assert.ok(got, `${file}: answered`);
        const text = got.toString('latin1');
        assert.equal(text.slice(0, text.indexOf('\r\n')), `SIP/2.0 ${status} ${reason}`, file);
        assert.notEqual(reason, 'Bad Request', `${file}: the reason names the fault`);
        // The answer copies the request's headers, malformed ones included (badinv01's Via), so it is read line by line.
        const callId = getCallId(partial);
        assert.ok(callId, `${file}: the partial request has a Call-ID`);
        const lines = text.split('\r\n').map((l) => l.toLowerCase());
        assert.ok(
          lines.includes(`call-id: ${callId.toLowerCase()}`),
          `${file}: the answer carries its Call-ID\n${text}`,
        );
        answered++;
      } else {
        const key = `parse:${code}`;
        const before = svc.transport.counters().drops[key] ?? 0;
        const got = await udpRequest('127.0.0.2', core.udp, bytes, 500);
        assert.equal(got?.toString('latin1'), undefined, `${file}: no answer`);
        assert.equal(svc.transport.counters().drops[key], before + 1, `${file}: counted as ${key}`);
        dropped++;
      }
    }
    assert.ok(answered >= 15 && dropped >= 2, `answered ${answered}, dropped ${dropped}`);
    const still = await udpRequest('127.0.0.2', core.udp, Buffer.from(options('UDP', '127.0.0.2', core.udp, 'r4475')));
    assert.match(still?.toString() ?? '(no answer)', /^SIP\/2\.0 200 /, 'the node still answers a valid OPTIONS');
  });

  test('a garbage flood leaves the node running and answering', async () => {
    const svc = node.sip.get('core')!;
    const dropsBefore = Object.values(svc.transport.counters().drops).reduce((a, b) => a + b, 0);
    const flood = createSocket('udp4');
    const valid = Buffer.from(options('UDP', '127.0.0.2', core.udp, 'g0'));
    for (let i = 0; i < 3000; i++) {
      let payload: Buffer;
      switch (i % 4) {
        case 0:
          payload = randomBytes(1 + (i % 1400));
          break;
        case 1:
          payload = valid.subarray(0, 1 + (i % (valid.length - 1)));
          break;
        case 2:
          payload = Buffer.from(`OPTIONS sip:x SIP/2.0\r\nVia: ${'A'.repeat(60_000)}\r\n\r\n`);
          break;
        default:
          payload = Buffer.from(valid.toString().replace('CSeq: 1 OPTIONS', 'CSeq: one OPTIONS'));
      }
      flood.send(payload, core.udp, '127.0.0.2');
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
    }
    // Stream garbage: random bytes, a 64 KiB header, and a truncated message then close.
    for (const chunk of [randomBytes(5000), Buffer.from(`OPTIONS sip:x SIP/2.0\r\nX: ${'b'.repeat(65_536)}\r\n`)]) {
      await new Promise<void>((resolve) => {
        const s = netConnect(core.tcp, '127.0.0.2', () => {
          s.write(chunk);
          setTimeout(() => s.destroy(), 50);
        });
        s.on('error', () => resolve());
        s.on('close', () => resolve());
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    flood.close();
    const answer = await udpRequest('127.0.0.2', core.udp, Buffer.from(options('UDP', '127.0.0.2', core.udp, 'after')));
    assert.ok(answer, 'a valid OPTIONS after the flood is answered');
    assert.match(answer.toString(), /^SIP\/2\.0 200 /);
    const dropsAfter = Object.values(svc.transport.counters().drops).reduce((a, b) => a + b, 0);
    assert.ok(dropsAfter > dropsBefore, 'garbage was counted as drops');
    assert.ok(svc.transport.counters().errorResponses > 0, 'malformed requests got stateless error responses');
  });
});
