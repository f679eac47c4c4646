import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock, type TimerHandle } from '../../../src/common/timers.ts';
import { createRequest, createResponse, getToTag, newBranch } from '../../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import type {
  ClientTransactionHandle,
  Destination,
  ServerTransactionHandle,
  TransactionHandle,
  TransactionUser,
} from '../../../src/sip/transaction/types.ts';
import { RFC_TIMERS } from './helpers.ts';
import { type LinkControls, LoopNetwork, seededRng } from './loop-network.ts';

// End-to-end client ↔ server transactions over a lossy loopback "network" (serialize → drop/duplicate/delay →
// parse), deterministic through a seeded RNG and the FakeClock. T1 = 500 ms, T2 = 4 s, T4 = 5 s.

const UAC = { address: '127.0.0.1', port: 5060 };
const UAS = { address: '127.0.0.2', port: 5060 };
const TO_UAS: Destination = { transport: 'UDP', ...UAS };

type Final = 200 | 486;

/** A UAS core: answers OPTIONS at once; INVITE with 180 after 100 ms and `final` after 1 s; retransmits 2xx (§13.3.1.4). */
class Uas implements TransactionUser {
  readonly requests: string[] = [];
  readonly acks: SipRequest[] = [];
  readonly timeouts: TransactionHandle[] = [];
  readonly errors: TransactionHandle[] = [];
  #retransmit2xx: TimerHandle | undefined;
  constructor(
    readonly clock: FakeClock,
    readonly final: Final,
  ) {}
  onRequest(request: SipRequest, tx: ServerTransactionHandle): void {
    this.requests.push(request.method);
    if (request.method !== 'INVITE') {
      tx.respond(createResponse(request, 200, undefined, { toTag: 'uas' }));
      return;
    }
    this.clock.setTimer(100, () => tx.respond(createResponse(request, 180, undefined, { toTag: 'uas' })));
    this.clock.setTimer(1000, () => {
      const res = createResponse(request, this.final, undefined, { toTag: 'uas' });
      tx.respond(res);
      if (this.final === 200) this.#start2xxRetransmissions(tx, res);
    });
  }
  /** RFC 3261 §13.3.1.4: the UAS core retransmits the 2xx at T1, doubling to T2, until the ACK, for 64*T1. */
  #start2xxRetransmissions(tx: ServerTransactionHandle, res: SipResponse): void {
    const started = this.clock.now();
    let interval = RFC_TIMERS.t1;
    const tick = () => {
      if (this.acks.length > 0 || this.clock.now() - started >= 64 * RFC_TIMERS.t1) return;
      tx.respond(res);
      interval = Math.min(2 * interval, RFC_TIMERS.t2);
      this.#retransmit2xx = this.clock.setTimer(interval, tick);
    };
    this.#retransmit2xx = this.clock.setTimer(interval, tick);
  }
  onAck(ack: SipRequest): void {
    this.acks.push(ack);
    this.#retransmit2xx?.cancel();
  }
  onResponse(): void {}
  onStrayResponse(): void {}
  onTimeout(tx: TransactionHandle): void {
    this.timeouts.push(tx);
  }
  onTransportError(tx: TransactionHandle): void {
    this.errors.push(tx);
  }
}

