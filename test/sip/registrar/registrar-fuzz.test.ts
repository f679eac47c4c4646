import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseMessage } from '../../../src/sip/message/index.ts';
import { FakeAuthenticator, harness } from './harness.ts';

const token = fc.stringMatching(/^[a-zA-Z0-9.+\-_]{0,12}$/);
const paramValue = fc.oneof(
  token,
  fc.constantFrom('0', '1', '0.5', '1.0001', '-1', '4294967296', '"<urn:uuid:1>"', '', '99999999999'),
);
const param = fc.tuple(fc.constantFrom('expires', 'q', 'reg-id', '+sip.instance', 'ob', 'transport', 'lr'), paramValue);
const contact = fc.oneof(
  fc.constant('*'),
  fc
    .tuple(
      token,
      fc.constantFrom('192.0.2.1', 'host.example', '[2001:db8::1]', 'bad host'),
      fc.array(param, { maxLength: 4 }),
    )
    .map(([u, h, ps]) => `<sip:${u}@${h}>${ps.map(([n, v]) => `;${n}=${v}`).join('')}`),
  fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, ' ')),
);
const header = fc.oneof(
  fc.array(contact, { maxLength: 4 }).map((cs) => cs.map((c) => `Contact: ${c}`)),
  fc.constantFrom(
    ['Expires: 0'],
    ['Expires: 60'],
    ['Expires: x'],
    ['Require: outbound'],
    ['Supported: path, outbound'],
  ),
  fc.constantFrom(['Path: <sip:edge;lr;ob>'], ['Path: <sip:edge;lr>'], ['Path: junk<'], ['Authorization: Fake alice']),
);

test('registrar: any REGISTER from the network gets an answer and never throws (fast-check)', () => {
  const h = harness({ minExpires: 30 }, new FakeAuthenticator());
  let seq = 0;
  const seen = new Map<number, number>();
  fc.assert(
    fc.property(
      fc.array(header, { maxLength: 4 }),
      fc.constantFrom('alice', 'bob', ''),
      fc.integer({ min: 0, max: 5 }),
      (extra, user, cseq) => {
        seq++;
        const text = [
          'REGISTER sip:example.com SIP/2.0',
          `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKfz${seq}`,
          'Max-Forwards: 70',
          `From: <sip:${user}@example.com>;tag=f${seq}`,
          `To: <sip:${user}@example.com>`,
          'Call-ID: fuzz',
          `CSeq: ${cseq} REGISTER`,
          ...extra.flat(),
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n');
        const parsed = parseMessage(Buffer.from(text));
        if (!parsed.ok || parsed.value.kind !== 'request') return;
        const res = h.send(parsed.value);
        seen.set(res.status, (seen.get(res.status) ?? 0) + 1);
        assert.ok([200, 400, 401, 403, 404, 420, 423, 439, 500].includes(res.status), `${res.status} ${res.reason}`);
        if (res.status === 200) {
          assert.ok(h.table.lookup('sip:alice@example.com').length <= 16);
        }
      },
    ),
    { numRuns: 3000 },
  );
  // The generator reaches both the success path and the refusals, not just one of them.
  for (const status of [200, 400, 401, 403, 404])
    assert.ok((seen.get(status) ?? 0) > 0, `no ${status} in ${[...seen]}`);
});
