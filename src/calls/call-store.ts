import type { NodeStore } from '../store/database.ts';
import type { CallMediaPath, CallRecord, CallRecordSink } from './call-registry.ts';

/** Migrations of the `calls` module (append only). */
export const CALL_MIGRATIONS: readonly string[] = [
  `CREATE TABLE call_records (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     call_id TEXT NOT NULL,
     protocol TEXT NOT NULL,
     state TEXT NOT NULL,
     from_alias TEXT NOT NULL,
     to_alias TEXT NOT NULL,
     source_zone TEXT NOT NULL,
     target_zone TEXT,
     legs INTEGER NOT NULL,
     search_id INTEGER,
     started_at INTEGER NOT NULL,
     answered_at INTEGER,
     ended_at INTEGER NOT NULL,
     status INTEGER NOT NULL,
     cause TEXT NOT NULL
   );
   CREATE INDEX call_records_ended ON call_records (ended_at);`,
  // Media relayed per direction (null: the call was not anchored).
  `ALTER TABLE call_records ADD COLUMN media_packets_from_caller INTEGER;
   ALTER TABLE call_records ADD COLUMN media_bytes_from_caller INTEGER;
   ALTER TABLE call_records ADD COLUMN media_packets_from_callee INTEGER;
   ALTER TABLE call_records ADD COLUMN media_bytes_from_callee INTEGER;`,
  // The media path (null: not known): codecs each side sent, comma-separated (`audio:PCMU,video:H264`), and the
  // relay's ports per RTP session as JSON (`[{"session":1,"address":…,"caller":{"rtp":…,"rtcp":…},"callee":…}]`).
  `ALTER TABLE call_records ADD COLUMN codecs_caller TEXT;
   ALTER TABLE call_records ADD COLUMN codecs_callee TEXT;
   ALTER TABLE call_records ADD COLUMN media_relay TEXT;`,
];

/** Longest media-path text stored per column (a record stays small whatever a call negotiated). */
const MAX_MEDIA_TEXT = 4096;

/** A stored call detail record. */
export interface StoredCallRecord {
  id: number;
  callId: string;
  protocol: string;
  state: string;
  from: string;
  to: string;
  sourceZone: string;
  targetZone: string | null;
  legs: number;
  startedAt: number;
  answeredAt: number | null;
  endedAt: number;
  status: number;
  cause: string;
  mediaPacketsFromCaller: number | null;
  mediaBytesFromCaller: number | null;
  mediaPacketsFromCallee: number | null;
  mediaBytesFromCallee: number | null;
  /** Codecs each side sent and the relay's ports facing each side (null: not anchored, or written before the column). */
  mediaPath: CallMediaPath | null;
}

interface StoredRow extends Omit<StoredCallRecord, 'mediaPath'> {
  codecsCaller: string | null;
  codecsCallee: string | null;
  mediaRelay: string | null;
}

const isPair = (p: unknown): boolean =>
  typeof p === 'object' &&
  p !== null &&
  Number.isInteger((p as { rtp?: unknown }).rtp) &&
  Number.isInteger((p as { rtcp?: unknown }).rtcp);

/** The relay column read back; a value that is not what `write` stores reads as no relay entry (never a throw). */
function parseRelay(text: string | null): CallMediaPath['relay'] {
  if (!text) return [];
  try {
    const v: unknown = JSON.parse(text);
    if (!Array.isArray(v)) return [];
    return v.filter(
      (r) =>
        typeof r === 'object' &&
        r !== null &&
        Number.isInteger(r.session) &&
        typeof r.address === 'string' &&
        isPair(r.caller) &&
        isPair(r.callee),
    );
  } catch {
    return [];
  }
}

function fromRow(row: StoredRow): StoredCallRecord {
  const { codecsCaller, codecsCallee, mediaRelay, ...rest } = row;
  const list = (t: string | null) => (t ? t.split(',').filter((c) => c !== '') : []);
  const mediaPath =
    codecsCaller === null && codecsCallee === null && mediaRelay === null
      ? null
      : { codecs: { caller: list(codecsCaller), callee: list(codecsCallee) }, relay: parseRelay(mediaRelay) };
  return { ...rest, mediaPath };
}