/** A UAC core: records responses; ACKs every 2xx to INVITE itself (§13.2.2.4), outside any transaction. */
class Uac implements TransactionUser {
  readonly responses: number[] = [];
  readonly strays: number[] = [];
  readonly timeouts: TransactionHandle[] = [];
  readonly errors: TransactionHandle[] = [];
  acksSent = 0;
  layer!: TransactionLayer;
  onRequest(): void {}
  onAck(): void {}
  onResponse(response: SipResponse, tx: ClientTransactionHandle): void {
    this.responses.push(response.status);
    if (tx.request.method === 'INVITE' && response.status >= 200 && response.status < 300) this.#ack2xx(tx, response);
  }
  #ack2xx(tx: ClientTransactionHandle, response: SipResponse): void {
    const inv = tx.request;
    const header = (name: string) => inv.headers.find((h) => h.name === name)!.value;
    const ack = createRequest({
      method: 'ACK',
      uri: inv.uri,
      headers: [
        ['Via', `SIP/2.0/UDP ${UAC.address}:${UAC.port};branch=${newBranch()}`],
        ['Max-Forwards', '70'],
        ['From', header('From')],
        ['To', `${header('To')};tag=${getToTag(response)}`],
        ['Call-ID', header('Call-ID')],
        ['CSeq', `${header('CSeq').split(' ')[0]} ACK`],
      ],
    });
    this.acksSent++;
    this.layer.sendStateless(ack, TO_UAS);
  }
  onStrayResponse(response: SipResponse): void {
    this.strays.push(response.status);
  }
  onTimeout(tx: TransactionHandle): void {
    this.timeouts.push(tx);
  }
  onTransportError(tx: TransactionHandle): void {
    this.errors.push(tx);
  }
}

function newRequest(method: string, n: number): SipRequest {
  return createRequest({
    method,
    uri: `sip:bob@${UAS.address}`,
    headers: [
      ['Via', `SIP/2.0/UDP ${UAC.address}:${UAC.port}`],
      ['Max-Forwards', '70'],
      ['From', `<sip:alice@${UAC.address}>;tag=a${n}`],
      ['To', `<sip:bob@${UAS.address}>`],
      ['Call-ID', `lossy-${method}-${n}@test`],
      ['CSeq', `1 ${method}`],
      ['Contact', `<sip:alice@${UAC.address}>`],
    ],
  });
}

function run(seed: number, method: 'OPTIONS' | 'INVITE', final: Final, controls: Partial<LinkControls>) {
  const clock = new FakeClock();
  const net = new LoopNetwork(clock, seededRng(seed), controls);
  const uac = new Uac();
  const uas = new Uas(clock, final);
  const a: TransactionLayer = new TransactionLayer({
    clock,
    timers: RFC_TIMERS,
    user: uac,
    sender: net.attach('uac', UAC, () => a),
  });
  const b: TransactionLayer = new TransactionLayer({
    clock,
    timers: RFC_TIMERS,
    user: uas,
    sender: net.attach('uas', UAS, () => b),
  });
  uac.layer = a;
  const tx = a.sendRequest(newRequest(method, seed), TO_UAS);
  const fired = clock.runAll(100_000);
  return { clock, net, uac, uas, a, b, tx, fired };
}

const LOSSY: Partial<LinkControls> = { dropRate: 0.3, duplicateRate: 0.05, minDelayMs: 5, maxDelayMs: 80 };
const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);

function assertClean(r: ReturnType<typeof run>) {
  assert.deepEqual(r.a.size, { client: 0, server: 0 });
  assert.deepEqual(r.b.size, { client: 0, server: 0 });
  assert.equal(r.clock.pending, 0);
  assert.deepEqual([r.uac.errors.length, r.uas.errors.length], [0, 0]);
  assert.equal(r.net.stats.unparsable, 0);
}

test('NICT ↔ NIST over 30% loss (+5% duplicates, 5–80 ms reordering): each of 40 seeded runs completes once', (t) => {
  let dropped = 0;
  let sent = 0;
  for (const seed of SEEDS) {
    const r = run(seed, 'OPTIONS', 200, LOSSY);
    assert.deepEqual(r.uac.timeouts, [], `seed ${seed}: timeout`);
    assert.deepEqual(r.uac.responses, [200], `seed ${seed}: the TU sees the final response exactly once`);
    assert.deepEqual(r.uas.requests, ['OPTIONS'], `seed ${seed}: the server TU sees the request exactly once`);
    assert.equal(r.tx.state, 'Terminated');
    assertClean(r);
    dropped += r.net.stats.dropped;
    sent += r.net.stats.sent;
  }
  // The loss really happened: about 30% of what was sent.
  assert.ok(dropped / sent > 0.2 && dropped / sent < 0.4, `dropped ${dropped} of ${sent}`);
  t.diagnostic(`OPTIONS x${SEEDS.length}: ${sent} datagrams, ${dropped} dropped`);
});

