import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { createResponse, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { InviteServerTransaction } from '../../../src/sip/transaction/invite-server.ts';
import { NonInviteServerTransaction } from '../../../src/sip/transaction/non-invite-server.ts';
import { setup, UDP_INFO } from './helpers.ts';

// The two RFC 4475 messages that test transaction matching (test/vectors/sip/rfc4475, copied from
// /work/shared/testdata): §3.2.1 badbranch (bare magic cookie) and §3.4.1 inv2543 (RFC 2543 INVITE, no branch).

function vector(name: string): Buffer {
  return readFileSync(new URL(`../../vectors/sip/rfc4475/${name}`, import.meta.url));
}

function parse(bytes: Buffer): SipRequest {
  const r = parseMessage(bytes);
  assert.ok(r.ok, r.ok ? '' : r.reason.reason);
  assert.equal(r.value.kind, 'request');
  return r.value as SipRequest;
}

/** The vector with one header line replaced (CRLF kept). */
function edit(bytes: Buffer, from: string, to: string): Buffer {
  const text = bytes.toString('latin1');
  assert.ok(text.includes(from), `vector has ${from}`);
  return Buffer.from(text.replace(from, to), 'latin1');
}

test('RFC 4475 §3.4.1 inv2543: matched by the RFC 2543 rules; retransmission absorbed; the 2543 ACK confirms the 486', () => {
  const { layer, user, sender } = setup();
  const bytes = vector('inv2543.dat');
  const out = layer.receive(parse(bytes), UDP_INFO);
  assert.equal(out.action, 'new-transaction');
  const ist = (out as { transaction: InviteServerTransaction }).transaction;
  assert.ok(ist instanceof InviteServerTransaction);
  assert.match(ist.key, /^s2543 INVITE\n/);
  assert.deepEqual(layer.receive(parse(bytes), UDP_INFO), { action: 'retransmission', transaction: ist });
  // Same message with another Call-ID: another transaction.
  const other = layer.receive(parse(edit(bytes, 'Call-ID: inv2543.1717', 'Call-ID: other.1717')), UDP_INFO);
  assert.equal(other.action, 'new-transaction');

  ist.respond(createResponse(ist.request, 486, undefined, { toTag: 'uas2543' }));
  // An RFC 2543 ACK: same Request-URI, From, Call-ID, CSeq number and top Via; To with the response's tag.
  let ack = edit(bytes, 'INVITE sip:UserB@example.com', 'ACK sip:UserB@example.com');
  ack = edit(ack, 'CSeq: 56 INVITE', 'CSeq: 56 ACK');
  ack = edit(
    ack,
    'To: sip:+16505552222@ss1.example.net;user=phone',
    'To: <sip:+16505552222@ss1.example.net;user=phone>;tag=uas2543',
  );
  assert.deepEqual(layer.receive(parse(ack), UDP_INFO), { action: 'ack-absorbed', transaction: ist });
  assert.equal(ist.state, 'Confirmed');
  assert.deepEqual(user.types(), ['request', 'request']);
  assert.deepEqual(sender.responseTimes(486), [0]);
});

test('RFC 4475 §3.2.1 badbranch: a bare magic cookie falls back to RFC 2543 matching', () => {
  const { layer, user } = setup();
  const bytes = vector('badbranch.dat');
  const req = parse(bytes);
  const out = layer.receive(req, UDP_INFO);
  assert.equal(out.action, 'new-transaction');
  const nist = (out as { transaction: NonInviteServerTransaction }).transaction;
  assert.ok(nist instanceof NonInviteServerTransaction);
  assert.match(nist.key, /^s2543 OPTIONS\n/);
  assert.equal(layer.receive(parse(bytes), UDP_INFO).action, 'retransmission');
  // Another request with the same bare cookie but another CSeq is not taken for a retransmission.
  const next = layer.receive(parse(edit(bytes, 'CSeq: 8 OPTIONS', 'CSeq: 9 OPTIONS')), UDP_INFO);
  assert.equal(next.action, 'new-transaction');
  assert.equal(nist.respond(createResponse(req, 200, undefined, { toTag: 'x' })), true);
  assert.deepEqual(user.types(), ['request', 'request']);
});
