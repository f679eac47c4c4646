import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { createRequest, createResponse, getCallId } from '../../../src/sip/message/index.ts';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import type { Destination, ServerTransactionHandle, TransactionUser } from '../../../src/sip/transaction/types.ts';
import { RFC_TIMERS } from './helpers.ts';
import { LoopNetwork, seededRng } from './loop-network.ts';

// 10,000 transactions of every kind and ending (completed, rejected, accepted, timed out, transport error) through two
// layers over a lossy loopback network: afterwards both tables are empty and the clock has no timer left.

const CLIENT = { address: '127.0.0.1', port: 5060 };
const SERVER = { address: '127.0.0.2', port: 5060 };
const TO_SERVER: Destination = { transport: 'UDP', ...SERVER };
const BLACKHOLE: Destination = { transport: 'UDP', address: '127.0.0.9', port: 5060 };

const quiet = (): Omit<TransactionUser, 'onRequest'> => ({
  onAck() {},
  onResponse() {},
  onStrayResponse() {},
  onTimeout() {},
  onTransportError() {},
});

function req(method: string, n: number): SipRequest {
  return createRequest({
    method,
    uri: 'sip:bob@127.0.0.2',
    headers: [
      ['Via', 'SIP/2.0/UDP 127.0.0.1:5060'],
      ['Max-Forwards', '70'],
      ['From', `<sip:alice@127.0.0.1>;tag=f${n}`],
      ['To', '<sip:bob@127.0.0.2>'],
      ['Call-ID', `leak-${n}`],
      ['CSeq', `1 ${method}`],
    ],
  });
}

test('10,000 transactions leave no transaction in the tables and no timer armed', () => {
  const clock = new FakeClock();
  const net = new LoopNetwork(clock, seededRng(2026), {
    dropRate: 0.1,
    duplicateRate: 0.05,
    minDelayMs: 1,
    maxDelayMs: 40,
  });
  const finals = new Set<string>();
  const outcomes = { transportError: 0, terminatedClient: 0, terminatedServer: 0 };
  const timeouts: string[] = [];
  const serverUser: TransactionUser = {
    ...quiet(),
    onRequest(request: SipRequest, tx: ServerTransactionHandle) {
      const n = Number(getCallId(request)!.slice(5));
      const status = request.method === 'INVITE' ? (n % 2 === 0 ? 486 : 200) : 200;
      tx.respond(createResponse(request, status, undefined, { toTag: 's' }));
    },
    onTerminated() {
      outcomes.terminatedServer++;
    },
  };
  const clientUser: TransactionUser = {
    ...quiet(),
    onRequest() {},
    onResponse(response, tx) {
      if (response.status >= 200) finals.add(tx.key);
    },
    onTimeout(tx) {
      const n = Number(getCallId(tx.request)!.slice(5));
      timeouts.push(tx.request.method === 'INVITE' ? `INVITE/${n % 2 === 0 ? 486 : 200}` : tx.request.method);
    },
    onTransportError() {
      outcomes.transportError++;
    },
    onTerminated() {
      outcomes.terminatedClient++;
    },
  };
  const client: TransactionLayer = new TransactionLayer({
    clock,
    timers: RFC_TIMERS,
    user: clientUser,
    sender: net.attach('client', CLIENT, () => client),
  });
  const server: TransactionLayer = new TransactionLayer({
    clock,
    timers: RFC_TIMERS,
    user: serverUser,
    sender: net.attach('server', SERVER, () => server),
  });

  const total = 10_000;
  const batch = 250;
  let peak = 0;
  for (let start = 0; start < total; start += batch) {
    for (let n = start; n < start + batch; n++) {
      switch (n % 5) {
        case 0:
          client.sendRequest(req('OPTIONS', n), TO_SERVER);
          break;
        case 1:
        case 2:
          client.sendRequest(req('INVITE', n), TO_SERVER);
          break;
        case 3:
          // Nobody there: Timer F.
          client.sendRequest(req('MESSAGE', n), BLACKHOLE);
          break;
        case 4: {
          const tx = client.sendRequest(req('INFO', n), TO_SERVER);
          client.transportError(tx.key);
          break;
        }
      }
    }
    clock.advance(50);
    peak = Math.max(peak, client.size.client + server.size.server);
    clock.runAll(1_000_000);
  }

  assert.ok(peak > batch, `transactions were really in the tables (peak ${peak})`);
  assert.deepEqual(client.size, { client: 0, server: 0 });
  assert.deepEqual(server.size, { client: 0, server: 0 });
  assert.equal(clock.pending, 0);
  assert.equal(outcomes.terminatedClient, total);
  // Every MESSAGE to the black hole timed out (Timer F). The only other timeouts are INVITEs answered 200 whose 2xx was
  // lost: this server TU does not retransmit its 2xx (RFC 3261 §13.3.1.4 makes that the UAS core's job, not the
  // transaction's), so the IST in Accepted absorbs the INVITE retransmissions and the ICT's Timer B fires.
  const byKind = new Map<string, number>();
  for (const k of timeouts) byKind.set(k, (byKind.get(k) ?? 0) + 1);
  assert.equal(byKind.get('MESSAGE'), total / 5);
  assert.deepEqual([...byKind.keys()].sort(), ['INVITE/200', 'MESSAGE']);
  const lost2xx = byKind.get('INVITE/200')!;
  assert.ok(lost2xx < total / 5 / 5, `${lost2xx} lost 2xx`);
  // Every OPTIONS and INVITE got its final response to the TU, but for those lost 2xx.
  assert.equal(finals.size, (total * 3) / 5 - lost2xx);
  assert.equal(outcomes.transportError, total / 5);
  const created = server.counters.created;
  assert.equal(outcomes.terminatedServer, created.ist + created.nist);
});
