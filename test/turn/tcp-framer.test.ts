import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { StunBuilder } from '../../src/stun/builder.ts';
import { Attr, Method, StunClass } from '../../src/stun/constants.ts';
import { channelData } from '../../src/turn/client.ts';
import { TcpFramer } from '../../src/turn/tcp-framer.ts';

const stun = new StunBuilder(Method.binding, StunClass.request, Buffer.alloc(12, 3))
  .add(Attr.SOFTWARE, Buffer.from('split me'))
  .finish({ fingerprint: true });
const cd1 = channelData(0x4001, Buffer.from('abcde'), true); // 5 bytes + 3 padding
const cd2 = channelData(0x4002, Buffer.from('wxyz'), true);
const stream = Buffer.concat([stun, cd1, stun, cd2]);
const expected = [stun, cd1.subarray(0, 9), stun, cd2];

describe('TURN over TCP framing (RFC 8656 §12.5)', () => {
  it('yields the same frames for every split point of the stream', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (const j of [i, Math.min(stream.length, i + 1), Math.min(stream.length, i + 17)]) {
        const framer = new TcpFramer();
        const frames: Buffer[] = [];
        for (const part of [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)]) {
          const r = framer.push(part, (f) => frames.push(Buffer.from(f)));
          assert.ok(r.ok);
        }
        assert.deepEqual(frames, expected, `split at ${i}/${j}`);
      }
    }
  });

  it('refuses a stream that is neither STUN nor ChannelData', () => {
    for (const garbage of [Buffer.from('160301020001fc0303', 'hex'), Buffer.from('ffffffff', 'hex')]) {
      const framer = new TcpFramer();
      const r = framer.push(garbage, () => assert.fail('no frame expected'));
      assert.equal(r.ok, false, garbage.toString('hex'));
    }
  });

  it('waits for a whole frame before handing it out', () => {
    const framer = new TcpFramer();
    let n = 0;
    assert.ok(framer.push(stun.subarray(0, 25), () => n++).ok);
    assert.equal(n, 0);
    assert.ok(framer.push(stun.subarray(25), () => n++).ok);
    assert.equal(n, 1);
  });

  it('never throws on arbitrary bytes in arbitrary chunks, and stops at the first bad frame (fuzz)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 12 }), (chunks) => {
        const framer = new TcpFramer();
        for (const c of chunks) {
          const r = framer.push(Buffer.from(c), (f) => assert.ok(f.length >= 4));
          if (!r.ok) return true;
        }
        return true;
      }),
      { numRuns: 3000 },
    );
  });
});
