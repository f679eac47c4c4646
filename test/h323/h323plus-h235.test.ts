import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { callControl } from '../../src/roles/control.ts';
import { LocalCredentialStore } from '../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../src/store/database.ts';
import { gnugkBinDir } from '../helpers/gnugk.ts';
import { startTestNode } from '../helpers/lab-node.ts';

/**
 * H.235.1 against a real signing stack: H323Plus's `simple` endpoint (built with GnuGk, `../shared/peers/gnugk/`)
 * with `--password` discovers, registers, is admitted and calls through a lab node whose security is `required`.
 * Its GRQ is unsigned and offers pwdHash/HMAC-SHA1-96 (the GCF selects it), it checks the RCF's generalID against the
 * endpointIdentifier, and it hashes the whole Q.931 message of its Setup; the node must meet all three.
 *
 * The sample hands its user name and password to its call authenticators the other way round (its Setup token is
 * keyed with the user name, and its MD5 token carries the password as alias), so each user here has its own name as
 * password: RAS and Setup are then signed with the same key, as a correctly configured endpoint's are.
 */

const gnugk = gnugkBinDir();
const skip = 'reason' in gnugk ? gnugk.reason : false;
if (skip) console.warn(`SKIPPED h323plus-h235.test.ts: ${skip}`);

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

interface CoreStatus {
  node: string;
  registrations: number;
  counters: { securityDenied: number; keepAlives: number; sent: Record<string, number> };
  calls: {
    counters: { securityDenied: number; securityReleased: number };
    active: Array<{ state: string }>;
    ended: Array<{ state: string }>;
  };
  neighbours: { searches: Array<{ label: string; authenticated: boolean; result: string }> };
}

test("H323Plus simple with an H.235.1 password registers, is admitted and calls through a node with security required; its Setup counts as authenticated; the node's call signalling to both is signed; its signed keep-alives are accepted", {
  skip,
  timeout: 60_000,
}, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'crossway-h323plus-h235-'));
  const seed = NodeStore.open(join(dataDir, 'core'));
  const creds = new LocalCredentialStore(seed);
  creds.add('example.com', 'alice', 'alice');
  creds.add('example.com', 'bob', 'bob');
  seed.close();
  const node = await startTestNode({
    dataDir,
    h323: { enabled: true, gatekeeper: { timeToLive: 10, security: { mode: 'required', realm: 'example.com' } } },
    // unauthenticated callers may not call at all: the signed call must count as authenticated to get through
    routing: { callPolicy: [{ authenticated: false, action: 'reject' }] },
  });
  const procs: ChildProcess[] = [];
  /** Each endpoint traces H.235 at level 2 to `<user>.log` (where H323Plus says it got an unsigned message). */
  const trace = (user: string) => join(dataDir, `${user}.log`);
  const simple = (args: string[]) => {
    const p = spawn(
      join((gnugk as { dir: string }).dir, 'simph323'),
      [...args, '-i', '127.0.0.1', '-S', '-s', 'Null Audio', '-tt', '-o', trace(args[args.indexOf('-u') + 1]!)],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    p.stdout?.on('data', (d) => (out += d));
    p.stderr?.on('data', (d) => (out += d));
    procs.push(p);
    return () => out;
  };
  const core = async () =>
    ((await callControl(dataDir, 'h323.status')) as CoreStatus[]).find((s) => s.node === 'core')!;
  const until = async (what: (s: CoreStatus) => boolean, ms: number) => {
    const end = Date.now() + ms;
    let s = await core();
    while (!what(s) && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 200));
      s = await core();
    }
    return s;
  };
  try {
    const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const gk = `${ras.address}:${ras.port}`;
    const bobOut = simple(['-l', '-a', '-u', 'bob', '-p', 'bob', '-g', gk, '-x', String(await freePort())]);
    let s = await until((x) => x.registrations === 1, 10_000);
    assert.equal(s.registrations, 1, `bob registered: ${bobOut()}`);
    const aliceOut = simple(['-u', 'alice', '-p', 'alice', '-g', gk, '-x', String(await freePort()), 'bob']);
    s = await until((x) => x.calls.active.some((c) => c.state === 'connected'), 15_000);
    assert.ok(
      s.calls.active.some((c) => c.state === 'connected'),
      `the call connected: ${JSON.stringify(s.calls)}\nalice: ${aliceOut().slice(-600)}\nbob: ${bobOut().slice(-600)}`,
    );
    // discovery answered (GCF), the signed RRQs and ARQs accepted, nothing refused for security
    assert.equal(s.counters.sent.gatekeeperConfirm, 2);
    assert.equal(s.counters.sent.registrationConfirm, 2);
    assert.ok((s.counters.sent.admissionConfirm ?? 0) >= 1);
    assert.equal(s.counters.securityDenied, 0);
    assert.equal(s.calls.counters.securityDenied, 0);
    assert.equal(s.calls.counters.securityReleased, 0);
    const setup = s.neighbours.searches.find((r) => r.label.startsWith('Setup from'));
    assert.deepEqual(
      setup && [setup.label.endsWith('signed by alice'), setup.authenticated, setup.result],
      [true, true, 'found'],
      JSON.stringify(s.neighbours.searches),
    );
    // the node signs what it sends both (bob registered signed, alice signed her Setup): without its tokens H323Plus
    // traces each unsigned CallProceeding/Alerting/Connect/Facility (alice) and Setup/Facility (bob) as "Received
    // unsecured EPAuthentication message"; with them, none, and nothing fails a check
    const aliceTrace = readFileSync(trace('alice'), 'utf8');
    const bobTrace = readFileSync(trace('bob'), 'utf8');
    assert.doesNotMatch(aliceTrace, /Received unsecured EPAuthentication/);
    assert.doesNotMatch(bobTrace, /Received unsecured EPAuthentication/);
    assert.doesNotMatch(aliceTrace, /Security Failure|Authentication Fail/);
    // bob's stack read the token of the node's Setup: sendersID the gatekeeperIdentifier. The sample then looks that
    // sender up in its own endpoint-to-endpoint user list, which simph323 never fills, and lets the call go on
    // (its policy does not require call authentication): it cannot check a gatekeeper's token, from us or GnuGk.
    assert.match(bobTrace, /H2351_Authenticator Authentication Fail UserName "crossway-core"/);
    // with a 10 s timeToLive both send signed lightweight RRQs: accepted, registrations kept
    s = await until((x) => x.counters.keepAlives >= 2, 15_000);
    assert.ok(s.counters.keepAlives >= 2, JSON.stringify(s.counters));
    assert.equal(s.registrations, 2);
    assert.equal(s.counters.securityDenied, 0);
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await node.close();
  }
});
