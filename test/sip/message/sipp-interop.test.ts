import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  createRequest,
  createResponse,
  getCallId,
  getContacts,
  getCSeq,
  getParam,
  getTopVia,
  getToTag,
  newBranch,
  newTag,
  parseMessage,
  type SipRequest,
  type SipResponse,
  serializeMessage,
} from '../../../src/sip/message/index.ts';
import { runSipp } from '../../helpers/sipp.ts';

// Interop with a real peer, sipp (Debian sip-tester): its built-in scenarios exercise our parser on what sipp
// sends and sipp's parser on what our builders and serializer produce.

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n';

test('sipp uac (INVITE / ACK / BYE) against a UAS built on the message layer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-sipmsg-'));
  const scenario = join(dir, 'uac.xml');
  // `sipp -sd` prints the built-in scenario and exits with a non-zero status.
  const dump = spawnSync('sipp', ['-sd', 'uac']);
  assert.match(String(dump.stdout), /<scenario name="Basic Sipstone UAC">/);
  writeFileSync(scenario, dump.stdout);
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  const seen = { INVITE: 0, ACK: 0, BYE: 0, bad: [] as string[] };
  sock.on('message', (buf: Buffer, rinfo: RemoteInfo) => {
    const r = parseMessage(buf);
    if (!r.ok) {
      seen.bad.push(r.reason.reason);
      return;
    }
    if (r.value.kind !== 'request') return;
    const req = r.value;
    const via = getTopVia(req);
    const cseq = getCSeq(req);
    if (!via?.ok || !cseq?.ok || cseq.value.method !== req.method || getCallId(req) === undefined) {
      seen.bad.push(`inconsistent ${req.method}`);
      return;
    }
    if (!String(getParam(via.value.params, 'branch')).startsWith('z9hG4bK')) seen.bad.push('branch');
    const send = (res: SipResponse) => sock.send(serializeMessage(res), rinfo.port, rinfo.address);
    if (req.method === 'INVITE') {
      seen.INVITE++;
      const tag = newTag();
      send(createResponse(req, 180, undefined, { toTag: tag }));
      send(
        createResponse(req, 200, undefined, {
          toTag: tag,
          headers: [
            ['Contact', `<sip:uas@127.0.0.1:${port}>`],
            ['Content-Type', 'application/sdp'],
          ],
          body: SDP,
        }),
      );
    } else if (req.method === 'ACK') {
      seen.ACK++;
    } else if (req.method === 'BYE') {
      seen.BYE++;
      send(createResponse(req, 200));
    }
  });
  try {
    const res = await runSipp({ scenario, target: `127.0.0.1:${port}`, calls: 20, rate: 50, timeoutSeconds: 30 });
    assert.equal(res.exitCode, 0, res.stderr.slice(0, 2000));
    assert.equal(res.successful, 20);
    assert.equal(res.failed, 0);
    assert.deepEqual(seen, { INVITE: 20, ACK: 20, BYE: 20, bad: [] });
  } finally {
    sock.close();
  }
});

test('a UAC built on the message layer against sipp uas', async () => {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const local = sock.address().port;
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, '127.0.0.1', r));
  const uasPort = probe.address().port;
  probe.close();
  const calls = 5;
  const sipp = spawn(
    'sipp',
    ['-sn', 'uas', '-i', '127.0.0.1', '-p', String(uasPort), '-m', String(calls), '-nostdin'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let sippErr = '';
  sipp.stderr.on('data', (d) => {
    sippErr += d;
  });
  const exited = new Promise<number | null>((r) => sipp.on('close', r));
  const responses: SipResponse[] = [];
  let waiter: (() => void) | undefined;
  sock.on('message', (buf: Buffer) => {
    const r = parseMessage(buf);
    assert.ok(r.ok, r.ok ? '' : r.reason.reason);
    if (r.ok && r.value.kind === 'response') responses.push(r.value);
    waiter?.();
  });
  const next = async (pred: (r: SipResponse) => boolean, ms = 3000): Promise<SipResponse> => {
    const end = Date.now() + ms;
    for (;;) {
      const i = responses.findIndex(pred);
      if (i >= 0) return responses.splice(i, 1)[0]!;
      if (Date.now() > end) assert.fail('no response from sipp');
      await new Promise<void>((r) => {
        waiter = r;
        setTimeout(r, 100);
      });
    }
  };
  const send = async (req: SipRequest) => {
    // sipp may not be listening yet for the first request: resend until answered.
    sock.send(serializeMessage(req), uasPort, '127.0.0.1');
  };
  try {
    for (let n = 0; n < calls; n++) {
      const callId = `${newTag()}@crossway`;
      const fromTag = newTag();
      const common = (method: string, seq: number, toTag?: string): Array<[string, string]> => [
        ['Via', `SIP/2.0/UDP 127.0.0.1:${local};branch=${newBranch()}`],
        ['Max-Forwards', '70'],
        ['From', `<sip:crossway@127.0.0.1:${local}>;tag=${fromTag}`],
        ['To', `<sip:sipp@127.0.0.1:${uasPort}>${toTag ? `;tag=${toTag}` : ''}`],
        ['Call-ID', callId],
        ['CSeq', `${seq} ${method}`],
        ['Contact', `<sip:crossway@127.0.0.1:${local}>`],
      ];
      const invite = createRequest({
        method: 'INVITE',
        uri: `sip:sipp@127.0.0.1:${uasPort}`,
        headers: [...common('INVITE', 1), ['Content-Type', 'application/sdp']],
        body: SDP,
      });
      let ok200: SipResponse | undefined;
      for (let attempt = 0; attempt < 20 && ok200 === undefined; attempt++) {
        await send(invite);
        try {
          ok200 = await next((r) => r.status === 200 && getCallId(r) === callId, 500);
        } catch {
          ok200 = undefined;
        }
      }
      assert.ok(ok200, `no 200 OK for call ${n}: ${sippErr.slice(0, 500)}`);
      const toTag = getToTag(ok200);
      assert.ok(toTag);
      const contact = getContacts(ok200);
      assert.ok(contact?.ok && contact.value !== '*');
      await send(
        createRequest({ method: 'ACK', uri: `sip:sipp@127.0.0.1:${uasPort}`, headers: common('ACK', 1, toTag) }),
      );
      await send(
        createRequest({ method: 'BYE', uri: `sip:sipp@127.0.0.1:${uasPort}`, headers: common('BYE', 2, toTag) }),
      );
      const byeOk = await next((r) => getCallId(r) === callId && getCSeq(r)?.ok === true && r.status === 200);
      assert.equal(byeOk.reason.length > 0, true);
    }
    const timer = setTimeout(() => sipp.kill('SIGKILL'), 10_000);
    const code = await exited;
    clearTimeout(timer);
    assert.equal(code, 0, sippErr.slice(0, 2000));
  } finally {
    if (sipp.exitCode === null) sipp.kill('SIGKILL');
    sock.close();
  }
});
