import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError } from '../../../src/common/errors.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { InviteClientTransaction } from '../../../src/sip/transaction/invite-client.ts';
import { header, request, response, setup, TCP_DEST, TCP_INFO, UDP_DEST, UDP_INFO } from './helpers.ts';

// RFC 3261 Figure 5 with the RFC 6026 Accepted state; T1 = 500 ms, T2 = 4 s, T4 = 5 s unless said otherwise.

function startInvite(reliable = false, timers = {}) {
  const h = setup(timers);
  const invite = request({
    method: 'INVITE',
    branch: 'z9hG4bK-ict',
    sentBy: '192.0.2.254:5060',
    extra: [
      { name: 'Route', value: '<sip:p1.example.com;lr>' },
      { name: 'Route', value: '<sip:p2.example.com;lr>' },
    ],
  });
  const tx = h.layer.sendRequest(invite, reliable ? TCP_DEST : UDP_DEST) as InviteClientTransaction;
  return { ...h, invite, tx };
}

test('ICT Calling: the INVITE is sent at once, Timer A doubles each time (no T2 cap) on unreliable transports', () => {
  const { clock, sender, tx } = startInvite();
  assert.ok(tx instanceof InviteClientTransaction);
  assert.equal(tx.state, 'Calling');
  assert.deepEqual(tx.armedTimers, ['A', 'B']);
  clock.advance(31_999);
  // A fires at T1, then 2*T1, 4*T1 … : 500, 1500, 3500, 7500, 15500, 31500 (intervals 0.5,1,2,4,8,16 s).
  assert.deepEqual(sender.requestTimes('INVITE'), [0, 500, 1500, 3500, 7500, 15_500, 31_500]);
  assert.equal(tx.state, 'Calling');
  for (const s of sender.sent) {
    assert.equal(s.key, tx.key);
    assert.deepEqual(s.target, { kind: 'request', destination: UDP_DEST });
  }
});

test('ICT: Timer B (64*T1) fires in Calling → timeout to TU, Terminated, no ACK, table and clock empty', () => {
  const { clock, sender, user, layer, tx } = startInvite();
  clock.advance(31_999);
  assert.deepEqual(user.types(), []);
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['timeout', 'terminated']);
  assert.equal(sender.requestTimes('ACK').length, 0);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
});

test('ICT Calling on a reliable transport: Timer A not armed, Timer B still 64*T1', () => {
  const { clock, sender, user, tx } = startInvite(true);
  assert.deepEqual(tx.armedTimers, ['B']);
  clock.advance(32_000);
  assert.deepEqual(sender.requestTimes('INVITE'), [0]);
  assert.deepEqual(user.types(), ['timeout', 'terminated']);
});

test('ICT Calling → Proceeding on 1xx: passed to TU, retransmissions stop, Timer B no longer applies', () => {
  const { clock, sender, user, layer, invite, tx } = startInvite();
  clock.advance(600);
  assert.deepEqual(layer.receive(response(invite, 100), UDP_INFO), { action: 'response', transaction: tx });
  assert.equal(tx.state, 'Proceeding');
  assert.deepEqual(tx.armedTimers, []);
  layer.receive(response(invite, 180), UDP_INFO);
  layer.receive(response(invite, 183), UDP_INFO);
  clock.advance(200_000);
  assert.deepEqual(sender.requestTimes('INVITE'), [0, 500]);
  assert.equal(tx.state, 'Proceeding');
  assert.deepEqual(user.statuses(), [100, 180, 183]);
  assert.ok(!user.types().includes('timeout'));
});

test('ICT Proceeding → Completed on 486: ACK sent per §17.1.1.3, TU told once; retransmitted 486 re-sends ACK only', () => {
  const { clock, sender, user, layer, invite, tx } = startInvite();
  layer.receive(response(invite, 180), UDP_INFO);
  const busy = response(invite, 486, 'uas-tag');
  layer.receive(busy, UDP_INFO);
  assert.equal(tx.state, 'Completed');
  assert.deepEqual(user.statuses(), [180, 486]);
  assert.deepEqual(sender.requestTimes('ACK'), [0]);
  const ack = sender.sent.find((s) => s.message.kind === 'request' && s.message.method === 'ACK')!;
  assert.deepEqual(ack.target, { kind: 'request', destination: UDP_DEST });
  assert.equal(ack.key, tx.key);
  checkAck(ack.message as SipRequest, invite, 'uas-tag');
  clock.advance(1000);
  layer.receive(response(invite, 486, 'uas-tag'), UDP_INFO);
  layer.receive(response(invite, 486, 'uas-tag'), UDP_INFO);
  assert.deepEqual(sender.requestTimes('ACK'), [0, 1000, 1000]);
  assert.deepEqual(user.statuses(), [180, 486], 'retransmissions are not passed to the TU');
});

