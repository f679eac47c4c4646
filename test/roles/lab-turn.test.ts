import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';

const run = promisify(execFile);

let node: RunningNode;
let peer: ChildProcess;
let peerPort: number;

before(async () => {
  node = await startTestNode({
    turn: {
      enabled: true,
      users: [{ username: 'alice', password: 'wonderland' }],
      // turnutils_peer lives on loopback, denied by default: the allow list lets it through.
      peers: { allowed: ['127.0.0.1/32'] },
    },
  });
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  peerPort = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  peer = spawn('turnutils_peer', ['-L', '127.0.0.1', '-p', String(peerPort)], { stdio: 'ignore' });
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
    const { stdout, stderr } = await run(
      'turnutils_uclient',
      [
        ...transport,
        '-e',
        '127.0.0.1',
        '-r',
        String(peerPort),
        '-p',
        String(port),
        '-m',
        '2',
        '-n',
        '20',
        '-z',
        '5',
      ].concat(['-u', 'alice', '-w', 'wonderland', '127.0.0.1']),
      { timeout: 60_000 },
    );
    const out = stdout + stderr;
    const lost = /Total lost packets (\d+)/.exec(out);
    const totals = /tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$/m.exec(out.replace(/.*msz=.*\n/g, ''));
    assert.ok(lost && totals, out);
    assert.equal(Number(lost[1]), 0, out);
    assert.ok(Number(totals[1]) > 0 && totals[1] === totals[2], `sent ${totals[1]} received ${totals[2]}`);
  }
  // Two clients per run, two runs: four allocations, every relayed packet counted by the node, none denied.
  assert.ok(node.turn.counters.allocationsCreated >= 4, JSON.stringify(node.turn.counters));
  assert.ok(node.turn.counters.packetsToPeers > 0 && node.turn.counters.packetsFromPeers > 0);
  assert.equal(node.turn.counters.peerDenied, 0);
});
