/**
 * A node's registration, call and alarm events reach a real HTTPS receiver, driven by real sipp endpoints: REGISTERs
 * that expire and are removed, one call the caller hangs up, one call without media that the node ends after
 * media.timeoutSeconds (raising, then lowering, the media-timeout alarm). The API then shows the same calls in
 * callHistory and the searches that routed them.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { OPENAPI } from '../../src/management/api/openapi.ts';
import type { ManagementEvent } from '../../src/management/events.ts';
import { checkJsonSchema } from '../helpers/json-schema.ts';
import { runSipp } from '../helpers/sipp.ts';
import { createTlsFixtures } from '../helpers/tls-fixtures.ts';
import { freeUdpPort, SCENARIOS, type SippRun, settle, sipp } from '../sip/proxy/sipp-peers.ts';
import { usersFile } from '../sip/registrar/users.ts';
import { apiLogin, type MgmtNode, receiver, req, setupAdmin, startMgmtNode, until } from './helpers.ts';

const show = (r: SippRun) => `exit ${r.exitCode}, ok ${r.successful}, failed ${r.failed}\n${r.output.slice(-3000)}`;

test('registration, unregistration, call and alarm events of sipp traffic arrive at the subscriber, in order', {
  timeout: 120_000,
}, async () => {
  const tls = createTlsFixtures();
  const rx = receiver(tls);
  let m: MgmtNode | undefined;
  try {
    const port = await rx.listen();
    m = await startMgmtNode({
      tls: { caCertificates: tls.ca.certPath },
      registrar: { authenticate: false, minExpires: 1 },
      media: { timeoutSeconds: 1 },
      feedback: {
        subscribers: [
          {
            url: `https://localhost:${port}/nms`,
            // Everything but zone-state and config-change (not made by this traffic).
            events: [
              'registration',
              'unregistration',
              'call-attempt',
              'call-connected',
              'call-disconnected',
              'alarm-raised',
              'alarm-lowered',
            ],
          },
        ],
      },
    });
    const core = `127.0.0.2:${m.node.plan.port('sip-udp', 'core')}`;
    const got = () => rx.got.map((g) => g.event).filter((e) => e.node === 'core');

    // Register for 2 s and expire, register for an hour and remove with "Contact: *".
    const reg = await runSipp({
      scenario: join(SCENARIOS, 'register-expiry.xml'),
      target: core,
      calls: 1,
      timeoutSeconds: 30,
      extraArgs: ['-inf', usersFile('fb', 1)],
    });
    assert.equal(reg.exitCode, 0, reg.stderr.slice(0, 2000));
    const aor = 'sip:fb0000@127.0.0.2';
    await until(() => got().filter((e) => e.data.aor === aor).length >= 4);
    const regs = got().filter((e) => e.data.aor === aor);
    assert.deepEqual(
      regs.map((e) => [e.event, e.data.bindings]),
      [
        ['registration', 1],
        ['unregistration', 0],
        ['registration', 1],
        ['unregistration', 0],
      ],
    );

    // The callee lives on 127.0.0.3 and registers as "answer"; the caller calls from 127.0.0.4.
    const uasPort = await freeUdpPort('127.0.0.3');
    const callee = ['-i', '127.0.0.3'];
    const uasReg = await sipp({
      scenario: join(SCENARIOS, 'uas-register.xml'),
      port: uasPort,
      target: core,
      service: 'answer',
      calls: 1,
      extra: callee,
    });
    assert.equal(uasReg.successful, 1, show(uasReg));
    await until(() => got().some((e) => e.event === 'registration' && e.data.aor === 'sip:answer@127.0.0.2'));
    const uas = sipp({
      scenario: join(SCENARIOS, 'uas-answer.xml'),
      port: uasPort,
      calls: 2,
      timeoutSeconds: 40,
      extra: callee,
    });
    await settle();
    const caller = ['-i', '127.0.0.4'];
    const hangsUp = await sipp({
      scenario: join(SCENARIOS, 'call-uac.xml'),
      port: await freeUdpPort('127.0.0.4'),
      target: core,
      service: 'answer',
      calls: 1,
      timeoutSeconds: 20,
      extra: caller,
    });
    assert.equal(hangsUp.successful, 1, show(hangsUp));
    // No media and no BYE from the caller: the node's media timeout ends this call with a BYE to both parties.
    const waits = await sipp({
      scenario: join(SCENARIOS, 'call-uac-await-bye.xml'),
      port: await freeUdpPort('127.0.0.4'),
      target: core,
      service: 'answer',
      calls: 1,
      timeoutSeconds: 20,
      extra: caller,
    });
    assert.equal(waits.successful, 1, show(waits));
    const uasRun = await uas;
    assert.equal(uasRun.successful, 2, show(uasRun));
    await until(() => got().some((e) => e.event === 'alarm-lowered'));

    const calls = new Map<string, ManagementEvent[]>();
    for (const e of got().filter((x) => x.event.startsWith('call-'))) {
      const id = String(e.data.callId);
      calls.set(id, [...(calls.get(id) ?? []), e]);
    }
    assert.equal(calls.size, 2, JSON.stringify(got()));
    const [first, second] = [...calls.values()];
    for (const c of [first!, second!]) {
      assert.deepEqual(
        c.map((e) => e.event),
        ['call-attempt', 'call-connected', 'call-disconnected'],
      );
      assert.equal(c[0]!.data.protocol, 'sip');
      assert.match(String(c[0]!.data.from), /caller@127\.0\.0\.4/);
      assert.match(String(c[0]!.data.to), /answer@127\.0\.0\.2/);
      assert.equal(c[1]!.data.targetZone, 'LocalZone');
      assert.equal(c[2]!.data.status, 200);
    }
    assert.equal(first![2]!.data.cause, 'bye from caller');
    assert.equal(second![2]!.data.cause, 'media timeout');
    const alarms = got().filter((e) => e.event.startsWith('alarm-'));
    assert.deepEqual(
      alarms.map((e) => [e.event, e.data.id]),
      [
        ['alarm-raised', 'media-timeout'],
        ['alarm-lowered', 'media-timeout'],
      ],
    );
    assert.equal(alarms[0]!.data.severity, 'warning');
    // The alarm is raised while the second call is up and lowered after its BYEs were answered.
    const seqOf = (e: ManagementEvent) => e.seq;
    assert.ok(seqOf(second![1]!) < seqOf(alarms[0]!), 'raised after the call connected');
    assert.ok(seqOf(alarms[0]!) < seqOf(alarms[1]!));
    // Every body matches the documented schema (OpenAPI components.schemas.FeedbackEvent).
    for (const e of got()) {
      assert.deepEqual(checkJsonSchema({ $ref: '#/components/schemas/FeedbackEvent' }, e, OPENAPI), [], e.event);
    }
    const seqs = got().map(seqOf);
    for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i]! > seqs[i - 1]!, `in order: ${seqs}`);

    // The same calls through the API: the call history and the searches that routed them.
    await setupAdmin(m, 'admin', 'a long admin password', 'core');
    const { cookie } = await apiLogin(m, 'admin', 'a long admin password', 'core');
    const section = async <T>(name: string) => {
      const r = await req(`${m!.base('core')}/api/v1/status/${name}`, { ca: m!.ca, headers: { cookie } });
      assert.equal(r.status, 200, r.text);
      return r.json<Record<string, T>>()[name]!;
    };
    const history = await section<{ id: string; cause: string; state: string }[]>('callHistory');
    assert.deepEqual(history.map((c) => c.id).sort(), [...calls.keys()].sort());
    assert.deepEqual(history.map((c) => c.cause).sort(), ['bye from caller', 'media timeout']);
    assert.deepEqual(await section<unknown[]>('calls'), [], 'no call left active');
    const searches = await section<unknown[]>('searchHistory');
    assert.ok(
      searches.filter((x) => /answer@127\.0\.0\.2/.test(JSON.stringify(x))).length >= 2,
      JSON.stringify(searches),
    );
  } finally {
    await m?.node.close();
    await rx.close();
    tls.cleanup();
  }
});
