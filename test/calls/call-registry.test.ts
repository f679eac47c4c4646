import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CallRecord, CallRegistry } from '../../src/calls/call-registry.ts';
import { CALL_MIGRATIONS, SqliteCallStore } from '../../src/calls/call-store.ts';
import { NodeStore } from '../../src/store/database.ts';

test('a call goes routing → proceeding → active → ended, with legs, zones and timestamps', () => {
  let now = 1_000;
  const written: CallRecord[] = [];
  const reg = new CallRegistry({ historySize: 2, wallNow: () => now, sink: { write: (r) => written.push(r) } });
  const call = reg.start({
    id: 'c1;t',
    protocol: 'sip',
    from: 'alice@example.com',
    to: 'bob@example.com',
    sourceZone: 'LocalZone',
  })!;
  assert.equal(call.state, 'routing');
  assert.equal(reg.start({ id: 'c1;t', protocol: 'sip', from: 'x', to: 'y', sourceZone: 'LocalZone' }), undefined);
  reg.addLeg('c1;t', 'LocalZone', 'sip:bob@192.0.2.5', 7);
  reg.addLeg('c1;t', 'Partner', 'sip:bob@partner.example');
  assert.equal(call.state, 'proceeding');
  now = 2_000;
  reg.answered('c1;t', 1);
  assert.equal(call.state, 'active');
  assert.equal(call.targetZone, 'Partner');
  assert.equal(reg.activeCount, 1);
  now = 9_000;
  reg.finish('c1;t', 200, 'bye from callee');
  assert.equal(reg.activeCount, 0);
  assert.equal(written.length, 1);
  assert.deepEqual(
    [written[0]!.state, written[0]!.startedAt, written[0]!.answeredAt, written[0]!.endedAt, written[0]!.searchId],
    ['ended', 1_000, 2_000, 9_000, 7],
  );
});

test('an unanswered call fails with its final status; the history ring keeps the newest only', () => {
  const reg = new CallRegistry({ historySize: 2, wallNow: () => 0 });
  for (const [id, st] of [
    ['a', 486],
    ['b', 404],
    ['c', 487],
  ] as const) {
    reg.start({ id, protocol: 'sip', from: 'x', to: 'y', sourceZone: 'DefaultZone' });
    reg.finish(id, st, `${st}`);
  }
  assert.deepEqual(
    reg.history().map((r) => [r.id, r.state, r.status]),
    [
      ['c', 'failed', 487],
      ['b', 'failed', 404],
    ],
  );
  assert.equal(reg.counters.failed, 3);
});

test('call detail records persist in the node store, batched, newest first', () => {
  const store = NodeStore.open(':memory:');
  const sink = new SqliteCallStore(store, { maxRecords: 3 });
  const reg = new CallRegistry({ historySize: 10, wallNow: () => 5, sink });
  for (let i = 0; i < 5; i++) {
    reg.start({ id: `call-${i}`, protocol: 'sip', from: 'a@x', to: 'b@y', sourceZone: 'LocalZone' });
    reg.addLeg(`call-${i}`, 'LocalZone', 'sip:b@192.0.2.1');
    if (i % 2 === 0) reg.answered(`call-${i}`, 0);
    reg.finish(`call-${i}`, i % 2 === 0 ? 200 : 480, i % 2 === 0 ? 'bye from caller' : '480 Temporarily Unavailable');
  }
  const rows = sink.recent(10);
  assert.equal(rows.length, 3, 'trimmed to maxRecords');
  assert.deepEqual(
    rows.map((r) => [r.callId, r.state, r.status, r.cause, r.legs]),
    [
      ['call-4', 'ended', 200, 'bye from caller', 1],
      ['call-3', 'failed', 480, '480 Temporarily Unavailable', 1],
      ['call-2', 'ended', 200, 'bye from caller', 1],
    ],
  );
  sink.close();
  store.close();
});

test('beyond maxActive the oldest call is closed as evicted, so calls whose BYE never comes cannot pile up', () => {
  const reg = new CallRegistry({ historySize: 10, maxActive: 2, wallNow: () => 0 });
  for (const id of ['a', 'b', 'c']) reg.start({ id, protocol: 'sip', from: 'x', to: 'y', sourceZone: 'LocalZone' });
  assert.deepEqual(
    reg.active().map((c) => c.id),
    ['b', 'c'],
  );
  assert.equal(reg.history()[0]!.cause, 'evicted: no BYE seen');
});

test('a call record carries the media relayed per direction, in memory and in the store; an older store gains the columns', () => {
  const store = NodeStore.open(':memory:');
  // A store written before media columns existed: only the first migration applied, one record in it.
  store.migrate('calls', CALL_MIGRATIONS.slice(0, 1));
  store.db
    .prepare(
      'INSERT INTO call_records (call_id, protocol, state, from_alias, to_alias, source_zone, legs, started_at, ' +
        "ended_at, status, cause) VALUES ('old', 'sip', 'ended', 'a', 'b', 'z', 1, 1, 2, 200, 'bye from caller')",
    )
    .run();
  const sink = new SqliteCallStore(store);
  const reg = new CallRegistry({ historySize: 10, wallNow: () => 5, sink });
  const media = {
    fromCaller: { packets: 250, bytes: 43_000, lastAt: 4 },
    fromCallee: { packets: 248, bytes: 42_656, lastAt: 5 },
  };
  reg.start({ id: 'c;ft', protocol: 'sip', from: 'a@x', to: 'b@y', sourceZone: 'LocalZone' });
  reg.addLeg('c;ft', 'tz1', 'sip:b@192.0.2.1');
  reg.answered('c;ft', 0);
  reg.setMedia('c;ft', media);
  reg.setMedia('no-such-call', media);
  reg.finish('c;ft', 200, 'bye from caller');
  reg.start({ id: 'plain', protocol: 'sip', from: 'a@x', to: 'b@y', sourceZone: 'LocalZone' });
  reg.finish('plain', 486, '486 Busy Here');
  assert.deepEqual(reg.history(2)[1]!.media, media);
  assert.equal(reg.history(1)[0]!.media, undefined);
  const rows = sink.recent(3);
  assert.deepEqual(
    rows.map((r) => [
      r.callId,
      r.mediaPacketsFromCaller,
      r.mediaBytesFromCaller,
      r.mediaPacketsFromCallee,
      r.mediaBytesFromCallee,
    ]),
    [
      ['plain', null, null, null, null],
      ['c;ft', 250, 43_000, 248, 42_656],
      ['old', null, null, null, null],
    ],
  );
  sink.close();
  store.close();
});
