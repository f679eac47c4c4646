import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import { TraversalClientZone, type ZoneStatus } from '../../src/traversal/client-zone.ts';

/**
 * A probe whose outcomes the test scripts: each call takes the next outcome (true = the edge answered, false = it
 * failed, 'hang' = never settles, like a keepalive sent on a connection that was reset).
 */
function scriptedZone(outcomes: (boolean | 'hang')[]) {
  const clock = new FakeClock();
  const calls: number[] = [];
  const changes: ZoneStatus[] = [];
  const zone = new TraversalClientZone({
    name: 'tz1',
    peer: '192.0.2.10:7001',
    clock,
    keepaliveMs: 30_000,
    retryMinMs: 1000,
    retryMaxMs: 8000,
    probe: () => {
      calls.push(clock.now());
      const ok = outcomes.shift() ?? true;
      if (ok === 'hang') return new Promise<void>(() => {});
      return ok ? Promise.resolve() : Promise.reject(new Error('connection refused'));
    },
    onChange: (s) => changes.push(s),
  });
  // Promise callbacks run as microtasks: let them settle after each clock step.
  const step = async (ms: number) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { clock, zone, calls, changes, step };
}

test('a zone probes at once, becomes active, then keeps the flow alive every keepalive interval', async () => {
  const { zone, calls, changes, step } = scriptedZone([true, true, true]);
  assert.equal(zone.state, 'checking');
  zone.start();
  await step(0);
  assert.equal(zone.state, 'active');
  assert.deepEqual(calls, [0]);
  await step(29_999);
  assert.equal(calls.length, 1);
  await step(1);
  await step(30_000);
  assert.deepEqual(calls, [0, 30_000, 60_000]);
  assert.deepEqual(
    changes.map((c) => c.state),
    ['active'],
  );
});

test('a failing zone reconnects with exponential backoff capped at retryMax, and recovers', async () => {
  const { zone, calls, changes, step } = scriptedZone([false, false, false, false, false, true]);
  zone.start();
  await step(0);
  assert.equal(zone.state, 'failed');
  assert.equal(zone.status().lastError, 'connection refused');
  // retries after 1, 2, 4, 8 (cap), 8 s: probes at 0, 1000, 3000, 7000, 15000 fail, 23000 succeeds
  for (let i = 0; i < 45; i++) await step(500);
  assert.equal(zone.state, 'failed');
  assert.equal(zone.status().retryInMs, 8000);
  await step(500);
  assert.equal(zone.state, 'active');
  assert.deepEqual(calls.slice(0, 6), [0, 1000, 3000, 7000, 15_000, 23_000]);
  assert.equal(zone.status().failures, 5);
  assert.deepEqual([...new Set(changes.map((c) => c.state))], ['failed', 'active']);
});

test('an active zone whose keepalive fails goes to failed and retries from the minimum delay', async () => {
  const { zone, calls, step } = scriptedZone([true, false, true]);
  zone.start();
  await step(0);
  await step(30_000);
  assert.equal(zone.state, 'failed');
  await step(1000);
  assert.equal(zone.state, 'active');
  assert.deepEqual(calls, [0, 30_000, 31_000]);
});

test('stop cancels the timers and no probe follows', async () => {
  const { zone, clock, calls, step } = scriptedZone([true]);
  zone.start();
  await step(0);
  zone.stop();
  assert.equal(zone.state, 'stopped');
  await step(120_000);
  assert.equal(calls.length, 1);
  assert.equal(clock.pending, 0);
});

test('a closed flow fails the zone at once and it reconnects after retryMin, even with a keepalive stuck in flight', async () => {
  const { zone, calls, changes, step } = scriptedZone([true, 'hang', true]);
  zone.start();
  await step(0);
  await step(30_000);
  // The keepalive went out on the flow and the connection was reset: no answer will come.
  assert.deepEqual(calls, [0, 30_000]);
  assert.equal(zone.state, 'active');
  zone.flowClosed();
  assert.equal(zone.state, 'failed');
  assert.equal(zone.status().lastError, 'flow closed');
  assert.equal(zone.status().failures, 1);
  await step(1000);
  assert.deepEqual(calls, [0, 30_000, 31_000]);
  assert.equal(zone.state, 'active');
  assert.deepEqual(
    changes.map((c) => c.state),
    ['active', 'failed', 'active'],
  );
});

test('a stale probe settling after its flow was declared closed changes nothing', async () => {
  let settle: ((ok: boolean) => void) | undefined;
  const clock = new FakeClock();
  const calls: number[] = [];
  const zone = new TraversalClientZone({
    name: 'tz1',
    peer: '192.0.2.10:7001',
    clock,
    keepaliveMs: 30_000,
    retryMinMs: 1000,
    retryMaxMs: 8000,
    probe: () => {
      calls.push(clock.now());
      if (calls.length !== 2) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        settle = (ok) => (ok ? resolve() : reject(new Error('timeout')));
      });
    },
  });
  const step = async (ms: number) => {
    clock.advance(ms);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  zone.start();
  await step(0);
  await step(30_000);
  zone.flowClosed();
  await step(1000);
  assert.equal(zone.state, 'active');
  // The keepalive sent on the dead connection times out long after: the zone, active on its new flow, stays so.
  settle?.(false);
  await step(0);
  assert.equal(zone.state, 'active');
  assert.equal(zone.status().failures, 1);
  assert.deepEqual(calls, [0, 30_000, 31_000]);
});

test('flowClosed before start or after stop does nothing', async () => {
  const { zone, calls, step } = scriptedZone([true]);
  zone.flowClosed();
  assert.equal(zone.state, 'checking');
  zone.start();
  await step(0);
  zone.stop();
  zone.flowClosed();
  assert.equal(zone.state, 'stopped');
  await step(5000);
  assert.equal(calls.length, 1);
});
