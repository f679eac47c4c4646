import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError, OperationalError } from '../../../src/common/errors.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import type { InviteServerTransaction } from '../../../src/sip/transaction/invite-server.ts';
import { isRfc3261Branch } from '../../../src/sip/transaction/keys.ts';
import { NonInviteServerTransaction } from '../../../src/sip/transaction/non-invite-server.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import {
  header,
  RecordingSender,
  RecordingUser,
  RFC_TIMERS,
  request,
  response,
  setup,
  UDP_DEST,
  UDP_INFO,
} from './helpers.ts';

// RFC 3261 §17.1.3 (responses to client transactions), §17.2.3 (requests to server transactions, with the RFC 2543
// fallback), §9.2 (CANCEL), §17.2.3/§13.3.1.4 (ACK for 2xx is not part of the INVITE transaction).

function newServerTx(layer: ReturnType<typeof setup>['layer'], req: SipRequest) {
  const out = layer.receive(req, UDP_INFO);
  assert.equal(out.action, 'new-transaction');
  return (out as { transaction: InviteServerTransaction | NonInviteServerTransaction }).transaction;
}

test('client matching: top Via branch plus CSeq method; INVITE and CANCEL with one branch are two transactions', () => {
  const { layer, user } = setup();
  const invite = request({ method: 'INVITE', branch: 'z9hG4bK-b1' });
  const cancel = request({ method: 'CANCEL', branch: 'z9hG4bK-b1' });
  const ict = layer.sendRequest(invite, UDP_DEST);
  const cancelTx = layer.sendRequest(cancel, UDP_DEST);
  assert.notEqual(ict.key, cancelTx.key);
  assert.deepEqual(layer.receive(response(cancel, 200), UDP_INFO), { action: 'response', transaction: cancelTx });
  assert.deepEqual(layer.receive(response(invite, 487), UDP_INFO), { action: 'response', transaction: ict });
  assert.equal(ict.state, 'Completed');
  assert.equal(cancelTx.state, 'Completed');
  assert.deepEqual(
    user.events.flatMap((e) => (e.type === 'response' ? [[e.response.status, e.tx.kind]] : [])),
    [
      [200, 'nict'],
      [487, 'ict'],
    ],
  );
});

test('client matching: unknown branch, or right branch with another CSeq method → stray response to the TU', () => {
  const { layer, user } = setup();
  const options = request({ method: 'OPTIONS', branch: 'z9hG4bK-known' });
  const tx = layer.sendRequest(options, UDP_DEST);
  assert.equal(
    layer.receive(response(request({ method: 'OPTIONS', branch: 'z9hG4bK-other' }), 200), UDP_INFO).action,
    'stray-response',
  );
  assert.equal(
    layer.receive(response(request({ method: 'INFO', branch: 'z9hG4bK-known' }), 200), UDP_INFO).action,
    'stray-response',
  );
  assert.deepEqual(user.types(), ['stray', 'stray']);
  assert.equal(tx.state, 'Trying');
  assert.equal(layer.counters.strayResponses, 2);
  const noVia = response(options, 200);
  noVia.headers = noVia.headers.filter((h) => h.name !== 'Via');
  assert.deepEqual(layer.receive(noVia, UDP_INFO), {
    action: 'dropped',
    reason: 'response without top Via branch or CSeq',
  });
});

test('server matching (RFC 3261): branch, sent-by and method; default port equals an explicit 5060', () => {
  const { layer, user } = setup();
  const tx = newServerTx(layer, request({ method: 'OPTIONS', branch: 'z9hG4bK-s1', sentBy: '192.0.2.1' }));
  assert.deepEqual(
    layer.receive(request({ method: 'OPTIONS', branch: 'z9hG4bK-s1', sentBy: '192.0.2.1:5060' }), UDP_INFO),
    {
      action: 'retransmission',
      transaction: tx,
    },
  );
  // Same branch from another sent-by: another transaction (a branch is unique per sender only).
  assert.notEqual(newServerTx(layer, request({ method: 'OPTIONS', branch: 'z9hG4bK-s1', sentBy: '192.0.2.9' })), tx);
  // Same branch and sent-by, another method: another transaction.
  assert.notEqual(newServerTx(layer, request({ method: 'INFO', branch: 'z9hG4bK-s1', sentBy: '192.0.2.1' })), tx);
  assert.deepEqual(layer.size, { client: 0, server: 3 });
  assert.deepEqual(user.types(), ['request', 'request', 'request']);
  assert.equal(layer.counters.requestRetransmissionsAbsorbed, 1);
});

