import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { defaultTurnConfig } from '../../src/turn/config.ts';
import { startTurnServer, type TurnServerHandle } from '../../src/turn/server.ts';

/**
 * Interop with coturn's client tools (Debian `coturn`): turnutils_uclient runs its echo test through Crossway's
 * TURN server to turnutils_peer and must report zero lost messages.
 */
const run = promisify(execFile);

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface UclientReport {
  sent: number;
  received: number;
  lost: number;
  output: string;
}

async function uclient(args: string[]): Promise<UclientReport> {
  const { stdout, stderr } = await run('turnutils_uclient', args, { timeout: 60_000 });
  const output = stdout + stderr;
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(output.replace(/.*msz=.*\n/g, ''));
  const lost = /Total lost packets (\d+)/.exec(output);
  assert.ok(totals && lost, `unexpected uclient output:\n${output}`);
  return { sent: Number(totals[1]), received: Number(totals[2]), lost: Number(lost[1]), output };
}

describe('interop: coturn turnutils_uclient against Crossway TURN', () => {
  let server: TurnServerHandle;
  let peer: ChildProcess;
  let peerPort: number;
  let port: number;

  before(async () => {
    await run('which', ['turnutils_uclient', 'turnutils_peer']);
    server = await startTurnServer({
      config: defaultTurnConfig({
        enabled: true,
        realm: 'crossway.test',
        users: [{ username: 'alice', password: 'wonderland' }],
        sharedSecret: 'interop-shared-secret',
        // Loopback is denied by default: the peer lives on 127.0.0.1, so it is explicitly allowed here.
        peers: { allowed: ['127.0.0.1/32', '::1/128'] },
      }),
      listen: [{ address: '127.0.0.1', port: 0 }],
      relayAddresses: { ipv4: '127.0.0.1', ipv6: '::1' },
      relayRange: { from: 47100, to: 47299 },
    });
    port = server.listening[0]!.port;
    peerPort = await freeUdpPort();
    peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-L', '::1', '-p', String(peerPort)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 300));
  });

  after(async () => {
    peer?.kill();
    await server?.close();
  });

  const common = () => [
    '-e',
    '127.0.0.1',
    '-r',
    String(peerPort),
    '-p',
    String(port),
    '-m',
    '2',
    '-n',
    '50',
    '-z',
    '5',
  ];
  const restUser = () => {
    const expiry = Math.floor(Date.now() / 1000) + 3600;
    return ['-u', `${expiry}:webrtc`, '-W', 'interop-shared-secret'];
  };
  const cases: [string, () => string[]][] = [
    ['UDP, long-term credentials, channels', () => ['-u', 'alice', '-w', 'wonderland']],
    ['TCP, long-term credentials, channels', () => ['-t', '-u', 'alice', '-w', 'wonderland']],
    ['UDP, shared-secret (REST) credentials', restUser],
    ['TCP, shared-secret (REST) credentials', () => ['-t', ...restUser()]],
    ['UDP, Send/Data indications', () => ['-s', '-u', 'alice', '-w', 'wonderland']],
    ['TCP, Send/Data indications', () => ['-t', '-s', '-u', 'alice', '-w', 'wonderland']],
    ['UDP, padded ChannelData (-D, like pjnath)', () => ['-D', '-u', 'alice', '-w', 'wonderland']],
    ['UDP, dual allocation (-Z), IPv4 peer', () => ['-Z', '-u', 'alice', '-w', 'wonderland']],
    ['UDP, dual allocation (-Z), IPv6 peer', () => ['-Z', '-e', '::1', '-u', 'alice', '-w', 'wonderland']],
    ['TCP, IPv6 relay requested (-x), IPv6 peer', () => ['-t', '-x', '-e', '::1', '-u', 'alice', '-w', 'wonderland']],
    ['RFC 6062 TCP relay, client to client (-T)', () => ['-T', '-u', 'alice', '-w', 'wonderland']],
    ['RFC 6062 TCP relay over IPv6 (-T -x)', () => ['-T', '-x', '-u', 'alice', '-w', 'wonderland']],
  ];
  for (const [name, args] of cases) {
    it(`${name}: zero lost messages in the echo test`, async () => {
      const before = { ...server.counters };
      const r = await uclient([...common(), ...args(), '127.0.0.1']);
      assert.ok(r.sent >= 50, r.output);
      assert.equal(r.received, r.sent, r.output);
      assert.equal(r.lost, 0, r.output);
      assert.ok(server.counters.allocationsCreated > before.allocationsCreated);
      if (args().includes('-T')) {
        // TCP relaying pipes bytes: the evidence is the peer connections the server made.
        assert.ok(server.counters.tcpConnectionsOpened - before.tcpConnectionsOpened >= 2);
      } else {
        assert.ok(server.counters.packetsToPeers - before.packetsToPeers >= r.sent);
        assert.ok(server.counters.packetsFromPeers - before.packetsFromPeers >= r.received);
      }
    });
  }

  it('refuses the wrong password: uclient relays nothing', async () => {
    const before = { ...server.counters };
    await run('turnutils_uclient', [...common(), '-n', '5', '-u', 'alice', '-w', 'nope', '127.0.0.1'], {
      timeout: 30_000,
    }).catch((e: { stdout?: string }) => e);
    assert.equal(server.counters.allocationsCreated, before.allocationsCreated);
    assert.ok(server.counters.authFailures > before.authFailures);
  });

  it('answers turnutils_stunclient only with credentials (no unauthenticated Binding)', async () => {
    const before = server.counters.authFailures;
    const r = await run('turnutils_stunclient', ['-p', String(port), '127.0.0.1'], { timeout: 15_000 }).catch(
      (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    assert.doesNotMatch(r.stdout + r.stderr, /UDP reflexive addr: 127\.0\.0\.1/);
    assert.ok(server.counters.authFailures > before);
  });
});

describe('interop: uclient follows ALTERNATE-SERVER (load spreading)', () => {
  it('is sent from server A to server B with 300 Try Alternate and relays through B with zero loss', async () => {
    const base = {
      enabled: true,
      realm: 'crossway.test',
      users: [{ username: 'alice', password: 'wonderland' }],
      peers: { allowed: ['127.0.0.1/32'] },
    };
    const b = await startTurnServer({
      config: defaultTurnConfig(base),
      listen: [{ address: '127.0.0.1', port: 0 }],
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange: { from: 47300, to: 47349 },
    });
    const a = await startTurnServer({
      config: defaultTurnConfig({ ...base, alternateServers: [{ address: '127.0.0.1', port: b.listening[0]!.port }] }),
      listen: [{ address: '127.0.0.1', port: 0 }],
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange: { from: 47350, to: 47399 },
    });
    const peerPort = await freeUdpPort();
    const peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const args = ['-e', '127.0.0.1', '-r', String(peerPort), '-p', String(a.listening[0]!.port)];
      const r = await uclient([...args, '-m', '2', '-n', '20', '-u', 'alice', '-w', 'wonderland', '127.0.0.1']);
      assert.match(r.output, /error 300 \(Try Alternate\)/);
      assert.equal(r.lost, 0, r.output);
      assert.equal(r.received, r.sent);
      assert.equal(a.counters.allocationsCreated, 0);
      assert.ok(b.counters.allocationsCreated >= 2);
      assert.ok(b.counters.packetsToPeers >= r.sent);
    } finally {
      peer.kill();
      await a.close();
      await b.close();
    }
  });

  it('one server listing its own two ports sends uclient from the front port to the other, which allocates', async () => {
    const [front, back] = [await freeUdpPort(), await freeUdpPort()];
    const own = [front, back].map((port) => ({ address: '127.0.0.1', port }));
    const server = await startTurnServer({
      config: defaultTurnConfig({
        enabled: true,
        realm: 'crossway.test',
        users: [{ username: 'alice', password: 'wonderland' }],
        peers: { allowed: ['127.0.0.1/32'] },
        alternateServers: own,
        redirectFrom: [front],
      }),
      listen: own.map((l) => ({ ...l, protocols: ['udp'] as const })),
      relayAddresses: { ipv4: '127.0.0.1' },
      relayRange: { from: 47400, to: 47449 },
    });
    const peerPort = await freeUdpPort();
    const peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      const args = ['-e', '127.0.0.1', '-r', String(peerPort), '-p', String(front), '-m', '2', '-n', '20'];
      const r = await uclient([...args, '-u', 'alice', '-w', 'wonderland', '127.0.0.1']);
      assert.match(r.output, /error 300 \(Try Alternate\)/);
      assert.equal(r.lost, 0, r.output);
      assert.equal(r.received, r.sent);
      const allocs = server.counters.allocationsCreated;
      assert.ok(allocs >= 2, `allocations ${allocs}`);
      assert.ok(server.counters.packetsToPeers >= r.sent);
    } finally {
      peer.kill();
      await server.close();
    }
  });
});
