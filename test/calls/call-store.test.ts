/**
 * The stored call detail record keeps a call's media path (codecs each side sent, relay ports facing each side) across
 * a restart of the store, and a database written before those columns opens with its rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type CallMediaPath, CallRegistry } from '../../src/calls/call-registry.ts';
import { CALL_MIGRATIONS, SqliteCallStore } from '../../src/calls/call-store.ts';
import { NodeStore } from '../../src/store/database.ts';

const H323_PATH: CallMediaPath = {
  codecs: { caller: ['audio:g711Ulaw', 'video:h263'], callee: ['audio:g711Ulaw'] },
  relay: [
    { session: 1, address: '192.0.2.1', caller: { rtp: 36_000, rtcp: 36_001 }, callee: { rtp: 36_002, rtcp: 36_003 } },
    { session: 2, address: '192.0.2.1', caller: { rtp: 36_004, rtcp: 36_005 }, callee: { rtp: 36_006, rtcp: 36_007 } },
  ],
};

const SIP_PATH: CallMediaPath = {
  codecs: { caller: ['audio:PCMU', 'audio:telephone-event'], callee: ['audio:PCMU'] },
  relay: [
    {
      session: 0,
      address: '203.0.113.1',
      calleeAddress: '10.0.0.1',
      caller: { rtp: 40_000, rtcp: 40_001 },
      callee: { rtp: 40_002, rtcp: 40_003 },
    },
  ],
};

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-call-store-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a record keeps its media path through a store restart; a call without one reads null', () => {
  withDir((dir) => {
    let store = NodeStore.open(dir);
    let sink = new SqliteCallStore(store, { flushMs: 60_000 });
    const reg = new CallRegistry({ historySize: 10, wallNow: () => 1_000, sink });
    for (const [id, protocol, path] of [
      ['h323:1', 'h323', H323_PATH],
      ['sip-1;a', 'sip', SIP_PATH],
      ['sip-2;b', 'sip', undefined],
    ] as const) {
      reg.start({ id, protocol, from: 'a', to: 'b', sourceZone: 'LocalZone' });
      reg.addLeg(id, 'LocalZone', 'x');
      reg.answered(id, 0);
      if (path) reg.setMediaPath(id, path);
      reg.finish(id, 200, 'bye from caller');
    }
    // closing flushes the queue (the timer is a minute away): nothing is lost at a clean stop
    sink.close();
    store.close();

    store = NodeStore.open(dir);
    sink = new SqliteCallStore(store);
    const rows = sink.recent(10);
    assert.deepEqual(
      rows.map((r) => [r.callId, r.protocol, r.mediaPath]),
      [
        ['sip-2;b', 'sip', null],
        ['sip-1;a', 'sip', SIP_PATH],
        ['h323:1', 'h323', H323_PATH],
      ],
    );
    // the columns as written: codecs comma-separated, relay ports as JSON
    const raw = store.db
      .prepare(
        "SELECT codecs_caller AS c, codecs_callee AS d, media_relay AS r FROM call_records WHERE call_id = 'h323:1'",
      )
      .get() as { c: string; d: string; r: string };
    assert.equal(raw.c, 'audio:g711Ulaw,video:h263');
    assert.equal(raw.d, 'audio:g711Ulaw');
    assert.deepEqual(JSON.parse(raw.r), H323_PATH.relay);
    sink.close();
    store.close();
  });
});

test('a database from before the media-path columns opens, keeps its rows and takes new records with a path', () => {
  withDir((dir) => {
    let store = NodeStore.open(dir);
    store.migrate('calls', CALL_MIGRATIONS.slice(0, 2));
    store.db
      .prepare(
        'INSERT INTO call_records (call_id, protocol, state, from_alias, to_alias, source_zone, legs, started_at, ' +
          'ended_at, status, cause, media_packets_from_caller, media_bytes_from_caller, media_packets_from_callee, ' +
          "media_bytes_from_callee) VALUES ('old', 'sip', 'ended', 'a', 'b', 'z', 1, 1, 2, 200, 'bye from caller', " +
          '10, 1720, 9, 1548)',
      )
      .run();
    store.close();

    store = NodeStore.open(dir);
    const sink = new SqliteCallStore(store);
    const versions = store.db
      .prepare("SELECT version FROM schema_migrations WHERE module = 'calls' ORDER BY version")
      .all()
      .map((r) => (r as { version: number }).version);
    assert.deepEqual(versions, [1, 2, 3]);
    const reg = new CallRegistry({ historySize: 10, wallNow: () => 5, sink });
    reg.start({ id: 'new', protocol: 'h323', from: 'a', to: 'b', sourceZone: 'h323' });
    reg.setMediaPath('new', H323_PATH);
    reg.finish('new', 0, 'not connected');
    const [fresh, old] = sink.recent(5);
    assert.equal(fresh?.callId, 'new');
    assert.deepEqual(fresh?.mediaPath, H323_PATH);
    assert.equal(old?.callId, 'old');
    assert.equal(old?.mediaPath, null);
    assert.deepEqual(
      [old?.mediaPacketsFromCaller, old?.mediaBytesFromCaller, old?.mediaPacketsFromCallee, old?.mediaBytesFromCallee],
      [10, 1720, 9, 1548],
    );
    sink.close();
    store.close();
  });
});

test('a relay column that is not what the store writes reads as no relay entry, never a throw', () => {
  const store = NodeStore.open(':memory:');
  const sink = new SqliteCallStore(store);
  const insert = store.db.prepare(
    'INSERT INTO call_records (call_id, protocol, state, from_alias, to_alias, source_zone, legs, started_at, ' +
      "ended_at, status, cause, codecs_caller, codecs_callee, media_relay) VALUES (?, 'sip', 'ended', 'a', 'b', 'z', " +
      "1, 1, 2, 200, 'x', 'audio:PCMU', '', ?)",
  );
  insert.run('not-json', '{oops');
  insert.run('not-array', '{"session":1}');
  insert.run('bad-entry', '[{"session":"one","address":"a","caller":{"rtp":1,"rtcp":2},"callee":{"rtp":3,"rtcp":4}}]');
  for (const r of sink.recent(3)) {
    assert.deepEqual(r.mediaPath, { codecs: { caller: ['audio:PCMU'], callee: [] }, relay: [] }, r.callId);
  }
  sink.close();
  store.close();
});
