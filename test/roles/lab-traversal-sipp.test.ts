import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { freeUdpPort, SCENARIOS, type SippRun, settle, sipp } from '../sip/proxy/sipp-peers.ts';

const show = (r: SippRun) => `exit ${r.exitCode}, ok ${r.successful}, failed ${r.failed}\n${r.output.slice(-3000)}`;
const CALLS = 500;

test(`lab traversal with sipp: ${CALLS} calls from a uac at the edge cross the zone to a uas registered at the core`, {
  timeout: 120_000,
}, async () => {
  let node: RunningNode | undefined;
  try {
    node = await startTestNode({
      sip: { transports: { udp: { enabled: true } } },
      // The sipp callee registers without digest (the digest path through the edge is lab-traversal-call's).
      registrar: { authenticate: false },
      traversalZones: [{ name: 'tz1', keepaliveSeconds: 2, retryMinSeconds: 0.1, authenticate: false }],
      routing: {
        zones: [{ name: 'tz1', type: 'traversal' }],
        // The uac dials answer@<edge>; both nodes read it as the core's user.
        transforms: [
          {
            pattern: { type: 'regex', value: '(.*)@127\\.0\\.0\\.1(:\\d+)?' },
            action: 'replace',
            value: '\\1@127.0.0.2',
          },
        ],
        searchRules: [
          { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
          { name: 'across', priority: 100, pattern: { type: 'anyAlias' }, targetZone: 'tz1' },
        ],
      },
    });
    const edge = node.sip.get('edge')!;
    const core = node.sip.get('core')!;
    const deadline = Date.now() + 10_000;
    while (edge.serverZones()[0]?.state !== 'active' && Date.now() < deadline) await settle(50);
    assert.equal(edge.serverZones()[0]?.state, 'active');
    const edgeUdp = edge.sockets().find((s) => s.listener === 'sip-udp')!;
    const coreUdp = core.sockets().find((s) => s.listener === 'sip-udp')!;
    // The callee lives inside, on 127.0.0.3 (127.0.0.1 is the edge: the core would send it up the zone).
    const uasPort = await freeUdpPort('127.0.0.3');
    const inside = ['-i', '127.0.0.3'];
    const reg = await sipp({
      scenario: join(SCENARIOS, 'uas-register.xml'),
      port: uasPort,
      target: `${coreUdp.address}:${coreUdp.port}`,
      service: 'answer',
      calls: 1,
      extra: inside,
    });
    assert.equal(reg.successful, 1, show(reg));
    const uas = sipp({
      scenario: join(SCENARIOS, 'uas-answer.xml'),
      port: uasPort,
      calls: CALLS,
      timeoutSeconds: 90,
      extra: inside,
    });
    await settle();
    const uac = await sipp({
      scenario: join(SCENARIOS, 'call-uac.xml'),
      port: await freeUdpPort(),
      target: `${edgeUdp.address}:${edgeUdp.port}`,
      service: 'answer',
      calls: CALLS,
      rate: 50,
      limit: 30,
      timeoutSeconds: 90,
    });
    const callee = await uas;
    assert.equal(uac.successful, CALLS, show(uac));
    assert.equal(uac.failed, 0, show(uac));
    assert.equal(callee.successful, CALLS, show(callee));
    // Every call crossed both nodes' relays and gave its ports back.
    await settle(500);
    assert.equal(node.media.get('edge')!.core.portsInUse, 0);
    assert.equal(node.media.get('core')!.core.portsInUse, 0);
    assert.equal(node.media.get('edge')!.core.callCount, 0);
    assert.equal(node.media.get('core')!.core.callCount, 0);
    assert.equal(edge.calls!.history(1)[0]!.targetZone, 'tz1');
  } finally {
    await node?.close();
  }
});
