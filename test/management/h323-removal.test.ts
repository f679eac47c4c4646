/**
 * An administrator removes an H.323 registration: over HTTPS (`DELETE /api/v1/registrations/h323/{id}`, read-write
 * only) and with `crossway registrations remove h323 ID` (control socket). Scripted RAS endpoints register with the
 * core's gatekeeper of a started lab node; each removal must bring the gatekeeper's URQ to the endpoint's RAS socket,
 * take the registration out of the listing and the counts, send an `unregistration` event (reason administrator) and
 * be audited; unknown identifiers answer 404 / exit 2, and callers without the right login are refused.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { test } from 'node:test';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../../src/h323/api.ts';
import type { RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import { OPENAPI } from '../../src/management/api/openapi.ts';
import { checkJsonSchema } from '../helpers/json-schema.ts';
import { createTlsFixtures } from '../helpers/tls-fixtures.ts';
import { apiLogin, type MgmtNode, receiver, req, setupAdmin, startMgmtNode, until } from './helpers.ts';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function crossway(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, out, err });
    });
  });
}

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

test('an administrator removes an H.323 registration through the API and the CLI; the endpoint gets the URQ', {
  timeout: 120_000,
}, async () => {
  const tls = createTlsFixtures();
  const rx = receiver(tls);
  const sock = dgram.createSocket('udp4');
  let m: MgmtNode | undefined;
  try {
    const feedbackPort = await rx.listen();
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const me = sock.address().port;
    m = await startMgmtNode({
      tls: { caCertificates: tls.ca.certPath },
      h323: { enabled: true, gatekeeper: { timeToLive: 60 } },
      // the SIP binding beside the H.323 registrations registers without digest
      registrar: { authenticate: false },
      feedback: { subscribers: [{ url: `https://localhost:${feedbackPort}/nms`, events: ['unregistration'] }] },
    });
    const ras = m.node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
    const inbox: RasMessage[] = [];
    const onRas = (b: Buffer) => {
      const d = rasCodec.decode(b);
      assert.ok(d.ok, 'the gatekeeper sends well-formed RAS');
      inbox.push(d.value);
    };
    sock.on('message', onRas);
    const take = async (choice: string, what: string): Promise<Record<string, unknown>> => {
      await until(() => inbox.some((x) => x.choice === choice), 3000).catch(() => {
        throw new Error(`no ${choice} for ${what}; got ${inbox.map((x) => x.choice).join(',') || 'nothing'}`);
      });
      const i = inbox.findIndex((x) => x.choice === choice);
      return inbox.splice(i, 1)[0]!.value as Record<string, unknown>;
    };
    let seq = 0;
    const register = async (aliases: string[], csPort: number) => {
      sock.send(
        rasCodec.encode({
          choice: 'registrationRequest',
          value: {
            requestSeqNum: ++seq,
            protocolIdentifier: H225_PROTOCOL_ID,
            discoveryComplete: false,
            callSignalAddress: [h225Address('127.0.0.1', csPort)],
            rasAddress: [h225Address('127.0.0.1', me)],
            terminalType: { terminal: {}, mc: false, undefinedNode: false },
            terminalAlias: aliases.map(aliasFromText),
            endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
          },
        }),
        ras.port,
        ras.address,
      );
      const rcf = await take('registrationConfirm', `RRQ ${aliases.join(',')}`);
      return rcf.endpointIdentifier as string;
    };
    const alice = await register(['alice', '2001'], 11720);
    const bob = await register(['bob'], 11721);
    assert.notEqual(alice, bob);
    // a SIP binding on the same node: counted in `registrations`, not in `h323-registrations`
    const sipAddr = m.node.addresses.get('core')!.private;
    const sipPort = m.node.plan.port('sip-udp', 'core');
    sock.off('message', onRas); // the answer is SIP, not RAS
    const sipOk = new Promise<string>((resolve) => sock.once('message', (b) => resolve(b.toString())));
    sock.send(
      [
        `REGISTER sip:${sipAddr}:${sipPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bK-h323-removal-1;rport`,
        'Max-Forwards: 70',
        `From: <sip:carol@${sipAddr}>;tag=h323-removal`,
        `To: <sip:carol@${sipAddr}>`,
        'Call-ID: h323-removal-carol',
        'CSeq: 1 REGISTER',
        `Contact: <sip:carol@127.0.0.1:${me}>`,
        'Expires: 600',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      sipPort,
      sipAddr,
    );
    assert.match(await sipOk, /^SIP\/2\.0 200 /, 'the SIP binding is made');
    sock.on('message', onRas);

    const password = 'administrator pw 1';
    await setupAdmin(m, 'root', password, 'core');
    const core = m.base('core');
    const rootAuth = { authorization: basic('root', password) };
    const mk = await req(`${core}/api/v1/accounts`, {
      ca: m.ca,
      headers: rootAuth,
      body: { name: 'viewer', level: 'read-only', password: 'viewer password 1' },
    });
    assert.equal(mk.status, 200, mk.text);

    const h323Ids = async () => {
      const r = await req(`${core}/api/v1/status/registrations`, { ca: m!.ca, headers: rootAuth });
      assert.equal(r.status, 200, r.text);
      return r
        .json<{ registrations: { protocol: string; endpointIdentifier?: string }[] }>()
        .registrations.filter((x) => x.protocol === 'h323')
        .map((x) => x.endpointIdentifier)
        .sort();
    };
    // crossway_module_count: `registrations` (SIP and H.323) and `h323-registrations`, as metrics and counts (SNMP)
    const registrationsCount = async () => {
      const r = await req(`${core}/metrics`, { ca: m!.ca, headers: rootAuth });
      const series = (what: string) => {
        const line = new RegExp(`^crossway_module_count\\{what="${what}",node="core"\\} (\\d+)$`, 'm').exec(r.text);
        assert.ok(line, `the ${what} count is exported`);
        return Number(line[1]);
      };
      const both = [series('registrations'), series('h323-registrations')];
      const counts = m!.node.management!.nodes.get('core')!.counts();
      assert.deepEqual([counts.registrations, counts['h323-registrations']], both, 'SNMP reads the same counts');
      return both;
    };
    assert.deepEqual(await h323Ids(), [alice, bob].sort());
    assert.deepEqual(await registrationsCount(), [3, 2]);

    // Refused callers change nothing and make the gatekeeper send nothing.
    const url = (id: string) => `${core}/api/v1/registrations/h323/${encodeURIComponent(id)}`;
    const anon = await req(url(alice), { ca: m.ca, method: 'DELETE' });
    assert.equal(anon.status, 401);
    assert.match(String(anon.headers['www-authenticate']), /^Basic /);
    const wrong = await req(url(alice), {
      ca: m.ca,
      method: 'DELETE',
      headers: { authorization: basic('root', 'not the password') },
    });
    assert.equal(wrong.status, 401);
    const viewer = await req(url(alice), {
      ca: m.ca,
      method: 'DELETE',
      headers: { authorization: basic('viewer', 'viewer password 1') },
    });
    assert.equal(viewer.status, 403);
    assert.equal(viewer.json<{ error: string }>().error, 'forbidden');
    const session = await apiLogin(m, 'root', password, 'core');
    const noCsrf = await req(url(alice), { ca: m.ca, method: 'DELETE', headers: { cookie: session.cookie } });
    assert.equal(noCsrf.status, 403);
    assert.equal(noCsrf.json<{ error: string }>().error, 'csrf');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      inbox.map((x) => x.choice),
      [],
      'no URQ for a refused request',
    );
    assert.deepEqual(await h323Ids(), [alice, bob].sort());

    // The administrator's session with its CSRF token removes alice.
    const del = await req(url(alice), {
      ca: m.ca,
      method: 'DELETE',
      headers: { cookie: session.cookie, 'x-csrf-token': session.csrf },
    });
    assert.equal(del.status, 200, del.text);
    const body = del.json();
    assert.deepEqual(body, {
      removed: { protocol: 'h323', endpointIdentifier: alice, aliases: ['h323-ID:alice', 'dialledDigits:2001'] },
    });
    const doc = OPENAPI.paths['/api/v1/registrations/h323/{endpointIdentifier}'].delete.responses[200];
    const schema = doc.content['application/json'].schema as unknown as Record<string, unknown>;
    assert.deepEqual(checkJsonSchema(schema, body, OPENAPI), []);
    const urq = await take('unregistrationRequest', 'the API removal');
    assert.equal(urq.endpointIdentifier, alice);
    assert.equal(urq.gatekeeperIdentifier, 'crossway-core');
    assert.deepEqual(urq.reason, { choice: 'maintenance', value: null });
    assert.deepEqual(await h323Ids(), [bob]);
    assert.deepEqual(await registrationsCount(), [2, 1]);

    // Gone now, and an identifier nobody has: 404 and no URQ.
    for (const id of [alice, 'no-such-endpoint']) {
      const r = await req(url(id), { ca: m.ca, method: 'DELETE', headers: rootAuth });
      assert.equal(r.status, 404, `${id}: ${r.text}`);
      assert.equal(r.json<{ error: string }>().error, 'not-found');
    }
    // The edge runs its own gatekeeper: bob is not registered there.
    await setupAdmin(m, 'root', password, 'edge');
    const onEdge = await req(`${m.base('edge')}/api/v1/registrations/h323/${bob}`, {
      ca: m.ca,
      method: 'DELETE',
      headers: rootAuth,
    });
    assert.equal(onEdge.status, 404);
    assert.deepEqual(await h323Ids(), [bob]);

    // The CLI: wrong protocol and unknown identifier are refused with a reason; bob is removed with a URQ.
    const sip = await crossway(['registrations', 'remove', 'sip', bob, '--data-dir', m.dataDir]);
    assert.equal(sip.code, 1);
    assert.match(sip.err, /cannot remove SIP bindings/);
    const unknown = await crossway(['registrations', 'remove', 'h323', 'no-such-endpoint', '--data-dir', m.dataDir]);
    assert.equal(unknown.code, 2, unknown.err);
    assert.match(unknown.err, /no H\.323 registration no-such-endpoint/);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      inbox.map((x) => x.choice),
      [],
      'no URQ for a refused removal',
    );
    const cli = await crossway(['registrations', 'remove', 'h323', bob, '--data-dir', m.dataDir]);
    assert.equal(cli.code, 0, cli.err);
    assert.equal(cli.out, `H.323 registration ${bob} removed (URQ sent to the endpoint)\n`);
    const urq2 = await take('unregistrationRequest', 'the CLI removal');
    assert.equal(urq2.endpointIdentifier, bob);
    assert.deepEqual(await h323Ids(), []);
    assert.deepEqual(await registrationsCount(), [1, 0], 'the SIP binding is left');

    // Both removals audited and announced.
    const audit = await req(`${core}/api/v1/audit`, { ca: m.ca, headers: rootAuth });
    const removals = audit
      .json<{ who: string; source: string; action: string; detail: string }[]>()
      .filter((r) => r.action === 'registration-remove')
      .map((r) => [r.who, r.source, r.detail]);
    assert.deepEqual(removals, [
      ['cli', 'local', `h323 ${bob} (h323-ID:bob)`],
      ['root', '127.0.0.1', `h323 ${alice} (h323-ID:alice dialledDigits:2001)`],
    ]);
    const events = () => rx.got.map((g) => g.event).filter((e) => e.node === 'core');
    await until(() => events().length >= 2, 10_000);
    assert.deepEqual(
      events().map((e) => [e.event, e.data.endpointIdentifier, e.data.reason]),
      [
        ['unregistration', alice, 'administrator'],
        ['unregistration', bob, 'administrator'],
      ],
    );
  } finally {
    sock.close();
    await m?.node.close();
    await rx.close();
  }
});
