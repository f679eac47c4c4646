import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
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
