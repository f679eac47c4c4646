import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { after, before, test } from 'node:test';
import type { NodeStatus } from '../../src/calls/status.ts';
import { formatStatus } from '../../src/cli/commands/status.ts';
import { callControl } from '../../src/roles/control.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';

let node: RunningNode;

before(async () => {
  node = await startTestNode({
    registrar: { authenticate: false },
    routing: { zones: [{ name: 'Partner', type: 'neighbor', address: '192.0.2.1' }] },
  });
});

after(async () => {
  await node?.close();
});

/** Sends one request to the core over UDP and waits for the final response. */
function send(text: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const t = setTimeout(() => {
      s.close();
      reject(new Error('no answer'));
    }, 3000);
    s.on('message', (m) => {
      const line = m.toString().split('\r\n')[0]!;
      if (/^SIP\/2\.0 1\d\d/.test(line)) return;
      clearTimeout(t);
      s.close();
      resolve(line);
    });
    s.bind(0, '127.0.0.1', () => {
      const { port: me } = s.address();
      s.send(text.replaceAll('PORT', String(me)), port, '127.0.0.2');
    });
  });
}

test('crossway status reads registrations, calls, zones and searches from the running node', async () => {
  const core = node.sip.get('core')!;
  const port = core.sockets().find((s) => s.listener === 'sip-udp')!.port;
  const reg =
    `REGISTER sip:127.0.0.2:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKreg1;rport\r\n` +
    'Max-Forwards: 70\r\nFrom: <sip:carol@127.0.0.2>;tag=r1\r\nTo: <sip:carol@127.0.0.2>\r\nCall-ID: reg1\r\n' +
    'CSeq: 1 REGISTER\r\nContact: <sip:carol@127.0.0.1:PORT>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n';
  assert.equal(await send(reg, port), 'SIP/2.0 200 OK');
  const inv =
    `INVITE sip:nobody@127.0.0.2:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKinv1;rport\r\n` +
    'Max-Forwards: 70\r\nFrom: <sip:carol@127.0.0.2>;tag=i1\r\nTo: <sip:nobody@127.0.0.2>\r\nCall-ID: inv1\r\n' +
    'CSeq: 1 INVITE\r\nContact: <sip:carol@127.0.0.1:PORT>\r\nContent-Length: 0\r\n\r\n';
  assert.equal(await send(inv, port), 'SIP/2.0 404 Not Found');

  const nodes = (await callControl(node.config.dataDir, 'calls.status', { limit: 5 })) as NodeStatus[];
  const c = nodes.find((n) => n.node === 'core')!;
  assert.equal(c.registrations.aors, 1);
  assert.equal(c.registrations.list[0]!.aor, 'sip:carol@127.0.0.2');
  assert.deepEqual(
    c.zones.map((z) => z.name),
    ['LocalZone', 'Partner'],
  );
  assert.equal(c.calls.recent[0]!.status, 404);
  assert.equal(c.calls.recent[0]!.state, 'failed');
  const search = c.searches[0] as { result: string; alias: string; sourceZone: string };
  assert.equal(search.result, 'not-found');
  assert.equal(search.alias, 'nobody@127.0.0.2');
  assert.equal(search.sourceZone, 'LocalZone', 'a registered endpoint calls from the local zone');
  const text = formatStatus(c);
  assert.match(text, /registrations: 1 AOR/);
  assert.match(text, /carol@127\.0\.0\.2 → nobody@127\.0\.0\.2: not-found/);
});

/** The header lines of a SIP message named `name` (case-insensitive, no compact forms needed here). */
const headers = (msg: string, name: string) =>
  msg
    .split('\r\n')
    .filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((l) => l.slice(name.length + 1).trim());

