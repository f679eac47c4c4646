import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { OperationalError } from '../../src/common/errors.ts';
import { callControl, controlSocketPath } from '../../src/roles/control.ts';
import { startTestNode } from '../helpers/lab-node.ts';

test('the control socket answers registered commands of a running node, only to its owner', async () => {
  const node = await startTestNode();
  try {
    const dir = node.config.dataDir;
    assert.equal(statSync(controlSocketPath(dir)).mode & 0o777, 0o600);
    const commands = (await callControl(dir, 'commands')) as string[];
    assert.ok(commands.includes('sip.status'));
    const status = (await callControl(dir, 'sip.status')) as { node: string; sockets: unknown[] }[];
    assert.deepEqual(
      status.map((s) => s.node),
      ['edge', 'core'],
    );
    assert.ok(status[1]!.sockets.length >= 4);
    node.control.register('test.echo', (args) => ({ echoed: args.word }));
    assert.deepEqual(await callControl(dir, 'test.echo', { word: 'hi' }), { echoed: 'hi' });
    node.control.register('test.fail', () => {
      throw new Error('nope');
    });
    await assert.rejects(callControl(dir, 'test.fail'), /nope/);
    await assert.rejects(callControl(dir, 'no.such'), /unknown command/);
  } finally {
    await node.close();
  }
});

test('calling a data directory where no node runs says so clearly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-nonode-'));
  await assert.rejects(
    callControl(dir, 'sip.status'),
    (e: unknown) => e instanceof OperationalError && /no node is running/.test(e.message),
  );
});
