/**
 * Feedback events against real receivers started by the test: an HTTPS server with a test CA (certificate verified)
 * or plain HTTP; order, basic credentials, retries with backoff, a 4xx rejected, a timeout, a subscriber down for long
 * (bounded queue, counted drops); and the node's own events (configuration change, traversal zone state, alarms),
 * each body checked against the documented schema. Registration and call events: feedback-sipp.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../src/common/timers.ts';
import { OPENAPI } from '../../src/management/api/openapi.ts';
import { FeedbackDeliverer } from '../../src/management/feedback/deliverer.ts';
import { httpFeedbackPost } from '../../src/management/feedback/http-post.ts';
import { checkJsonSchema } from '../helpers/json-schema.ts';
import { createTlsFixtures, type TlsFixtures } from '../helpers/tls-fixtures.ts';
import { apiLogin, type MgmtNode, receiver, req, setupAdmin, startMgmtNode, until } from './helpers.ts';

/** The documented body of a feedback POST. */
const FEEDBACK_EVENT = { $ref: '#/components/schemas/FeedbackEvent' };

describe('feedback over HTTPS to a real receiver', () => {
  let tls: TlsFixtures;
  before(() => {
    tls = createTlsFixtures();
  });
  after(() => tls?.cleanup());

  it('POSTs JSON events in order with basic credentials, retrying while the receiver answers 503', async () => {
    let failFirst = 2;
    const rx = receiver(tls, () => (failFirst-- > 0 ? 503 : 204));
    const port = await rx.listen();
    const d = new FeedbackDeliverer({
      clock: systemClock,
      post: httpFeedbackPost({ ca: tls.ca.cert }),
      queueLimit: 100,
      retryMinMs: 20,
      retryMaxMs: 100,
    });
    try {
      d.setTargets([
        { key: 'a', url: `https://localhost:${port}/events`, events: [], username: 'nms', password: 'pw' },
      ]);
      for (let i = 1; i <= 20; i++) {
        d.publish({ seq: i, event: 'call-attempt', node: 'edge', time: new Date().toISOString(), data: { i } });
      }
      await until(() => rx.got.length === 20);
      assert.deepEqual(
        rx.got.map((g) => g.event.seq),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      assert.equal(rx.got[0]!.auth, `Basic ${Buffer.from('nms:pw').toString('base64')}`);
      assert.equal(rx.got[0]!.type, 'application/json');
      assert.equal(d.status()[0]!.failures, 2);
    } finally {
      d.close();
      await rx.close();
    }
  });

  it('refuses a receiver whose certificate the node does not trust', async () => {
    const rx = receiver(tls);
    const port = await rx.listen();
    const d = new FeedbackDeliverer({
      clock: systemClock,
      post: httpFeedbackPost({ ca: tls.otherCa.cert }),
      queueLimit: 10,
      retryMinMs: 1000,
      retryMaxMs: 1000,
    });
    try {
      d.setTargets([{ key: 'a', url: `https://localhost:${port}/events`, events: [] }]);
      d.publish({ seq: 1, event: 'alarm-raised', node: 'edge', time: '', data: {} });
      await until(() => d.status()[0]!.failures === 1);
      assert.match(d.status()[0]!.lastError ?? '', /certificate|self.signed|verify/i);
      assert.equal(rx.got.length, 0);
    } finally {
      d.close();
      await rx.close();
    }
  });

  it('a subscriber down for long: the queue stays bounded, the oldest waiting events are dropped and counted, retries back off', async () => {
    let up = false;
    const rx = receiver(tls, () => (up ? 204 : 503));
    const port = await rx.listen();
    const retryMinMs = 20;
    const retryMaxMs = 160;
    const d = new FeedbackDeliverer({
      clock: systemClock,
      post: httpFeedbackPost({ ca: tls.ca.cert }),
      queueLimit: 3,
      retryMinMs,
      retryMaxMs,
    });
    try {
      d.setTargets([{ key: 'a', url: `https://localhost:${port}/events`, events: [] }]);
      const total = 10;
      for (let i = 1; i <= total; i++) {
        d.publish({ seq: i, event: 'call-attempt', node: 'edge', time: new Date().toISOString(), data: { i } });
      }
      const afterPublish = d.status()[0]!;
      assert.ok(afterPublish.queued <= 3, `queued ${afterPublish.queued}`);
      assert.equal(afterPublish.dropped, total - afterPublish.queued, 'every event beyond the limit is counted');
      // Six refused attempts: 20, 40, 80, 160, 160 ms apart at least (doubling, capped at retryMaxMs).
      await until(() => rx.attempts.length >= 6);
      const st = d.status()[0]!;
      assert.ok(st.failures >= 5, `failures ${st.failures}`);
      assert.equal(st.lastError, 'HTTP 503');
      assert.ok(st.retryInMs === undefined || st.retryInMs <= retryMaxMs, `retryInMs ${st.retryInMs}`);
      const gaps = rx.attempts.slice(1, 6).map((t, i) => t - rx.attempts[i]!);
      gaps.forEach((g, i) => {
        const least = Math.min(retryMinMs * 2 ** i, retryMaxMs);
        // A timer never fires much early (1 ms of rounding); late is the loaded machine's business.
        assert.ok(g >= least - 2, `gap ${i + 1} was ${g.toFixed(1)} ms, at least ${least} expected (${gaps})`);
      });
      assert.equal(rx.got.length, 0);
      // The subscriber comes back: what is left arrives, in order, ending with the newest event.
      up = true;
      await until(() => d.status()[0]!.queued === 0);
      const end = d.status()[0]!;
      const seqs = rx.got.map((g) => g.event.seq);
      assert.equal(seqs.length, total - end.dropped, `received ${seqs}, dropped ${end.dropped}`);
      assert.ok(end.dropped > 0);
      assert.equal(end.delivered, seqs.length);
      assert.equal(seqs[seqs.length - 1], total, 'the last event is never the one dropped');
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `in order: ${seqs}`);
      assert.equal(end.retryInMs, undefined, 'no retry pending once delivered');
    } finally {
      d.close();
      await rx.close();
    }
  });
});

