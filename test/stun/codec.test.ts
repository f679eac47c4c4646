import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToIp, canonicalIp, ipToBytes } from '../../src/stun/address.ts';
import {
  encodeAddress,
  encodeErrorCode,
  encodePasswordAlgorithms,
  readAddress,
  readErrorCode,
  readPasswordAlgorithms,
  readText,
  readUnknownAttributes,
} from '../../src/stun/attributes.ts';
import { StunBuilder } from '../../src/stun/builder.ts';
import { Attr, classOf, MAGIC_COOKIE, Method, messageType, methodOf, StunClass } from '../../src/stun/constants.ts';
import {
  fingerprintOver,
  longTermKey,
  userHash,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from '../../src/stun/integrity.ts';
import { decodeStun, findAttribute, looksLikeStun } from '../../src/stun/message.ts';

const tid = Buffer.from('0102030405060708090a0b0c', 'hex');

describe('STUN codec', () => {
  it('composes and splits message types (RFC 8489 §5)', () => {
    assert.equal(messageType(Method.binding, StunClass.request), 0x0001);
    assert.equal(messageType(Method.binding, StunClass.success), 0x0101);
    assert.equal(messageType(Method.allocate, StunClass.error), 0x0113);
    assert.equal(messageType(Method.data, StunClass.indication), 0x0017);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfff }), fc.integer({ min: 0, max: 3 }), (m, c) => {
        const t = messageType(m, c);
        return methodOf(t) === m && classOf(t) === c && t < 0x4000;
      }),
    );
  });

  it('round-trips XOR addresses for IPv4 and IPv6', () => {
    for (const address of ['192.0.2.1', '2001:db8::1', '::1', 'fe80::1:2:3:4', '2001:db8:0:0:1:0:0:1']) {
      const a = { family: (address.includes(':') ? 6 : 4) as 4 | 6, address: canonicalIp(address), port: 40000 };
      const msg = new StunBuilder(Method.binding, StunClass.success, tid)
        .add(Attr.XOR_MAPPED_ADDRESS, encodeAddress(a, true, tid))
        .add(Attr.ALTERNATE_SERVER, encodeAddress(a, false, tid))
        .finish();
      const d = decodeStun(msg);
      assert.ok(d.ok);
      assert.deepEqual(readAddress(d.value, findAttribute(d.value, Attr.XOR_MAPPED_ADDRESS)!, true), {
        ok: true,
        value: a,
      });
      assert.deepEqual(readAddress(d.value, findAttribute(d.value, Attr.ALTERNATE_SERVER)!, false), {
        ok: true,
        value: a,
      });
    }
    assert.equal(bytesToIp(ipToBytes('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
    assert.equal(canonicalIp('::ffff:10.1.2.3'), '10.1.2.3');
  });

  it('adds MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT that verify', () => {
    const key = longTermKey('alice', 'crossway', 'secret');
    const key256 = longTermKey('alice', 'crossway', 'secret', 2);
    assert.equal(key.length, 16);
    assert.equal(key256.length, 32);
    const msg = new StunBuilder(Method.allocate, StunClass.request, tid)
      .add(Attr.USERNAME, Buffer.from('alice'))
      .add(Attr.ERROR_CODE, encodeErrorCode(438, 'Stale Nonce'))
      .add(Attr.PASSWORD_ALGORITHMS, encodePasswordAlgorithms([{ algorithm: 2, parameters: Buffer.alloc(0) }]))
      .finish({ integrityKey: key, integritySha256Key: key256, fingerprint: true });
    const d = decodeStun(msg);
    assert.ok(d.ok);
    assert.equal(verifyMessageIntegrity(d.value, key), true);
    assert.equal(verifyMessageIntegritySha256(d.value, key256), true);
    assert.equal(verifyMessageIntegritySha256(d.value, key), false);
    assert.equal(verifyFingerprint(d.value), true);
    assert.deepEqual(readErrorCode(d.value, findAttribute(d.value, Attr.ERROR_CODE)!), {
      ok: true,
      value: { code: 438, reason: 'Stale Nonce' },
    });
    const algs = readPasswordAlgorithms(d.value, findAttribute(d.value, Attr.PASSWORD_ALGORITHMS)!);
    assert.ok(algs.ok);
    assert.equal(algs.value[0]!.algorithm, 2);
    assert.equal(userHash('alice', 'crossway').length, 32);
  });

  it('ignores attributes after MESSAGE-INTEGRITY except MI-SHA256 and FINGERPRINT (RFC 8489 §14.5)', () => {
    const raw = new StunBuilder(Method.binding, StunClass.request, tid).finish({ integrityKey: Buffer.from('k') });
    const extra = Buffer.from('80220004616263640000000000000000', 'hex').subarray(0, 8);
    const msg = Buffer.concat([raw, extra]);
    msg.writeUInt16BE(msg.length - 20, 2);
    const d = decodeStun(msg);
    assert.ok(d.ok);
    assert.equal(d.value.attributes.length, 1);
  });

  it('ignores attributes after MESSAGE-INTEGRITY-SHA256 except FINGERPRINT (RFC 8489 §9), integrity still verifies', () => {
    const key = Buffer.from('k');
    const raw = new StunBuilder(Method.binding, StunClass.request, tid)
      .add(Attr.SOFTWARE, Buffer.from('abc'))
      .finish({ integritySha256Key: key });
    // SOFTWARE and MESSAGE-INTEGRITY after MI-SHA256 (both ignored), then FINGERPRINT over the whole.
    const extra = Buffer.concat([Buffer.from('80220004', 'hex'), Buffer.from('wxyz'), Buffer.alloc(24)]);
    extra.writeUInt16BE(Attr.MESSAGE_INTEGRITY, 8);
    extra.writeUInt16BE(20, 10);
    const body = Buffer.concat([raw, extra]);
    body.writeUInt16BE(body.length - 20 + 8, 2);
    const crc = Buffer.alloc(8);
    crc.writeUInt16BE(Attr.FINGERPRINT, 0);
    crc.writeUInt16BE(4, 2);
    crc.writeUInt32BE(fingerprintOver(body, body.length), 4);
    const d = decodeStun(Buffer.concat([body, crc]));
    assert.ok(d.ok, d.ok ? '' : d.reason);
    assert.deepEqual(
      d.value.attributes.map((a) => a.type),
      [Attr.SOFTWARE, Attr.MESSAGE_INTEGRITY_SHA256, Attr.FINGERPRINT],
    );
    assert.equal(d.value.integrityOffset, -1, 'the MESSAGE-INTEGRITY after it is ignored');
    assert.equal(verifyMessageIntegritySha256(d.value, key), true);
    assert.equal(verifyFingerprint(d.value), true);
  });

  it('refuses malformed messages with a reason', () => {
    const good = new StunBuilder(Method.binding, StunClass.request, tid)
      .add(Attr.SOFTWARE, Buffer.from('x'))
      .finish({ fingerprint: true });
    assert.ok(decodeStun(good).ok);
    const cases: [string, (b: Buffer) => Buffer][] = [
      ['short', (b) => b.subarray(0, 19)],
      [
        'top bits',
        (b) => {
          b.writeUInt8(0x40, 0);
          return b;
        },
      ],
      [
        'cookie',
        (b) => {
          b.writeUInt32BE(0x2112a443, 4);
          return b;
        },
      ],
      [
        'length not multiple of 4',
        (b) => {
          b.writeUInt16BE(b.readUInt16BE(2) + 2, 2);
          return b;
        },
      ],
      ['length mismatch', (b) => Buffer.concat([b, Buffer.alloc(4)])],
      [
        'attribute overrun',
        (b) => {
          b.writeUInt16BE(200, 22);
          return b;
        },
      ],
      [
        'attribute after FINGERPRINT',
        (b) => {
          const c = Buffer.concat([b, Buffer.from('80220000', 'hex')]);
          c.writeUInt16BE(c.length - 20, 2);
          return c;
        },
      ],
      [
        'bad FINGERPRINT length',
        (b) => {
          b.writeUInt16BE(8, b.length - 6);
          return b;
        },
      ],
    ];
    for (const [name, mutate] of cases) {
      const r = decodeStun(mutate(Buffer.from(good)));
      assert.equal(r.ok, false, name);
    }
    assert.equal(looksLikeStun(good), true);
    assert.equal(good.readUInt32BE(4), MAGIC_COOKIE);
  });

  it('lists unknown comprehension-required attributes for 420', () => {
    const msg = new StunBuilder(Method.allocate, StunClass.request, tid)
      .add(0x7777, Buffer.from('zz'))
      .add(0xc000, Buffer.from('optional'))
      .finish();
    const d = decodeStun(msg);
    assert.ok(d.ok);
    assert.deepEqual(d.value.unknownRequired, [0x7777]);
  });

  it('decodes any byte string without throwing (fuzz)', () => {
    const header = fc
      .tuple(fc.integer({ min: 0, max: 0x3fff }), fc.uint8Array({ minLength: 12, maxLength: 12 }))
      .map(([t, id]) => {
        const h = Buffer.alloc(20);
        h.writeUInt16BE(t, 0);
        h.writeUInt32BE(MAGIC_COOKIE, 4);
        Buffer.from(id).copy(h, 8);
        return h;
      });
    const attr = fc
      .tuple(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 40 }), fc.integer({ min: -4, max: 4 }))
      .map(([t, v, skew]) => {
        const b = Buffer.alloc(4 + ((v.length + 3) & ~3));
        b.writeUInt16BE(t, 0);
        b.writeUInt16BE(Math.max(0, v.length + skew), 2);
        Buffer.from(v).copy(b, 4);
        return b;
      });
    const structured = fc.tuple(header, fc.array(attr, { maxLength: 8 })).map(([h, as]) => {
      const m = Buffer.concat([h, ...as]);
      m.writeUInt16BE((m.length - 20) & 0xffff, 2);
      return m;
    });
    fc.assert(
      fc.property(
        fc.oneof(
          structured,
          fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)),
        ),
        (buf) => {
          const r = decodeStun(buf);
          if (!r.ok) return typeof r.reason === 'string';
          for (const a of r.value.attributes) {
            assert.ok(a.offset + a.length <= buf.length);
            readAddress(r.value, a, true);
            readErrorCode(r.value, a);
            readUnknownAttributes(r.value, a);
            readText(r.value, a, 763);
            readPasswordAlgorithms(r.value, a);
          }
          verifyMessageIntegrity(r.value, Buffer.from('k'));
          verifyMessageIntegritySha256(r.value, Buffer.from('k'));
          verifyFingerprint(r.value);
          return true;
        },
      ),
      { numRuns: 5000 },
    );
  });
});
