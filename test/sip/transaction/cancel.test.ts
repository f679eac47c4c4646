import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError } from '../../../src/common/errors.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { header, request, response, type Sent, setup, UDP_DEST, UDP_INFO } from './helpers.ts';

// RFC 3261 §9.1: the client side of CANCEL.

function inviteWithRoute() {
  return request({
    method: 'INVITE',
    branch: 'z9hG4bK-cx',
    seq: 7,
    extra: [{ name: 'Route', value: '<sip:proxy.example.com;lr>' }],
  });
}

const cancels = (sent: Sent[]) => sent.filter((s) => s.message.kind === 'request' && s.message.method === 'CANCEL');

test('CANCEL in Proceeding: built per §9.1 and sent at once in its own client transaction to the same destination', () => {
  const { layer, sender, user } = setup();
  const invite = inviteWithRoute();
  const ict = layer.sendRequest(invite, UDP_DEST);
  layer.receive(response(invite, 180), UDP_INFO);
  const out = layer.cancel(ict);
  assert.equal(out.status, 'sent');
  const nict = out.status === 'sent' ? out.transaction : undefined;
  assert.equal(nict?.kind, 'nict');
  assert.equal(nict?.branch, ict.branch, 'same branch as the INVITE (single Via equal to its top Via)');
  const [sent] = cancels(sender.sent);
  const cancel = sent!.message as SipRequest;
  assert.equal(cancel.uri, invite.uri);
  for (const name of ['from', 'to', 'call-id']) assert.equal(header(cancel, name), header(invite, name));
  assert.equal(header(cancel, 'cseq'), '7 CANCEL');
  assert.deepEqual(
    cancel.headers.filter((h) => h.name.toLowerCase() === 'via').map((h) => h.value),
    [header(invite, 'via')],
  );
  assert.equal(header(cancel, 'route'), '<sip:proxy.example.com;lr>');
  assert.deepEqual(sent!.target, { kind: 'request', destination: UDP_DEST });

  // 200 to the CANCEL goes to the CANCEL transaction, 487 to the INVITE goes to the INVITE transaction.
  layer.receive(response(cancel, 200), UDP_INFO);
  layer.receive(response(invite, 487), UDP_INFO);
  assert.equal(nict?.state, 'Completed');
  assert.equal(ict.state, 'Completed');
  assert.deepEqual(
    user.events.flatMap((e) => (e.type === 'response' ? [`${e.tx.request.method} ${e.response.status}`] : [])),
    ['INVITE 180', 'CANCEL 200', 'INVITE 487'],
  );
});

test('CANCEL in Calling waits for the first provisional response (§9.1: MUST NOT be sent before)', () => {
  const { layer, sender, clock } = setup();
  const invite = inviteWithRoute();
  const ict = layer.sendRequest(invite, UDP_DEST);
  assert.deepEqual(layer.cancel(ict), { status: 'pending' });
  clock.advance(1000);
  assert.equal(cancels(sender.sent).length, 0);
  layer.receive(response(invite, 100), UDP_INFO);
  assert.equal(cancels(sender.sent).length, 1);
  assert.equal(cancels(sender.sent)[0]!.at, 1000);
  layer.receive(response(invite, 180), UDP_INFO);
  assert.equal(cancels(sender.sent).length, 1, 'sent once');
});

test('a held CANCEL is dropped when a final response or Timer B comes first; after a final it is too late', () => {
  const a = setup();
  const inviteA = inviteWithRoute();
  const ictA = a.layer.sendRequest(inviteA, UDP_DEST);
  a.layer.cancel(ictA);
  a.layer.receive(response(inviteA, 200), UDP_INFO);
  a.layer.receive(response(inviteA, 200), UDP_INFO);
  assert.equal(cancels(a.sender.sent).length, 0);
  assert.deepEqual(a.layer.cancel(ictA), { status: 'too-late' });

  const b = setup();
  const ictB = b.layer.sendRequest(inviteWithRoute(), UDP_DEST);
  b.layer.cancel(ictB);
  b.clock.advance(32_000);
  assert.equal(ictB.state, 'Terminated');
  assert.equal(cancels(b.sender.sent).length, 0);
  assert.deepEqual(b.layer.cancel(ictB), { status: 'too-late' });
  assert.equal(b.clock.pending, 0);
});

test('only an INVITE can be cancelled', () => {
  const { layer } = setup();
  const nict = layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-o' }), UDP_DEST);
  assert.throws(() => layer.cancel(nict), InternalError);
});
