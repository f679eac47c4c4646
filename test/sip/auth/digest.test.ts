import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { answerChallenge, pickChallenge, readChallenge } from '../../../src/sip/auth/client.ts';
import {
  computeHa1,
  computeResponse,
  formatChallenge,
  parseAlgorithm,
  readDigestCredentials,
} from '../../../src/sip/auth/digest.ts';
import { parseAuthorization } from '../../../src/sip/message/index.ts';

const V = JSON.parse(readFileSync(new URL('../../vectors/auth/rfc7616-3.9.1.json', import.meta.url), 'utf8')) as {
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  opaque: string;
  nc: string;
  cnonce: string;
  responses: Record<'MD5' | 'SHA-256', string>;
  authorization: Record<'SHA-256', string>;
};

describe('RFC 7616 §3.9.1 example', () => {
  for (const alg of ['MD5', 'SHA-256'] as const) {
    it(`computes the RFC's ${alg} response`, () => {
      const ha1 = computeHa1(alg, V.username, V.realm, V.password);
      const r = computeResponse(alg, {
        ha1,
        nonce: V.nonce,
        method: V.method,
        uri: V.uri,
        qop: 'auth',
        nc: V.nc,
        cnonce: V.cnonce,
      });
      assert.equal(r, V.responses[alg]);
    });
  }

  it("reads the RFC's SHA-256 Authorization header", () => {
    const h = parseAuthorization(V.authorization['SHA-256']);
    assert.ok(h.ok);
    const c = readDigestCredentials(h.value);
    assert.ok(c.ok, c.ok ? '' : c.reason);
    assert.equal(c.value.username, 'Mufasa');
    assert.equal(c.value.algorithm, 'SHA-256');
    assert.equal(c.value.ncValue, 1);
    assert.equal(c.value.cnonce, V.cnonce);
    assert.equal(c.value.opaque, V.opaque);
    assert.equal(c.value.response, V.responses['SHA-256']);
  });

  it('our client reproduces the RFC header from its challenge', () => {
    const challenge = formatChallenge({ realm: V.realm, nonce: V.nonce, opaque: V.opaque, algorithm: 'SHA-256' });
    const c = readChallenge(challenge);
    assert.ok(c.ok);
    const value = answerChallenge(c.value, {
      username: V.username,
      password: V.password,
      method: V.method,
      uri: V.uri,
      cnonce: V.cnonce,
    });
    const read = readDigestCredentials((parseAuthorization(value) as { ok: true; value: never }).value);
    assert.ok(read.ok);
    assert.equal(read.value.response, V.responses['SHA-256']);
  });
});

describe('digest credentials (RFC 7616 §3.4)', () => {
  const base = 'Digest username="a", realm="r", nonce="n", uri="sip:x", response="abcd"';
  const read = (v: string) => {
    const h = parseAuthorization(v);
    assert.ok(h.ok);
    return readDigestCredentials(h.value);
  };

  it('algorithm absent means MD5 (RFC 7616 §3.4)', () => {
    const c = read(base);
    assert.ok(c.ok);
    assert.equal(c.value.algorithm, 'MD5');
  });

  it('an algorithm we cannot compute is reported as undefined, not guessed', () => {
    const c = read(`${base}, algorithm=MD5-sess`);
    assert.ok(c.ok);
    assert.equal(c.value.algorithm, undefined);
    assert.equal(parseAlgorithm('sha-256'), 'SHA-256');
  });

  it('qop requires nc and cnonce (RFC 7616 §3.4)', () => {
    assert.equal(read(`${base}, qop=auth, cnonce="c"`).ok, false);
    assert.equal(read(`${base}, qop=auth, nc=00000001`).ok, false);
    assert.equal(read(`${base}, qop=auth, nc=1, cnonce="c"`).ok, false);
    assert.equal(read(`${base}, qop=auth, nc=00000001, cnonce="c"`).ok, true);
  });

  it('refuses missing fields, duplicates, non-hex responses and other schemes', () => {
    for (const v of [
      'Digest realm="r", nonce="n", uri="sip:x", response="ab"',
      'Digest username="a", nonce="n", uri="sip:x", response="ab"',
      'Digest username="a", realm="r", uri="sip:x", response="ab"',
      'Digest username="a", realm="r", nonce="n", response="ab"',
      'Digest username="a", realm="r", nonce="n", uri="sip:x"',
      `${base}, realm="other"`,
      'Digest username="a", realm="r", nonce="n", uri="sip:x", response="xyz"',
      'Basic dXNlcjpwYXNz',
    ]) {
      assert.equal(read(v).ok, false, v);
    }
  });

  it('never throws on arbitrary header values (fuzz)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        const h = parseAuthorization(s);
        if (h.ok) readDigestCredentials(h.value);
        readChallenge(s);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('challenges (RFC 8760 §2.4)', () => {
  it('the client takes the first challenge it supports, in the server order', () => {
    const a = formatChallenge({ realm: 'r', nonce: 'n', opaque: 'o', algorithm: 'SHA-256' });
    const b = formatChallenge({ realm: 'r', nonce: 'n', opaque: 'o', algorithm: 'MD5' });
    assert.equal(pickChallenge([a, b])?.algorithm, 'SHA-256');
    assert.equal(pickChallenge([a, b], ['MD5'])?.algorithm, 'MD5');
    assert.equal(pickChallenge(['Digest realm="r", nonce="n", algorithm=SHA-512'], ['MD5']), undefined);
  });

  it('formats stale and userhash flags', () => {
    const c = readChallenge(
      formatChallenge({ realm: 'r"x', nonce: 'n', opaque: 'o', algorithm: 'MD5', stale: true, userhash: true }),
    );
    assert.ok(c.ok);
    assert.equal(c.value.realm, 'r"x');
    assert.equal(c.value.stale, true);
    assert.equal(c.value.userhash, true);
    assert.deepEqual(c.value.qop, ['auth']);
  });
});