/** The media path's columns for `write` (nulls when the call has none). */
function mediaColumns(p: CallMediaPath | undefined): [string | null, string | null, string | null] {
  if (!p) return [null, null, null];
  const cut = (t: string) =>
    t.length > MAX_MEDIA_TEXT ? t.slice(0, Math.max(0, t.lastIndexOf(',', MAX_MEDIA_TEXT))) : t;
  let relay = JSON.stringify(p.relay);
  // too many sessions to keep: the first ones that fit
  for (let n = p.relay.length - 1; relay.length > MAX_MEDIA_TEXT && n >= 0; n--) {
    relay = JSON.stringify(p.relay.slice(0, n));
  }
  return [cut(p.codecs.caller.join(',')), cut(p.codecs.callee.join(',')), relay];
}

/**
 * Call detail records in the node's SQLite store. Writes are batched: records queue in memory and go to the database
 * in one transaction per `flushMs` (or at 500 queued), so a call burst costs one commit, not one per call; `flush()`
 * writes what is queued. At most `maxRecords` rows are kept (oldest deleted at flush).
 */
export class SqliteCallStore implements CallRecordSink {
  readonly #store: NodeStore;
  readonly #queue: CallRecord[] = [];
  readonly #insert;
  readonly #trim;
  readonly #maxRecords: number;
  #timer: NodeJS.Timeout | undefined;
  readonly #flushMs: number;

  constructor(store: NodeStore, opts: { maxRecords?: number; flushMs?: number } = {}) {
    this.#store = store;
    store.migrate('calls', CALL_MIGRATIONS);
    this.#maxRecords = opts.maxRecords ?? 100_000;
    this.#flushMs = opts.flushMs ?? 1000;
    this.#insert = store.db.prepare(
      'INSERT INTO call_records (call_id, protocol, state, from_alias, to_alias, source_zone, target_zone, legs, ' +
        'search_id, started_at, answered_at, ended_at, status, cause, media_packets_from_caller, ' +
        'media_bytes_from_caller, media_packets_from_callee, media_bytes_from_callee, codecs_caller, codecs_callee, ' +
        'media_relay) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.#trim = store.db.prepare('DELETE FROM call_records WHERE id <= (SELECT MAX(id) FROM call_records) - ?');
  }

  write(record: CallRecord): void {
    this.#queue.push(record);
    if (this.#queue.length >= 500) this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), this.#flushMs);
      this.#timer.unref();
    }
  }

  /** Writes every queued record now (one transaction). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#queue.length === 0 || this.#store.closed) return;
    const batch = this.#queue.splice(0);
    this.#store.db.transaction(() => {
      for (const r of batch) {
        this.#insert.run(
          r.id,
          r.protocol,
          r.state,
          r.from,
          r.to,
          r.sourceZone,
          r.targetZone ?? null,
          r.legs.length,
          r.searchId ?? null,
          r.startedAt,
          r.answeredAt ?? null,
          r.endedAt ?? r.startedAt,
          r.status ?? 0,
          r.cause ?? '',
          r.media?.fromCaller.packets ?? null,
          r.media?.fromCaller.bytes ?? null,
          r.media?.fromCallee.packets ?? null,
          r.media?.fromCallee.bytes ?? null,
          ...mediaColumns(r.mediaPath),
        );
      }
      this.#trim.run(this.#maxRecords);
    })();
  }

  /** The most recent records, newest first. */
  recent(limit = 50): StoredCallRecord[] {
    this.flush();
    return this.#store.db
      .prepare(
        'SELECT id, call_id AS callId, protocol, state, from_alias AS "from", to_alias AS "to", ' +
          'source_zone AS sourceZone, target_zone AS targetZone, legs, started_at AS startedAt, ' +
          'answered_at AS answeredAt, ended_at AS endedAt, status, cause, ' +
          'media_packets_from_caller AS mediaPacketsFromCaller, media_bytes_from_caller AS mediaBytesFromCaller, ' +
          'media_packets_from_callee AS mediaPacketsFromCallee, media_bytes_from_callee AS mediaBytesFromCallee, ' +
          'codecs_caller AS codecsCaller, codecs_callee AS codecsCallee, media_relay AS mediaRelay ' +
          'FROM call_records ORDER BY id DESC LIMIT ?',
      )
      .all(limit)
      .map((row) => fromRow(row as StoredRow));
  }

  close(): void {
    this.flush();
  }
}
