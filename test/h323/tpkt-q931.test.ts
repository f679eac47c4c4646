import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { PerError } from '../../src/h323/per/errors.ts';
import { decodeCallSignalling, encodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';
import {
  decodeBearerCapability,
  decodeCause,
  decodeDisplay,
  decodePartyNumber,
  decodeQ931,
  encodeBearerCapability,
  encodeCause,
  encodePartyNumber,
  encodeQ931,
  findIe,
  IE,
  Q931Error,
  q931MessageName,
} from '../../src/h323/q931/q931.ts';
import { encodeTpkt, TpktFramer } from '../../src/h323/transport/tpkt.ts';
import { readPcap, tcpStreams } from './pcap.ts';

const dir = new URL('../vectors/h323/', import.meta.url).pathname;

function streamBytes(file: string, key: string): Buffer {
  const s = tcpStreams(readPcap(dir + file)).find((x) => x.key === key);
  assert.ok(s, key);
  return Buffer.concat(s.segments.map((x) => x.data));
}

function frame(f: TpktFramer, parts: Uint8Array[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    const r = f.push(p);
    assert.ok(r.ok, r.ok ? '' : r.reason);
    for (const pdu of r.value) out.push(Buffer.from(pdu).toString('hex'));
  }
  return out;
}

describe('TPKT framing (RFC 1006)', () => {
  // the nDPI H.245 stream from 10.1.3.143: frame 32 carries two PDUs in one segment
  const h245 = streamBytes('ndpi-h323.pcap', '10.1.3.143:32804>10.1.6.18:1232');
  const whole = frame(new TpktFramer(), [h245]);

  it('one push of a whole stream gives every PDU', () => {
    assert.equal(whole.length, 6);
    assert.equal(whole.join('').length / 2 + 4 * whole.length, h245.length);
  });

  it('every split point of the stream gives the same PDUs, and so does one octet at a time', () => {
    for (let i = 0; i <= h245.length; i++) {
      assert.deepEqual(frame(new TpktFramer(), [h245.subarray(0, i), h245.subarray(i)]), whole, `split at ${i}`);
    }
    assert.deepEqual(
      frame(
        new TpktFramer(),
        Array.from(h245, (b) => Uint8Array.of(b)),
      ),
      whole,
    );
  });

  it('refuses a wrong version, a too-small or too-large length, and too much buffered data; then stays failed', () => {
    assert.deepEqual(new TpktFramer().push(Uint8Array.of(4, 0, 0, 8)), {
      ok: false,
      reason: 'TPKT version 4 (expected 3)',
    });
    assert.equal(new TpktFramer().push(Uint8Array.of(3, 0, 0, 4)).ok, false);
    const small = new TpktFramer({ maxPacketBytes: 100 });
    assert.deepEqual(small.push(Uint8Array.of(3, 0, 0, 200)), {
      ok: false,
      reason: 'TPKT length 200 over the limit 100',
    });
    assert.equal(small.push(encodeTpkt(Uint8Array.of(1))).ok, false);
    const buf = new TpktFramer({ maxBufferedBytes: 10 });
    assert.equal(buf.push(Uint8Array.of(3, 0, 1, 0, 1, 2, 3, 4, 5, 6, 7)).ok, false);
  });

  it('random chunks never make the framer throw; whatever it returns is a whole payload', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 20 }), (chunks) => {
        const f = new TpktFramer({ maxPacketBytes: 1000, maxBufferedBytes: 2000 });
        for (const c of chunks) {
          const r = f.push(c);
          if (!r.ok) return;
          for (const p of r.value) assert.ok(p.length >= 1 && p.length <= 996);
        }
      }),
      { numRuns: 500, seed: 3 },
    );
  });

  it('encodeTpkt writes the header and refuses payloads over 65531 octets', () => {
    assert.equal(Buffer.from(encodeTpkt(Uint8Array.of(0xaa, 0xbb))).toString('hex'), '03000006aabb');
    assert.throws(() => encodeTpkt(new Uint8Array(65532)), RangeError);
  });
});

