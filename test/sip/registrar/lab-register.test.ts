import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '../../../src/common/log.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { type RunningNode, startNode } from '../../../src/roles/start.ts';
import { StunBuilder } from '../../../src/stun/builder.ts';
import { Method, StunClass } from '../../../src/stun/constants.ts';
import { startTestNode, uniqueOffset } from '../../helpers/lab-node.ts';
import { runSipp } from '../../helpers/sipp.ts';
import { usersFile } from './users.ts';

const SCENARIOS = new URL('../../sipp/', import.meta.url).pathname;

describe('registrar on a lab node against sipp (no authentication)', () => {
  let node: RunningNode;
  let target: string;

  before(async () => {
    node = await startTestNode({ registrar: { authenticate: false, minExpires: 1 } });
    target = `127.0.0.2:${node.plan.node('core').port('sip-udp')}`;
  });

  after(async () => {
    await node?.close();
  });

  test('1,000 distinct users register and refresh with zero failures', async () => {
    const r = await runSipp({
      scenario: `${SCENARIOS}register.xml`,
      target,
      calls: 1000,
      rate: 500,
      limit: 200,
      timeoutSeconds: 60,
      extraArgs: ['-inf', usersFile('ua', 1000)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 1000);
    assert.equal(r.failed, 0);
    const location = node.sip.get('core')!.location!;
    assert.equal(location.aorCount, 1000);
    const [b] = location.lookup('sip:ua0999@127.0.0.2');
    assert.ok(b, 'ua0999 has a binding');
    assert.equal(b.cseq, 2);
    assert.ok(b.expiresIn > 3590 && b.expiresIn <= 3600, `expiresIn ${b.expiresIn}`);
    assert.equal(b.flow.transport, 'UDP');
  });

  test('sipp over TCP: plain (non-outbound) bindings survive the close of their connection and forget it', async () => {
    const tcpTarget = `127.0.0.2:${node.plan.node('core').port('sip-tcp')}`;
    const r = await runSipp({
      scenario: `${SCENARIOS}register.xml`,
      target: tcpTarget,
      transport: 't1',
      calls: 200,
      rate: 200,
      timeoutSeconds: 30,
      extraArgs: ['-inf', usersFile('tcp', 200)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 200);
    const location = node.sip.get('core')!.location!;
    const [b] = location.lookup('sip:tcp0199@127.0.0.2');
    assert.ok(b);
    assert.equal(b.flow.transport, 'TCP');
    // sipp has exited and its connection is closed: a plain (non-outbound) binding stays, without the dead flow.
    const deadline = Date.now() + 5000;
    while (location.lookup('sip:tcp0199@127.0.0.2')[0]?.flow.connectionId !== undefined && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.equal(location.lookup('sip:tcp0199@127.0.0.2')[0]?.flow.connectionId, undefined);
    assert.equal(location.lookup('sip:tcp0000@127.0.0.2').length, 1);
  });

  test('expiry and removal: a 2 s binding is gone after 3 s; "Contact: *" with Expires: 0 removes all', async () => {
    const r = await runSipp({
      scenario: `${SCENARIOS}register-expiry.xml`,
      target,
      calls: 5,
      rate: 10,
      timeoutSeconds: 30,
      extraArgs: ['-inf', usersFile('exp', 5)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 5);
    assert.equal(r.failed, 0);
    assert.equal(node.sip.get('core')!.location!.lookup('sip:exp0000@127.0.0.2').length, 0);
  });

  test('a REGISTER for a domain the node does not serve is refused', async () => {
    const svc = node.sip.get('core')!;
    const before = svc.registrar!.counters.responses[403] ?? 0;
    // The edge (127.0.0.1) is not the core's domain: the core answers 403.
    const r = await runSipp({
      scenario: `${SCENARIOS}register-foreign.xml`,
      target,
      calls: 1,
      timeoutSeconds: 20,
      extraArgs: ['-inf', usersFile('f', 1)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 1);
    assert.equal((svc.registrar!.counters.responses[403] ?? 0) - before, 1);
  });
});

describe('registrar: RFC 5626 outbound over a real TCP connection', () => {
  test('the binding keeps the connection it arrived on; closing that connection removes it', async () => {
    const node = await startTestNode({ registrar: { authenticate: false } });
    try {
      const port = node.plan.node('core').port('sip-tcp');
      const sock = connect({ host: '127.0.0.2', port });
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      const local = `${sock.localAddress}:${sock.localPort}`;
      sock.write(
        'REGISTER sip:127.0.0.2 SIP/2.0\r\n' +
          `Via: SIP/2.0/TCP ${local};branch=z9hG4bKob1;rport\r\n` +
          'Max-Forwards: 70\r\n' +
          'From: <sip:obuser@127.0.0.2>;tag=1\r\n' +
          'To: <sip:obuser@127.0.0.2>\r\n' +
          'Call-ID: ob-1\r\n' +
          'CSeq: 1 REGISTER\r\n' +
          'Supported: outbound, path\r\n' +
          `Contact: <sip:obuser@${local};transport=tcp;ob>;+sip.instance="<urn:uuid:0f0e0d0c-0000-1000-8000-000000000001>";reg-id=1\r\n` +
          'Expires: 600\r\n' +
          'Content-Length: 0\r\n\r\n',
      );
      const answer = await new Promise<string>((resolve, reject) => {
        let buf = '';
        const t = setTimeout(() => reject(new Error(`no answer: ${buf}`)), 5000);
        sock.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('\r\n\r\n')) {
            clearTimeout(t);
            resolve(buf);
          }
        });
      });
      assert.match(answer, /^SIP\/2\.0 200 /);
      assert.match(answer, /\r\nRequire: outbound\r\n/);
      const location = node.sip.get('core')!.location!;
      const [b] = location.lookup('sip:obuser@127.0.0.2');
      assert.ok(b);
      assert.equal(b.regId, 1);
      assert.equal(b.flow.transport, 'TCP');
      assert.deepEqual(b.flow.source, { address: sock.localAddress, port: sock.localPort });
      const conn = node.sip
        .get('core')!
        .transport.connections()
        .find((c) => c.id === b.flow.connectionId);
      assert.ok(conn, 'the flow names an open connection of the transport layer');
      sock.destroy();
      const deadline = Date.now() + 5000;
      while (location.lookup('sip:obuser@127.0.0.2').length > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(location.lookup('sip:obuser@127.0.0.2').length, 0);
    } finally {
      await node.close();
    }
  });
});

describe('registrar: RFC 5626 outbound over real UDP with STUN keepalives', () => {
  test('§4.4.2: STUN keepalives on the SIP port keep the flow; when they stop for Flow-Timer + grace the binding is removed', async () => {
    const node = await startTestNode({
      registrar: { authenticate: false, flowTimerSeconds: 10, flowFailureGraceSeconds: 2 },
    });
    const sock = createSocket('udp4');
    try {
      await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
      const me = `127.0.0.1:${sock.address().port}`;
      const port = node.plan.node('core').port('sip-udp')!;
      const answers: Buffer[] = [];
      sock.on('message', (m) => answers.push(m));
      sock.send(
        'REGISTER sip:127.0.0.2 SIP/2.0\r\n' +
          `Via: SIP/2.0/UDP ${me};branch=z9hG4bKobu1;rport\r\n` +
          'Max-Forwards: 70\r\n' +
          'From: <sip:obudp@127.0.0.2>;tag=1\r\n' +
          'To: <sip:obudp@127.0.0.2>\r\n' +
          'Call-ID: obudp-1\r\n' +
          'CSeq: 1 REGISTER\r\n' +
          'Supported: outbound, path\r\n' +
          `Contact: <sip:obudp@${me};ob>;+sip.instance="<urn:uuid:0f0e0d0c-0000-1000-8000-000000000002>";reg-id=1\r\n` +
          'Expires: 600\r\n' +
          'Content-Length: 0\r\n\r\n',
        port,
        '127.0.0.2',
      );
      const waitFor = async (what: string, ok: () => boolean, ms: number) => {
        const deadline = Date.now() + ms;
        while (!ok() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.ok(ok(), what);
      };
      await waitFor('a 200', () => answers.some((a) => a.toString().startsWith('SIP/2.0 200 ')), 5000);
      const reg = answers.find((a) => a.toString().startsWith('SIP/2.0 200 '))!.toString();
      assert.match(reg, /\r\nFlow-Timer: 10\r\n/);
      assert.match(reg, /\r\nRequire: outbound\r\n/);
      const location = node.sip.get('core')!.location!;
      const registrar = node.sip.get('core')!.registrar!;
      assert.equal(location.lookup('sip:obudp@127.0.0.2').length, 1);
      // 15 s of STUN keepalives every 3 s: past Flow-Timer + grace (12 s), the binding stays; each is answered.
      const stunAnswers = () => answers.filter((a) => a.length >= 20 && a.readUInt32BE(4) === 0x2112a442).length;
      for (let i = 0; i < 5; i++) {
        sock.send(new StunBuilder(Method.binding, StunClass.request, randomBytes(12)).finish(), port, '127.0.0.2');
        await new Promise((r) => setTimeout(r, 3000));
      }
      assert.equal(stunAnswers(), 5, 'every STUN keepalive answered');
      assert.equal(location.lookup('sip:obudp@127.0.0.2').length, 1, 'kept alive');
      assert.equal(registrar.counters.flowFailures, 0);
      // Keepalives stop: the flow fails within Flow-Timer + grace + one sweep (12 + 1 s) of the last one.
      await waitFor('binding removed', () => location.lookup('sip:obudp@127.0.0.2').length === 0, 15_000);
      assert.equal(registrar.counters.flowFailures, 1);
    } finally {
      sock.close();
      await node.close();
    }
  });
});

describe('registrar restart: bindings survive a node restart', () => {
  test('1,000 registrations, restart on the same data directory, every binding is served at once', async () => {
    const config = validateConfig({
      dataDir: mkdtempSync(join(tmpdir(), 'crossway-restart-')),
      portOffset: uniqueOffset(),
      registrar: { authenticate: false },
    });
    const users = usersFile('rs', 1000);
    let node = await startNode(config, { log: silentLogger });
    const target = `127.0.0.2:${node.plan.node('core').port('sip-udp')}`;
    try {
      const reg = await runSipp({
        scenario: `${SCENARIOS}register.xml`,
        target,
        calls: 1000,
        rate: 500,
        timeoutSeconds: 60,
        extraArgs: ['-inf', users],
      });
      assert.equal(reg.successful, 1000, reg.stderr.slice(0, 2000));
      assert.equal(node.sip.get('core')!.location!.aorCount, 1000);
    } finally {
      await node.close();
    }
    node = await startNode(config, { log: silentLogger });
    try {
      const location = node.sip.get('core')!.location!;
      // Loaded before the listeners opened: nothing had to re-register.
      assert.equal(location.aorCount, 1000);
      assert.equal(location.bindingCount, 1000);
      const fetch = await runSipp({
        scenario: `${SCENARIOS}register-fetch.xml`,
        target,
        calls: 1000,
        rate: 500,
        timeoutSeconds: 60,
        extraArgs: ['-inf', users],
      });
      assert.equal(fetch.exitCode, 0, fetch.stderr.slice(0, 2000));
      assert.equal(fetch.successful, 1000);
      assert.equal(fetch.failed, 0);
    } finally {
      await node.close();
    }
  });
});
