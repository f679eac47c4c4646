/** `crossway admin` works offline on the node store; the account it creates logs in over HTTPS. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { uniqueOffset } from '../helpers/lab-node.ts';
import { apiLogin, req, setupAdmin, startMgmtNode } from './helpers.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function crossway(args: string[], stdin = '') {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.stdin.end(stdin);
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    });
  });
}

describe('crossway admin', () => {
  it('adds, lists and deletes administrators; the account logs in; short passwords are refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossway-admin-'));
    const cfg = join(dir, 'lab.yaml');
    writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nportOffset: ${uniqueOffset()}\n`);
    const short = await crossway(['admin', 'add', 'ops', '--config', cfg, '--password-stdin'], 'short\n');
    assert.equal(short.code, 1);
    assert.match(short.err, /at least 12 characters/);
    const add = await crossway(
      ['admin', 'add', 'ops', '--level', 'read-write', '--config', cfg, '--password-stdin'],
      'operator password 1\n',
    );
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /edge: administrator ops \(read-write\) saved/);
    assert.match(add.out, /core: administrator ops \(read-write\) saved/);
    assert.doesNotMatch(add.out + add.err, /operator password/, 'the password is never printed');
    const list = await crossway(['admin', 'list', '--config', cfg, '--node', 'core']);
    assert.equal(list.out, 'core\tops\tread-write\n');

    const m = await startMgmtNode({}, join(dir, 'data'));
    try {
      assert.equal(m.tokens.size, 0, 'no setup token once an administrator exists');
      const { cookie } = await apiLogin(m, 'ops', 'operator password 1');
      const audit = await req(`${m.base()}/api/v1/audit`, { ca: m.ca, headers: { cookie } });
      const recs = audit.json<{ who: string; source: string; action: string }[]>();
      assert.ok(recs.some((r) => r.who === 'cli' && r.source === 'local' && r.action === 'account-set'));
    } finally {
      await m.node.close();
    }
    const del = await crossway(['admin', 'delete', 'ops', '--config', cfg, '--node', 'edge']);
    assert.equal(del.code, 0);
    assert.match(del.out, /edge: deleted ops/);
    const gone = await crossway(['admin', 'delete', 'ops', '--config', cfg, '--node', 'edge']);
    assert.equal(gone.code, 1);
  });

  it('setup-token replaces the one-time token (the old one stops working) and is audited without the token', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossway-admin-'));
    const cfg = join(dir, 'lab.yaml');
    writeFileSync(cfg, `dataDir: ${join(dir, 'data')}\nportOffset: ${uniqueOffset()}\n`);
    const tokenOf = (out: string) => /edge: setup token (\S+)/.exec(out)?.[1];
    const first = await crossway(['admin', 'setup-token', '--config', cfg, '--node', 'edge']);
    assert.equal(first.code, 0, first.err);
    const second = await crossway(['admin', 'setup-token', '--config', cfg, '--node', 'edge']);
    const old = tokenOf(first.out);
    const token = tokenOf(second.out);
    assert.ok(old && token && old !== token, first.out + second.out);
    const m = await startMgmtNode({}, join(dir, 'data'));
    try {
      m.tokens.set('edge', old);
      await assert.rejects(setupAdmin(m, 'first', 'first admin password'), /setup failed/);
      m.tokens.set('edge', token);
      await setupAdmin(m, 'first', 'first admin password');
      const { cookie } = await apiLogin(m, 'first', 'first admin password');
      const audit = await req(`${m.base()}/api/v1/audit`, { ca: m.ca, headers: { cookie } });
      assert.equal(audit.status, 200);
      const recs = audit.json<{ who: string; source: string; action: string }[]>();
      assert.equal(recs.filter((r) => r.who === 'cli' && r.source === 'local' && r.action === 'setup-token').length, 2);
      assert.ok(!audit.text.includes(token) && !audit.text.includes(old), 'no token in the audit log');
    } finally {
      await m.node.close();
    }
    // Once an administrator exists there is no token to replace, and nothing is audited.
    const none = await crossway(['admin', 'setup-token', '--config', cfg, '--node', 'edge']);
    assert.match(none.out, /edge: has an administrator: no setup token/);
  });
});
