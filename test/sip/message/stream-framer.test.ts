import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { type Frame, parseMessage, StreamFramer } from '../../../src/sip/message/index.ts';

function message(n: number, body: string): Buffer {
  return Buffer.from(
    [
      `MESSAGE sip:bob@example.com SIP/2.0`,
      `Via: SIP/2.0/TCP a.example.com;branch=z9hG4bK${n}`,
      'Max-Forwards: 70',
      'To: <sip:bob@example.com>',
      `From: <sip:alice@example.com>;tag=${n}`,
      `Call-ID: c${n}`,
      `CSeq: ${n} MESSAGE`,
      n % 2 === 0 ? `Content-Length: ${Buffer.byteLength(body)}` : `l:${Buffer.byteLength(body)}`,
      '',
      body,
    ].join('\r\n'),
  );
}

const M1 = message(1, 'hello\r\n\r\nwith an empty line inside');
const M2 = message(2, '');
const M3 = message(3, 'x'.repeat(300));
const CRLF = Buffer.from('\r\n');
// M1, ping, M2, pong (a lone CRLF before a message), M3, ping
const STREAM = Buffer.concat([M1, CRLF, CRLF, M2, CRLF, M3, CRLF, CRLF]);

type Summary = string;
function summarize(frames: Frame[]): Summary[] {
  const out: Summary[] = [];
  for (const f of frames) {
    if (f.type === 'message') out.push(`msg:${f.bytes.toString('latin1')}`);
    else if (f.type === 'error') out.push(`error:${f.failure.reason}`);
    // A CRLF reported as pong at the end of what was received, then completed into a ping: a ping.
    else if (f.type === 'ping' && out.at(-1) === 'pong') out[out.length - 1] = 'ping';
    else out.push(f.type);
  }
  return out;
}

function feed(chunks: Buffer[]): Frame[] {
  const framer = new StreamFramer();
  const frames: Frame[] = [];
  for (const c of chunks) {
    framer.push(c);
    for (const f of framer.frames()) frames.push(f);
  }
  assert.equal(framer.buffered, 0);
  return frames;
}

const EXPECTED = [
  `msg:${M1.toString('latin1')}`,
  'ping',
  `msg:${M2.toString('latin1')}`,
  'pong',
  `msg:${M3.toString('latin1')}`,
  'ping',
];

test('one chunk with several messages and keepalives', () => {
  const frames = feed([STREAM]);
  assert.deepEqual(summarize(frames), EXPECTED);
  assert.deepEqual(
    frames.map((f) => f.type),
    ['message', 'ping', 'message', 'pong', 'message', 'ping'],
  );
  for (const f of frames)
    if (f.type === 'message') assert.ok(parseMessage(f.bytes, undefined, { transport: 'stream' }).ok);
});

test('split at every byte offset yields the same frames', () => {
  for (let k = 0; k <= STREAM.length; k++) {
    const frames = feed([STREAM.subarray(0, k), STREAM.subarray(k)]);
    assert.deepEqual(summarize(frames), EXPECTED, `split at ${k}`);
  }
});

test('split at every pair of offsets around the keepalives and body boundaries', () => {
  const a = M1.length - 3;
  for (let k = a; k < a + 12; k++) {
    for (let j = k; j <= STREAM.length; j += 7) {
      const frames = feed([STREAM.subarray(0, k), STREAM.subarray(k, j), STREAM.subarray(j)]);
      assert.deepEqual(summarize(frames), EXPECTED, `split at ${k},${j}`);
    }
  }
});

test('one byte at a time', () => {
  const chunks = Array.from(STREAM, (b) => Buffer.from([b]));
  assert.deepEqual(summarize(feed(chunks)), EXPECTED);
});

test('random chunkings (fast-check)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: STREAM.length }), { maxLength: 20 }), (cuts) => {
      const points = [...new Set(cuts)].sort((x, y) => x - y);
      const chunks: Buffer[] = [];
      let prev = 0;
      for (const p of points) {
        chunks.push(STREAM.subarray(prev, p));
        prev = p;
      }
      chunks.push(STREAM.subarray(prev));
      assert.deepEqual(summarize(feed(chunks)), EXPECTED);
    }),
    { numRuns: 300 },
  );
});

test('a message inside one chunk is a view (no copy); across chunks it is copied once', () => {
  const framer = new StreamFramer();
  const big = Buffer.concat([M1, M2]);
  framer.push(big);
  const f = framer.pull();
  assert.ok(f?.type === 'message');
  assert.equal(f.bytes.buffer, big.buffer);
  const g = new StreamFramer();
  g.push(M1.subarray(0, 10));
  g.push(M1.subarray(10));
  const h = g.pull();
  assert.ok(h?.type === 'message');
  assert.notEqual(h.bytes.buffer, M1.buffer);
  assert.deepEqual(h.bytes, M1);
});

test('missing Content-Length on a stream → error, then the framer is closed', () => {
  const framer = new StreamFramer();
  framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n'));
  const f = framer.pull();
  assert.ok(f?.type === 'error');
  assert.equal(f.failure.code, 'bad-content-length');
  assert.match(f.failure.reason, /Missing Content-Length/);
  assert.ok(framer.closed);
  framer.push(M1);
  assert.equal(framer.pull(), undefined);
});

test('malformed or conflicting Content-Length → error', () => {
  for (const cl of ['Content-Length: -1', 'Content-Length: abc', 'Content-Length: 1\r\nl: 2']) {
    const framer = new StreamFramer();
    framer.push(Buffer.from(`OPTIONS sip:a@b SIP/2.0\r\n${cl}\r\n\r\nxx`));
    const f = framer.pull();
    assert.ok(f?.type === 'error', cl);
    assert.equal(f.failure.code, 'bad-content-length');
  }
});

test('oversize: Content-Length beyond the limit, and a header block that never ends', () => {
  const a = new StreamFramer({ maxMessageBytes: 1024 });
  a.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 5000\r\n\r\n'));
  const f = a.pull();
  assert.ok(f?.type === 'error');
  assert.equal(f.failure.status, 413);
  const b = new StreamFramer({ maxMessageBytes: 1024 });
  let err: Frame | undefined;
  for (let i = 0; i < 200 && err === undefined; i++) {
    b.push(Buffer.from(`X-Header-${i}: ${'v'.repeat(20)}\r\n`));
    err = b.pull();
  }
  assert.ok(err?.type === 'error');
  assert.equal(err.failure.code, 'too-large');
  assert.ok(b.closed);
});

test('a body larger than the header block is waited for without rescanning', () => {
  const framer = new StreamFramer();
  const body = 'b'.repeat(20_000);
  const m = message(4, body);
  const chunks = Array.from({ length: Math.ceil(m.length / 7) }, (_, i) => m.subarray(i * 7, i * 7 + 7));
  const t0 = performance.now();
  const frames: Frame[] = [];
  for (const c of chunks) {
    framer.push(c);
    for (const f of framer.frames()) frames.push(f);
  }
  assert.equal(frames.length, 1);
  assert.deepEqual(frames[0]!.type === 'message' && frames[0]!.bytes, m);
  assert.ok(performance.now() - t0 < 2000);
});
