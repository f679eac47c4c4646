import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ManagementEvent } from '../../src/management/events.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { runSipp } from '../helpers/sipp.ts';
import { usersFile } from '../sip/registrar/users.ts';

const SCENARIOS = new URL('../sipp/', import.meta.url).pathname;

test('registrations, expiries and removals of real sipp REGISTERs reach the management event bus', async () => {
  const node = await startTestNode({ registrar: { authenticate: false, minExpires: 1 } });
  try {
    const events: ManagementEvent[] = [];
    const bus = node.management?.nodes.get('core')?.bus;
    assert.ok(bus, 'the core has a management event bus');
    bus.on((e) => events.push(e));
    // Per user: register for 2 s, let it expire, register for an hour, remove all with "Contact: *".
    const r = await runSipp({
      scenario: `${SCENARIOS}register-expiry.xml`,
      target: `127.0.0.2:${node.plan.node('core').port('sip-udp')}`,
      calls: 3,
      rate: 10,
      timeoutSeconds: 30,
      extraArgs: ['-inf', usersFile('ev', 3)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    const of = (aor: string) => events.filter((e) => e.data.aor === aor).map((e) => e.event);
    for (const u of ['ev0000', 'ev0001', 'ev0002']) {
      assert.deepEqual(of(`sip:${u}@127.0.0.2`), ['registration', 'unregistration', 'registration', 'unregistration']);
    }
    assert.ok(events.every((e) => e.node === 'core'));
  } finally {
    await node.close();
  }
});
