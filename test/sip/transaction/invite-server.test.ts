import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError } from '../../../src/common/errors.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { InviteServerTransaction } from '../../../src/sip/transaction/invite-server.ts';
import type { TransactionTimerConfig, TransportInfo } from '../../../src/sip/transaction/types.ts';
import { header, request, response, setup, TCP_INFO, UDP_INFO } from './helpers.ts';

// RFC 3261 Figure 7 with the RFC 6026 Accepted state; T1 = 500 ms, T2 = 4 s, T4 = 5 s.

function receiveInvite(info: TransportInfo = UDP_INFO, timers: Partial<TransactionTimerConfig> = {}) {
  const h = setup(timers);
  const invite = request({ method: 'INVITE', branch: 'z9hG4bK-ist' });
  const outcome = h.layer.receive(invite, info);
  assert.equal(outcome.action, 'new-transaction');
  const tx = (outcome as { transaction: InviteServerTransaction }).transaction;
  assert.ok(tx instanceof InviteServerTransaction);
  return { ...h, invite, tx, info };
}

/** The ACK a UAC sends for a non-2xx: same branch as the INVITE. */
function ackFor(invite: SipRequest, final: SipResponse): SipRequest {
  const ack = request({ method: 'ACK', branch: 'z9hG4bK-ist', toTag: 'tt1' });
  assert.equal(header(final, 'via'), header(invite, 'via'));
  return ack;
}

test('IST Proceeding: INVITE passed to the TU; 100 Trying sent when the TU has not responded within 200 ms', () => {
  const { clock, sender, user, layer, invite, tx } = receiveInvite();
  assert.deepEqual(user.types(), ['request']);
  assert.equal(tx.state, 'Proceeding');
  assert.deepEqual(tx.armedTimers, ['Trying']);
  clock.advance(199);
  assert.equal(sender.sent.length, 0);
  clock.advance(1);
  assert.deepEqual(sender.responseTimes(100), [200]);
  const trying = sender.sent[0]!;
  assert.deepEqual(trying.target, { kind: 'response', replyTo: UDP_INFO, request: invite });
  assert.equal(trying.key, tx.key);
  const msg = trying.message as SipResponse;
  assert.equal(msg.reason, 'Trying');
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) assert.equal(header(msg, name), header(invite, name));
  assert.ok(!header(msg, 'to')!.includes('tag='));
  // A retransmitted INVITE in Proceeding re-sends the most recent provisional: here the 100.
  clock.advance(300);
  assert.equal(layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO).action, 'retransmission');
  assert.deepEqual(sender.responseTimes(100), [200, 500]);
  assert.equal(tx.state, 'Proceeding');
});

test('IST: no 100 Trying when the TU responds within 200 ms; trying100Ms is configurable; 0 sends it before the TU', () => {
  const a = receiveInvite();
  a.clock.advance(150);
  assert.equal(a.tx.respond(response(a.invite, 180)), true);
  a.clock.advance(10_000);
  assert.deepEqual(a.sender.responseTimes(100), []);
  assert.deepEqual(a.sender.responseTimes(180), [150]);

  const b = receiveInvite(UDP_INFO, { trying100Ms: 50 });
  b.clock.advance(50);
  assert.deepEqual(b.sender.responseTimes(100), [50]);

  const h = setup({ trying100Ms: 0 });
  let sentBeforeTu = -1;
  h.user.onNewRequest = () => {
    sentBeforeTu = h.sender.sent.length;
  };
  h.layer.receive(request({ method: 'INVITE' }), UDP_INFO);
  assert.equal(sentBeforeTu, 1);
  assert.deepEqual(h.sender.responseTimes(100), [0]);

  const off = receiveInvite(UDP_INFO, { trying100Ms: -1 });
  off.clock.advance(60_000);
  assert.equal(off.sender.sent.length, 0);
});

test('IST Proceeding: retransmitted INVITE re-sends the most recent provisional, or is absorbed when there is none', () => {
  const { clock, sender, user, layer, invite, tx } = receiveInvite();
  clock.advance(10);
  assert.equal(layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO).action, 'retransmission');
  assert.equal(sender.sent.length, 0);
  tx.respond(response(invite, 180));
  tx.respond(response(invite, 183));
  layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO);
  assert.deepEqual(
    sender.sent.map((s) => (s.message as SipResponse).status),
    [180, 183, 183],
  );
  assert.deepEqual(user.types(), ['request'], 'retransmissions never reach the TU');
});

test('IST Proceeding → Completed on 486: Timer G doubles up to T2; Timer H (64*T1) → timeout to TU and Terminated', () => {
  const { clock, sender, user, layer, invite, tx } = receiveInvite();
  clock.advance(100);
  tx.respond(response(invite, 486));
  assert.equal(tx.state, 'Completed');
  assert.deepEqual(tx.armedTimers, ['G', 'H']);
  clock.advance(31_999);
  assert.deepEqual(
    sender.responseTimes(486),
    [100, 600, 1600, 3600, 7600, 11_600, 15_600, 19_600, 23_600, 27_600, 31_600],
  );
  assert.deepEqual(sender.responseTimes(100), [], 'the final response came before the 100 was due');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['request', 'timeout', 'terminated']);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
});

test('IST Completed: retransmitted INVITE re-sends the final response; further TU responses are refused', () => {
  const { sender, layer, invite, tx, clock } = receiveInvite();
  tx.respond(response(invite, 404));
  clock.advance(100);
  layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO);
  assert.deepEqual(sender.responseTimes(404), [0, 100]);
  assert.equal(tx.respond(response(invite, 500)), false);
  assert.equal(tx.respond(response(invite, 200)), false);
  assert.deepEqual(sender.responseTimes(500), []);
});