describe('feedback over plain HTTP', () => {
  it('a 400 is counted as rejected and not retried, a receiver that never answers times out and is retried', async () => {
    const bodies: number[] = [];
    let mode: 'reject-first' | 'hang' | 'ok' = 'reject-first';
    let hung = 0;
    const server = createHttpServer((rq, rs) => {
      const chunks: Buffer[] = [];
      rq.on('data', (c: Buffer) => chunks.push(c));
      rq.on('end', () => {
        const seq = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { seq: number }).seq;
        if (mode === 'hang') {
          hung++;
          return; // never answers
        }
        if (mode === 'reject-first') {
          mode = 'ok';
          rs.writeHead(400).end();
          return;
        }
        bodies.push(seq);
        rs.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    const d = new FeedbackDeliverer({
      clock: systemClock,
      post: httpFeedbackPost({ timeoutMs: 200 }),
      queueLimit: 10,
      retryMinMs: 20,
      retryMaxMs: 50,
    });
    const ev = (seq: number) => ({ seq, event: 'alarm-raised' as const, node: 'core', time: '', data: {} });
    try {
      d.setTargets([{ key: 'p', url: `http://127.0.0.1:${port}/nms`, events: [] }]);
      d.publish(ev(1));
      d.publish(ev(2));
      await until(() => d.status()[0]!.delivered === 1);
      let st = d.status()[0]!;
      assert.equal(st.rejected, 1);
      assert.equal(st.failures, 0, 'a 4xx is not retried');
      assert.equal(st.lastError, 'HTTP 400');
      assert.deepEqual(bodies, [2]);
      mode = 'hang';
      d.publish(ev(3));
      await until(() => d.status()[0]!.failures >= 2);
      st = d.status()[0]!;
      assert.equal(st.lastError, 'timed out');
      assert.ok(hung >= 2, `${hung} attempts`);
      mode = 'ok';
      await until(() => d.status()[0]!.delivered === 2);
      assert.deepEqual(bodies, [2, 3]);
    } finally {
      d.close();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('a node sends its own events to a subscriber registered through the API', () => {
  let tls: TlsFixtures;
  let m: MgmtNode;
  let rxh: ReturnType<typeof receiver>;
  before(async () => {
    tls = createTlsFixtures();
    rxh = receiver(tls);
  });
  after(async () => {
    await m?.node.close();
    await rxh?.close();
    tls?.cleanup();
  });

  it('zone-state and config-change events arrive (HTTPS, verified against tls.caCertificates)', async () => {
    const port = await rxh.listen();
    // The node trusts the test CA for outbound TLS (tls.caCertificates) — and its own lab certificate stays its identity.
    m = await startMgmtNode({ tls: { caCertificates: tls.ca.certPath }, traversalZones: [{ name: 'to-edge' }] });
    await setupAdmin(m, 'admin', 'a long admin password', 'core');
    const { cookie, csrf } = await apiLogin(m, 'admin', 'a long admin password', 'core');
    const h = { cookie, 'x-csrf-token': csrf };
    const sub = await req(`${m.base('core')}/api/v1/subscriptions`, {
      ca: m.ca,
      body: {
        url: `https://localhost:${port}/crossway`,
        events: ['config-change', 'zone-state'],
        username: 'nms',
        password: 'x',
      },
      headers: h,
    });
    assert.equal(sub.status, 200, sub.text);
    const ch = await req(`${m.base('core')}/api/v1/config`, {
      ca: m.ca,
      method: 'PATCH',
      body: { sip: { domains: ['events.example'] } },
      headers: h,
    });
    assert.equal(ch.status, 200, ch.text);
    await until(() => rxh.got.some((g) => g.event.event === 'config-change'));
    const cc = rxh.got.find((g) => g.event.event === 'config-change')!.event;
    assert.equal(cc.node, 'core');
    assert.equal(cc.data.by, 'admin');
    assert.deepEqual(cc.data.changed, ['sip.domains']);
    assert.ok(rxh.got.every((g) => ['config-change', 'zone-state'].includes(g.event.event)));
    for (const g of rxh.got) assert.deepEqual(checkJsonSchema(FEEDBACK_EVENT, g.event, OPENAPI), [], g.event.event);
    const seqs = rxh.got.map((g) => g.event.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
      'in order',
    );
    const list = await req(`${m.base('core')}/api/v1/subscriptions`, { ca: m.ca, headers: { cookie } });
    const body = list.json<{ registered: { url: string }[]; delivery: { delivered: number }[] }>();
    assert.equal(body.registered.length, 1);
    assert.doesNotMatch(list.text, /"password"/, 'credentials are not shown');
    assert.ok(body.delivery[0]!.delivered >= 1);
  });
});

describe('a configured subscriber receives the alarm of a failing traversal zone', () => {
  it('zone-state failed and alarm-raised arrive at the receiver named in feedback.subscribers', async () => {
    const tls = createTlsFixtures();
    const rx = receiver(tls);
    let m: MgmtNode | undefined;
    try {
      const port = await rx.listen();
      m = await startMgmtNode({
        tls: { caCertificates: tls.ca.certPath },
        traversalZones: [{ name: 'nowhere', peerAddress: '127.0.0.3', retryMinSeconds: 0.2 }],
        feedback: {
          subscribers: [
            {
              url: `https://localhost:${port}/nms`,
              events: ['alarm-raised', 'zone-state'],
              username: 'nms',
              password: 'pw',
            },
          ],
        },
      });
      await until(() => rx.got.some((g) => g.event.event === 'alarm-raised'));
      const alarm = rx.got.find((g) => g.event.event === 'alarm-raised')!;
      assert.equal(alarm.event.node, 'core');
      assert.equal(alarm.event.data.id, 'zone:nowhere');
      assert.equal(alarm.event.data.severity, 'major');
      assert.equal(alarm.auth, `Basic ${Buffer.from('nms:pw').toString('base64')}`);
      const zone = rx.got.find((g) => g.event.event === 'zone-state');
      assert.ok(zone, 'zone-state event');
      assert.equal(zone.event.data.state, 'failed');
      assert.ok(zone.event.seq < alarm.event.seq, 'state change before its alarm, in order');
      for (const g of rx.got) assert.deepEqual(checkJsonSchema(FEEDBACK_EVENT, g.event, OPENAPI), [], g.event.event);
    } finally {
      await m?.node.close();
      await rx.close();
      tls.cleanup();
    }
  });
});

describe('a node whose subscriber is down for long', () => {
  it('drops and counts the oldest waiting events (subscriptions API and metrics), then delivers the rest in order', async () => {
    const tls = createTlsFixtures();
    let up = false;
    const rx = receiver(tls, () => (up ? 204 : 503));
    let m: MgmtNode | undefined;
    try {
      const port = await rx.listen();
      m = await startMgmtNode({
        tls: { caCertificates: tls.ca.certPath },
        management: { feedbackQueueLimit: 2, feedbackRetryMinMs: 50, feedbackRetryMaxMs: 200 },
        feedback: { subscribers: [{ url: `https://localhost:${port}/nms`, events: ['config-change'] }] },
      });
      const emitted: number[] = [];
      m.node.management!.nodes.get('edge')!.bus.on((e) => {
        if (e.event === 'config-change') emitted.push(e.seq);
      });
      await setupAdmin(m, 'admin', 'a long admin password');
      const { cookie, csrf } = await apiLogin(m, 'admin', 'a long admin password');
      const h = { cookie, 'x-csrf-token': csrf };
      for (let i = 0; i < 6; i++) {
        const r = await req(`${m.base()}/api/v1/config`, {
          ca: m.ca,
          method: 'PATCH',
          body: { management: { sessionIdleMinutes: 30 + i } },
          headers: h,
        });
        assert.equal(r.status, 200, r.text);
      }
      assert.equal(emitted.length, 6);
      const subs = await req(`${m.base()}/api/v1/subscriptions`, { ca: m.ca, headers: { cookie } });
      const delivery = subs.json<{ delivery: { queued: number; dropped: number; delivered: number }[] }>().delivery;
      assert.equal(delivery.length, 1);
      assert.ok(delivery[0]!.queued <= 2, subs.text);
      assert.ok(delivery[0]!.dropped >= 4, subs.text);
      assert.equal(delivery[0]!.delivered, 0);
      const metrics = await req(`${m.base()}/metrics`, { ca: m.ca, headers: { cookie } });
      const dropped = /^crossway_feedback_events\{[^}]*outcome="dropped"[^}]*\} (\d+)$/m.exec(metrics.text);
      assert.ok(dropped, 'dropped counter in /metrics');
      assert.ok(Number(dropped[1]) >= delivery[0]!.dropped);

      up = true;
      const fromEdge = () => rx.got.filter((g) => g.event.node === 'edge').map((g) => g.event.seq);
      await until(() => fromEdge().at(-1) === emitted.at(-1));
      const seqs = fromEdge();
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `in order: ${seqs}`);
      assert.ok(seqs.every((s) => emitted.includes(s)));
      const after = await req(`${m.base()}/api/v1/subscriptions`, { ca: m.ca, headers: { cookie } });
      const d = after.json<{ delivery: { queued: number; dropped: number; delivered: number }[] }>().delivery[0]!;
      assert.equal(d.queued, 0);
      assert.equal(d.delivered, seqs.length);
      assert.equal(d.delivered + d.dropped, emitted.length);
    } finally {
      await m?.node.close();
      await rx.close();
      tls.cleanup();
    }
  });
});
