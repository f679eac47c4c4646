import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { errorResponse } from '../../../src/sip/transport/message-codec.ts';
import { responseTarget } from '../../../src/sip/transport/response-target.ts';
import { createTlsFixtures, type TlsFixtures } from '../../helpers/tls-fixtures.ts';
import { eventually, makeLayer, parsed, request, streamClient } from './helpers.ts';

/** Connects a Node TLS client; resolves once the handshake is done. */
function nodeClient(port: number, opts: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ port, ...opts });
    s.once('secureConnect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Runs `openssl s_client`, writes `input`, and collects output until `until` appears in stdout or it exits. */
function sClient(
  args: string[],
  input: string,
  until: RegExp | undefined,
  ms = 5000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let done = false;
    const finish = (code: number | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      p.kill();
      resolve({ code, stdout, stderr });
    };
    const timer = setTimeout(() => finish(null), ms);
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('latin1');
      if (until?.test(stdout)) finish(0);
    });
    p.stderr.on('data', (d: Buffer) => {
      stderr += d.toString('latin1');
    });
    p.on('exit', (code) => setTimeout(() => finish(code), 20));
    p.stdin.on('error', () => {});
    p.stdin.write(input);
  });
}

describe('TLS and MTLS transports', () => {
  let fx: TlsFixtures;
  let t: ReturnType<typeof makeLayer>;
  let tlsPort = 0;
  let mtlsPort = 0;
  let tls6Port = 0;

  before(async () => {
    fx = createTlsFixtures();
    t = makeLayer({
      tls: { certificate: fx.server.cert, privateKey: fx.server.key, caCertificates: fx.ca.cert },
    });
    // Respond 200 to every OPTIONS, so interop clients get an answer on their connection.
    const inner = t.layer;
    inner.onMessage = (msg, info) => {
      t.inbox.push({ msg, info });
      if (msg.kind === 'request' && msg.method === 'OPTIONS') {
        const r = errorResponse(msg as SipRequest, 200, 'OK');
        void inner.send(r, responseTarget(r, info)!).catch(() => {});
      }
    };
    tlsPort = (await t.layer.listen({ protocol: 'tls', address: '127.0.0.1', port: 0 })).port;
    mtlsPort = (await t.layer.listen({ protocol: 'mtls', address: '127.0.0.1', port: 0 })).port;
    tls6Port = (await t.layer.listen({ protocol: 'tls', address: '::1', port: 0 })).port;
  });
  after(async () => {
    await t.layer.close();
    fx.cleanup();
  });

  test('a Node TLS client (verifying the server) gets its request through and the answer back', async () => {
    const s = await nodeClient(tlsPort, { host: '127.0.0.1', ca: fx.ca.cert });
    const c = streamClient(s);
    try {
      assert.equal(s.authorized, true);
      const before = t.inbox.length;
      await c.write(request({ transport: 'TLS', viaHost: 'ua.example.test', viaPort: 5061 }));
      const { info } = await t.nth(before + 1);
      assert.equal(info.transport, 'TLS');
      assert.equal(info.secure, true);
      assert.equal(info.reliable, true);
      assert.equal(info.listener, 'tls');
      assert.equal(info.tlsPeerCertificate, undefined, 'TLS does not ask for a client certificate');
      assert.match(await c.waitFor('\r\n\r\n'), /^SIP\/2\.0 200 OK/);
      assert.equal(t.layer.connections().find((x) => x.id === info.connectionId)?.transport, 'TLS');
    } finally {
      s.destroy();
    }
  });

  test('IPv6: TLS on ::1', async () => {
    const s = await nodeClient(tls6Port, { host: '::1', ca: fx.ca.cert });
    const c = streamClient(s);
    try {
      await c.write(request({ transport: 'TLS', viaHost: '[::1]' }));
      assert.match(await c.waitFor('\r\n\r\n'), /^SIP\/2\.0 200 OK/);
    } finally {
      s.destroy();
    }
  });

  test('openssl s_client completes a verified handshake and is answered', async () => {
    const r = await sClient(
      ['-connect', `127.0.0.1:${tlsPort}`, '-CAfile', fx.ca.certPath, '-verify_return_error', '-brief', '-ign_eof'],
      request({ transport: 'TLS', viaHost: '127.0.0.1' }),
      /SIP\/2\.0 200 OK[\s\S]*\r\n\r\n/,
    );
    assert.match(r.stderr, /Verification: OK/);
    assert.match(r.stderr, /Protocol version: TLSv1\.[23]/);
    assert.match(r.stdout, /SIP\/2\.0 200 OK/);
  });

  test('TLS 1.1 is refused by the server (openssl s_client -tls1_1)', async () => {
    const refusedBefore = t.layer.counters().connections.refused;
    const r = await sClient(
      ['-connect', `127.0.0.1:${tlsPort}`, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0', '-brief'],
      '',
      undefined,
    );
    assert.notEqual(r.code, 0);
    // The alert comes from the server (alert 70, protocol_version), not from a client refusing to offer TLS 1.1.
    assert.match(r.stderr, /alert protocol version|alert number 70/);
    await eventually(() => t.layer.counters().connections.refused > refusedBefore, 2000, 'refused counted');
  });

  test('TLS 1.1 is refused by the server (Node client limited to TLSv1.1)', async () => {
    await assert.rejects(
      nodeClient(tlsPort, {
        host: '127.0.0.1',
        ca: fx.ca.cert,
        minVersion: 'TLSv1.1',
        maxVersion: 'TLSv1.1',
        ciphers: 'DEFAULT@SECLEVEL=0',
      }),
      (err: NodeJS.ErrnoException) => /protocol version|PROTOCOL_VERSION|ALERT_PROTOCOL_VERSION/i.test(String(err)),
    );
  });

  test('MTLS: a client with a certificate from the configured CA gets through', async () => {
    const s = await nodeClient(mtlsPort, {
      host: '127.0.0.1',
      ca: fx.ca.cert,
      cert: fx.client.cert,
      key: fx.client.key,
    });
    const c = streamClient(s);
    try {
      const before = t.inbox.length;
      await c.write(request({ transport: 'TLS', viaHost: 'client.test' }));
      const { info } = await t.nth(before + 1);
      assert.equal(info.listener, 'mtls');
      assert.equal(info.tlsPeerCertificate?.subject.CN, 'client.test');
      assert.match(await c.waitFor('\r\n\r\n'), /^SIP\/2\.0 200 OK/);
    } finally {
      s.destroy();
    }
  });

  test('MTLS on ::1: a client certificate from the configured CA gets through', async () => {
    const six = makeLayer({
      tls: { certificate: fx.server.cert, privateKey: fx.server.key, caCertificates: fx.ca.cert },
    });
    const p = (await six.layer.listen({ protocol: 'mtls', address: '::1', port: 0 })).port;
    const s = await nodeClient(p, { host: '::1', ca: fx.ca.cert, cert: fx.client.cert, key: fx.client.key });
    try {
      await streamClient(s).write(request({ transport: 'TLS', viaHost: '[::1]' }));
      const { info } = await six.nth(1);
      assert.equal(info.source.address, '::1');
      assert.equal(info.listener, 'mtls');
      assert.equal(info.tlsPeerCertificate?.subject.CN, 'client.test');
    } finally {
      s.destroy();
      await six.layer.close();
    }
  });

  test('MTLS: openssl s_client with the client certificate gets through', async () => {
    const r = await sClient(
      [
        '-connect',
        `127.0.0.1:${mtlsPort}`,
        '-CAfile',
        fx.ca.certPath,
        '-cert',
        fx.client.certPath,
        '-key',
        fx.client.keyPath,
        '-verify_return_error',
        '-brief',
        '-ign_eof',
      ],
      request({ transport: 'TLS', viaHost: 'client.test' }),
      /SIP\/2\.0 200 OK[\s\S]*\r\n\r\n/,
    );
    assert.match(r.stdout, /SIP\/2\.0 200 OK/);
  });

  for (const [name, creds] of [
    ['without a certificate', () => ({})],
    ['with a certificate from another CA', () => ({ cert: fx.foreignClient.cert, key: fx.foreignClient.key })],
  ] as const) {
    test(`MTLS: a client ${name} is refused and nothing reaches onMessage`, async () => {
      const refusedBefore = t.layer.counters().connections.refused;
      const before = t.inbox.length;
      // With TLS 1.3 the client finishes its side before the server checks the certificate: the refusal shows as
      // an alert or a close right after; the request written meanwhile must never be handed up.
      let s: TLSSocket | undefined;
      try {
        s = await nodeClient(mtlsPort, { host: '127.0.0.1', ca: fx.ca.cert, ...creds() });
      } catch {
        // Refused during the handshake (TLS 1.2 or the alert arrived first): fine.
      }
      if (s) {
        const c = streamClient(s);
        c.write(request({ transport: 'TLS' })).catch(() => {});
        await c.closed;
      }
      await eventually(() => t.layer.counters().connections.refused > refusedBefore, 2000, 'refused counted');
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(t.inbox.length, before);
    });
  }

  test('MTLS with openssl s_client and no certificate: refused', async () => {
    const r = await sClient(
      ['-connect', `127.0.0.1:${mtlsPort}`, '-CAfile', fx.ca.certPath, '-brief', '-ign_eof'],
      request({ transport: 'TLS' }),
      /SIP\/2\.0/,
      3000,
    );
    assert.doesNotMatch(r.stdout, /SIP\/2\.0/);
    assert.match(r.stderr, /alert certificate required|alert handshake failure|alert number 116/);
  });

  test('outbound TLS verifies the server certificate against the CA bundle', async () => {
    const client = makeLayer({
      tls: { certificate: fx.client.cert, privateKey: fx.client.key, caCertificates: fx.ca.cert },
      outboundPorts: { from: 44000, to: 44999 },
    });
    const stranger = makeLayer({
      tls: { certificate: fx.client.cert, privateKey: fx.client.key, caCertificates: fx.otherCa.cert },
      outboundPorts: { from: 45000, to: 45999 },
    });
    try {
      const before = t.inbox.length;
      await client.layer.send(parsed(request({ transport: 'TLS' })), {
        transport: 'TLS',
        address: '127.0.0.1',
        port: tlsPort,
      });
      const { info } = await t.nth(before + 1);
      assert.ok(info.source.port >= 44000 && info.source.port <= 44999);
      await assert.rejects(
        stranger.layer.send(parsed(request({ transport: 'TLS' })), {
          transport: 'TLS',
          address: '127.0.0.1',
          port: tlsPort,
        }),
        { code: 'ERR_SIP_TRANSPORT_TLS_HANDSHAKE' },
      );
      assert.equal(stranger.layer.counters().connections.failed, 1);
    } finally {
      await client.layer.close();
      await stranger.layer.close();
    }
  });

  test('RFC 5923: over MTLS, a verified peer aliasing its certificate name gets requests on its connection', async () => {
    const peer = makeLayer({
      tls: { certificate: fx.client.cert, privateKey: fx.client.key, caCertificates: fx.ca.cert },
      outboundPorts: { from: 46000, to: 46999 },
    });
    try {
      const before = t.inbox.length;
      await peer.layer.send(parsed(request({ transport: 'TLS', viaHost: 'client.test', viaParams: ';alias' })), {
        transport: 'TLS',
        address: '127.0.0.1',
        port: mtlsPort,
      });
      const { info } = await t.nth(before + 1);
      const conn = t.layer.connections().find((x) => x.id === info.connectionId);
      assert.deepEqual(conn?.aliases, ['TLS client.test:5061']);
      const opened = t.layer.counters().connections.opened;
      const notify = parsed(request({ method: 'NOTIFY', transport: 'TLS', viaHost: '127.0.0.1' }));
      await t.layer.send(notify, { transport: 'TLS', address: 'client.test', port: 5061 });
      const got = await peer.nth(2);
      assert.equal(got.msg.kind === 'request' && got.msg.method, 'NOTIFY');
      assert.equal(t.layer.counters().connections.opened, opened);

      // An alias naming a host the certificate does not carry is refused.
      const refused = t.layer.counters().drops['alias-refused'] ?? 0;
      await peer.layer.send(parsed(request({ transport: 'TLS', viaHost: 'evil.test', viaParams: ';alias' })), {
        transport: 'TLS',
        address: '127.0.0.1',
        port: mtlsPort,
      });
      await eventually(() => (t.layer.counters().drops['alias-refused'] ?? 0) === refused + 1, 2000, 'refused');
    } finally {
      await peer.layer.close();
    }
  });
});
