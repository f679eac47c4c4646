import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';

test('FakeClock fires timers in due order and only when time reaches them', () => {
  const clock = new FakeClock();
  const fired: string[] = [];
  clock.setTimer(200, () => fired.push('b'));
  clock.setTimer(100, () => fired.push('a'));
  const c = clock.setTimer(150, () => fired.push('cancelled'));
  c.cancel();
  clock.advance(99);
  assert.deepEqual(fired, []);
  clock.advance(1);
  assert.deepEqual(fired, ['a']);
  assert.equal(clock.now(), 100);
  clock.advance(1000);
  assert.deepEqual(fired, ['a', 'b']);
  assert.equal(clock.now(), 1100);
  assert.equal(clock.pending, 0);
});

test('FakeClock fires timers armed by a firing timer within the same advance', () => {
  const clock = new FakeClock();
  const at: number[] = [];
  clock.setTimer(10, () => {
    at.push(clock.now());
    clock.setTimer(10, () => at.push(clock.now()));
  });
  clock.advance(25);
  assert.deepEqual(at, [10, 20]);
});
