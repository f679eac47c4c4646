import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError } from '../../../src/common/errors.ts';
import { NonInviteClientTransaction } from '../../../src/sip/transaction/non-invite-client.ts';
import { request, response, setup, TCP_DEST, TCP_INFO, UDP_DEST, UDP_INFO } from './helpers.ts';

// RFC 3261 Figure 6; T1 = 500 ms, T2 = 4 s, T4 = 5 s.

function startOptions(reliable = false) {
  const h = setup();
  const options = request({ method: 'OPTIONS', branch: 'z9hG4bK-nict', sentBy: '192.0.2.254:5060' });
  const tx = h.layer.sendRequest(options, reliable ? TCP_DEST : UDP_DEST) as NonInviteClientTransaction;
  return { ...h, options, tx };
}

test('NICT Trying: Timer E doubles up to T2 on unreliable transports; Timer F (64*T1) → timeout and Terminated', () => {
  const { clock, sender, user, layer, tx } = startOptions();
  assert.ok(tx instanceof NonInviteClientTransaction);
  assert.equal(tx.state, 'Trying');
  assert.deepEqual(tx.armedTimers, ['E', 'F']);
  clock.advance(31_999);
  // Intervals 0.5, 1, 2, then capped at T2 = 4 s.
  assert.deepEqual(
    sender.requestTimes('OPTIONS'),
    [0, 500, 1500, 3500, 7500, 11_500, 15_500, 19_500, 23_500, 27_500, 31_500],
  );
  assert.deepEqual(user.types(), []);
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['timeout', 'terminated']);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
});

test('NICT Trying on a reliable transport: Timer E not armed, Timer F still 64*T1', () => {
  const { clock, sender, user, tx } = startOptions(true);
  assert.deepEqual(tx.armedTimers, ['F']);
  clock.advance(32_000);
  assert.deepEqual(sender.requestTimes('OPTIONS'), [0]);
  assert.deepEqual(user.types(), ['timeout', 'terminated']);
});

test('NICT Trying → Proceeding on 1xx; Timer E in Proceeding is reset to T2; Timer F still bounds it', () => {
  const { clock, sender, user, layer, options, tx } = startOptions();
  clock.advance(600);
  layer.receive(response(options, 100), UDP_INFO);
  assert.equal(tx.state, 'Proceeding');
  assert.deepEqual(user.statuses(), [100]);
  clock.advance(31_399);
  // E was armed at 500 for 1 s; when it fires in Proceeding it retransmits and is reset to T2.
  assert.deepEqual(sender.requestTimes('OPTIONS'), [0, 500, 1500, 5500, 9500, 13_500, 17_500, 21_500, 25_500, 29_500]);
  layer.receive(response(options, 180), UDP_INFO);
  assert.deepEqual(user.statuses(), [100, 180], 'further provisionals go to the TU');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['response', 'response', 'timeout', 'terminated']);
});

test('NICT Trying → Completed on a final response; retransmitted finals absorbed; Timer K = T4 unreliable', () => {
  const { clock, sender, user, layer, options, tx } = startOptions();
  clock.advance(100);
  layer.receive(response(options, 200), UDP_INFO);
  assert.equal(tx.state, 'Completed');
  assert.deepEqual(tx.armedTimers, ['K']);
  layer.receive(response(options, 200), UDP_INFO);
  layer.receive(response(options, 404), UDP_INFO);
  assert.deepEqual(user.statuses(), [200]);
  clock.advance(4999);
  assert.equal(tx.state, 'Completed');
  assert.deepEqual(sender.requestTimes('OPTIONS'), [0], 'no retransmission in Completed');
  clock.advance(1);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['response', 'terminated']);
  assert.equal(clock.pending, 0);
});

test('NICT Completed: Timer K = T4 unreliable, 0 reliable', () => {
  const { layer, options, tx, user, clock } = startOptions(true);
  layer.receive(response(options, 100), TCP_INFO);
  layer.receive(response(options, 481), TCP_INFO);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['response', 'response', 'terminated']);
  assert.equal(clock.pending, 0);
});

test('NICT: transport error in Trying or Proceeding → TU informed and Terminated; ignored in Completed', () => {
  const a = startOptions();
  a.layer.transportError(a.tx.key);
  assert.equal(a.tx.state, 'Terminated');
  assert.deepEqual(a.user.types(), ['transport-error', 'terminated']);
  assert.equal(a.clock.pending, 0);

  const b = startOptions();
  b.layer.receive(response(b.options, 100), UDP_INFO);
  b.layer.transportError(b.tx.key);
  assert.equal(b.tx.state, 'Terminated');
  assert.deepEqual(b.user.types(), ['response', 'transport-error', 'terminated']);

  const c = startOptions();
  c.layer.receive(response(c.options, 200), UDP_INFO);
  c.layer.transportError(c.tx.key);
  assert.equal(c.tx.state, 'Completed');
  assert.deepEqual(c.user.types(), ['response']);
});

test('NICT: a sender that reports a transport error synchronously ends the transaction without leaking timers', () => {
  const h = setup();
  const layer = h.layer;
  // Replace the recording sender's behaviour: every send fails at once.
  h.sender.send = (_m, _t, key) => {
    if (key) layer.transportError(key);
  };
  const tx = layer.sendRequest(request({ method: 'REGISTER', branch: 'z9hG4bK-sync' }), UDP_DEST);
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(h.user.types(), ['transport-error', 'terminated']);
  assert.equal(h.clock.pending, 0);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
});

test('NICT transition() rejects edges Figure 6 does not have', () => {
  const { layer, options, tx } = startOptions();
  assert.throws(() => tx.transition('Trying'), InternalError);
  layer.receive(response(options, 200), UDP_INFO);
  assert.throws(() => tx.transition('Proceeding'), /NICT Completed -> Proceeding/);
  assert.equal(tx.state, 'Completed');
});
