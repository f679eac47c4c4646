import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { Phone } from './phone.ts';

const DOMAIN = 'example.com';
const THRESHOLD = 4;
const CLI = join(import.meta.dirname, '../../src/cli/main.ts');

/** Runs the crossway CLI in a child process; resolves with its exit code and output. */
function cli(args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      ['--import', 'tsx', CLI, ...args],
      { timeout: 30_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin ?? '');
  });
}

let node: RunningNode;
let dataDir: string;
let port: number;

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'crossway-auth-'));
  const added = await cli(
    ['users', 'add', 'alice', '--data-dir', dataDir, '--realm', DOMAIN, '--password-stdin'],
    'alice-pw\n',
  );
  assert.equal(added.code, 0, added.stderr);
  node = await startTestNode({
    dataDir,
    sip: { domains: [DOMAIN] },
    security: {
      intrusion: { exempt: [], authFailures: { threshold: THRESHOLD, windowSeconds: 60, blockSeconds: 300 } },
    },
  });
  const s = node.sockets().find((x) => x.node === 'core' && x.listener === 'sip-udp');
  assert.ok(s);
  port = s.port;
});

after(async () => {
  await node?.close();
});

describe('a lab node authenticates REGISTER and blocks password guessing (real UDP)', () => {
  it('a user added with the CLI registers with digest (401 then 200)', async () => {
    const phone = await new Phone(DOMAIN).open();
    try {
      const first = await phone.register(port, 'alice');
      assert.equal(first?.status, 401);
      const res = await phone.login(port, 'alice', 'alice-pw');
      assert.equal(res?.status, 200);
    } finally {
      phone.close();
    }
  });

  it('the running node sees a user added, re-keyed and removed with the CLI at once', async () => {
    const phone = await new Phone(DOMAIN).open();
    try {
      assert.equal((await phone.login(port, 'bob', 'bob-pw'))?.status, 403);
      const add = await cli(
        ['users', 'add', 'bob', '--data-dir', dataDir, '--realm', DOMAIN, '--password-stdin'],
        'bob-pw\n',
      );
      assert.equal(add.code, 0, add.stderr);
      assert.equal((await phone.login(port, 'bob', 'bob-pw'))?.status, 200);
      const pw = await cli(
        ['users', 'passwd', 'bob', '--data-dir', dataDir, '--realm', DOMAIN, '--password-stdin'],
        'bob-pw2\n',
      );
      assert.equal(pw.code, 0, pw.stderr);
      assert.equal((await phone.login(port, 'bob', 'bob-pw2'))?.status, 200);
      const list = await cli(['users', 'list', '--data-dir', dataDir, '--json']);
      const users = JSON.parse(list.stdout) as { username: string; realm: string }[];
      assert.deepEqual(
        users.map((u) => `${u.username}@${u.realm}`),
        [`alice@${DOMAIN}`, `bob@${DOMAIN}`],
      );
      assert.doesNotMatch(list.stdout, /ha1|bob-pw/i, 'no secrets listed');
      const rm = await cli(['users', 'remove', 'bob', '--data-dir', dataDir, '--realm', DOMAIN]);
      assert.equal(rm.code, 0, rm.stderr);
      assert.equal((await phone.login(port, 'bob', 'bob-pw2'))?.status, 403);
      // Three failures so far (bob before add, bob after remove: 2) — clear them before the next test counts.
      await cli(['blocks', 'clear', '--all', '--data-dir', dataDir]);
    } finally {
      phone.close();
    }
  });

  it('the users CLI refuses a password on a terminal-less stdin without --password-stdin', async () => {
    const r = await cli(['users', 'add', 'carol', '--data-dir', dataDir, '--realm', DOMAIN]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /password-stdin/);
  });

  it(`after ${THRESHOLD} wrong passwords the source is blocked (dropped before parsing), listed and clearable with the CLI`, async () => {
    const phone = await new Phone(DOMAIN).open();
    const guard = node.security.get('core')!.guard;
    guard.clearAll();
    try {
      for (let i = 0; i < THRESHOLD; i++) {
        assert.equal((await phone.login(port, 'alice', `guess-${i}`))?.status, 403, `guess ${i}`);
      }
      const dropsBefore = node.sip.get('core')!.transport.counters().drops['blocked-source'] ?? 0;
      assert.equal(await phone.register(port, 'alice'), undefined, 'no answer once blocked');
      assert.ok((node.sip.get('core')!.transport.counters().drops['blocked-source'] ?? 0) > dropsBefore);
      // Even the right password gets nothing while blocked.
      assert.equal(await phone.register(port, 'alice'), undefined);
      const list = await cli(['blocks', 'list', '--data-dir', dataDir, '--json']);
      assert.equal(list.code, 0, list.stderr);
      const rows = JSON.parse(list.stdout) as { node: string; blocks: { address: string; category: string }[] }[];
      const core = rows.find((r) => r.node === 'core');
      assert.deepEqual(
        core?.blocks.map((b) => [b.address, b.category]),
        [['127.0.0.1', 'auth']],
      );
      const cleared = await cli(['blocks', 'clear', '127.0.0.1', '--data-dir', dataDir]);
      assert.equal(cleared.code, 0, cleared.stderr);
      assert.match(cleared.stdout, /1 block\(s\) cleared/);
      assert.equal((await phone.login(port, 'alice', 'alice-pw'))?.status, 200, 'answered again after the clear');
    } finally {
      phone.close();
    }
  });

  it('blocks survive a restart, and the CLI lists and clears them in the store while no node runs', async () => {
    node.security.get('core')!.guard.block('192.0.2.50', 'manual', 600_000);
    await node.close();
    const offline = await cli(['blocks', 'list', '--data-dir', dataDir, '--json']);
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stderr, /no node running/);
    const rows = JSON.parse(offline.stdout) as { node: string; blocks: { address: string }[] }[];
    assert.deepEqual(
      rows.find((r) => r.node === 'core')?.blocks.map((b) => b.address),
      ['192.0.2.50'],
    );
    const again = await startTestNode({ dataDir, sip: { domains: [DOMAIN] } });
    try {
      assert.deepEqual(
        again.security
          .get('core')!
          .guard.blocks()
          .map((b) => b.address),
        ['192.0.2.50'],
        'restored at start',
      );
    } finally {
      await again.close();
    }
    const cleared = await cli(['blocks', 'clear', '--all', '--data-dir', dataDir]);
    assert.match(cleared.stdout, /1 block\(s\) cleared \(no node running/);
    const empty = JSON.parse((await cli(['blocks', 'list', '--data-dir', dataDir, '--json'])).stdout) as {
      blocks: unknown[];
    }[];
    assert.equal(empty.flatMap((r) => r.blocks).length, 0);
  });
});
