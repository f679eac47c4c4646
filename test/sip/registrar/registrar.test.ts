import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getHeader, getHeaders } from '../../../src/sip/message/index.ts';
import type { SipResponse } from '../../../src/sip/message/types.ts';
import type { TransportInfo } from '../../../src/sip/transaction/types.ts';
import { contactsOf, DOMAIN, FakeAuthenticator, fakeTransaction, harness, register, UDP_INFO } from './harness.ts';

const TCP_INFO: TransportInfo = {
  transport: 'TCP',
  reliable: true,
  source: { address: '203.0.113.7', port: 40123 },
  local: { address: '198.51.100.1', port: 5060 },
  connectionId: 'conn-1',
};

describe('registrar: RFC 3261 §10.3', () => {
  test('step 1: a REGISTER for a domain the node is not registrar for is refused (403)', () => {
    const h = harness();
    const res = h.send(register({ ruri: 'sip:other.example.org' }));
    assert.equal(res.status, 403);
    assert.match(res.reason, /not a registrar/i);
    assert.equal(h.table.aorCount, 0);
  });

  test('step 1: the registrar serves the addresses it is configured for as domains', () => {
    const h = harness();
    const res = h.send(register({ ruri: 'sip:198.51.100.1', toHost: '198.51.100.1' }));
    assert.equal(res.status, 200);
    assert.equal(h.table.lookup('sip:alice@198.51.100.1').length, 1);
  });

  test('step 2: an unsupported Require option tag gets 420 with Unsupported', () => {
    const h = harness();
    const res = h.send(register({ extra: ['Require: path, foo'] }));
    assert.equal(res.status, 420);
    assert.equal(getHeader(res, 'unsupported'), 'foo');
  });

  test('step 3: without credentials the authenticator challenge (401) is the answer, and no binding is made', () => {
    const auth = new FakeAuthenticator();
    const h = harness({}, auth);
    const res = h.send(register());
    assert.equal(res.status, 401);
    assert.deepEqual(auth.calls, [{ realm: DOMAIN, mode: 'registrar' }]);
    assert.equal(h.table.aorCount, 0);
  });

  test('step 3: with statelessChallenges a challenge is answered statelessly (RFC 3261 §8.2.7); other answers keep state', () => {
    const h = harness({ statelessChallenges: true }, new FakeAuthenticator());
    const req = register();
    const stateless: SipResponse[] = [];
    const tx = {
      ...fakeTransaction(req),
      respondStateless(res: SipResponse) {
        stateless.push(res);
        return true;
      },
    };
    h.registrar.handle(req, tx, UDP_INFO);
    assert.deepEqual(
      stateless.map((r) => r.status),
      [401],
    );
    assert.equal(tx.responses.length, 0);
    const ok = register({ extra: ['Authorization: Fake alice'] });
    const tx2 = { ...fakeTransaction(ok), respondStateless: () => assert.fail('a 200 is sent statefully') };
    h.registrar.handle(ok, tx2, UDP_INFO);
    assert.deepEqual(
      tx2.responses.map((r) => r.status),
      [200],
    );
  });

  test('step 3: by default a challenge goes through the server transaction (a retransmitted REGISTER gets the same 401)', () => {
    const h = harness({}, new FakeAuthenticator());
    const req = register();
    const tx = {
      ...fakeTransaction(req),
      respondStateless: () => assert.fail('stateless challenges are off by default'),
    };
    h.registrar.handle(req, tx, UDP_INFO);
    assert.deepEqual(
      tx.responses.map((r) => r.status),
      [401],
    );
  });

  test('step 3: the realm is the one configured for the Request-URI domain', () => {
    const auth = new FakeAuthenticator();
    const h = harness({}, auth, { [DOMAIN]: 'Example Realm' });
    h.send(register());
    assert.deepEqual(auth.calls, [{ realm: 'Example Realm', mode: 'registrar' }]);
  });

  test('step 3: a rejected authentication is answered as the authenticator says (403)', () => {
    const h = harness({}, new FakeAuthenticator());
    assert.equal(h.send(register({ extra: ['Authorization: Fake wrong'] })).status, 403);
    assert.equal(h.table.aorCount, 0);
  });

  test('step 3: an asynchronous authenticator is awaited and the answer goes out through the transaction', async () => {
    const auth = new FakeAuthenticator();
    auth.async = true;
    const h = harness({}, auth);
    const req = register({ extra: ['Authorization: Fake alice'] });
    const tx = fakeTransaction(req);
    assert.equal(h.registrar.handle(req, tx, UDP_INFO), true);
    assert.equal(tx.responses.length, 0);
    await new Promise((r) => setImmediate(r));
    assert.equal(tx.responses[0]?.status, 200);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`).length, 1);
  });

  test('step 3: authentication off in the configuration registers without asking the authenticator', () => {
    const auth = new FakeAuthenticator();
    const h = harness({ authenticate: false }, auth);
    assert.equal(h.send(register()).status, 200);
    assert.equal(auth.calls.length, 0);
  });

  test('step 3: zone policy do-not-check registers without asking the authenticator', () => {
    const auth = new FakeAuthenticator();
    const h = harness({}, auth, undefined, 'do-not-check');
    assert.equal(h.send(register()).status, 200);
    assert.equal(auth.calls.length, 0);
  });

  test('step 3/4: zone policy treat-as-authenticated takes the From user as identity (no challenge, no third party)', () => {
    const auth = new FakeAuthenticator();
    const h = harness({}, auth, undefined, 'treat-as-authenticated');
    assert.equal(h.send(register()).status, 200);
    assert.equal(auth.calls.length, 0);
    const third = register({ user: 'bob' });
    const from = third.headers.find((x) => x.name === 'From')!;
    from.value = `<sip:alice@${DOMAIN}>;tag=3p`;
    assert.equal(h.send(third).status, 403);
    assert.equal(h.table.lookup(`sip:bob@${DOMAIN}`).length, 0);
  });

  test('step 4: an authenticated user may not register another user’s AOR (403)', () => {
    const h = harness({}, new FakeAuthenticator());
    const res = h.send(register({ user: 'bob', extra: ['Authorization: Fake alice'] }));
    assert.equal(res.status, 403);
    assert.equal(h.table.aorCount, 0);
    assert.equal(h.send(register({ user: 'bob', extra: ['Authorization: Fake bob'] })).status, 200);
  });

  test('step 5: an AOR not valid for the domain gets 404', () => {
    const h = harness();
    assert.equal(h.send(register({ toHost: 'elsewhere.org' })).status, 404);
  });

  test('step 5: the AOR is canonical (URI parameters, port and sips: folded)', () => {
    const h = harness();
    const req = register({ extra: [] });
    const to = req.headers.find((x) => x.name === 'To')!;
    to.value = `<sips:alice@EXAMPLE.com:5061;transport=tls>`;
    assert.equal(h.send(req).status, 200);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`).length, 1);
  });

  test('step 6: Contact "*" without Expires: 0 is a bad request (400)', () => {
    const h = harness();
    assert.equal(h.send(register({ contacts: ['*'], expires: 60 })).status, 400);
    assert.equal(h.send(register({ contacts: ['*'] })).status, 400);
  });

  test('step 6: Contact "*" mixed with another Contact is a bad request (400)', () => {
    const h = harness();
    assert.equal(h.send(register({ contacts: ['*', '<sip:a@192.0.2.1>'], expires: 0 })).status, 400);
  });

  test('step 6: Contact "*" with Expires: 0 removes every binding of the AOR', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:a@192.0.2.1>', '<sip:b@192.0.2.2>'], cseq: 1 }));
    assert.equal(h.table.bindingCount, 2);
    const res = h.send(register({ contacts: ['*'], expires: 0, cseq: 2 }));
    assert.equal(res.status, 200);
    assert.equal(h.table.bindingCount, 0);
    assert.deepEqual(contactsOf(res), []);
  });

  test('step 6: "*" with the same Call-ID and a CSeq not higher fails and removes nothing', () => {
    const h = harness();
    h.send(register({ cseq: 5 }));
    const res = h.send(register({ contacts: ['*'], expires: 0, cseq: 5 }));
    assert.equal(res.status, 500);
    assert.equal(h.table.bindingCount, 1);
  });

  test('step 6: the expires parameter wins over the Expires header, which wins over the default', () => {
    const h = harness({ defaultExpires: 1800 });
    const res = h.send(
      register({
        contacts: ['<sip:a@192.0.2.1>;expires=120', '<sip:b@192.0.2.2>'],
        expires: 300,
      }),
    );
    assert.equal(res.status, 200);
    const got = new Map(h.table.lookup(`sip:alice@${DOMAIN}`).map((b) => [b.contact, b.expiresIn]));
    assert.equal(got.get('sip:a@192.0.2.1'), 120);
    assert.equal(got.get('sip:b@192.0.2.2'), 300);
    h.send(register({ user: 'carol', contacts: ['<sip:c@192.0.2.3>'] }));
    assert.equal(h.table.lookup(`sip:carol@${DOMAIN}`)[0]?.expiresIn, 1800);
  });

  test('step 7: an interval shorter than Min-Expires (and under an hour) gets 423 with Min-Expires', () => {
    const h = harness({ minExpires: 120 });
    const res = h.send(register({ expires: 30 }));
    assert.equal(res.status, 423);
    assert.equal(getHeader(res, 'min-expires'), '120');
    assert.equal(h.table.aorCount, 0);
  });

  test('step 7: an interval of an hour or more is never refused with 423, only raised to the minimum', () => {
    const h = harness({ minExpires: 7200, defaultExpires: 7200, maxExpires: 86_400 });
    const res = h.send(register({ expires: 3600 }));
    assert.equal(res.status, 200);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.expiresIn, 7200);
  });

  test('step 7: an interval longer than the maximum is shortened to it', () => {
    const h = harness({ maxExpires: 600, defaultExpires: 600 });
    const res = h.send(register({ expires: 86_400 }));
    assert.equal(res.status, 200);
    assert.match(contactsOf(res)[0]!, /;expires=600$/);
  });

  test('step 7: same Call-ID with a CSeq not higher aborts the whole request (500) and changes nothing', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:a@192.0.2.1>'], cseq: 10, expires: 600 }));
    h.clock.advance(10_000);
    const res = h.send(register({ contacts: ['<sip:new@192.0.2.9>', '<sip:a@192.0.2.1>'], cseq: 9, expires: 1200 }));
    assert.equal(res.status, 500);
    const list = h.table.lookup(`sip:alice@${DOMAIN}`);
    assert.deepEqual(
      list.map((b) => [b.contact, b.expiresIn, b.cseq]),
      [['sip:a@192.0.2.1', 590, 10]],
    );
    assert.equal(h.send(register({ contacts: ['<sip:a@192.0.2.1>'], cseq: 10 })).status, 500);
  });

  test('step 7: a different Call-ID updates the binding whatever its CSeq', () => {
    const h = harness();
    h.send(register({ cseq: 10, callId: 'one', expires: 600 }));
    const res = h.send(register({ cseq: 1, callId: 'two', expires: 900 }));
    assert.equal(res.status, 200);
    const [b] = h.table.lookup(`sip:alice@${DOMAIN}`);
    assert.equal(b?.callId, 'two');
    assert.equal(b?.expiresIn, 900);
  });

  test('step 7: contacts are compared by URI equality (§19.1.4), not as text', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:alice@HOST.example:5060;lr>'], cseq: 1 }));
    h.send(register({ contacts: ['<sip:alice@host.example:5060>'], cseq: 2 }));
    assert.equal(h.table.bindingCount, 1);
  });

  test('step 7: expires=0 on one contact removes only that binding', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:a@192.0.2.1>', '<sip:b@192.0.2.2>'], cseq: 1 }));
    const res = h.send(register({ contacts: ['<sip:a@192.0.2.1>;expires=0'], cseq: 2 }));
    assert.equal(res.status, 200);
    assert.deepEqual(
      h.table.lookup(`sip:alice@${DOMAIN}`).map((b) => b.contact),
      ['sip:b@192.0.2.2'],
    );
  });

  test('step 8: the 200 lists every current binding with its remaining expiry, and a Date header', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:a@192.0.2.1>'], cseq: 1, expires: 600 }));
    h.clock.advance(100_000);
    const res = h.send(register({ contacts: ['<sip:b@192.0.2.2>'], cseq: 2, expires: 300 }));
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res).sort(), ['<sip:a@192.0.2.1>;expires=500', '<sip:b@192.0.2.2>;expires=300']);
    assert.equal(getHeader(res, 'date'), new Date(h.clock.wallNow()).toUTCString());
    assert.match(getHeader(res, 'date')!, /^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.match(getHeader(res, 'to')!, /;tag=/);
  });

  test('§10.2.3: a REGISTER without Contact fetches the bindings and changes nothing', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:a@192.0.2.1>'], cseq: 1, expires: 600 }));
    h.clock.advance(1000);
    const req = register({ contacts: [], cseq: 2 });
    const res = h.send(req);
    assert.equal(res.status, 200);
    assert.deepEqual(contactsOf(res), ['<sip:a@192.0.2.1>;expires=599']);
    assert.equal(h.registrar.counters.fetches, 1);
    assert.deepEqual(contactsOf(h.send(register({ user: 'nobody', contacts: [] }))), []);
  });

  test('§10.2.1.2: several contacts are kept, ordered by q-value in lookups, q shown in the 200', () => {
    const h = harness();
    const res = h.send(
      register({ contacts: ['<sip:low@192.0.2.1>;q=0.1', '<sip:high@192.0.2.2>;q=0.9', '<sip:none@192.0.2.3>'] }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(
      h.table.lookup(`sip:alice@${DOMAIN}`).map((b) => [b.contact, b.q]),
      [
        ['sip:none@192.0.2.3', 1000],
        ['sip:high@192.0.2.2', 900],
        ['sip:low@192.0.2.1', 100],
      ],
    );
    assert.ok(contactsOf(res).includes('<sip:low@192.0.2.1>;expires=3600;q=0.1'));
  });

  test('§20.10: a q-value outside 0–1 or with more than three decimals is a bad request', () => {
    const h = harness();
    assert.equal(h.send(register({ contacts: ['<sip:a@192.0.2.1>;q=1.5'] })).status, 400);
    assert.equal(h.send(register({ contacts: ['<sip:a@192.0.2.1>;q=0.1234'] })).status, 400);
    assert.equal(h.table.aorCount, 0);
  });

  test('§20.19: a malformed Expires header or expires parameter counts as 3600; one above 2^32-1 as 2^32-1', () => {
    const h = harness({ maxExpires: 7200, defaultExpires: 60 });
    assert.equal(h.send(register({ extra: ['Expires: soon'], cseq: 1 })).status, 200);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.expiresIn, 3600);
    h.send(register({ contacts: ['<sip:alice@192.0.2.10:5060>;expires=-1'], cseq: 2 }));
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.expiresIn, 3600);
    h.send(register({ contacts: ['<sip:alice@192.0.2.10:5060>;expires=99999999999'], cseq: 3 }));
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.expiresIn, 7200);
    h.send(register({ expires: undefined, extra: ['Expires: 99999999999'], cseq: 4 }));
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.expiresIn, 7200);
  });

  test('more contacts than maxContactsPerAor are refused (403) and none is added', () => {
    const h = harness({ maxContactsPerAor: 2 });
    const res = h.send(register({ contacts: ['<sip:a@192.0.2.1>', '<sip:b@192.0.2.2>', '<sip:c@192.0.2.3>'] }));
    assert.equal(res.status, 403);
    assert.equal(h.table.aorCount, 0);
  });

  test('bindings expire: gone from lookups after their lifetime, and the AOR timer removes them', () => {
    const h = harness();
    h.send(register({ expires: 60 }));
    assert.equal(h.clock.pending, 1);
    h.clock.advance(59_000);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`).length, 1);
    h.clock.advance(1_000);
    assert.equal(h.table.aorCount, 0);
    assert.equal(h.clock.pending, 0);
  });
});

describe('registrar: registration restriction policy', () => {
  test('allow list: only matching aliases register', () => {
    const h = harness({ restriction: { policy: 'allow', patterns: [{ type: 'prefix', value: 'al' }] } });
    assert.equal(h.send(register({ user: 'alice' })).status, 200);
    const res = h.send(register({ user: 'bob' }));
    assert.equal(res.status, 403);
    assert.match(res.reason, /restricted/);
  });

  test('deny list: matching aliases are refused', () => {
    const h = harness({ restriction: { policy: 'deny', patterns: [{ type: 'suffix', value: `@${DOMAIN}` }] } });
    assert.equal(h.send(register({ user: 'alice' })).status, 403);
  });

  test('exact pattern: only that alias matches, compared without case; a longer or shorter alias does not', () => {
    const h = harness({ restriction: { policy: 'allow', patterns: [{ type: 'exact', value: `Alice@${DOMAIN}` }] } });
    assert.equal(h.send(register({ user: 'alice' })).status, 200);
    assert.equal(h.send(register({ user: 'alice2' })).status, 403);
    assert.equal(h.send(register({ user: 'malice' })).status, 403);
    assert.equal(h.send(register({ user: 'alic' })).status, 403);
    assert.deepEqual(
      h.table.lookup(`sip:alice@${DOMAIN}`).map((b) => b.contact),
      ['sip:alice@192.0.2.10:5060'],
    );
    assert.equal(h.table.aorCount, 1);
  });

  test('regex pattern: anchored on both ends, so alice@.* does not match malice@…, nor alice@example match alice@example.com', () => {
    const h = harness({ restriction: { policy: 'allow', patterns: [{ type: 'regex', value: 'alice@.*' }] } });
    assert.equal(h.send(register({ user: 'alice' })).status, 200);
    assert.equal(h.send(register({ user: 'malice' })).status, 403);
    assert.equal(h.table.aorCount, 1);
    const endAnchored = harness({
      restriction: { policy: 'allow', patterns: [{ type: 'regex', value: 'alice@example' }] },
    });
    assert.equal(endAnchored.send(register({ user: 'alice' })).status, 403);
    const deny = harness({ restriction: { policy: 'deny', patterns: [{ type: 'regex', value: 'bob' }] } });
    assert.equal(deny.send(register({ user: 'bob' })).status, 200, 'bob does not match bob@example.com');
  });

  test('regex pattern: matched without case, like the other pattern types', () => {
    const h = harness({ restriction: { policy: 'deny', patterns: [{ type: 'regex', value: 'ALICE@EXAMPLE\\.COM' }] } });
    assert.equal(h.send(register({ user: 'alice' })).status, 403);
    assert.equal(h.send(register({ user: 'bob' })).status, 200);
  });

  test('policy none: every alias registers, even one the patterns would match', () => {
    const h = harness({ restriction: { policy: 'none', patterns: [{ type: 'exact', value: `alice@${DOMAIN}` }] } });
    assert.equal(h.send(register({ user: 'alice' })).status, 200);
    assert.equal(h.send(register({ user: 'bob' })).status, 200);
    assert.equal(h.table.aorCount, 2);
  });
});

describe('registrar: RFC 3327 Path', () => {
  test('Path is stored with the binding and returned in the 200 when the UA supports path', () => {
    const h = harness();
    const res = h.send(
      register({ extra: ['Path: <sip:edge1.example.com;lr>', 'Path: <sip:edge2.example.com;lr>', 'Supported: path'] }),
    );
    assert.equal(res.status, 200);
    assert.deepEqual(getHeaders(res, 'path'), ['<sip:edge1.example.com;lr>', '<sip:edge2.example.com;lr>']);
    assert.deepEqual(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.path, [
      '<sip:edge1.example.com;lr>',
      '<sip:edge2.example.com;lr>',
    ]);
  });

  test('§5.3: without Supported: path the Path is stored but not echoed', () => {
    const h = harness();
    const res = h.send(register({ extra: ['Path: <sip:edge1.example.com;lr>'] }));
    assert.equal(res.status, 200);
    assert.deepEqual(getHeaders(res, 'path'), []);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.path.length, 1);
  });

  test('a malformed Path is a bad request', () => {
    const h = harness();
    assert.equal(h.send(register({ extra: ['Path: <sip:edge1 bad>'] })).status, 400);
  });
});

describe('registrar: RFC 5626 Outbound and RFC 3581 flows', () => {
  const INSTANCE = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"';

  test('§6: the flow a registration arrived on is kept; the 200 has Require: outbound and Flow-Timer', () => {
    const h = harness({ flowTimerSeconds: 90 });
    const res = h.send(
      register({
        contacts: [`<sip:alice@10.0.0.5:5060;transport=tcp>;${INSTANCE};reg-id=1`],
        extra: ['Supported: outbound, path'],
      }),
      TCP_INFO,
    );
    assert.equal(res.status, 200);
    assert.equal(getHeader(res, 'require'), 'outbound');
    assert.equal(getHeader(res, 'flow-timer'), '90');
    const [b] = h.table.lookup(`sip:alice@${DOMAIN}`);
    assert.equal(b?.regId, 1);
    assert.equal(b?.instance, 'urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF');
    assert.deepEqual(b?.flow, {
      transport: 'TCP',
      source: { address: '203.0.113.7', port: 40123 },
      local: { address: '198.51.100.1', port: 5060 },
      connectionId: 'conn-1',
    });
    assert.equal(b?.natted, true);
    assert.match(contactsOf(res)[0]!, /;reg-id=1$/);
  });

  test('§6: a REGISTER on a new flow with the same instance and reg-id replaces the binding, whatever its Contact', () => {
    const h = harness();
    h.send(register({ contacts: [`<sip:alice@10.0.0.5:5060>;${INSTANCE};reg-id=1`], callId: 'a', cseq: 1 }), TCP_INFO);
    h.send(register({ contacts: [`<sip:alice@10.0.0.5:6000>;${INSTANCE};reg-id=1`], callId: 'b', cseq: 1 }), {
      ...TCP_INFO,
      connectionId: 'conn-2',
      source: { address: '203.0.113.7', port: 40999 },
    });
    const list = h.table.lookup(`sip:alice@${DOMAIN}`);
    assert.equal(list.length, 1);
    assert.equal(list[0]?.flow.connectionId, 'conn-2');
    assert.equal(list[0]?.contact, 'sip:alice@10.0.0.5:6000');
  });

  test('§6: two flows of one instance (reg-id 1 and 2) are two bindings', () => {
    const h = harness();
    h.send(register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`], callId: 'a' }), TCP_INFO);
    h.send(register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=2`], callId: 'b' }), {
      ...TCP_INFO,
      connectionId: 'conn-2',
    });
    assert.equal(h.table.bindingCount, 2);
  });

  test('§6: a reg-id without +sip.instance is ignored (a plain binding, no Require: outbound)', () => {
    const h = harness();
    const res = h.send(register({ contacts: ['<sip:alice@10.0.0.5>;reg-id=1'] }), TCP_INFO);
    assert.equal(res.status, 200);
    assert.equal(getHeader(res, 'require'), undefined);
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`)[0]?.regId, undefined);
  });

  test('§6: more than one Contact with a reg-id is a bad request (400)', () => {
    const h = harness();
    const res = h.send(
      register({
        contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`, `<sip:alice@10.0.0.6>;${INSTANCE};reg-id=2`],
      }),
      TCP_INFO,
    );
    assert.equal(res.status, 400);
  });

  test('§6: when the first hop’s Path URI lacks "ob", an outbound REGISTER gets 439', () => {
    const h = harness();
    const res = h.send(
      register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`], extra: ['Path: <sip:edge.example.com;lr>'] }),
      TCP_INFO,
    );
    assert.equal(res.status, 439);
    const ok = h.send(
      register({
        contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`],
        extra: ['Path: <sip:edge.example.com;lr;ob>'],
      }),
      TCP_INFO,
    );
    assert.equal(ok.status, 200);
    // Two proxies: the first hop's Path is the last value (each proxy prepends its own).
    const twoHops = h.send(
      register({
        contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`],
        callId: 'two-hops',
        extra: ['Path: <sip:core.example.com;lr>, <sip:edge.example.com;lr;ob>'],
      }),
      TCP_INFO,
    );
    assert.equal(twoHops.status, 200);
    const edgeWithoutOb = h.send(
      register({
        contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`],
        callId: 'two-hops-2',
        extra: ['Path: <sip:core.example.com;lr;ob>, <sip:edge.example.com;lr>'],
      }),
      TCP_INFO,
    );
    assert.equal(edgeWithoutOb.status, 439);
  });

  test('§6: when the flow fails (connection closed) its outbound bindings are removed, others forget the flow', () => {
    const h = harness();
    h.send(register({ contacts: [`<sip:alice@10.0.0.5>;${INSTANCE};reg-id=1`], callId: 'a' }), TCP_INFO);
    h.send(register({ user: 'bob', contacts: ['<sip:bob@203.0.113.7:40123;transport=tcp>'], callId: 'b' }), TCP_INFO);
    h.registrar.flowClosed('conn-1');
    assert.equal(h.table.lookup(`sip:alice@${DOMAIN}`).length, 0);
    const [bob] = h.table.lookup(`sip:bob@${DOMAIN}`);
    assert.ok(bob);
    assert.equal(bob.flow.connectionId, undefined);
    assert.equal(bob.natted, false);
    h.registrar.flowClosed('conn-1');
    assert.equal(h.table.bindingCount, 1);
  });

  // Flow-Timer 120 s (default), grace 20 s: a UDP flow silent for more than 140 s has failed.
  const ALICE = `sip:alice@${DOMAIN}`;
  const outboundUdp = (h: ReturnType<typeof harness>, callId = 'ob', cseq = 1) =>
    h.send(register({ contacts: [`<sip:alice@192.0.2.10:5060>;${INSTANCE};reg-id=1`], callId, cseq }), UDP_INFO);

  test('§4.4.2: an outbound UDP flow kept alive by keepalives keeps its binding past Flow-Timer + grace', () => {
    const h = harness();
    assert.equal(outboundUdp(h).status, 200);
    assert.equal(h.registrar.watchedUdpFlows, 1);
    for (let s = 0; s < 400; s += 100) {
      h.clock.advance(100_000);
      h.registrar.flowAlive('UDP', UDP_INFO.local, UDP_INFO.source);
    }
    assert.equal(h.table.lookup(ALICE).length, 1);
    assert.equal(h.registrar.counters.flowFailures, 0);
  });

  test('§4.4.2/§5.3: an outbound UDP flow silent for longer than Flow-Timer + grace has failed: its outbound binding is removed, the AOR keeps its other bindings', () => {
    const h = harness();
    outboundUdp(h);
    const other: TransportInfo = { ...UDP_INFO, source: { address: '192.0.2.99', port: 5060 } };
    h.send(register({ contacts: ['<sip:alice@192.0.2.99:5060>'], callId: 'plain' }), other);
    // Life on another flow (or from another port) does not count for this one.
    h.clock.advance(100_000);
    h.registrar.flowAlive('UDP', UDP_INFO.local, { address: '192.0.2.10', port: 5099 });
    h.registrar.flowAlive('UDP', other.local, other.source);
    h.clock.advance(40_000);
    assert.equal(h.table.lookup(ALICE).length, 2, 'not yet: exactly Flow-Timer + grace');
    h.clock.advance(11_000);
    const left = h.table.lookup(ALICE);
    assert.deepEqual(
      left.map((b) => b.contact),
      ['sip:alice@192.0.2.99:5060'],
    );
    assert.equal(h.registrar.counters.flowFailures, 1);
    assert.equal(h.registrar.watchedUdpFlows, 0);
  });

  test('§4.4.2: a REGISTER refresh on the flow counts as a sign of life', () => {
    const h = harness();
    outboundUdp(h, 'ob', 1);
    h.clock.advance(130_000);
    outboundUdp(h, 'ob', 2);
    h.clock.advance(130_000);
    assert.equal(h.table.lookup(ALICE).length, 1);
    h.clock.advance(30_000);
    assert.equal(h.table.lookup(ALICE).length, 0);
  });

  test('§4.4.2: only outbound bindings are watched: a plain UDP registration is never removed by silence; grace 0 turns it off', () => {
    const h = harness();
    h.send(register({ contacts: ['<sip:alice@192.0.2.10:5060>'] }));
    assert.equal(h.registrar.watchedUdpFlows, 0);
    h.clock.advance(600_000);
    assert.equal(h.table.lookup(ALICE).length, 1);
    const off = harness({ flowFailureGraceSeconds: 0 });
    outboundUdp(off);
    assert.equal(off.registrar.watchedUdpFlows, 0);
    off.clock.advance(600_000);
    assert.equal(off.table.lookup(ALICE).length, 1);
  });

  test('§4.4.2: a flow whose outbound binding moved to another flow is forgotten, not failed', () => {
    const h = harness();
    outboundUdp(h, 'ob', 1);
    const moved: TransportInfo = { ...UDP_INFO, source: { address: '192.0.2.10', port: 6000 } };
    h.send(register({ contacts: [`<sip:alice@192.0.2.10:6000>;${INSTANCE};reg-id=1`], callId: 'ob2' }), moved);
    h.registrar.close();
    assert.equal(h.registrar.watchedUdpFlows, 0);
    const g = harness();
    outboundUdp(g, 'ob', 1);
    g.send(register({ contacts: [`<sip:alice@192.0.2.10:6000>;${INSTANCE};reg-id=1`], callId: 'ob2' }), moved);
    assert.equal(g.registrar.watchedUdpFlows, 2);
    for (let i = 0; i < 10; i++) {
      g.clock.advance(20_000);
      g.registrar.flowAlive('UDP', moved.local, moved.source);
    }
    assert.equal(g.table.lookup(ALICE).length, 1, 'the binding on the live flow stays');
    assert.equal(g.registrar.counters.flowFailures, 0, 'the old flow carried no binding any more');
    assert.equal(g.registrar.watchedUdpFlows, 1);
  });

  test('RFC 3581: a UDP endpoint behind NAT keeps its received/rport source in the binding', () => {
    const h = harness();
    const natInfo: TransportInfo = { ...UDP_INFO, source: { address: '203.0.113.50', port: 61000 } };
    h.send(register({ contacts: ['<sip:alice@192.168.1.20:5060>'] }), natInfo);
    const [b] = h.table.lookup(`sip:alice@${DOMAIN}`);
    assert.equal(b?.natted, true);
    assert.deepEqual(b?.flow.source, { address: '203.0.113.50', port: 61000 });
    h.send(register({ user: 'bob', contacts: ['<sip:bob@192.0.2.10>'] }));
    assert.equal(h.table.lookup(`sip:bob@${DOMAIN}`)[0]?.natted, false);
  });
});