test('server matching: a request whose CSeq method differs from its method, or without Via, is dropped', () => {
  const { layer, user } = setup();
  assert.equal(layer.receive(request({ method: 'INVITE', cseqMethod: 'OPTIONS' }), UDP_INFO).action, 'dropped');
  const noVia = request({ method: 'OPTIONS' });
  noVia.headers = noVia.headers.filter((h) => h.name !== 'Via');
  assert.equal(layer.receive(noVia, UDP_INFO).action, 'dropped');
  assert.deepEqual(user.types(), []);
  assert.equal(layer.counters.dropped, 2);
});

test('ACK to a non-2xx matches the INVITE server transaction (same branch) and is absorbed', () => {
  const { layer, user } = setup();
  const invite = request({ method: 'INVITE', branch: 'z9hG4bK-i1' });
  const ist = newServerTx(layer, invite) as InviteServerTransaction;
  ist.respond(response(invite, 486));
  const out = layer.receive(request({ method: 'ACK', branch: 'z9hG4bK-i1', toTag: 'tt1' }), UDP_INFO);
  assert.deepEqual(out, { action: 'ack-absorbed', transaction: ist });
  assert.equal(ist.state, 'Confirmed');
  assert.deepEqual(user.types(), ['request']);
});

test('ACK to a 2xx (new branch, RFC 3261 §13.2.2.4) matches no transaction and goes to the TU', () => {
  const { layer, user } = setup();
  const invite = request({ method: 'INVITE', branch: 'z9hG4bK-i2' });
  const ist = newServerTx(layer, invite) as InviteServerTransaction;
  ist.respond(response(invite, 200));
  const ack = request({ method: 'ACK', branch: 'z9hG4bK-ack-for-2xx', toTag: 'tt1' });
  assert.deepEqual(layer.receive(ack, UDP_INFO), { action: 'ack-to-tu' });
  assert.equal(ist.state, 'Accepted');
  const last = user.events.at(-1)!;
  assert.equal(last.type, 'ack');
  assert.equal(last.type === 'ack' ? last.ack : undefined, ack);
  assert.deepEqual(layer.size, { client: 0, server: 1 }, 'an ACK creates no server transaction');
});

test('CANCEL is its own server transaction, matched to the INVITE it cancels (§9.2)', () => {
  const { layer, user } = setup();
  const invite = request({ method: 'INVITE', branch: 'z9hG4bK-c1' });
  const ist = newServerTx(layer, invite) as InviteServerTransaction;
  const cancel = request({ method: 'CANCEL', branch: 'z9hG4bK-c1' });
  const nist = newServerTx(layer, cancel) as NonInviteServerTransaction;
  assert.ok(nist instanceof NonInviteServerTransaction);
  assert.equal(nist.cancels, ist);
  assert.equal(layer.matchCancel(cancel), ist);
  assert.equal(ist.state, 'Proceeding', 'the CANCEL does not touch the INVITE transaction');
  // A retransmitted CANCEL matches the CANCEL transaction.
  assert.deepEqual(layer.receive(request({ method: 'CANCEL', branch: 'z9hG4bK-c1' }), UDP_INFO), {
    action: 'retransmission',
    transaction: nist,
  });
  const orphan = newServerTx(
    layer,
    request({ method: 'CANCEL', branch: 'z9hG4bK-unknown' }),
  ) as NonInviteServerTransaction;
  assert.equal(orphan.cancels, undefined);
  assert.deepEqual(user.types(), ['request', 'request', 'request']);
});