function checkAck(ack: SipRequest, invite: SipRequest, toTag: string) {
  assert.equal(ack.method, 'ACK');
  assert.equal(ack.uri, invite.uri);
  const vias = ack.headers.filter((h) => h.name.toLowerCase() === 'via');
  assert.equal(vias.length, 1, 'a single Via');
  assert.equal(vias[0]!.value, header(invite, 'via'));
  assert.equal(header(ack, 'call-id'), header(invite, 'call-id'));
  assert.equal(header(ack, 'from'), header(invite, 'from'));
  assert.equal(header(ack, 'to'), `<sip:bob@example.com>;tag=${toTag}`);
  assert.equal(header(ack, 'cseq'), '1 ACK');
  assert.deepEqual(
    ack.headers.filter((h) => h.name === 'Route').map((h) => h.value),
    ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>'],
  );
  assert.equal(ack.body.length, 0);
}

test('ICT Calling → Completed directly on a 3xx–6xx; Timer D ≥ 32 s on unreliable transports', () => {
  const { clock, user, layer, invite, tx } = startInvite();
  layer.receive(response(invite, 603), UDP_INFO);
  assert.equal(tx.state, 'Completed');
  assert.deepEqual(tx.armedTimers, ['D']);
  clock.advance(31_999);
  assert.equal(tx.state, 'Completed');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['response', 'terminated']);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
});

test('ICT Completed: Timer D is max(32 s, 64*T1) by default and can be configured', () => {
  const big = startInvite(false, { t1: 1000, t2: 4000 });
  big.layer.receive(response(big.invite, 500), UDP_INFO);
  big.clock.advance(63_999);
  assert.equal(big.tx.state, 'Completed');
  big.clock.advance(1);
  assert.equal(big.tx.state, 'Terminated');

  const custom = startInvite(false, { timerD: 40_000 });
  custom.layer.receive(response(custom.invite, 500), UDP_INFO);
  custom.clock.advance(39_999);
  assert.equal(custom.tx.state, 'Completed');
  custom.clock.advance(1);
  assert.equal(custom.tx.state, 'Terminated');
});

test('ICT Completed: Timer D is zero on reliable transports (Terminated at once, after the TU saw the response)', () => {
  const { clock, sender, user, layer, invite, tx } = startInvite(true);
  layer.receive(response(invite, 404), TCP_INFO);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['response', 'terminated']);
  assert.deepEqual(sender.requestTimes('ACK'), [0]);
  assert.equal(clock.pending, 0);
});

test('ICT Calling → Accepted on 2xx (RFC 6026): TU gets every 2xx, the transaction sends no ACK; Timer M = 64*T1', () => {
  const { clock, sender, user, layer, invite, tx } = startInvite();
  clock.advance(700);
  layer.receive(response(invite, 200, 'a'), UDP_INFO);
  assert.equal(tx.state, 'Accepted');
  assert.deepEqual(tx.armedTimers, ['M']);
  clock.advance(5000);
  layer.receive(response(invite, 200, 'a'), UDP_INFO);
  layer.receive(response(invite, 200, 'fork-b'), UDP_INFO);
  // A non-2xx final in Accepted is absorbed.
  layer.receive(response(invite, 500, 'c'), UDP_INFO);
  assert.deepEqual(user.statuses(), [200, 200, 200]);
  assert.deepEqual(sender.requestTimes('ACK'), []);
  assert.deepEqual(sender.requestTimes('INVITE'), [0, 500], 'no retransmission after the 2xx');
  clock.advance(32_000 - 5000 - 1);
  assert.equal(tx.state, 'Accepted');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  // After Timer M, a late 2xx is a stray for the TU.
  assert.equal(layer.receive(response(invite, 200, 'a'), UDP_INFO).action, 'stray-response');
  assert.equal(clock.pending, 0);
});

test('ICT Proceeding → Accepted on 2xx', () => {
  const { layer, invite, tx, user } = startInvite(true);
  layer.receive(response(invite, 180), TCP_INFO);
  layer.receive(response(invite, 200), TCP_INFO);
  assert.equal(tx.state, 'Accepted', 'Accepted even on reliable transports: 2xx retransmissions come end to end');
  assert.deepEqual(user.statuses(), [180, 200]);
});

test('ICT: transport error in Calling → TU informed and Terminated', () => {
  const { clock, user, layer, tx } = startInvite();
  assert.equal(layer.transportError(tx.key), true);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['transport-error', 'terminated']);
  assert.equal(layer.transportError(tx.key), false, 'unknown once terminated');
  assert.equal(clock.pending, 0);
});

test('ICT: transport error in Proceeding → TU informed and Terminated; in Accepted ignored', () => {
  const a = startInvite();
  a.layer.receive(response(a.invite, 180), UDP_INFO);
  a.layer.transportError(a.tx.key);
  assert.equal(a.tx.state, 'Terminated');
  assert.deepEqual(a.user.types(), ['response', 'transport-error', 'terminated']);

  const b = startInvite();
  b.layer.receive(response(b.invite, 200), UDP_INFO);
  b.layer.transportError(b.tx.key);
  assert.equal(b.tx.state, 'Accepted');
});

test('ICT transition() rejects edges Figure 5 does not have', () => {
  const { layer, invite, tx } = startInvite();
  assert.throws(() => tx.transition('Confirmed' as never), InternalError);
  assert.throws(() => tx.transition('Calling'), InternalError);
  layer.receive(response(invite, 200), UDP_INFO);
  assert.throws(() => tx.transition('Completed'), /ICT Accepted -> Completed/);
  assert.throws(() => tx.transition('Proceeding'), InternalError);
  assert.equal(tx.state, 'Accepted');
});
