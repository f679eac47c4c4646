import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RunningNode } from '../../../src/roles/start.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { startTestNode } from '../../helpers/lab-node.ts';
import { runSipp } from '../../helpers/sipp.ts';
import { usersFile } from './users.ts';

const SCENARIOS = new URL('../../sipp/', import.meta.url).pathname;
const REALM = '127.0.0.2';

/**
 * Digest registration on a lab node against sipp. The node's digest authenticator (src/sip/auth) must be wired into
 * the SIP service: if that wiring is lost, `before` fails and so does every test here, rather than passing without a
 * challenge or skipping.
 */
describe('registrar with digest authentication on a lab node against sipp', () => {
  let node: RunningNode;
  let target: string;

  before(async () => {
    // sipp (Debian sip-tester) answers only MD5 challenges, and only the first WWW-Authenticate it sees.
    node = await startTestNode({ auth: { algorithms: ['MD5'] } });
    target = `127.0.0.2:${node.plan.node('core').port('sip-udp')}`;
    assert.ok(node.sip.get('core')!.registrar!.authenticates, 'the digest authenticator is wired into the node');
    const creds = new LocalCredentialStore(node.stores.get('core')!);
    node.stores.get('core')!.db.transaction(() => {
      for (let i = 0; i < 1000; i++) creds.add(REALM, `da${String(i).padStart(4, '0')}`, `pw-${i}`);
    })();
  });

  after(async () => {
    await node?.close();
  });

  test('REGISTER with digest authentication succeeds (401, then 200 with the contact)', async () => {
    const r = await runSipp({
      scenario: `${SCENARIOS}register-auth.xml`,
      target,
      calls: 5,
      rate: 10,
      timeoutSeconds: 20,
      extraArgs: ['-inf', usersFile('da', 5)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 5);
    assert.equal(node.sip.get('core')!.location!.lookup('sip:da0004@127.0.0.2').length, 1);
  });

  test('a wrong password is refused (401/403) and registers nothing', async () => {
    const before = node.sip.get('core')!.location!.bindingCount;
    const r = await runSipp({
      scenario: `${SCENARIOS}register-wrong-password.xml`,
      target,
      calls: 3,
      rate: 10,
      timeoutSeconds: 20,
      extraArgs: ['-inf', usersFile('da', 3, () => 'not-the-password')],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 3);
    assert.equal(node.sip.get('core')!.location!.bindingCount, before);
  });

  test('1,000 distinct users register and refresh with digest authentication, zero failures', async () => {
    const r = await runSipp({
      scenario: `${SCENARIOS}register-auth-refresh.xml`,
      target,
      calls: 1000,
      rate: 300,
      limit: 200,
      timeoutSeconds: 90,
      extraArgs: ['-inf', usersFile('da', 1000)],
    });
    assert.equal(r.exitCode, 0, r.stderr.slice(0, 2000));
    assert.equal(r.successful, 1000);
    assert.equal(r.failed, 0);
    const location = node.sip.get('core')!.location!;
    for (const i of [0, 499, 999]) {
      const [b] = location.lookup(`sip:da${String(i).padStart(4, '0')}@127.0.0.2`);
      assert.equal(b?.cseq, 4, `user ${i} refreshed`);
    }
  });
});
