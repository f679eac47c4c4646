import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { LocationTable } from '../../../src/sip/location/location-table.ts';
import { SqliteRegistrationStore } from '../../../src/sip/location/sqlite-store.ts';
import type { Binding } from '../../../src/sip/location/types.ts';
import { NodeStore } from '../../../src/store/database.ts';

function binding(clock: FakeClock, aor: string, contact: string, lifeS: number, extra: Partial<Binding> = {}): Binding {
  return {
    aor,
    contact,
    q: 1000,
    expiresAt: clock.wallNow() + lifeS * 1000,
    callId: 'c',
    cseq: 1,
    path: [],
    flow: {
      transport: 'UDP',
      source: { address: '192.0.2.1', port: 5060 },
      local: { address: '127.0.0.1', port: 5060 },
    },
    natted: false,
    updatedAt: clock.wallNow(),
    ...extra,
  };
}

function openStore(dir: string, clock: FakeClock, flushIntervalMs = 100, maxBatch = 1000) {
  const node = NodeStore.open(dir);
  return { node, store: new SqliteRegistrationStore({ store: node, clock, flushIntervalMs, maxBatch }) };
}

const rowCount = (node: NodeStore) =>
  (node.db.prepare('SELECT count(*) AS n FROM registrar_bindings').get() as { n: number }).n;

describe('location table', () => {
  test('lookup orders by q-value, then most recently updated', () => {
    const clock = new FakeClock();
    const t = new LocationTable({ clock });
    t.replace('sip:a@x', [
      binding(clock, 'sip:a@x', 'sip:1@h', 60, { q: 500, updatedAt: 1 }),
      binding(clock, 'sip:a@x', 'sip:2@h', 60, { q: 500, updatedAt: 2 }),
      binding(clock, 'sip:a@x', 'sip:3@h', 60, { q: 900 }),
    ]);
    assert.deepEqual(
      t.lookup('sip:a@x').map((b) => b.contact),
      ['sip:3@h', 'sip:2@h', 'sip:1@h'],
    );
  });

  test('expiry is lazy on lookup and one timer per AOR removes what expired (no sweep)', () => {
    const clock = new FakeClock();
    const t = new LocationTable({ clock });
    for (let i = 0; i < 50; i++) {
      t.replace(`sip:u${i}@x`, [
        binding(clock, `sip:u${i}@x`, 'sip:a@h', 10),
        binding(clock, `sip:u${i}@x`, 'sip:b@h', 20),
      ]);
    }
    assert.equal(clock.pending, 50);
    assert.equal(t.bindingCount, 100);
    clock.advance(10_000);
    assert.equal(t.bindingCount, 50);
    assert.equal(clock.pending, 50);
    clock.advance(10_000);
    assert.equal(t.aorCount, 0);
    assert.equal(clock.pending, 0);
  });

  test('a refresh that moves the expiry later keeps the armed timer; it re-arms when it fires', () => {
    const clock = new FakeClock();
    const t = new LocationTable({ clock });
    t.replace('sip:a@x', [binding(clock, 'sip:a@x', 'sip:1@h', 10)]);
    t.replace('sip:a@x', [binding(clock, 'sip:a@x', 'sip:1@h', 30)]);
    assert.equal(clock.pending, 1);
    clock.advance(10_000);
    assert.equal(t.lookup('sip:a@x').length, 1);
    assert.equal(clock.pending, 1);
    clock.advance(20_000);
    assert.equal(t.lookup('sip:a@x').length, 0);
  });
});