test('ICT ↔ IST with a 486 over 30% loss: the final reaches the TU once and the ACK confirms the IST in each of 40 runs', (t) => {
  let sent = 0;
  let dropped = 0;
  for (const seed of SEEDS) {
    const r = run(seed, 'INVITE', 486, LOSSY);
    sent += r.net.stats.sent;
    dropped += r.net.stats.dropped;
    assert.deepEqual(r.uac.timeouts, [], `seed ${seed}: client timeout`);
    assert.deepEqual(r.uas.timeouts, [], `seed ${seed}: Timer H fired (ACK never arrived)`);
    const finals = r.uac.responses.filter((s) => s >= 200);
    assert.deepEqual(finals, [486], `seed ${seed}: the 486 reaches the TU exactly once`);
    assert.ok(r.uac.responses.every((s) => s === 486 || s === 180 || s === 100));
    assert.deepEqual(r.uas.requests, ['INVITE'], `seed ${seed}: INVITE retransmissions absorbed`);
    assert.equal(r.b.counters.acksAbsorbed > 0, true, `seed ${seed}: the IST absorbed the ACK`);
    assert.deepEqual(r.uas.acks, [], 'the ACK for a non-2xx never reaches the server TU');
    assertClean(r);
  }
  t.diagnostic(`INVITE/486 x${SEEDS.length}: ${sent} datagrams, ${dropped} dropped`);
});

test('ICT ↔ IST with a 200 over 30% loss (RFC 6026 Accepted, 2xx retransmitted by the UAS core): the ACK gets through in each of 40 runs', (t) => {
  let sent = 0;
  let dropped = 0;
  for (const seed of SEEDS) {
    const r = run(seed, 'INVITE', 200, LOSSY);
    sent += r.net.stats.sent;
    dropped += r.net.stats.dropped;
    assert.deepEqual(r.uac.timeouts, [], `seed ${seed}: client timeout`);
    assert.ok(r.uac.responses.includes(200), `seed ${seed}: no 2xx reached the UAC`);
    assert.ok(r.uas.acks.length > 0, `seed ${seed}: no ACK reached the UAS core`);
    assert.deepEqual(r.uas.requests, ['INVITE'], `seed ${seed}: INVITE retransmissions absorbed in Accepted`);
    // Every 2xx the UAC's ICT saw while Accepted went to its TU; none came after Timer M as a stray in these runs.
    assert.equal(r.uac.acksSent, r.uac.responses.filter((s) => s === 200).length);
    assertClean(r);
  }
  t.diagnostic(`INVITE/200 x${SEEDS.length}: ${sent} datagrams, ${dropped} dropped`);
});

test('the lossy network is deterministic: the same seed gives the same wire log', () => {
  const one = run(7, 'INVITE', 486, LOSSY);
  const two = run(7, 'INVITE', 486, LOSSY);
  assert.deepEqual(one.net.log, two.net.log);
  assert.ok(one.net.log.some((e) => e.fate === 'dropped'));
  const other = run(8, 'INVITE', 486, LOSSY);
  assert.notDeepEqual(one.net.log, other.net.log);
});

test("loss of the first INVITE and its first retransmission: the ICT's Timer A recovers (dropNext control)", () => {
  const r = run(1, 'INVITE', 486, { dropNext: 2 });
  const invites = r.net.log.filter((e) => e.first.startsWith('INVITE '));
  assert.deepEqual(
    invites.map((e) => [e.at, e.fate]),
    [
      [0, 'dropped'],
      [500, 'dropped'],
      [1500, 'sent'],
    ],
  );
  assert.deepEqual(
    r.uac.responses.filter((s) => s >= 200),
    [486],
  );
  assertClean(r);
});
