import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { InternalError } from '../../../src/common/errors.ts';
import type { Header, SipMessage } from '../../../src/sip/message/types.ts';
import type { ClientTransaction, ServerTransaction } from '../../../src/sip/transaction/transaction-layer.ts';
import { request, response, setup, TCP_DEST, TCP_INFO, UDP_DEST, UDP_INFO } from './helpers.ts';

// Properties of the whole layer under arbitrary event sequences (fast-check, seeded by the runner's default):
// nothing throws, nothing is left armed, and only the states RFC 3261 leaves to the TU can outlive the timers.

const METHODS = ['INVITE', 'ACK', 'CANCEL', 'OPTIONS', 'BYE'] as const;
const BRANCHES = [null, 'z9hG4bK', 'z9hG4bK-a', 'z9hG4bK-b', 'old-2543'] as const;
const STATUSES = [100, 180, 200, 202, 302, 486, 503] as const;

const spec = fc.record({
  method: fc.constantFrom(...METHODS),
  branch: fc.constantFrom(...BRANCHES),
  sentBy: fc.constantFrom('192.0.2.1', '192.0.2.1:5060', '192.0.2.2:5070'),
  callId: fc.constantFrom('c1', 'c2'),
  toTag: fc.constantFrom(undefined, 'tt1', 'tt2'),
  seq: fc.integer({ min: 1, max: 2 }),
});

const command = fc.oneof(
  fc.record({ kind: fc.constant('request' as const), spec, reliable: fc.boolean() }),
  fc.record({
    kind: fc.constant('response' as const),
    spec,
    status: fc.constantFrom(...STATUSES),
    toTag: fc.constantFrom('tt1', 'tt2'),
  }),
  fc.record({ kind: fc.constant('send' as const), spec, reliable: fc.boolean() }),
  fc.record({ kind: fc.constant('respond' as const), pick: fc.nat(), status: fc.constantFrom(...STATUSES) }),
  fc.record({ kind: fc.constant('transport-error' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 40_000 }) }),
);

/** States in which RFC 3261 waits for the TU or the peer with no timer: the TU must answer, CANCEL, or Timer C. */
const WAITING = new Set(['ict:Proceeding', 'ist:Proceeding', 'nist:Trying', 'nist:Proceeding']);

test('any sequence of messages, TU actions, transport errors and time: no throw, no leaked timer, only waiting states left', () => {
  fc.assert(
    fc.property(fc.array(command, { maxLength: 60 }), (commands) => {
      const { layer, clock } = setup();
      const servers: ServerTransaction[] = [];
      const all: (ClientTransaction | ServerTransaction)[] = [];
      for (const c of commands) {
        switch (c.kind) {
          case 'request': {
            const out = layer.receive(request(c.spec), c.reliable ? TCP_INFO : UDP_INFO);
            if (out.action === 'new-transaction') {
              servers.push(out.transaction);
              all.push(out.transaction);
            }
            break;
          }
          case 'response':
            if (c.spec.method === 'ACK') break;
            layer.receive(response(request(c.spec), c.status, c.toTag), UDP_INFO);
            break;
          case 'send':
            if (c.spec.method === 'ACK') break;
            try {
              all.push(layer.sendRequest(request(c.spec), c.reliable ? TCP_DEST : UDP_DEST) as ClientTransaction);
            } catch (err) {
              // The only refusal: the TU reused a branch of a live client transaction.
              assert.ok(err instanceof InternalError && err.code === 'ERR_TSX_DUPLICATE', String(err));
            }
            break;
          case 'respond': {
            const tx = servers[c.pick % Math.max(1, servers.length)];
            if (tx) tx.respond(response(tx.request, c.status));
            break;
          }
          case 'transport-error': {
            const tx = all[c.pick % Math.max(1, all.length)];
            if (tx) layer.transportError(tx.key);
            break;
          }
          case 'advance':
            clock.advance(c.ms);
            break;
        }
      }
      clock.runAll(100_000);
      assert.equal(clock.pending, 0);
      const live = all.filter((tx) => tx.state !== 'Terminated');
      for (const tx of live) assert.ok(WAITING.has(`${tx.kind}:${tx.state}`), `${tx.kind} left in ${tx.state}`);
      assert.equal(layer.size.client + layer.size.server, live.length);
      // A terminated transaction has left the table (a later request may have made a new one under the same key).
      for (const tx of all) if (tx.state === 'Terminated') assert.notEqual(layer.find(tx.key), tx);
      layer.close();
      assert.deepEqual(layer.size, { client: 0, server: 0 });
    }),
    { numRuns: 300 },
  );
});

const headerName = fc.constantFrom('Via', 'v', 'CSeq', 'Call-ID', 'i', 'From', 'f', 'To', 't', 'Route', 'X-Junk');
const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-a',
    'SIP/2.0/UDP [::1]:5060;branch=z9hG4bK-a, SIP/2.0/TCP x',
    'SIP/2.0/UDP',
    '1 INVITE',
    '4294967296 INVITE',
    'x INVITE',
    '<sip:a@b>;tag=',
    '"q,\\"" <sip:a@b>;tag=1',
  ),
);

const message = fc.record({
  isRequest: fc.boolean(),
  method: fc.constantFrom('INVITE', 'ACK', 'CANCEL', 'OPTIONS', 'X'),
  status: fc.integer({ min: 100, max: 699 }),
  headers: fc.array(fc.record({ name: headerName, value: headerValue }), { maxLength: 10 }),
});

test('receive() never throws on arbitrary header soup and always says what it did', () => {
  const { layer, clock } = setup();
  fc.assert(
    fc.property(message, (m) => {
      const headers: Header[] = m.headers;
      const msg: SipMessage = m.isRequest
        ? { kind: 'request', method: m.method, uri: 'sip:x@y', version: 'SIP/2.0', headers, body: Buffer.alloc(0) }
        : { kind: 'response', status: m.status, reason: 'R', version: 'SIP/2.0', headers, body: Buffer.alloc(0) };
      const out = layer.receive(msg, UDP_INFO);
      assert.ok(
        [
          'new-transaction',
          'retransmission',
          'ack-absorbed',
          'ack-to-tu',
          'response',
          'stray-response',
          'dropped',
        ].includes(out.action),
      );
      clock.advance(1000);
    }),
    { numRuns: 2000 },
  );
});