describe('SQLite registration store', () => {
  test('writes are batched: nothing reaches the file before the flush interval, then one transaction', async () => {
    const clock = new FakeClock();
    const { node, store } = openStore(':memory:', clock, 100);
    const t = new LocationTable({ clock, store });
    for (let i = 0; i < 20; i++) t.replace(`sip:u${i}@x`, [binding(clock, `sip:u${i}@x`, 'sip:a@h', 600)]);
    assert.equal(rowCount(node), 0);
    assert.equal(store.pending, 20);
    clock.advance(100);
    assert.equal(rowCount(node), 20);
    assert.equal(store.stats.commits, 1);
    await t.close();
    node.close();
  });

  test('a batch of maxBatch writes is committed at once', () => {
    const clock = new FakeClock();
    const { node, store } = openStore(':memory:', clock, 10_000, 5);
    const t = new LocationTable({ clock, store });
    for (let i = 0; i < 5; i++) t.replace(`sip:u${i}@x`, [binding(clock, `sip:u${i}@x`, 'sip:a@h', 600)]);
    assert.equal(rowCount(node), 5);
    node.close();
  });

  test('restart: live bindings are served at once after reopening; expired ones are purged', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crossway-loc-'));
    const clock = new FakeClock();
    {
      const { node, store } = openStore(dir, clock);
      const t = await LocationTable.open({ clock, store });
      t.replace('sip:a@x', [binding(clock, 'sip:a@x', 'sip:1@h', 600, { path: ['<sip:edge;lr>'] })]);
      t.replace('sip:b@x', [binding(clock, 'sip:b@x', 'sip:2@h', 60)]);
      await t.close();
      node.close();
    }
    const later = new FakeClock(0, clock.wallNow() + 120_000);
    const { node, store } = openStore(dir, later);
    const t = await LocationTable.open({ clock: later, store });
    const [a] = t.lookup('sip:a@x');
    assert.equal(a?.expiresIn, 480);
    assert.deepEqual(a?.path, ['<sip:edge;lr>']);
    assert.equal(t.lookup('sip:b@x').length, 0);
    assert.equal(rowCount(node), 1);
    await t.close();
    node.close();
  });

  test('restart: outbound bindings on TCP/TLS flows are dropped (the flow died), others lose only the connection', async () => {
    const clock = new FakeClock();
    const dir = mkdtempSync(join(tmpdir(), 'crossway-loc-'));
    const tcp = {
      transport: 'TCP',
      source: { address: '192.0.2.1', port: 40000 },
      local: { address: '127.0.0.1', port: 5060 },
    };
    {
      const { node, store } = openStore(dir, clock);
      const t = await LocationTable.open({ clock, store });
      t.replace('sip:a@x', [
        binding(clock, 'sip:a@x', 'sip:ob@h', 600, {
          instance: 'urn:x',
          regId: 1,
          flow: { ...tcp, connectionId: 'c1' },
        }),
        binding(clock, 'sip:a@x', 'sip:plain@h', 600, { flow: { ...tcp, connectionId: 'c1' } }),
      ]);
      await t.close();
      node.close();
    }
    const { node, store } = openStore(dir, clock);
    const t = await LocationTable.open({ clock, store });
    const list = t.lookup('sip:a@x');
    assert.deepEqual(
      list.map((b) => [b.contact, b.flow.connectionId]),
      [['sip:plain@h', undefined]],
    );
    await t.close();
    assert.equal(rowCount(node), 1);
    node.close();
  });

  test('a failed commit keeps the writes queued and retries them at the next interval', () => {
    const clock = new FakeClock();
    const { node, store } = openStore(':memory:', clock, 100);
    const t = new LocationTable({ clock, store });
    node.db.exec('ALTER TABLE registrar_bindings RENAME TO registrar_bindings_away');
    t.replace('sip:a@x', [binding(clock, 'sip:a@x', 'sip:1@h', 600)]);
    clock.advance(100);
    assert.equal(store.stats.failures, 1);
    assert.equal(store.pending, 1);
    node.db.exec('ALTER TABLE registrar_bindings_away RENAME TO registrar_bindings');
    clock.advance(100);
    assert.equal(store.pending, 0);
    assert.equal(rowCount(node), 1);
    node.close();
  });

  test('removals reach the store', async () => {
    const clock = new FakeClock();
    const { node, store } = openStore(':memory:', clock);
    const t = new LocationTable({ clock, store });
    t.replace('sip:a@x', [binding(clock, 'sip:a@x', 'sip:1@h', 600), binding(clock, 'sip:a@x', 'sip:2@h', 600)]);
    await store.flush();
    t.replace('sip:a@x', [binding(clock, 'sip:a@x', 'sip:2@h', 600)]);
    await store.flush();
    assert.equal(rowCount(node), 1);
    clock.advance(600_000);
    await store.flush();
    assert.equal(rowCount(node), 0);
    node.close();
  });
});
