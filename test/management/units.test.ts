/** Management pieces on their own, with the fake clock: sessions, passwords, events, alarms, config changes, feedback queues. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../src/common/timers.ts';
import { defaultConfig } from '../../src/config/load.ts';
import type { CrosswayConfig } from '../../src/config/schema.ts';
import { AlarmTable } from '../../src/management/alarms.ts';
import { ConfigAdmin, makePatch, mergePatch, REDACTED, redactSecrets } from '../../src/management/config-admin.ts';
import { EventBus, type ManagementEvent } from '../../src/management/events.ts';
import { FeedbackDeliverer, type FeedbackTarget } from '../../src/management/feedback/deliverer.ts';
import { hashPassword, verifyPassword } from '../../src/management/passwords.ts';
import { SessionTable } from '../../src/management/sessions.ts';

describe('passwords', () => {
  it('scrypt hash verifies the right password only, salts differ', async () => {
    const a = await hashPassword('s3cret pass phrase');
    const b = await hashPassword('s3cret pass phrase');
    assert.match(a, /^scrypt\$32768\$8\$1\$/);
    assert.notEqual(a, b);
    assert.equal(await verifyPassword('s3cret pass phrase', a), true);
    assert.equal(await verifyPassword('s3cret pass phrasf', a), false);
    assert.equal(await verifyPassword('x', 'scrypt$1$1$1$AA$AA'), false, 'malformed hash never matches');
    assert.equal(await verifyPassword('x', 'plain'), false);
  });
});

describe('sessions', () => {
  it('close after the idle timeout, stay open while used', () => {
    const clock = new FakeClock();
    const t = new SessionTable(() => clock.now(), 60_000);
    const s = t.create('ann', 'read-write', 'local', '127.0.0.1');
    clock.advance(59_000);
    assert.equal(t.touch(s.id)?.user, 'ann');
    clock.advance(59_000);
    assert.equal(t.touch(s.id)?.user, 'ann', 'use restarts the idle time');
    clock.advance(60_001);
    assert.equal(t.touch(s.id), undefined);
    assert.equal(t.touch('unknown'), undefined);
  });

  it('caps the table, evicting the least recently used', () => {
    const clock = new FakeClock();
    const t = new SessionTable(() => clock.now(), 60_000, 2);
    const a = t.create('a', 'read-only', 'local', 'x');
    const b = t.create('b', 'read-only', 'local', 'x');
    t.touch(a.id);
    t.create('c', 'read-only', 'local', 'x');
    assert.ok(t.touch(a.id));
    assert.equal(t.touch(b.id), undefined);
  });

  it('checks CSRF tokens exactly', () => {
    const t = new SessionTable(() => 0, 1000);
    const s = t.create('a', 'read-only', 'local', 'x');
    assert.equal(SessionTable.csrfMatches(s, s.csrf), true);
    assert.equal(SessionTable.csrfMatches(s, `${s.csrf}x`), false);
    assert.equal(SessionTable.csrfMatches(s, undefined), false);
  });
});

describe('events and alarms', () => {
  it('a throwing listener breaks neither emit nor the other listeners', () => {
    const bus = new EventBus('edge', () => Date.UTC(2026, 0, 1));
    const got: ManagementEvent[] = [];
    bus.on(() => {
      throw new Error('boom');
    });
    bus.on((e) => got.push(e));
    bus.emit('registration', { aor: 'sip:a@example.org' });
    bus.emit('unregistration', { aor: 'sip:a@example.org' });
    assert.deepEqual(
      got.map((e) => [e.seq, e.event, e.node, e.time]),
      [
        [1, 'registration', 'edge', '2026-01-01T00:00:00.000Z'],
        [2, 'unregistration', 'edge', '2026-01-01T00:00:00.000Z'],
      ],
    );
    assert.equal(bus.listenerErrors, 2);
  });

  it('alarms emit raised/lowered once per change', () => {
    const bus = new EventBus('core', () => 0);
    const got: string[] = [];
    bus.on((e) => got.push(`${e.event}:${String(e.data.id)}`));
    const a = new AlarmTable(bus, () => 0);
    a.raise('zone:x', 'major', 'down');
    a.raise('zone:x', 'major', 'down');
    a.lower('zone:x');
    a.lower('zone:x');
    assert.deepEqual(got, ['alarm-raised:zone:x', 'alarm-lowered:zone:x']);
    assert.equal(a.list().length, 0);
  });
});

describe('configuration changes', () => {
  const base = () =>
    defaultConfig({
      turn: { enabled: true, sharedSecret: 'very-secret-1' },
      feedback: { subscribers: [{ url: 'https://nms.example/events', username: 'u', password: 'p4ss' }] },
    }) as CrosswayConfig;

  it('redacts secrets on read and keeps them when written back redacted', () => {
    const admin = new ConfigAdmin(base());
    const view = admin.view() as CrosswayConfig;
    assert.equal(view.turn.sharedSecret, REDACTED);
    assert.equal(view.feedback.subscribers[0]!.password, REDACTED);
    assert.doesNotMatch(JSON.stringify(view), /very-secret-1|p4ss/);
    const r = admin.check({ ...view, log: { level: 'debug' } }, 'replace');
    assert.ok(r.ok);
    assert.equal(r.config.turn.sharedSecret, 'very-secret-1');
    assert.equal(r.config.feedback.subscribers[0]!.password, 'p4ss');
    assert.deepEqual(r.changed, ['log.level']);
    assert.deepEqual(r.live, ['log.level']);
  });

  it('refuses with the same field paths as the file', () => {
    const admin = new ConfigAdmin(base());
    const r = admin.check({ sip: { timers: { t1: 0 } }, portOffset: 'x' }, 'patch');
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual(r.issues.map((i) => i.path).sort(), ['portOffset', 'sip.timers.t1']);
  });

  it('makePatch(a, b) applied to a gives b (merge patch round trip)', () => {
    const json = fc.jsonValue({ maxDepth: 3 }).filter((v) => typeof v === 'object' && v !== null && !Array.isArray(v));
    fc.assert(
      fc.property(json, json, (a, b) => {
        // Merge patches cannot express null values inside objects: compare without them.
        const strip = (v: unknown): unknown =>
          v && typeof v === 'object' && !Array.isArray(v)
            ? Object.fromEntries(
                Object.entries(v)
                  .filter(([, x]) => x !== null)
                  .map(([k, x]) => [k, strip(x)]),
              )
            : v;
        const sb = strip(b);
        // Compared as JSON (what the store keeps): -0 and 0 are the same number there.
        const json = (v: unknown) => JSON.parse(JSON.stringify(v)) as unknown;
        assert.deepEqual(json(mergePatch(structuredClone(strip(a)), makePatch(strip(a), sb))), json(sb));
      }),
      { numRuns: 300 },
    );
  });

  it('a __proto__ key in a patch is an unknown field, not a prototype', () => {
    const admin = new ConfigAdmin(base());
    const r = admin.check(JSON.parse('{"__proto__": {"role": "edge"}}'), 'patch');
    assert.equal(r.ok, false);
    assert.equal(({} as { role?: string }).role, undefined);
  });

  it('redactSecrets leaves non-secret fields alone', () => {
    assert.deepEqual(redactSecrets({ a: [{ password: 'x', user: 'y' }], secret: 1 }), {
      a: [{ password: REDACTED, user: 'y' }],
      secret: 1,
    });
  });
});

describe('feedback delivery', () => {
  const target: FeedbackTarget = { key: 'k', url: 'http://nms/', events: [] };
  const event = (seq: number): ManagementEvent => ({ seq, event: 'registration', node: 'edge', time: 't', data: {} });

  it('delivers in order, one at a time, retrying with doubling backoff', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    let fail = 3;
    const d = new FeedbackDeliverer({
      clock,
      queueLimit: 100,
      retryMinMs: 100,
      retryMaxMs: 350,
      post: async (_t, body) => {
        const seq = (JSON.parse(body) as ManagementEvent).seq;
        if (fail > 0) {
          fail--;
          throw new Error('ECONNREFUSED');
        }
        seen.push(seq);
        return 204;
      },
    });
    d.setTargets([target]);
    for (let i = 1; i <= 5; i++) d.publish(event(i));
    const settle = () => new Promise((r) => setImmediate(r));
    await settle();
    assert.equal(d.status()[0]!.retryInMs, 100);
    clock.advance(100);
    await settle();
    assert.equal(d.status()[0]!.retryInMs, 200);
    clock.advance(200);
    await settle();
    assert.equal(d.status()[0]!.retryInMs, 350, 'capped at retryMaxMs');
    clock.advance(350);
    for (let i = 0; i < 10; i++) await settle();
    assert.deepEqual(seen, [1, 2, 3, 4, 5]);
    const st = d.status()[0]!;
    assert.equal(st.delivered, 5);
    assert.equal(st.failures, 3);
    assert.equal(st.queued, 0);
    d.close();
  });

  it('a full queue drops its oldest waiting event and counts it; 4xx is not retried', async () => {
    const clock = new FakeClock();
    const seen: number[] = [];
    let up = false;
    const d = new FeedbackDeliverer({
      clock,
      queueLimit: 3,
      retryMinMs: 10,
      retryMaxMs: 10,
      post: async (_t, body) => {
        const seq = (JSON.parse(body) as ManagementEvent).seq;
        if (!up) return 503;
        seen.push(seq);
        return seq === 7 ? 400 : 200;
      },
    });
    d.setTargets([target, { key: 'only-alarms', url: 'http://x/', events: ['alarm-raised'] }]);
    for (let i = 1; i <= 7; i++) d.publish(event(i));
    const settle = () => new Promise((r) => setImmediate(r));
    await settle();
    const st = d.status().find((s) => s.key === 'k')!;
    assert.equal(st.queued, 3);
    assert.equal(st.dropped, 4);
    assert.equal(d.status().find((s) => s.key === 'only-alarms')!.queued, 0, 'filtered by event name');
    up = true;
    clock.advance(10);
    for (let i = 0; i < 10; i++) await settle();
    // Event 1 was in flight when the queue filled up: it is kept, the oldest waiting ones went.
    assert.deepEqual(seen, [1, 6, 7]);
    const after = d.status().find((s) => s.key === 'k')!;
    assert.equal(after.delivered, 2);
    assert.equal(after.rejected, 1);
    d.close();
  });
});
