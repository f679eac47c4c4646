import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError } from '../../../src/common/errors.ts';
import type { SipResponse } from '../../../src/sip/message/types.ts';
import { NonInviteServerTransaction } from '../../../src/sip/transaction/non-invite-server.ts';
import type { TransportInfo } from '../../../src/sip/transaction/types.ts';
import { request, response, setup, TCP_INFO, UDP_INFO } from './helpers.ts';

// RFC 3261 Figure 8; T1 = 500 ms, T2 = 4 s, T4 = 5 s.

function receiveRegister(info: TransportInfo = UDP_INFO) {
  const h = setup();
  const register = request({ method: 'REGISTER', branch: 'z9hG4bK-nist', uri: 'sip:example.com' });
  const outcome = h.layer.receive(register, info);
  assert.equal(outcome.action, 'new-transaction');
  const tx = (outcome as { transaction: NonInviteServerTransaction }).transaction;
  assert.ok(tx instanceof NonInviteServerTransaction);
  const again = () =>
    h.layer.receive(request({ method: 'REGISTER', branch: 'z9hG4bK-nist', uri: 'sip:example.com' }), info);
  return { ...h, register, tx, again };
}

const statuses = (sent: { message: unknown }[]) => sent.map((s) => (s.message as SipResponse).status);

test('NIST Trying: request to the TU once; a retransmission in Trying is absorbed silently; no 100 of its own', () => {
  const { clock, sender, user, tx, again } = receiveRegister();
  assert.equal(tx.state, 'Trying');
  assert.deepEqual(tx.armedTimers, []);
  assert.equal(again().action, 'retransmission');
  clock.advance(60_000);
  assert.equal(again().action, 'retransmission');
  assert.equal(sender.sent.length, 0);
  assert.deepEqual(user.types(), ['request']);
  assert.equal(tx.state, 'Trying');
});

test('NIST Trying → Proceeding on a provisional from the TU; retransmission re-sends the latest provisional', () => {
  const { sender, register, tx, again } = receiveRegister();
  assert.equal(tx.respond(response(register, 100)), true);
  assert.equal(tx.state, 'Proceeding');
  again();
  tx.respond(response(register, 183));
  again();
  assert.deepEqual(statuses(sender.sent), [100, 100, 183, 183]);
  for (const s of sender.sent) assert.deepEqual(s.target, { kind: 'response', replyTo: UDP_INFO, request: register });
});

test('NIST → Completed on a final response: retransmissions re-send it, later finals discarded, Timer J = 64*T1 unreliable', () => {
  const { clock, sender, user, layer, register, tx, again } = receiveRegister();
  tx.respond(response(register, 100));
  assert.equal(tx.respond(response(register, 200)), true);
  assert.equal(tx.state, 'Completed');
  assert.deepEqual(tx.armedTimers, ['J']);
  clock.advance(10_000);
  again();
  assert.equal(tx.respond(response(register, 500)), false);
  assert.equal(tx.respond(response(register, 180)), false);
  assert.deepEqual(statuses(sender.sent), [100, 200, 200]);
  clock.advance(22_000 - 1);
  assert.equal(tx.state, 'Completed');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['request', 'terminated']);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
});

test('NIST Completed: Timer J zero on reliable transports; Trying → Completed directly', () => {
  const { clock, register, tx, user } = receiveRegister(TCP_INFO);
  tx.respond(response(register, 401));
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['request', 'terminated']);
  assert.equal(clock.pending, 0);
});

test('NIST stateless answer (RFC 3261 §8.2.7): a final response sent once and the transaction ends without Completed; a retransmission is a new request', () => {
  const { clock, sender, user, layer, register, tx, again } = receiveRegister();
  assert.equal(tx.respondStateless(response(register, 401)), true);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(layer.completedSize, 0);
  assert.equal(clock.pending, 0, 'no Timer J, no compact record');
  assert.deepEqual(statuses(sender.sent), [401]);
  // The retransmitted REGISTER is not absorbed: it is a new request for the TU, which answers it anew.
  assert.equal(again().action, 'new-transaction');
  assert.deepEqual(user.types(), ['request', 'terminated', 'request']);
});

test('NIST stateless answer: refused for a provisional response and after a final one (nothing sent)', () => {
  const { sender, register, tx } = receiveRegister();
  assert.equal(tx.respondStateless(response(register, 100)), false);
  assert.equal(tx.state, 'Trying');
  assert.equal(tx.respond(response(register, 200)), true);
  assert.equal(tx.respondStateless(response(register, 401)), false);
  assert.deepEqual(statuses(sender.sent), [200]);
});

test('NIST: transport error → TU informed and Terminated (Proceeding and Completed)', () => {
  const a = receiveRegister();
  a.tx.respond(response(a.register, 100));
  a.layer.transportError(a.tx.key);
  assert.equal(a.tx.state, 'Terminated');
  assert.deepEqual(a.user.types(), ['request', 'transport-error', 'terminated']);

  const b = receiveRegister();
  b.tx.respond(response(b.register, 200));
  b.layer.transportError(b.tx.key);
  assert.equal(b.tx.state, 'Terminated');
  assert.deepEqual(b.user.types(), ['request', 'transport-error', 'terminated']);
  assert.equal(b.clock.pending, 0);
});

test('NIST transition() rejects edges Figure 8 does not have', () => {
  const { register, tx } = receiveRegister();
  assert.throws(() => tx.transition('Trying'), InternalError);
  tx.respond(response(register, 200));
  assert.throws(() => tx.transition('Proceeding'), /NIST Completed -> Proceeding/);
});
