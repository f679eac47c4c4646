import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodePer, encodePer } from '../../src/h323/per/codec.ts';
import { PerError } from '../../src/h323/per/errors.ts';
import { NAMED } from '../../src/h323/per/generated/table.ts';
import { codec, DESCRIPTORS, type TypeName } from '../../src/h323/per/schema.ts';
import { decodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';
import { Q931Error } from '../../src/h323/q931/q931.ts';
import { TpktFramer } from '../../src/h323/transport/tpkt.ts';
import { readPcap } from './pcap.ts';
import { arbitraryOf, minimalValue } from './values.ts';

const TOP: TypeName[] = ['RasMessage', 'H323_UserInformation', 'MultimediaSystemControlMessage', 'OpenLogicalChannel'];
const runs = Number(process.env.PER_PROPERTY_RUNS ?? 150);

describe('PER property tests (fast-check, values generated from the descriptors)', () => {
  for (const name of TOP) {
    it(`${name}: decode(encode(v)) = v`, () => {
      const c = codec(name);
      fc.assert(
        fc.property(arbitraryOf(c.desc), (v) => {
          const bytes = c.encode(v as never);
          const back = c.decode(bytes, { maxBytes: 1 << 20 });
          assert.ok(back.ok, back.ok ? '' : back.reason.message);
          assert.deepStrictEqual(back.value, v);
        }),
        { numRuns: runs, seed: 0x5eed },
      );
    });
  }

  it('every named type: its minimal value round-trips', () => {
    let n = 0;
    for (const [name, idx] of Object.entries(NAMED)) {
      const d = DESCRIPTORS[idx]!;
      const v = minimalValue(d);
      const r = decodePer(d, encodePer(d, v, name), name);
      assert.ok(r.ok, `${name}: ${r.ok ? '' : r.reason.message}`);
      assert.deepStrictEqual(r.value, v, name);
      n++;
    }
    assert.ok(n > 450, `${n} named types`);
  });

  it('random bytes never make the decoders throw; failures are PerError with a path', () => {
    for (const name of TOP) {
      const c = codec(name);
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          const r = c.decode(bytes);
          if (!r.ok) {
            assert.ok(r.reason instanceof PerError);
            assert.ok(r.reason.message.startsWith(c.name), r.reason.message);
            assert.ok(!r.reason.detail.startsWith('internal'), r.reason.message);
          }
        }),
        { numRuns: runs * 4, seed: 42 },
      );
    }
  });

  it('mutated capture PDUs (bit flips, truncation, insertion) never make the decoders throw', () => {
    const dir = new URL('../vectors/h323/', import.meta.url).pathname;
    const seeds: Array<{ kind: 'ras' | 'cs' | 'h245'; bytes: Uint8Array }> = [];
    for (const f of ['ndpi-h323.pcap', 'ooh323c-faststart-tunnelled.pcap', 'ooh323c-separate-h245.pcap']) {
      for (const p of readPcap(dir + f)) {
        if (p.proto === 'udp') seeds.push({ kind: 'ras', bytes: p.payload });
        else if (p.payload.length > 4 && p.payload[0] === 3) {
          const r = new TpktFramer().push(p.payload);
          for (const pdu of r.ok ? r.value : []) seeds.push({ kind: pdu[0] === 8 ? 'cs' : 'h245', bytes: pdu });
        }
      }
    }
    assert.ok(seeds.length > 30);
    const ras = codec('RasMessage');
    const h245 = codec('MultimediaSystemControlMessage');
    const mutation = fc.tuple(
      fc.nat(seeds.length - 1),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }),
      fc.option(fc.nat()),
      fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 4 }))),
    );
    fc.assert(
      fc.property(mutation, ([i, flips, cut, ins]) => {
        const s = seeds[i]!;
        let b = Uint8Array.from(s.bytes);
        for (const [pos, bit] of flips) b[pos % b.length]! ^= 1 << bit;
        if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
        if (ins !== null) {
          const at = ins[0] % (b.length + 1);
          b = Uint8Array.from([...b.subarray(0, at), ...ins[1], ...b.subarray(at)]);
        }
        if (s.kind === 'ras' || s.kind === 'h245') {
          const r = (s.kind === 'ras' ? ras : h245).decode(b);
          if (!r.ok) {
            assert.ok(r.reason instanceof PerError);
            assert.ok(!r.reason.detail.startsWith('internal'), r.reason.message);
          }
        } else {
          const r = decodeCallSignalling(b);
          if (!r.ok) {
            assert.ok(r.reason instanceof Q931Error);
            assert.ok(r.reason.path.startsWith('Q931'), r.reason.message);
            assert.ok(!r.reason.detail.startsWith('internal'), r.reason.message);
          }
        }
      }),
      { numRuns: runs * 10, seed: 7 },
    );
  });
});
