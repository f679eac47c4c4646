import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NodeStore } from '../../src/store/database.ts';

test('migrations apply once per module, in order, and survive reopening the store', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-store-'));
  const s1 = NodeStore.open(dir);
  s1.migrate('a', ['CREATE TABLE a1 (x INTEGER)', 'ALTER TABLE a1 ADD COLUMN y TEXT']);
  s1.migrate('b', ['CREATE TABLE b1 (x INTEGER)']);
  s1.db.prepare('INSERT INTO a1 (x, y) VALUES (1, ?)').run('kept');
  s1.close();
  assert.ok(s1.closed);

  const s2 = NodeStore.open(dir);
  // Re-running the same list is a no-op; a third migration appended later is applied.
  s2.migrate('a', ['CREATE TABLE a1 (x INTEGER)', 'ALTER TABLE a1 ADD COLUMN y TEXT', 'CREATE INDEX a1x ON a1 (x)']);
  assert.deepEqual(s2.db.prepare('SELECT x, y FROM a1').all(), [{ x: 1, y: 'kept' }]);
  const versions = s2.db.prepare('SELECT module, version FROM schema_migrations ORDER BY module, version').all();
  assert.deepEqual(versions, [
    { module: 'a', version: 1 },
    { module: 'a', version: 2 },
    { module: 'a', version: 3 },
    { module: 'b', version: 1 },
  ]);
  assert.equal(s2.db.pragma('journal_mode', { simple: true }), 'wal');
  s2.close();
});

test('a failing migration is rolled back and not recorded', () => {
  const s = NodeStore.open(':memory:');
  assert.throws(() => s.migrate('c', ['CREATE TABLE c1 (x INTEGER)', 'CREATE TABLE c2 (x INTEGER); THIS IS NOT SQL']));
  assert.deepEqual(s.db.prepare("SELECT version FROM schema_migrations WHERE module = 'c'").all(), [{ version: 1 }]);
  assert.deepEqual(s.db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'c2'").get(), { n: 0 });
  s.close();
});
