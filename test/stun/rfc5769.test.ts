import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readAddress, readText } from '../../src/stun/attributes.ts';
import { StunBuilder } from '../../src/stun/builder.ts';
import { Attr, Limits } from '../../src/stun/constants.ts';
import {
  longTermKey,
  saslPrep,
  verifyFingerprint,
  verifyMessageIntegrity,
  verifyMessageIntegritySha256,
} from '../../src/stun/integrity.ts';
import { decodeStun, findAttribute, type StunMessage } from '../../src/stun/message.ts';

const dir = new URL('../vectors/stun/rfc5769/', import.meta.url);
interface Vector {
  file: string;
  sha256: string;
  credential: 'short-term' | 'long-term';
  password?: string;
  password_before_saslprep?: string;
  password_after_saslprep?: string;
  username?: string;
  realm?: string;
  nonce?: string;
  software?: string;
  message_type: string;
  transaction_id_hex: string;
  hmac_key_hex: string;
  mapped_address?: { family: string; address: string; port: number };
  attributes: { type: string; offset: number; length: number; value_hex: string }[];
}
const table = JSON.parse(readFileSync(new URL('vectors.json', dir), 'utf8')) as { vectors: Vector[] };

/** Re-encodes a decoded message from its attributes, recomputing MESSAGE-INTEGRITY and FINGERPRINT. */
function reencode(msg: StunMessage, key: Buffer): Buffer {
  const b = new StunBuilder(msg.method, msg.cls, Buffer.from(msg.transactionId));
  for (const a of msg.attributes) {
    if (a.type === Attr.MESSAGE_INTEGRITY || a.type === Attr.FINGERPRINT) continue;
    const padByte = a.length % 4 === 0 ? 0 : msg.raw[a.offset + a.length]!;
    b.add(a.type, Buffer.from(msg.raw.subarray(a.offset, a.offset + a.length)), padByte);
  }
  return b.finish({ integrityKey: key, fingerprint: msg.fingerprintOffset >= 0 });
}

describe('RFC 5769 test vectors', () => {
  assert.equal(table.vectors.length, 4);
  for (const v of table.vectors) {
    it(`${v.file}: decodes, verifies and re-encodes byte for byte`, () => {
      const bytes = readFileSync(new URL(v.file, dir));
      assert.equal(createHash('sha256').update(bytes).digest('hex'), v.sha256);
      const r = decodeStun(bytes);
      assert.ok(r.ok, r.ok ? '' : r.reason);
      const msg = r.value;
      assert.equal(msg.type, Number(v.message_type));
      assert.equal(Buffer.from(msg.transactionId).toString('hex'), v.transaction_id_hex);
      assert.deepEqual(
        msg.attributes.map((a) => ({ type: a.type, offset: a.offset - 4, length: a.length })),
        v.attributes.map((a) => ({ type: Number(a.type), offset: a.offset, length: a.length })),
      );
      for (const [i, a] of v.attributes.entries()) {
        const ref = msg.attributes[i]!;
        assert.equal(msg.raw.subarray(ref.offset, ref.offset + ref.length).toString('hex'), a.value_hex);
      }
      const key =
        v.credential === 'long-term'
          ? longTermKey(v.username!, v.realm!, v.password_before_saslprep!)
          : Buffer.from(saslPrep(v.password!), 'utf8');
      assert.equal(key.toString('hex'), v.hmac_key_hex);
      assert.equal(verifyMessageIntegrity(msg, key), true);
      assert.equal(verifyMessageIntegrity(msg, Buffer.from('wrong')), false);
      assert.equal(verifyMessageIntegritySha256(msg, key), false, 'no MESSAGE-INTEGRITY-SHA256 in these vectors');
      if (v.file === 'sample_request_long_term_auth.bin') {
        assert.equal(msg.fingerprintOffset, -1);
        assert.equal(saslPrep(v.password_before_saslprep!), v.password_after_saslprep);
        const nonce = readText(msg, findAttribute(msg, Attr.NONCE)!, Limits.nonce);
        assert.deepEqual(nonce, { ok: true, value: v.nonce });
      } else {
        assert.equal(verifyFingerprint(msg), true);
      }
      if (v.mapped_address) {
        const xma = readAddress(msg, findAttribute(msg, Attr.XOR_MAPPED_ADDRESS)!, true);
        assert.ok(xma.ok);
        assert.deepEqual(xma.value, {
          family: v.mapped_address.family === 'IPv4' ? 4 : 6,
          address: v.mapped_address.address,
          port: v.mapped_address.port,
        });
      }
      if (v.software) {
        assert.deepEqual(readText(msg, findAttribute(msg, Attr.SOFTWARE)!, Limits.software), {
          ok: true,
          value: v.software,
        });
      }
      assert.equal(reencode(msg, key).toString('hex'), bytes.toString('hex'));
    });
  }

  it('detects a flipped bit in what integrity covers (integrity fails or decoding refuses)', () => {
    for (const v of table.vectors) {
      const bytes = readFileSync(new URL(v.file, dir));
      const key = Buffer.from(v.hmac_key_hex, 'hex');
      const mi = v.attributes.find((a) => a.type === '0x0008')!;
      for (let i = 0; i < (mi.offset + 24) * 8; i += 3) {
        const copy = Buffer.from(bytes);
        copy[i >> 3]! ^= 1 << (i & 7);
        const r = decodeStun(copy);
        if (!r.ok) continue;
        const intact =
          verifyMessageIntegrity(r.value, key) && (r.value.fingerprintOffset < 0 || verifyFingerprint(r.value));
        assert.equal(intact, false, `${v.file} bit ${i}`);
      }
      const fp = v.attributes.find((a) => a.type === '0x8028');
      if (fp) {
        const copy = Buffer.from(bytes);
        copy[fp.offset + 6]! ^= 0x10;
        const r = decodeStun(copy);
        assert.ok(r.ok);
        assert.equal(verifyFingerprint(r.value), false);
        assert.equal(verifyMessageIntegrity(r.value, key), true, 'FINGERPRINT is outside MESSAGE-INTEGRITY');
      }
    }
  });
});
