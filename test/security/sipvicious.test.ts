import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { LocalCredentialStore } from '../../src/sip/auth/local-credentials.ts';
import { startTestNode } from '../helpers/lab-node.ts';

/**
 * A real scanner (Debian `sipvicious` 0.3.x) against a lab core on UDP: svwar must not tell existing users from
 * non-existing ones, svcrack must get blocked at the intrusion threshold and never reach the right password. The
 * node offers MD5 only here: sipvicious computes MD5 digests and fails on a SHA-256 challenge.
 */
const HAVE = (() => {
  try {
    execFileSync('which', ['svwar', 'svcrack'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const THRESHOLD = 10;
const DOMAIN = '127.0.0.2';

function run(cmd: string, args: string[]): Promise<{ out: string; err: string }> {
  // Asynchronous: the node under test runs in this process and must keep answering.
  return new Promise((resolve) =>
    execFile(cmd, args, { timeout: 120_000 }, (_e, out, err) => resolve({ out: String(out), err: String(err) })),
  );
}

let node: RunningNode;
let dir: string;
let target: string;

describe('sipvicious against a lab node', { skip: HAVE ? false : 'sipvicious is not installed (apt list)' }, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'crossway-sv-'));
    node = await startTestNode({
      sip: { domains: [DOMAIN] },
      auth: { algorithms: ['MD5'] },
      security: {
        intrusion: { exempt: [], authFailures: { threshold: THRESHOLD, windowSeconds: 60, blockSeconds: 300 } },
      },
    });
    new LocalCredentialStore(node.stores.get('core')!).add(DOMAIN, '1001', 'secret1001');
    const port = node.sockets().find((x) => x.node === 'core' && x.listener === 'sip-udp')!.port;
    target = `udp://${DOMAIN}:${port}`;
  });

  after(async () => {
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('svwar cannot tell the existing user 1001 from non-existing ones', async () => {
    const users = join(dir, 'users.txt');
    writeFileSync(users, ['1000', '1001', '1002', 'admin', 'alice'].join('\n') + '\n');
    const plain = await run('svwar', ['-m', 'REGISTER', '-d', users, target]);
    assert.match(plain.err, /authentication request for an unknown extension/);
    const forced = await run('svwar', ['-m', 'REGISTER', '-d', users, '--force', target]);
    assert.match(forced.err, /found nothing/);
    assert.doesNotMatch(forced.out, /1001/);
    // svwar learns the answer to a random (unknown) user, then sees the very same 401 for 1001 and gives up.
    assert.match(forced.err, /Bad user = SIP\/2.0 401/);
    assert.match(forced.err, /Response: 'SIP\/2.0 401 Unauthorized/);
    assert.ok(node.security.get('core')!.auth.authenticator.counters.challenges >= 3);
    assert.equal(node.security.get('core')!.guard.blocks().length, 0, 'enumeration probes carry no credentials');
  });

  it(`svcrack is blocked after ${THRESHOLD} wrong passwords and never reaches the right one`, async () => {
    const words = join(dir, 'words.txt');
    writeFileSync(words, [...Array.from({ length: 40 }, (_, i) => `guess${i}`), 'secret1001'].join('\n') + '\n');
    const r = await run('svcrack', ['-u', '1001', '-d', words, target]);
    assert.doesNotMatch(r.out, /secret1001/);
    assert.match(r.err, /since we last received a response|found nothing/);
    const sec = node.security.get('core')!;
    assert.deepEqual(
      sec.guard.blocks().map((b) => [b.address, b.category]),
      [['127.0.0.1', 'auth']],
    );
    assert.equal(sec.auth.authenticator.counters.failed, THRESHOLD);
    assert.equal(sec.auth.authenticator.counters.authenticated, 0);
    assert.ok((node.sip.get('core')!.transport.counters().drops['blocked-source'] ?? 0) > 0, 'later guesses dropped');
  });
});