test('RFC 2543 fallback (no magic cookie): Request-URI, tags, Call-ID, CSeq and top Via identify the transaction', () => {
  const { layer } = setup();
  const spec = { method: 'INVITE', branch: null, sentBy: 'iftgw.example.com', callId: '2543@x' } as const;
  const ist = newServerTx(layer, request(spec)) as InviteServerTransaction;
  assert.deepEqual(layer.receive(request(spec), UDP_INFO), { action: 'retransmission', transaction: ist });
  // Each of the compared fields, changed alone, makes another transaction.
  assert.notEqual(newServerTx(layer, request({ ...spec, callId: 'other@x' })), ist);
  assert.notEqual(newServerTx(layer, request({ ...spec, sentBy: 'other.example.com' })), ist);
  assert.notEqual(newServerTx(layer, request({ ...spec, seq: 2 })), ist);
  assert.notEqual(newServerTx(layer, request({ ...spec, uri: 'sip:carol@example.com' })), ist);
  assert.notEqual(newServerTx(layer, request({ ...spec, fromTag: 'other' })), ist);
  assert.deepEqual(layer.size, { client: 0, server: 6 });

  // Non-INVITE: To tag part of the key.
  const bye = { method: 'BYE', branch: 'old-style-branch', toTag: 'dlg', callId: 'b@x' } as const;
  const nist = newServerTx(layer, request(bye));
  assert.equal(layer.receive(request(bye), UDP_INFO).action, 'retransmission');
  assert.notEqual(newServerTx(layer, request({ ...bye, toTag: 'other' })), nist);
});

test('RFC 2543 ACK matches when its To tag is the one of the response sent; otherwise it goes to the TU', () => {
  const { layer, user } = setup();
  const spec = { method: 'INVITE', branch: null, callId: '2543-ack@x' } as const;
  const invite = request(spec);
  const ist = newServerTx(layer, invite) as InviteServerTransaction;
  ist.respond(response(invite, 404, 'uas-1'));
  assert.deepEqual(layer.receive(request({ ...spec, method: 'ACK', toTag: 'wrong' }), UDP_INFO), {
    action: 'ack-to-tu',
  });
  assert.equal(ist.state, 'Completed');
  assert.deepEqual(layer.receive(request({ ...spec, method: 'ACK', toTag: 'uas-1' }), UDP_INFO), {
    action: 'ack-absorbed',
    transaction: ist,
  });
  assert.equal(ist.state, 'Confirmed');
  assert.deepEqual(user.types(), ['request', 'ack']);
});

test('RFC 2543 CANCEL (no branch) finds its INVITE; a bare magic cookie (RFC 4475 badbranch) falls back too', () => {
  const { layer } = setup();
  const spec = { method: 'INVITE', branch: null, callId: '2543-cancel@x' } as const;
  const ist = newServerTx(layer, request(spec));
  const cancel = newServerTx(layer, request({ ...spec, method: 'CANCEL' })) as NonInviteServerTransaction;
  assert.equal(cancel.cancels, ist);

  assert.equal(isRfc3261Branch('z9hG4bK'), false);
  assert.equal(isRfc3261Branch('z9hG4bKx'), true);
  assert.equal(isRfc3261Branch('1234'), false);
  // Two different requests with the bare cookie are not taken for one transaction.
  const a = newServerTx(layer, request({ method: 'OPTIONS', branch: 'z9hG4bK', callId: 'bad-1' }));
  const b = newServerTx(layer, request({ method: 'OPTIONS', branch: 'z9hG4bK', callId: 'bad-2' }));
  assert.notEqual(a, b);
});