describe('Q.931 (H.225.0 §7)', () => {
  const cs = tcpStreams(readPcap(`${dir}ooh323c-faststart-tunnelled.pcap`));
  const setupBytes = frame(new TpktFramer(), [Buffer.concat(cs[0]!.segments.map((s) => s.data))])[0]!;

  it('decodes the ooh323c Setup header and IEs, and encodes it back', () => {
    const b = Buffer.from(setupBytes, 'hex');
    const r = decodeQ931(b);
    assert.ok(r.ok);
    const m = r.value;
    assert.equal(q931MessageName(m.messageType), 'setup');
    assert.equal(m.callReferenceLength, 2);
    assert.equal(m.fromDestination, false);
    const bc = decodeBearerCapability(findIe(m, IE.bearerCapability)!.data);
    assert.ok(bc.ok);
    assert.equal(bc.value.informationTransferCapability, 0x08); // unrestricted digital, as Wireshark shows
    assert.equal(decodeDisplay(findIe(m, IE.display)!.data), 'objsyscall');
    assert.ok(findIe(m, IE.userUser));
    assert.deepEqual(Buffer.from(encodeQ931(m)), b);
  });

  it('party numbers, cause and bearer capability encode and decode', () => {
    const calling = { typeOfNumber: 1, numberingPlan: 1, presentation: 0, screening: 3, digits: '+4420' };
    assert.deepEqual(decodePartyNumber(encodePartyNumber(calling)), { ok: true, value: calling });
    const called = { typeOfNumber: 0, numberingPlan: 9, digits: '2002' };
    assert.deepEqual(decodePartyNumber(encodePartyNumber(called)), { ok: true, value: called });
    assert.deepEqual(Buffer.from(encodeCause({ codingStandard: 0, location: 1, value: 16 })).toString('hex'), '8190');
    assert.deepEqual(decodeCause(Uint8Array.of(0x81, 0x90)), {
      ok: true,
      value: { codingStandard: 0, location: 1, value: 16 },
    });
    const bc = {
      codingStandard: 0,
      informationTransferCapability: 0x08,
      transferMode: 0,
      informationTransferRate: 0x10,
      userInfoLayer1: 5,
    };
    assert.equal(Buffer.from(encodeBearerCapability(bc)).toString('hex'), '8890a5');
    assert.deepEqual(decodeBearerCapability(encodeBearerCapability(bc)), { ok: true, value: bc });
  });

  it('random bytes behind a Q.931 header never make the decoders throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (tail, withUu) => {
        const b = Uint8Array.from([8, 2, 0, 1, 5, ...(withUu ? [0x7e, 0, tail.length] : []), ...tail]);
        const q = decodeQ931(b);
        if (q.ok) assert.deepEqual(Buffer.from(encodeQ931(q.value)), Buffer.from(b));
        const cs = decodeCallSignalling(b);
        if (!cs.ok) assert.ok(cs.reason instanceof Q931Error && cs.reason.path.startsWith('Q931.setup'));
        for (const d of [decodeBearerCapability, decodeCause, decodePartyNumber]) {
          const r = d(tail);
          if (!r.ok) assert.ok(r.reason instanceof Q931Error, r.reason.message);
        }
      }),
      { numRuns: 1000, seed: 11 },
    );
  });

  it('random and mutated call-signalling PDUs fail only with a Q931Error whose message is its path and detail', () => {
    const setup = Buffer.from(setupBytes, 'hex');
    const anyBytes = fc.uint8Array({ maxLength: 300 }).map((b) => ({ b, mutated: false }));
    const mutated = fc
      .tuple(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat()),
      )
      .map(([flips, cut]) => {
        let b = Uint8Array.from(setup);
        for (const [pos, bit] of flips) b[pos % b.length]! ^= 1 << bit;
        if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
        return { b, mutated: true };
      });
    let failures = 0;
    let inUserUser = 0;
    fc.assert(
      fc.property(fc.oneof(anyBytes, mutated), ({ b }) => {
        let r: ReturnType<typeof decodeCallSignalling>;
        try {
          r = decodeCallSignalling(b);
        } catch (e) {
          assert.fail(`threw ${String(e)}`);
        }
        if (r.ok) {
          // whatever decodes encodes again without throwing
          encodeCallSignalling(r.value);
          return;
        }
        failures++;
        assert.ok(r.reason instanceof Q931Error);
        assert.equal(r.reason.code, 'ERR_Q931_DECODE');
        assert.equal(r.reason.message, `${r.reason.path}: ${r.reason.detail}`);
        assert.match(r.reason.path, /^Q931(\.|$)/);
        if (r.reason.path.includes('(userUser).H323-UserInformation')) {
          inUserUser++;
          assert.ok(r.reason.cause instanceof PerError);
        }
      }),
      { numRuns: 2000, seed: 23 },
    );
    assert.ok(failures > 100, `${failures} refusals`);
    assert.ok(inUserUser > 10, `${inUserUser} refusals inside the user-user PER`);
  });

  it('names the failing part: header, IE by index and name, user-user PER field', () => {
    const fail = (b: Uint8Array) => {
      const r = decodeCallSignalling(b);
      assert.equal(r.ok, false);
      return r.ok ? '' : r.reason.message;
    };
    assert.equal(fail(Uint8Array.of(8, 2)), 'Q931: message of 2 octets, shorter than 3');
    assert.equal(fail(Uint8Array.of(8, 3, 0, 1, 5)), 'Q931.callReference: length 3');
    assert.equal(fail(Uint8Array.of(8, 2, 0, 1, 0x85)), 'Q931.messageType: bit 8 set');
    // Setup: sending complete (single octet), display "A", then a display whose length runs past the end
    assert.equal(
      fail(Uint8Array.of(8, 2, 0, 1, 5, 0xa1, 0x28, 1, 65, 0x28, 10, 65)),
      'Q931.setup.ies[2](display): 10 octets exceed the message',
    );
    assert.equal(
      fail(Uint8Array.of(8, 2, 0, 1, 0x5a, 0x7e, 0)),
      'Q931.releaseComplete.ies[0](userUser): truncated length',
    );
    assert.equal(
      fail(Uint8Array.of(8, 2, 0, 1, 7, 0x7e, 0, 2, 4, 0)),
      'Q931.connect.ies[0](userUser): protocol discriminator 4 (expected 5)',
    );
    // the ooh323c Setup cut inside its user-user contents, the IE length patched to match: the PER path follows
    const b = Buffer.from(setupBytes, 'hex');
    const q = decodeQ931(b);
    assert.ok(q.ok);
    const at = q.value.ies.findIndex((x) => x.id === IE.userUser);
    const short = Uint8Array.from(q.value.ies[at]!.data.subarray(0, 12));
    const cut = encodeQ931({ ...q.value, ies: q.value.ies.map((x, i) => (i === at ? { id: x.id, data: short } : x)) });
    const msg = fail(cut);
    assert.ok(msg.startsWith(`Q931.setup.ies[${at}](userUser).H323-UserInformation.h323-uu-pdu`), msg);
    // an unnamed message type and IE are named by their code
    assert.equal(fail(Uint8Array.of(8, 2, 0, 1, 0x4f, 0x2d, 3)), 'Q931.0x4f.ies[0](0x2d): 3 octets exceed the message');
    const many = decodeQ931(Uint8Array.of(8, 2, 0, 1, 5, ...new Array(70).fill(0xa1)), { maxIes: 64 });
    assert.ok(!many.ok);
    assert.equal(many.reason.message, 'Q931.setup.ies[64](sendingComplete): more than 64 information elements');
  });

  it('refuses truncated and malformed messages without throwing', () => {
    const b = Buffer.from(setupBytes, 'hex');
    for (let i = 0; i < b.length; i++) {
      const r = decodeQ931(b.subarray(0, i));
      if (i < 5) assert.equal(r.ok, false, `cut at ${i}`);
    }
    const r9 = decodeQ931(Uint8Array.of(0x09, 2, 0, 1, 5));
    assert.ok(!r9.ok && r9.reason instanceof Q931Error);
    assert.equal(r9.reason.message, 'Q931.protocolDiscriminator: 9 is not Q.931 (8)');
    assert.equal(decodeQ931(Uint8Array.of(8, 2, 0, 1, 5, 0x28, 10, 65)).ok, false);
    assert.equal(decodeQ931(Uint8Array.of(8, 2, 0, 1, 5, ...new Array(70).fill(0xa1)), { maxIes: 64 }).ok, false);
  });
});
