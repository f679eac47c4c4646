import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  formatUri,
  getCallId,
  getContacts,
  getContentLength,
  getContentType,
  getCSeq,
  getExpires,
  getFrom,
  getFromTag,
  getHeaders,
  getMaxForwards,
  getRecordRoutes,
  getRequestUri,
  getRoutes,
  getTo,
  getTopVia,
  getToTag,
  getVias,
  parseAuthorization,
  parseMessage,
  parseUri,
  type SipMessage,
  type SipUri,
  StreamFramer,
  serializeMessage,
  uriEquals,
} from '../../../src/sip/message/index.ts';

const corpus: Buffer[] = [];
for (const d of ['rfc4475', 'rfc5118']) {
  const dir = new URL(`../../vectors/sip/${d}/`, import.meta.url);
  for (const f of readdirSync(dir).sort()) if (f !== 'index.tsv') corpus.push(readFileSync(new URL(f, dir)));
}

/** Every accessor on a parsed message; none may throw. */
function touch(m: SipMessage): void {
  getVias(m);
  getTopVia(m);
  getFrom(m);
  getTo(m);
  getFromTag(m);
  getToTag(m);
  getCallId(m);
  getCSeq(m);
  getMaxForwards(m);
  getContacts(m);
  getRoutes(m);
  getRecordRoutes(m);
  getExpires(m);
  getContentLength(m);
  getContentType(m);
  for (const v of getHeaders(m, 'authorization')) parseAuthorization(v);
  getHeaders(m, 'accept');
  if (m.kind === 'request') getRequestUri(m);
}

const strip = (m: SipMessage) => ({ ...m, headers: m.headers.filter((h) => !/^(content-length|l)$/i.test(h.name)) });

/** serialize(parse(x)) parses to the same structure, and serializing again gives the same bytes. */
function checkStable(m: SipMessage): void {
  const s1 = serializeMessage(m);
  const again = parseMessage(s1);
  if (!again.ok) assert.fail(`reparse failed: ${again.reason.reason}`);
  assert.deepEqual(strip(again.value), strip(m));
  assert.deepEqual(serializeMessage(again.value), s1);
}

const mutation = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({
    op: fc.constant('special' as const),
    at: fc.nat(),
    s: fc.constantFrom('\r\n', ' ', ',', ';', '"', '<', '>', ':', '\r\n ', '%', '[', '@', '\0', '\r'),
  }),
);

function mutate(buf: Buffer, ms: MutationT[]): Buffer {
  let b = Buffer.from(buf);
  for (const m of ms) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.op === 'flip') b[at]! ^= 1 << m.bit;
    else if (m.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at)]);
    else if (m.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.n)]);
    else b = Buffer.concat([b.subarray(0, at), Buffer.from(m.s, 'latin1'), b.subarray(at)]);
  }
  return b;
}
type MutationT =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'insert'; at: number; byte: number }
  | { op: 'delete'; at: number; n: number }
  | { op: 'special'; at: number; s: string };

test('parseMessage never throws on arbitrary bytes (datagram and stream)', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      const b = Buffer.from(bytes);
      for (const transport of ['datagram', 'stream'] as const) {
        const r = parseMessage(b, undefined, { transport });
        if (r.ok) touch(r.value);
        else assert.match(r.reason.reason, /^[\x20-\x7e]+$/);
      }
    }),
    { numRuns: 2000 },
  );
});

test('parseMessage never throws on mutated torture messages; what parses is usable and stable', () => {
  let accepted = 0;
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: corpus.length - 1 }),
      fc.array(mutation, { minLength: 1, maxLength: 6 }),
      (i, ms) => {
        const b = mutate(corpus[i]!, ms as MutationT[]);
        const r = parseMessage(b);
        if (!r.ok) {
          assert.match(r.reason.reason, /^[\x20-\x7e]+$/);
          if (r.reason.partial) touch(r.reason.partial);
          return;
        }
        accepted++;
        touch(r.value);
        checkStable(r.value);
      },
    ),
    { numRuns: 3000 },
  );
  assert.ok(accepted > 100, `only ${accepted} mutated messages parsed: the property is not exercised`);
});

test('parse ∘ serialize ∘ parse is stable on every torture message that parses', () => {
  let n = 0;
  for (const b of corpus) {
    const r = parseMessage(b);
    if (!r.ok) continue;
    checkStable(r.value);
    n++;
  }
  assert.equal(n, 39, 'every message the indexes call valid (and the three liberal ones) parses');
});

test('StreamFramer never throws on arbitrary chunked bytes', () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
      const f = new StreamFramer({ maxMessageBytes: 2048 });
      for (const c of chunks) {
        f.push(Buffer.from(c));
        for (const fr of f.frames()) {
          if (fr.type === 'message') parseMessage(fr.bytes, undefined, { transport: 'stream' });
        }
      }
    }),
    { numRuns: 1000 },
  );
});

const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 12 });
const params = fc.array(fc.tuple(text, fc.option(fc.string({ unit: 'binary', maxLength: 12 }), { nil: null })), {
  maxLength: 4,
});
const host = fc.oneof(
  fc.domain(),
  fc.ipV4(),
  fc.ipV6().filter((h) => !h.includes('.') || /^[0-9a-f:]*:(\d+\.){3}\d+$/i.test(h)),
);
const sipUri: fc.Arbitrary<SipUri> = fc
  .record({
    scheme: fc.constantFrom('sip' as const, 'sips' as const),
    user: fc.option(text, { nil: undefined }),
    password: fc.option(fc.string({ unit: 'binary', maxLength: 8 }), { nil: undefined }),
    host,
    port: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
    params,
    headers: fc.array(fc.tuple(text, fc.string({ unit: 'binary', maxLength: 12 })), { maxLength: 3 }),
  })
  .map((u) => {
    const out: SipUri = { scheme: u.scheme, host: u.host.toLowerCase(), params: u.params, headers: u.headers };
    if (u.user !== undefined) {
      out.user = u.user;
      if (u.password !== undefined) out.password = u.password;
    }
    if (u.port !== undefined) out.port = u.port;
    return out;
  });

test('URIs round-trip through formatUri / parseUri and stay equal per §19.1.4', () => {
  fc.assert(
    fc.property(sipUri, (u) => {
      const s = formatUri(u);
      const r = parseUri(s);
      if (!r.ok) assert.fail(`${s}: ${r.reason}`);
      assert.deepEqual(r.value, u);
      assert.equal(formatUri(r.value), s);
      assert.ok(uriEquals(r.value, u));
    }),
    { numRuns: 2000 },
  );
});

test('parseUri never throws on arbitrary strings', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      parseUri(s);
      parseUri(`sip:${s}`);
      parseUri(`sip:a@[${s}]`);
    }),
    { numRuns: 2000 },
  );
});
