import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Compiler } from '../../src/h323/asn1/compile.ts';
import { parseModules } from '../../src/h323/asn1/parser.ts';
import { decodePer, encodePer } from '../../src/h323/per/codec.ts';
import { type Desc, link } from '../../src/h323/per/descriptor.ts';
import type { RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import { minimalValue } from './values.ts';

/** Compiles a module text and returns its named types' descriptors. */
function compile(text: string): Record<string, Desc> {
  const s = new Compiler(parseModules(text)).compileAll();
  const linked = link(s.table);
  return Object.fromEntries(Object.entries(s.named).map(([n, i]) => [n, linked[i]!]));
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function roundTrip(d: Desc, value: unknown, expectedHex: string, limits = {}) {
  const bytes = encodePer(d, value);
  assert.equal(hex(bytes), expectedHex);
  const back = decodePer(d, Buffer.from(expectedHex, 'hex'), '', limits);
  assert.ok(back.ok, back.ok ? '' : back.reason.message);
  assert.deepStrictEqual(back.value, value);
}

describe('PER known answers', () => {
  it('X.691 A.4.2: the extensible record Ax encodes as 9E 00 01 80 01 02 91 A4', () => {
    const t = compile(readFileSync(new URL('../vectors/asn1/x691-a4.asn', import.meta.url), 'utf8'));
    roundTrip(t.Ax!, { a: 253, b: true, c: { choice: 'e', value: true }, g: '123', h: true }, '9e000180010291a4');
  });

  const record = (sex?: string) => ({
    name: { givenName: 'John', initial: 'P', familyName: 'Smith' },
    title: 'Director',
    number: 51,
    dateOfHire: '19710917',
    nameOfSpouse: { givenName: 'Mary', initial: 'T', familyName: 'Smith' },
    children: [
      { name: { givenName: 'Ralph', initial: 'T', familyName: 'Smith' }, dateOfBirth: '19571111' },
      {
        name: { givenName: 'Susan', initial: 'B', familyName: 'Jones' },
        dateOfBirth: '19590717',
        ...(sex ? { sex } : {}),
      },
    ],
  });

  it('X.691 A.2.2: the PersonnelRecord with constraints (tags order the SET components)', () => {
    const t = compile(readFileSync(new URL('../vectors/asn1/x691-a2.asn', import.meta.url), 'utf8'));
    roundTrip(
      t.PersonnelRecord!,
      record(),
      '864a6f686e5010536d6974680133084469726563746f72197109170c4d617279' +
        '5410536d697468021052616c70685410536d6974681957111110537573616e42' +
        '104a6f6e657319590717',
    );
  });

  it('X.691 A.3.2: the PersonnelRecord with extensibility (an extension addition in a child)', () => {
    const t = compile(readFileSync(new URL('../vectors/asn1/x691-a3.asn', import.meta.url), 'utf8'));
    roundTrip(
      t.PersonnelRecord!,
      record('female'),
      '40c04a6f686e5008536d697468000033084469726563746f720019710917034d' +
        '6172795408536d697468010052616c70685408536d6974680019571111820053' +
        '7573616e42084a6f6e65730019590717010140',
    );
  });

  const T = compile(`K DEFINITIONS AUTOMATIC TAGS ::= BEGIN
    Small ::= INTEGER (0..7)
    Word ::= INTEGER (1..65535)
    Big ::= INTEGER (0..4294967295)
    Ext ::= INTEGER (0..16383, ...)
    Semi ::= INTEGER (5..MAX)
    Any ::= INTEGER
    S ::= SEQUENCE { a BOOLEAN, ..., b INTEGER (0..255) OPTIONAL }
    S0 ::= SEQUENCE { a BOOLEAN, ... }
    S2 ::= SEQUENCE { a BOOLEAN, ..., b INTEGER (0..255) OPTIONAL, c BOOLEAN OPTIONAL }
    Octets ::= OCTET STRING
    Digits ::= IA5String (SIZE (1..128)) (FROM ("0123456789#*,"))
    Numeric ::= NumericString (SIZE (0..7))
    Bits ::= BIT STRING (SIZE (1..2048))
    Oid ::= OBJECT IDENTIFIER
    Fixed ::= OCTET STRING (SIZE (4))
    AnyBits ::= BIT STRING
    ExtOct ::= OCTET STRING (SIZE (2, ...))
    ExtStr ::= IA5String (SIZE (1..4, ...))
    ExtList ::= SEQUENCE (SIZE (1..2, ...)) OF BOOLEAN
    C ::= CHOICE { a BOOLEAN, ..., b INTEGER (0..255) }
    C0 ::= CHOICE { a BOOLEAN, ... }
    Wide ::= SEQUENCE { o1 BOOLEAN OPTIONAL, o2 BOOLEAN OPTIONAL, o3 BOOLEAN OPTIONAL, o4 BOOLEAN OPTIONAL,
      o5 BOOLEAN OPTIONAL, o6 BOOLEAN OPTIONAL, o7 BOOLEAN OPTIONAL, o8 BOOLEAN OPTIONAL, o9 BOOLEAN OPTIONAL,
      o10 BOOLEAN OPTIONAL, o11 BOOLEAN OPTIONAL, o12 BOOLEAN OPTIONAL, o13 BOOLEAN OPTIONAL, o14 BOOLEAN OPTIONAL,
      o15 BOOLEAN OPTIONAL, o16 BOOLEAN OPTIONAL, o17 BOOLEAN OPTIONAL, o18 BOOLEAN OPTIONAL, o19 BOOLEAN OPTIONAL,
      o20 BOOLEAN OPTIONAL, o21 BOOLEAN OPTIONAL, o22 BOOLEAN OPTIONAL, o23 BOOLEAN OPTIONAL, o24 BOOLEAN OPTIONAL,
      o25 BOOLEAN OPTIONAL, o26 BOOLEAN OPTIONAL, o27 BOOLEAN OPTIONAL, o28 BOOLEAN OPTIONAL, o29 BOOLEAN OPTIONAL,
      o30 BOOLEAN OPTIONAL, o31 BOOLEAN OPTIONAL, o32 BOOLEAN OPTIONAL, o33 BOOLEAN OPTIONAL, last BOOLEAN }
  END`);

  it('constrained INTEGERs (X.691 §11.5.7): bit-field, two aligned octets, octet-count + octets', () => {
    roundTrip(T.Small!, 5, 'a0'); // 3 bits 101
    roundTrip(T.Word!, 257, '0100'); // 257-1 in two aligned octets
    roundTrip(T.Big!, 1, '0001'); // 2-bit count 0 (one octet), aligned, 01
    roundTrip(T.Big!, 0x12345, '80012345'); // count-1 = 2 → '10', then three octets
    roundTrip(T.Big!, 4294967295, 'c0ffffffff');
  });

  it('extensible, semi-constrained and unconstrained INTEGERs (§11.7, §11.8, §12.1)', () => {
    roundTrip(T.Ext!, 100, '000064'); // in root: bit 0, pad, then 16 bits aligned
    roundTrip(T.Ext!, 20000, '80024e20'); // outside: bit 1, length 2, 0x4E20
    roundTrip(T.Semi!, 5, '0100');
    roundTrip(T.Semi!, 261, '020100');
    roundTrip(T.Any!, -1, '01ff');
    roundTrip(T.Any!, 128, '020080');
    roundTrip(T.Any!, -(2n ** 70n), '09c00000000000000000');
  });

  it('an extensible SEQUENCE with one addition, and an older peer keeping it opaque', () => {
    // ext bit 1, a = 1, bitmap length-1 = 0 (normally small: 0 000000), bitmap '1', pad; open type: length 1, 05
    roundTrip(T.S!, { a: true, b: 5 }, 'c0400105');
    roundTrip(T.S!, { a: true }, '40');
    const old = decodePer(T.S0!, Buffer.from('c0400105', 'hex'));
    assert.ok(old.ok);
    assert.deepStrictEqual(old.value, { a: true, $extBits: 1, $unknown: [{ index: 0, bytes: Uint8Array.of(5) }] });
    assert.equal(hex(encodePer(T.S0!, old.value)), 'c0400105');
    // a received value grows its bit-map when an addition beyond it is set: { $extBits: 1, c } sends 2 bits
    const fromOld = decodePer(T.S!, Buffer.from('40', 'hex'));
    assert.ok(fromOld.ok);
    assert.equal(hex(encodePer(T.S!, { ...(fromOld.value as object), b: 7 })), 'c0400107');
    // ext 1, a 1, bit-map length-1 = 1 (0 000001), bits 0 1, pad; open type: length 1, 80 (TRUE)
    assert.equal(hex(encodePer(T.S2!, { a: true, $extBits: 1, c: true })), 'c0a00180');
  });

  it('a SEQUENCE with 33 OPTIONAL components: a 33-bit presence bit-map', () => {
    // bit-map 1 0…0 1 (o1, o33 present; 33 bits), then o1 = 1, o33 = 1, last = 0
    roundTrip(T.Wide!, { o1: true, o33: true, last: false }, '80000000e0');
  });

  it('extensible sizes (§16.6, §17.3, §30.4): one bit, then the root encoding or an unconstrained length', () => {
    roundTrip(T.ExtOct!, Uint8Array.of(0xab, 0xcd), '55e680'); // 0, then two octets not aligned
    roundTrip(T.ExtOct!, Uint8Array.of(1, 2, 3), '8003010203'); // 1, pad, length 3, octets
    roundTrip(T.ExtStr!, 'ab', '206162'); // 0, length-1 = 01 in 2 bits, pad, 'a' 'b'
    roundTrip(T.ExtStr!, 'abcde', '80056162636465');
    roundTrip(T.ExtList!, [true, false], '60'); // 0, length-1 = 1 (1 bit), then 1, 0
    roundTrip(T.ExtList!, [true, true, true], '8003e0'); // 1, pad, length 3, then 111
  });

  it('an extension alternative of a CHOICE, and an older peer keeping it opaque', () => {
    // ext bit 1, normally small index 0 (0 000000), pad; open type: length 1, 05
    roundTrip(T.C!, { choice: 'b', value: 5 }, '800105');
    roundTrip(T.C!, { choice: 'a', value: true }, '40');
    const old = decodePer(T.C0!, Buffer.from('800105', 'hex'));
    assert.ok(old.ok);
    assert.deepStrictEqual(old.value, { choice: '$unknown', index: 0, value: Uint8Array.of(5) });
    assert.equal(hex(encodePer(T.C0!, old.value)), '800105');
  });

  it('fragmented BIT STRING of 40000 bits: two 16K-bit fragments, then the rest', () => {
    const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);
    const v = { length: 40000, data };
    const e = encodePer(T.AnyBits!, v);
    assert.equal(e[0], 0xc2);
    assert.equal(e.length, 1 + 4096 + 2 + 904);
    const back = decodePer(T.AnyBits!, e, '', { maxBytes: 1 << 20 });
    assert.ok(back.ok);
    assert.deepStrictEqual(back.value, v);
  });

  it('fragmented OCTET STRING (§11.9.3.8): 16K-multiples then the remainder, a zero-length tail after an exact multiple', () => {
    const big = Uint8Array.from({ length: 40000 }, (_, i) => i & 0xff);
    const e = encodePer(T.Octets!, big);
    assert.equal(e.length, 1 + 32768 + 2 + 7232);
    assert.equal(e[0], 0xc2);
    assert.equal(hex(e.subarray(32769, 32771)), '9c40');
    const back = decodePer(T.Octets!, e, '', { maxBytes: 1 << 20 });
    assert.ok(back.ok);
    assert.deepStrictEqual(back.value, big);
    const exact = encodePer(T.Octets!, new Uint8Array(16384));
    assert.equal(exact.length, 1 + 16384 + 1);
    assert.deepEqual([exact[0], exact[exact.length - 1]], [0xc1, 0x00]);
    const four = encodePer(T.Octets!, new Uint8Array(65536 + 3));
    assert.deepEqual([four[0], four[65537], four[65538]], [0xc4, 0x03, 0x00]);
    const r = decodePer(T.Octets!, four, '', { maxBytes: 1 << 20 });
    assert.ok(r.ok && (r.value as Uint8Array).length === 65539);
  });

  it('strings with a permitted alphabet, fixed sizes, BIT STRING and OBJECT IDENTIFIER', () => {
    // 13 characters → 4 bits, indexes into the sorted alphabet "#*,0123456789"; length 7 bits (1..128) then aligned
    roundTrip(T.Digits!, '1001', '064334');
    roundTrip(T.Numeric!, '12', '4023'); // length 3 bits, pad, indexes into " 0123456789"
    roundTrip(T.Fixed!, Uint8Array.of(127, 0, 0, 1), '7f000001');
    roundTrip(T.Bits!, { length: 3, data: Uint8Array.of(0xa0) }, '0002a0'); // length-1 in 16 bits, bits 101
    roundTrip(T.Oid!, '0.0.8.2250.0.7', '060008914a0007'); // X.690 contents: 2250 = 91 4A
  });
});

describe('decode errors name the failing field; limits hold', () => {
  it('a truncated third alias fails at RasMessage.registrationRequest.terminalAlias[2].h323-ID', () => {
    const rrqDesc = (rasCodec.desc as Extract<Desc, { k: 'choice' }>).byName.get('registrationRequest')!.type;
    const rrq = minimalValue(rrqDesc) as Record<string, unknown>;
    rrq.terminalAlias = [
      { choice: 'dialledDigits', value: '1001' },
      { choice: 'h323-ID', value: 'alice' },
      { choice: 'h323-ID', value: 'a rather long alias that is cut off' },
    ];
    const bytes = rasCodec.encode({ choice: 'registrationRequest', value: rrq } as RasMessage);
    const r = rasCodec.decode(bytes.subarray(0, bytes.length - 40));
    assert.equal(r.ok, false);
    if (!r.ok)
      assert.match(
        r.reason.message,
        /^RasMessage\.registrationRequest\.terminalAlias\[2\]\.h323-ID: length 35 exceeds the data$/,
      );
  });

  it('a constrained number beyond its upper bound is refused (an ENUMERATED or CHOICE index, a length)', () => {
    const t = compile(`E DEFINITIONS AUTOMATIC TAGS ::= BEGIN
      Three ::= ENUMERATED { a, b, c }
      Word ::= INTEGER (1..1000)
    END`);
    assert.equal(hex(encodePer(t.Three!, 'c')), '80');
    const bad = decodePer(t.Three!, Uint8Array.of(0xc0), 'Three');
    assert.ok(!bad.ok && bad.reason.message === 'Three: value 3 above 2', bad.ok ? '' : bad.reason.message);
    const big = decodePer(t.Word!, Uint8Array.of(0xff, 0xff), 'Word');
    assert.ok(!big.ok && /above 1000/.test(big.reason.message));
  });

  it('nesting, item-count and size limits are enforced with ERR_PER_LIMIT', () => {
    const t = compile(`L DEFINITIONS AUTOMATIC TAGS ::= BEGIN
      Tree ::= SEQUENCE { kids SEQUENCE OF Tree }
      List ::= SEQUENCE OF BOOLEAN
    END`);
    let v: { kids: unknown[] } = { kids: [] };
    for (let i = 0; i < 80; i++) v = { kids: [v] };
    const deep = decodePer(t.Tree!, encodePer(t.Tree!, v), 'Tree');
    assert.ok(!deep.ok && deep.reason.code === 'ERR_PER_LIMIT' && /nesting deeper than 64/.test(deep.reason.message));
    const many = decodePer(t.List!, encodePer(t.List!, new Array(70000).fill(true)), 'List');
    assert.ok(!many.ok && many.reason.code === 'ERR_PER_LIMIT', many.ok ? '' : many.reason.message);
    const huge = decodePer(t.List!, new Uint8Array(70000), 'List');
    assert.ok(!huge.ok && huge.reason.code === 'ERR_PER_LIMIT');
  });
});
