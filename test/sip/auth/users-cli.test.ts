import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { computeHa1 } from '../../../src/sip/auth/digest.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../../src/store/database.ts';

const CLI = join(import.meta.dirname, '../../../src/cli/main.ts');
const HAVE_SCRIPT = (() => {
  try {
    execFileSync('which', ['script'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('crossway users on a terminal', { skip: HAVE_SCRIPT ? false : 'no script(1) to make a pty' }, () => {
  it('prompts twice without echo and stores only HA1 digests of the typed password', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossway-users-tty-'));
    try {
      // script(1) gives the CLI a pseudo-terminal; the password is typed after the prompts appear.
      const cmd = `${process.execPath} --import tsx ${CLI} users add carol --data-dir ${dir} --realm example.com`;
      const out = await new Promise<string>((resolve, reject) => {
        const child = execFile('script', ['-qfec', cmd, '/dev/null'], { timeout: 30_000 }, (err, stdout) =>
          err ? reject(err) : resolve(String(stdout)),
        );
        let typed = 0;
        child.stdout?.on('data', (d: Buffer) => {
          const s = d.toString();
          if ((s.includes('Password:') && typed === 0) || (s.includes('Again:') && typed === 1)) {
            typed++;
            child.stdin?.write('tty-secret\r');
          }
        });
      });
      assert.match(out, /added carol to realm example\.com/);
      assert.doesNotMatch(out, /tty-secret/, 'the password is not echoed');
      const store = NodeStore.open(join(dir, 'core'));
      try {
        const found = new LocalCredentialStore(store).lookup({ realm: 'example.com', username: 'carol' });
        assert.equal(found.kind, 'found');
        assert.equal(
          (found as { ha1: Record<string, string> }).ha1['SHA-256'],
          computeHa1('SHA-256', 'carol', 'example.com', 'tty-secret'),
        );
        const raw = JSON.stringify(store.db.prepare('SELECT * FROM credentials').all());
        assert.doesNotMatch(raw, /tty-secret/, 'no plaintext in the store');
      } finally {
        store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