test('sendRequest: a missing or pre-3261 branch is replaced by a generated one; ACK and duplicates are refused', () => {
  const { layer, sender } = setup();
  const req = request({ method: 'OPTIONS', branch: null });
  const tx = layer.sendRequest(req, UDP_DEST);
  assert.ok(isRfc3261Branch(tx.branch));
  assert.match(header(req, 'via')!, new RegExp(`;branch=${tx.branch}$`));
  assert.equal(sender.sent[0]!.message, req);

  const old = request({ method: 'OPTIONS', branch: '2543branch', callId: 'x2' });
  const tx2 = layer.sendRequest(old, UDP_DEST);
  assert.notEqual(tx2.branch, '2543branch');
  assert.equal((header(old, 'via')!.match(/branch=/g) ?? []).length, 1);

  assert.throws(() => layer.sendRequest(request({ method: 'ACK' }), UDP_DEST), InternalError);
  const first = request({ method: 'MESSAGE', branch: 'z9hG4bK-dup' });
  layer.sendRequest(first, UDP_DEST);
  assert.throws(() => layer.sendRequest(request({ method: 'MESSAGE', branch: 'z9hG4bK-dup' }), UDP_DEST), /exists/);
  assert.throws(() => layer.sendRequest(request({ method: 'MESSAGE', cseqMethod: 'INFO' }), UDP_DEST), InternalError);
});

test('a throwing TU callback is contained: the layer keeps working', () => {
  const { layer, user } = setup();
  user.onNewRequest = () => {
    throw new Error('TU bug');
  };
  const tx = newServerTx(layer, request({ method: 'OPTIONS', branch: 'z9hG4bK-throw' })) as NonInviteServerTransaction;
  assert.equal(tx.respond(response(tx.request, 200)), true);
  assert.equal(tx.state, 'Completed');
});

test('close() terminates every transaction and cancels every timer', () => {
  const { layer, clock, user } = setup();
  layer.sendRequest(request({ method: 'INVITE', branch: 'z9hG4bK-x1' }), UDP_DEST);
  layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-x2' }), UDP_DEST);
  newServerTx(layer, request({ method: 'INVITE', branch: 'z9hG4bK-x3' }));
  assert.ok(clock.pending > 0);
  layer.close();
  assert.equal(layer.closed, true);
  assert.deepEqual(layer.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
  assert.equal(user.types().filter((t) => t === 'terminated').length, 3);
  assert.equal(layer.receive(request({ method: 'OPTIONS' }), UDP_INFO).action, 'dropped');
});

test('a sender that throws is contained: the send counts as a transport error of its transaction', () => {
  const { layer, sender, user, clock } = setup();
  sender.send = () => {
    throw new Error('socket gone');
  };
  const ict = layer.sendRequest(request({ method: 'INVITE', branch: 'z9hG4bK-throwing' }), UDP_DEST);
  assert.equal(ict.state, 'Terminated');
  const invite = request({ method: 'INVITE', branch: 'z9hG4bK-in' });
  const ist = newServerTx(layer, invite) as InviteServerTransaction;
  assert.equal(ist.respond(response(invite, 486)), true);
  assert.equal(ist.state, 'Terminated');
  assert.deepEqual(user.types(), ['transport-error', 'terminated', 'request', 'transport-error', 'terminated']);
  assert.equal(clock.pending, 0);
});

test('a full table answers new requests 503 statelessly and refuses new client transactions', () => {
  const clock = new FakeClock();
  const sender = new RecordingSender(clock);
  const user = new RecordingUser();
  const layer = new TransactionLayer({ clock, sender, user, timers: RFC_TIMERS, maxTransactions: 2 });
  layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-f1' }), UDP_DEST);
  newServerTx(layer, request({ method: 'INVITE', branch: 'z9hG4bK-f2' }));
  const out = layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-f3' }), UDP_INFO);
  assert.deepEqual(out, { action: 'dropped', reason: 'transaction table full' });
  const busy = sender.sent.at(-1)!;
  assert.equal(busy.message.kind === 'response' && busy.message.status, 503);
  assert.equal(header(busy.message, 'retry-after'), '5');
  assert.equal(busy.key, undefined, 'stateless');
  // A retransmission of a request already in the table is still absorbed.
  assert.equal(layer.receive(request({ method: 'INVITE', branch: 'z9hG4bK-f2' }), UDP_INFO).action, 'retransmission');
  assert.throws(
    () => layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-f4' }), UDP_DEST),
    (err: unknown) => err instanceof OperationalError && err.code === 'ERR_TSX_TABLE_FULL',
  );
  assert.equal(layer.counters.overloaded, 1);
  assert.deepEqual(user.types(), ['request']);
});