/** A UDP user agent on 127.0.0.1 that keeps every message it receives and can wait for one. */
async function agent() {
  const sock: Socket = createSocket('udp4');
  const got: string[] = [];
  const waiters: { match: (m: string) => boolean; resolve: (m: string) => void }[] = [];
  sock.on('message', (b) => {
    const m = b.toString();
    got.push(m);
    for (const w of waiters.splice(0)) {
      if (w.match(m)) w.resolve(m);
      else waiters.push(w);
    }
  });
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  const port = sock.address().port;
  return {
    port,
    got,
    send: (text: string, to: number) => sock.send(text.replaceAll('PORT', String(port)), to, '127.0.0.2'),
    wait(match: (m: string) => boolean, what: string): Promise<string> {
      const seen = got.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${what}`)), 3000);
        waiters.push({
          match,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m);
          },
        });
      });
    },
    close: () => sock.close(),
  };
}

/** Runs `crossway status` (the installed entry point) against a data directory; resolves with its stdout. */
function crosswayStatus(dataDir: string): Promise<{ code: number | null; out: string; err: string }> {
  const bin = new URL('../../bin/crossway.js', import.meta.url).pathname;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, 'status', '--data-dir', dataDir, '--limit', '5'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const t = setTimeout(() => {
      child.kill();
      reject(new Error(`crossway status did not exit: ${err}`));
    }, 30_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

test('an answered call is listed as active, by the control socket and by the crossway status command', async () => {
  const core = node.sip.get('core')!;
  const port = core.sockets().find((s) => s.listener === 'sip-udp')!.port;
  const callee = await agent();
  const caller = await agent();
  try {
    // dave registers; his user agent answers every INVITE and BYE with 200.
    callee.send(
      `REGISTER sip:127.0.0.2:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKreg2;rport\r\n` +
        'Max-Forwards: 70\r\nFrom: <sip:dave@127.0.0.2>;tag=r2\r\nTo: <sip:dave@127.0.0.2>\r\nCall-ID: reg2\r\n' +
        'CSeq: 1 REGISTER\r\nContact: <sip:dave@127.0.0.1:PORT>\r\nExpires: 300\r\nContent-Length: 0\r\n\r\n',
      port,
    );
    assert.match(await callee.wait((m) => m.includes('Call-ID: reg2'), '200 to REGISTER'), /^SIP\/2\.0 200/);
    const answerAs200 = (req: string) => {
      const copy = ['via', 'record-route', 'from', 'call-id', 'cseq'].flatMap((h) =>
        headers(req, h).map((v) => `${h === 'cseq' ? 'CSeq' : h.replace(/(^|-)(\w)/g, (x) => x.toUpperCase())}: ${v}`),
      );
      const to = headers(req, 'to')[0]!;
      return `SIP/2.0 200 OK\r\n${copy.join('\r\n')}\r\nTo: ${to.includes('tag=') ? to : `${to};tag=d1`}\r\nContact: <sip:dave@127.0.0.1:PORT>\r\nContent-Length: 0\r\n\r\n`;
    };
    const invite =
      `INVITE sip:dave@127.0.0.2:${port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKinv2;rport\r\n` +
      'Max-Forwards: 70\r\nFrom: <sip:erin@127.0.0.2>;tag=e1\r\nTo: <sip:dave@127.0.0.2>\r\nCall-ID: held1\r\n' +
      'CSeq: 1 INVITE\r\nContact: <sip:erin@127.0.0.1:PORT>\r\nContent-Length: 0\r\n\r\n';
    caller.send(invite, port);
    const forwarded = await callee.wait((m) => m.startsWith('INVITE '), 'INVITE at dave');
    callee.send(answerAs200(forwarded), port);
    const ok = await caller.wait((m) => m.startsWith('SIP/2.0 200') && m.includes('held1'), '200 at erin');
    const routes = headers(ok, 'record-route').reverse();
    assert.ok(routes.length > 0, 'the core record-routes the call');
    caller.send(
      `ACK sip:dave@127.0.0.1:${callee.port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKack2;rport\r\n` +
        `Max-Forwards: 70\r\nRoute: ${routes.join(', ')}\r\nFrom: <sip:erin@127.0.0.2>;tag=e1\r\n` +
        `To: ${headers(ok, 'to')[0]}\r\nCall-ID: held1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n`,
      port,
    );
    await callee.wait((m) => m.startsWith('ACK '), 'ACK at dave');

    // Held: the node lists it among its active calls.
    const nodes = (await callControl(node.config.dataDir, 'calls.status', { limit: 5 })) as NodeStatus[];
    const c = nodes.find((n) => n.node === 'core')!;
    assert.equal(c.calls.active.length, 1);
    const active = c.calls.active[0]!;
    assert.equal(active.state, 'active');
    assert.equal(active.from, 'erin@127.0.0.2');
    assert.equal(active.to, 'dave@127.0.0.2');
    assert.equal(active.sourceZone, 'DefaultZone', 'erin is not registered here');
    assert.equal(active.targetZone, 'LocalZone');
    assert.deepEqual(
      active.legs.map((l) => [l.zone, l.status]),
      [['LocalZone', 200]],
    );
    assert.match(
      formatStatus(c),
      /active calls: 1\n.*active\s+erin@127\.0\.0\.2 → dave@127\.0\.0\.2 {2}\[DefaultZone → LocalZone\] legs LocalZone:200/,
    );

    // The same, as an administrator sees it: the crossway status process reads the control socket.
    const run = await crosswayStatus(node.config.dataDir);
    assert.equal(run.code, 0, run.err);
    const coreText = run.out.slice(run.out.indexOf('== core'));
    assert.ok(run.out.includes('== core'), run.out);
    assert.match(coreText, /active calls: 1\n.*erin@127\.0\.0\.2 → dave@127\.0\.0\.2/);
    assert.match(coreText, /sip:dave@127\.0\.0\.2 {2}sip:dave@127\.0\.0\.1:\d+/);
    assert.match(coreText, /recent searches: \d+\n {2}#\d+ .*erin@127\.0\.0\.2 → dave@127\.0\.0\.2: found → LocalZone/);

    // erin hangs up: the call leaves the active list for the recent ones, with its cause.
    caller.send(
      `BYE sip:dave@127.0.0.1:${callee.port} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:PORT;branch=z9hG4bKbye2;rport\r\n` +
        `Max-Forwards: 70\r\nRoute: ${routes.join(', ')}\r\nFrom: <sip:erin@127.0.0.2>;tag=e1\r\n` +
        `To: ${headers(ok, 'to')[0]}\r\nCall-ID: held1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n`,
      port,
    );
    const bye = await callee.wait((m) => m.startsWith('BYE '), 'BYE at dave');
    callee.send(answerAs200(bye), port);
    await caller.wait((m) => m.startsWith('SIP/2.0 200') && m.includes('2 BYE'), '200 to BYE at erin');
    const after = (await callControl(node.config.dataDir, 'calls.status', { limit: 5 })) as NodeStatus[];
    const c2 = after.find((n) => n.node === 'core')!;
    assert.equal(c2.calls.active.length, 0);
    assert.equal(c2.calls.recent[0]!.to, 'dave@127.0.0.2');
    assert.equal(c2.calls.recent[0]!.cause, 'bye from caller');
  } finally {
    callee.close();
    caller.close();
  }
});

test('crossway status shows the answer of a zone that made the search go on, and how many steps failed', () => {
  const status = {
    node: 'core',
    registrations: { aors: 0, bindings: 0, list: [] },
    calls: { active: [], recent: [] },
    zones: [],
    traversalZones: [],
    searches: [
      {
        id: 7,
        at: 0,
        protocol: 'sip',
        label: 'INVITE c1',
        sourceZone: 'DefaultZone',
        sourceAlias: 'alice@example.com',
        authenticated: false,
        alias: 'bob@example.com',
        searchedAlias: 'bob@example.com',
        rules: [
          { rule: 'site-a', priority: 40, zone: 'SiteA', result: 'found', answer: '404' },
          { rule: 'site-b', priority: 50, zone: 'SiteB', result: 'found' },
        ],
        result: 'found',
        targets: [{ zone: 'SiteB', alias: 'bob@example.com' }],
        continued: 1,
        durationMs: 3,
      },
    ],
  } as unknown as NodeStatus;
  const text = formatStatus(status);
  assert.match(text, /found after 1 failed step\(s\) → SiteB\(bob@example\.com\)/);
  assert.match(text, /\[site-a:found\(404\) site-b:found\]/);
});
