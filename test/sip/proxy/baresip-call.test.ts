import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningNode } from '../../../src/roles/start.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { Baresip } from '../../helpers/baresip.ts';
import { startTestNode } from '../../helpers/lab-node.ts';

const REALM = '127.0.0.2';

/**
 * Two real user agents (baresip) register with digest to a lab core and one calls the other through the proxy, which
 * challenges the INVITE (407) and routes it to the callee's registration. Signalling and SDP only: media anchoring
 * comes with the traversal work, so RTP flows directly between the two baresips.
 */
describe('baresip → Crossway → baresip, with digest registration and a challenged INVITE', { timeout: 60_000 }, () => {
  let node: RunningNode;
  let alice: Baresip;
  let bob: Baresip;
  let port: number;

  before(async () => {
    // libre 1.1 (baresip 1.0) answers only the first challenge and knows only MD5: with SHA-256 offered first it
    // fails its REGISTER with ENOSYS ("Function not implemented"), so this node offers MD5 alone.
    node = await startTestNode({ auth: { algorithms: ['MD5'] }, routing: { proxy: { authenticateCalls: true } } });
    const creds = new LocalCredentialStore(node.stores.get('core')!);
    creds.add(REALM, 'alice', 'alice-secret');
    creds.add(REALM, 'bob', 'bob-secret');
    port = node.plan.node('core').port('sip-udp')!;
    const account = (user: string) =>
      `<sip:${user}@127.0.0.2:${port};transport=udp>;auth_pass=${user}-secret;regint=120;answermode=auto`;
    [alice, bob] = await Promise.all([
      Baresip.start({ account: account('alice'), toneHz: 440, address: '127.0.0.2' }),
      Baresip.start({ account: account('bob'), toneHz: 1000, address: '127.0.0.2' }),
    ]);
  });

  after(async () => {
    await Promise.allSettled([alice?.close(), bob?.close()]);
    await node?.close();
  });

  test('both register with digest; alice calls bob; answered, SDP exchanged, hung up cleanly', async () => {
    await alice.waitRegistered();
    await bob.waitRegistered();
    const core = node.sip.get('core')!;
    assert.equal(core.location!.lookup('sip:bob@127.0.0.2').length, 1);
    // Each REGISTER was challenged before it was accepted: a 401 and a 200 for each of the two user agents at least.
    const registrar = core.registrar!.counters.responses;
    assert.ok((registrar[401] ?? 0) >= 2, `REGISTER challenges: ${JSON.stringify(registrar)}`);
    assert.ok((registrar[200] ?? 0) >= 2, `REGISTER accepted: ${JSON.stringify(registrar)}`);

    const dial = await alice.cmd('dial', `sip:bob@127.0.0.2:${port}`);
    assert.ok(dial.ok, dial.data);
    await alice.waitEvent((e) => e.type === 'CALL_ESTABLISHED');
    await bob.waitEvent((e) => e.type === 'CALL_ESTABLISHED');
    // SDP went both ways through the proxy.
    await alice.waitEvent((e) => e.type === 'CALL_REMOTE_SDP');
    await bob.waitEvent((e) => e.type === 'CALL_REMOTE_SDP');
    assert.equal(core.calls!.activeCount, 1);
    const active = core.calls!.active()[0]!;
    assert.equal(active.state, 'active');
    assert.equal(active.sourceZone, 'LocalZone');
    assert.equal(core.proxy!.counters.responsesForwarded[407], 1, 'the first INVITE was challenged');

    await new Promise((r) => setTimeout(r, 1000));
    await alice.cmd('hangup');
    await alice.waitEvent((e) => e.type === 'CALL_CLOSED');
    await bob.waitEvent((e) => e.type === 'CALL_CLOSED');
    const deadline = Date.now() + 3000;
    while (core.calls!.activeCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const rec = core.calls!.history(1)[0]!;
    assert.equal(rec.state, 'ended');
    assert.equal(rec.cause, 'bye from caller');
    assert.equal(rec.from, 'alice@127.0.0.2');
    assert.equal(rec.to, 'bob@127.0.0.2');
  });
});
