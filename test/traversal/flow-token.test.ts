import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NodeStore } from '../../src/store/database.ts';
import { FlowTokens } from '../../src/traversal/flow-token.ts';

const uriOf = (token: string) => `<sip:${token}@192.0.2.1:7001;transport=tls;lr;ob>`;

test('flow token key kept in the store: a token made before a restart decodes after it (connection id dropped)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-flowtok-'));
  try {
    const store1 = NodeStore.open(dir);
    const before = FlowTokens.fromStore(store1);
    const token = before.encode({ transport: 'TCP', address: '198.51.100.7', port: 40000, connectionId: 'tcp-5' });
    assert.deepEqual(before.decode(uriOf(token)), {
      transport: 'TCP',
      address: '198.51.100.7',
      port: 40000,
      connectionId: 'tcp-5',
    });
    store1.close();

    const store2 = NodeStore.open(dir);
    const after = FlowTokens.fromStore(store2);
    // The restarted process numbers connections anew: the old id could name someone else's, so it is not honoured.
    assert.deepEqual(after.decode(uriOf(token)), { transport: 'TCP', address: '198.51.100.7', port: 40000 });
    store2.close();

    // Another node's store: another key, the token is not one of its own.
    const other = NodeStore.open(':memory:');
    assert.equal(FlowTokens.fromStore(other).decode(uriOf(token)), undefined);
    other.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('flow tokens refuse a forged signature, a tampered body and signed garbage without throwing', () => {
  const key = randomBytes(32);
  const t = new FlowTokens(key, 'b');
  const token = t.encode({ transport: 'UDP', address: '198.51.100.7', port: 5060 });
  assert.deepEqual(t.decode(uriOf(token)), { transport: 'UDP', address: '198.51.100.7', port: 5060 });
  const [body, mac] = token.slice(3).split('.') as [string, string];
  assert.equal(t.decode(uriOf(`cw-${body}.AAAAAAAAAAAAAAAA`)), undefined);
  const tampered = Buffer.from(JSON.stringify(['UDP', '203.0.113.66', 5060, '', 'b'])).toString('base64url');
  assert.equal(t.decode(uriOf(`cw-${tampered}.${mac}`)), undefined);
  // Correctly signed bodies that are not a flow (as if the key leaked into a buggy encoder): refused, no throw.
  const sign = (b: string) => createHmac('sha256', key).update(b).digest('base64url').slice(0, 16);
  for (const junk of ['not json', '{"a":1}', '["UDP","x",0]', '["UDP","x",70000,"","b"]', '[1,2,3,4]']) {
    const b = Buffer.from(junk).toString('base64url');
    assert.equal(t.decode(uriOf(`cw-${b}.${sign(b)}`)), undefined, junk);
  }
  assert.equal(t.decode('<sip:alice@192.0.2.1;lr>'), undefined);
  assert.throws(() => new FlowTokens(Buffer.alloc(8)), RangeError);
});