test('IST Completed → Confirmed on ACK: G and H cancelled, Timer I = T4; ACK retransmissions absorbed', () => {
  const { clock, sender, user, layer, invite, tx } = receiveInvite();
  const final = response(invite, 603);
  tx.respond(final);
  clock.advance(700);
  const out = layer.receive(ackFor(invite, final), UDP_INFO);
  assert.deepEqual(out, { action: 'ack-absorbed', transaction: tx });
  assert.equal(tx.state, 'Confirmed');
  assert.deepEqual(tx.armedTimers, ['I']);
  layer.receive(ackFor(invite, final), UDP_INFO);
  layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO);
  clock.advance(4999);
  assert.equal(tx.state, 'Confirmed');
  assert.deepEqual(sender.responseTimes(603), [0, 500], 'one G retransmission before the ACK, none after');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['request', 'terminated'], 'ACKs for a non-2xx never reach the TU');
  assert.equal(layer.counters.acksAbsorbed, 2);
  assert.equal(clock.pending, 0);
});

test('IST on a reliable transport: Timer G not armed, H armed; Timer I zero (Terminated on the ACK)', () => {
  const { clock, sender, layer, invite, tx } = receiveInvite(TCP_INFO);
  const final = response(invite, 480);
  tx.respond(final);
  assert.deepEqual(tx.armedTimers, ['H']);
  clock.advance(10_000);
  assert.deepEqual(sender.responseTimes(480), [0]);
  assert.deepEqual(sender.sent[0]!.target, { kind: 'response', replyTo: TCP_INFO, request: invite });
  layer.receive(ackFor(invite, final), TCP_INFO);
  assert.equal(tx.state, 'Terminated');
  assert.equal(clock.pending, 0);
});

test('IST Proceeding → Accepted on 2xx (RFC 6026): absorbs INVITE retransmissions, passes 2xx retransmissions from the TU, Timer L = 64*T1', () => {
  const { clock, sender, user, layer, invite, tx } = receiveInvite();
  tx.respond(response(invite, 180));
  clock.advance(1000);
  const ok = response(invite, 200);
  assert.equal(tx.respond(ok), true);
  assert.equal(tx.state, 'Accepted');
  assert.deepEqual(tx.armedTimers, ['L']);
  clock.advance(500);
  assert.equal(layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO).action, 'retransmission');
  assert.deepEqual(
    sender.responseTimes(200),
    [1000],
    'the transaction neither retransmits nor answers retransmissions',
  );
  // The TU (UAS core, §13.3.1.4) retransmits the 2xx through the transaction.
  assert.equal(tx.respond(ok), true);
  assert.equal(tx.respond(response(invite, 200)), true);
  assert.deepEqual(sender.responseTimes(200), [1000, 1500, 1500]);
  assert.equal(tx.respond(response(invite, 486)), false, 'no non-2xx after a 2xx');
  assert.equal(tx.respond(response(invite, 183)), false);
  assert.deepEqual(user.types(), ['request']);
  clock.advance(32_000 - 500 - 1);
  assert.equal(tx.state, 'Accepted');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.equal(clock.pending, 0);
  // After Timer L, a retransmitted INVITE is a new transaction (Timer L covers the retransmission window).
  assert.equal(layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-ist' }), UDP_INFO).action, 'new-transaction');
});

test('IST Accepted: an ACK matching the transaction (same branch) is passed to the TU, not absorbed', () => {
  const { user, layer, invite, tx } = receiveInvite();
  tx.respond(response(invite, 200));
  const ack = request({ method: 'ACK', branch: 'z9hG4bK-ist', toTag: 'tt1' });
  assert.deepEqual(layer.receive(ack, UDP_INFO), { action: 'ack-to-tu', transaction: tx });
  assert.equal(tx.state, 'Accepted');
  const last = user.events.at(-1)!;
  assert.equal(last.type, 'ack');
  assert.equal(last.type === 'ack' && last.tx, tx);
});

test('IST: transport error in Proceeding or Completed → TU informed and Terminated; in Accepted TU informed only', () => {
  const a = receiveInvite();
  a.layer.transportError(a.tx.key);
  assert.equal(a.tx.state, 'Terminated');
  assert.deepEqual(a.user.types(), ['request', 'transport-error', 'terminated']);
  assert.equal(a.clock.pending, 0);

  const b = receiveInvite();
  b.tx.respond(response(b.invite, 500));
  b.layer.transportError(b.tx.key);
  assert.equal(b.tx.state, 'Terminated');
  assert.deepEqual(b.user.types(), ['request', 'transport-error', 'terminated']);
  assert.equal(b.clock.pending, 0);

  const c = receiveInvite();
  c.tx.respond(response(c.invite, 200));
  c.layer.transportError(c.tx.key);
  assert.equal(c.tx.state, 'Accepted');
  assert.deepEqual(c.user.types(), ['request', 'transport-error']);
});

test('IST transition() rejects edges Figure 7 does not have', () => {
  const { invite, tx } = receiveInvite();
  assert.throws(() => tx.transition('Confirmed'), /IST Proceeding -> Confirmed/);
  tx.respond(response(invite, 200));
  assert.throws(() => tx.transition('Completed'), InternalError);
  assert.throws(() => tx.transition('Confirmed'), InternalError);
  assert.equal(tx.state, 'Accepted');
});
