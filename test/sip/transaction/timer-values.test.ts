import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InternalError } from '../../../src/common/errors.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { resolveTimers } from '../../../src/sip/transaction/timer-values.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import { RecordingSender, RecordingUser, request, UDP_DEST } from './helpers.ts';

test('resolveTimers gives RFC 3261 Table 4 (and RFC 6026 L/M) for unreliable and reliable transports', () => {
  const cfg = { t1: 500, t2: 4000, t4: 5000 };
  const u = resolveTimers(cfg, false);
  assert.deepEqual(
    [u.A, u.B, u.D, u.E, u.F, u.G, u.H, u.I, u.J, u.K, u.L, u.M, u.trying100],
    [500, 32_000, 32_000, 500, 32_000, 500, 32_000, 5000, 32_000, 5000, 32_000, 32_000, 200],
  );
  const r = resolveTimers(cfg, true);
  assert.deepEqual(
    [r.A, r.B, r.D, r.E, r.F, r.G, r.H, r.I, r.J, r.K, r.L, r.M],
    [undefined, 32_000, 0, undefined, 32_000, undefined, 32_000, 0, 0, 0, 32_000, 32_000],
  );
  assert.equal(resolveTimers({ ...cfg, timerD: 45_000 }, false).D, 45_000);
  assert.equal(resolveTimers({ ...cfg, t1: 2000, t2: 8000 }, false).D, 128_000, 'D covers 64*T1 of the server');
  assert.equal(resolveTimers({ ...cfg, trying100Ms: 0 }, false).trying100, 0);
});

test('the layer takes `sip.timers` from the validated configuration as is', () => {
  const config = configSchema.parse({ sip: { timers: { t1: 100, t2: 400, t4: 1000 } } });
  const clock = new FakeClock();
  const sender = new RecordingSender(clock);
  const layer = new TransactionLayer({ clock, sender, user: new RecordingUser(), timers: config.sip.timers });
  layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-cfg' }), UDP_DEST);
  clock.advance(64 * 100);
  // E: 100, 200, 400 (T2), 400 … until F = 64*T1 = 6.4 s.
  const times = sender.requestTimes('OPTIONS');
  assert.deepEqual(times.slice(0, 6), [0, 100, 300, 700, 1100, 1500]);
  assert.equal(layer.size.client, 0);
});

test('the layer refuses timers RFC 3261 cannot work with', () => {
  const clock = new FakeClock();
  const make = (timers: { t1: number; t2: number; t4: number }) =>
    new TransactionLayer({ clock, sender: new RecordingSender(clock), user: new RecordingUser(), timers });
  assert.throws(() => make({ t1: 0, t2: 4000, t4: 5000 }), InternalError);
  assert.throws(() => make({ t1: 500, t2: 100, t4: 5000 }), InternalError);
  assert.throws(() => make({ t1: 500, t2: 4000, t4: 0 }), InternalError);
});
