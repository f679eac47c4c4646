import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { RunningNode } from '../../src/roles/start.ts';
import { encodeFirstByteOf4 } from '../../src/stun/attributes.ts';
import { Attr, Method } from '../../src/stun/constants.ts';
import { type TurnAnswer, TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { startTestNode } from '../helpers/lab-node.ts';

const run = promisify(execFile);
const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

let node: RunningNode;
let peer: ChildProcess;
let peerPort: number;

/** The crossway CLI in a child process, on the running node's data directory. */
function cli(args: string[], stdin: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args, '--data-dir', node.config.dataDir],
      { timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin);
  });
}

/** turnutils_uclient's echo test through the node: messages sent, received and lost. */
async function uclient(args: string[]) {
  const port = node.plan.port('turn-udp', 'edge');
  const base = ['-r', String(peerPort), '-p', String(port), '-m', '2', '-n', '20', '-z', '5'];
  const r = await run('turnutils_uclient', [...base, ...args, '127.0.0.1'], { timeout: 60_000 }).catch(
    (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
  );
  const out = r.stdout + r.stderr;
  const lost = /Total lost packets (\d+)/.exec(out);
  const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(out.replace(/.*msz=.*\n/g, ''));
  return {
    out,
    lost: lost ? Number(lost[1]) : undefined,
    sent: totals ? Number(totals[1]) : 0,
    received: totals ? Number(totals[2]) : 0,
  };
}

/** Our own client over UDP: sends a request, returns the answer (or undefined after 2 s). */
async function exchange(sock: dgram.Socket, session: TurnClientSession, bytes: Buffer): Promise<TurnAnswer> {
  const port = node.plan.port('turn-udp', 'edge');
  const answer = new Promise<Buffer | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(undefined), 2000);
    sock.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
  });
  sock.send(bytes, port, '127.0.0.1');
  const m = await answer;
  assert.ok(m, 'the node answered');
  const a = session.answer(m);
  assert.ok(a, 'a STUN answer');
  return a;
}

before(async () => {
  node = await startTestNode({
    turn: {
      enabled: true,
      users: [{ username: 'alice', password: 'wonderland' }],
      // turnutils_peer lives on loopback, denied by default: the allow list lets it through.
      peers: { allowed: ['127.0.0.1/32', '::1/128'] },
      // IPv6 relays beside the lab edge's IPv4 address: dual allocations.
      additionalRelayAddress: '::1',
    },
  });
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  peerPort = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-L', '::1', '-p', String(peerPort)], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
});

after(async () => {
  peer?.kill();
  await node?.close();
});

test('a lab edge with turn.enabled serves TURN on the plan ports; uclient relays through it with no loss', async () => {
  const port = node.plan.port('turn-udp', 'edge');
  assert.ok(node.turn, 'the node started its TURN server');
  assert.ok(
    node.sockets().some((s) => s.listener === 'turn-udp' && s.port === port && s.address === '127.0.0.1'),
    'the TURN listener is in the node inventory',
  );
  for (const transport of [[], ['-t']]) {
    const r = await uclient(['-e', '127.0.0.1', ...transport, '-u', 'alice', '-w', 'wonderland']);
    assert.equal(r.lost, 0, r.out);
    assert.ok(r.sent > 0 && r.sent === r.received, `sent ${r.sent} received ${r.received}`);
  }
  // Two clients per run, two runs: four allocations, every relayed packet counted by the node, none denied.
  assert.ok(node.turn.counters.allocationsCreated >= 4, JSON.stringify(node.turn.counters));
  assert.ok(node.turn.counters.packetsToPeers > 0 && node.turn.counters.packetsFromPeers > 0);
  assert.equal(node.turn.counters.peerDenied, 0);
});

test('a user added with `crossway users add --node edge` allocates and relays; a wrong password gets nothing', async () => {
  const realm = node.config.turn.realm;
  const added = await cli(['users', 'add', 'bob', '--node', 'edge', '--realm', realm, '--password-stdin'], 'b0b-pw\n');
  assert.equal(added.code, 0, added.stderr);
  const t = node.turn!;
  const before = { ...t.counters };
  const r = await uclient(['-e', '127.0.0.1', '-u', 'bob', '-w', 'b0b-pw']);
  assert.equal(r.lost, 0, r.out);
  assert.ok(r.sent > 0 && r.sent === r.received, `sent ${r.sent} received ${r.received}`);
  assert.ok(t.counters.allocationsCreated - before.allocationsCreated >= 2);
  const mid = { ...t.counters };
  const bad = await uclient(['-e', '127.0.0.1', '-n', '5', '-u', 'bob', '-w', 'not-bobs']);
  assert.equal(bad.received, 0, bad.out);
  assert.equal(t.counters.allocationsCreated, mid.allocationsCreated);
  assert.ok(t.counters.authFailures > mid.authFailures);
});

test('relayed addresses come from the plan range, both families; management shows the allocation', async () => {
  const realm = node.config.turn.realm;
  const added = await cli(['users', 'add', 'carol', '--node', 'edge', '--realm', realm, '--password-stdin'], 'c-pw\n');
  assert.equal(added.code, 0, added.stderr);
  const range = node.plan.range('turn-relay', 'edge');
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  try {
    const s = new TurnClientSession('carol', 'c-pw', { sha256: true });
    const dual = (): [number, Buffer][] => [
      turnAttr.udpTransport(),
      [Attr.ADDITIONAL_ADDRESS_FAMILY, encodeFirstByteOf4(2)],
    ];
    assert.equal((await exchange(sock, s, s.request(Method.allocate, dual()))).error, 401);
    const a = await exchange(sock, s, s.request(Method.allocate, dual()));
    assert.equal(a.error, undefined);
    assert.equal(a.integrity, true);
    assert.deepEqual(
      a.relayed.map((x) => x.address),
      ['127.0.0.1', '::1'],
    );
    for (const x of a.relayed)
      assert.ok(x.port >= range.from && x.port <= range.to, `${x.port} in ${range.from}–${range.to}`);
    const status = node.management?.nodes.get('edge')?.status.get('turn') as
      | { count: number; allocations: { username: string; relayed: { port: number }[] }[] }
      | undefined;
    assert.ok(status, 'management status has a turn section');
    const mine = status.allocations.find((x) => x.username === 'carol');
    assert.ok(mine, JSON.stringify(status));
    assert.deepEqual(
      mine.relayed.map((x) => x.port),
      a.relayed.map((x) => x.port),
    );
    const del = await exchange(sock, s, s.request(Method.refresh, [turnAttr.lifetime(0)]));
    assert.equal(del.error, undefined);
    assert.equal(del.lifetime, 0);
  } finally {
    sock.close();
  }
});

test('uclient -Z makes dual allocations through the node and relays to an IPv6 peer with no loss', async () => {
  const before = node.turn!.counters.allocationsCreated;
  const r = await uclient(['-Z', '-e', '::1', '-u', 'alice', '-w', 'wonderland']);
  assert.equal(r.lost, 0, r.out);
  assert.ok(r.sent > 0 && r.sent === r.received, `sent ${r.sent} received ${r.received}`);
  assert.ok(node.turn!.counters.allocationsCreated - before >= 2);
});

test('a node refuses an additional relay address of the same family as its public address', async () => {
  await assert.rejects(
    startTestNode({ turn: { enabled: true, additionalRelayAddress: '127.0.0.3' } }),
    (err: { issues?: { path: string }[] }) => err.issues?.[0]?.path === 'turn.additionalRelayAddress',
  );
});
