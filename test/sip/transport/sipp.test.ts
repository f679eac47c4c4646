import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { SipRequest } from '../../../src/sip/message/types.ts';
import { errorResponse } from '../../../src/sip/transport/message-codec.ts';
import { responseTarget } from '../../../src/sip/transport/response-target.ts';
import { makeLayer } from './helpers.ts';

const scenario = fileURLToPath(new URL('./sipp/options-rport.xml', import.meta.url));

/** Runs the real sipp, bounded in calls and time; returns its exit code and last statistics row. */
function sipp(target: string, transport: 'u1' | 't1', calls: number) {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-transport-sipp-'));
  const stf = join(dir, 'stat.csv');
  const args = [
    target,
    '-sf',
    scenario,
    '-t',
    transport,
    '-i',
    '127.0.0.1',
    '-p',
    '0',
    '-m',
    String(calls),
    '-r',
    '100',
    '-l',
    '50',
    '-timeout',
    '20s',
    '-timeout_error',
    '-recv_timeout',
    '5000',
    '-nostdin',
    '-trace_stat',
    '-stf',
    stf,
    '-trace_err',
    '-error_file',
    join(dir, 'err.log'),
  ];
  return new Promise<{ code: number | null; stats: Record<string, string>; errors: string }>((resolve, reject) => {
    const child = spawn('sipp', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 20_000) stderr += d.toString();
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(killer);
      const stats: Record<string, string> = {};
      try {
        const lines = readFileSync(stf, 'utf8')
          .split('\n')
          .filter((l) => l.trim());
        const head = lines[0]!.split(';');
        const last = lines[lines.length - 1]!.split(';');
        head.forEach((h, i) => {
          if (h) stats[h] = last[i] ?? '';
        });
      } catch {
        // no statistics: reported through the assertions below
      }
      let errors = stderr;
      try {
        errors += readFileSync(join(dir, 'err.log'), 'utf8').slice(0, 4000);
      } catch {
        // no error log
      }
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, stats, errors });
    });
  });
}

describe('interop with sipp (real SIP peer)', () => {
  const t = makeLayer();
  let udpPort = 0;
  let tcpPort = 0;

  before(async () => {
    udpPort = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    tcpPort = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
    t.layer.onMessage = (msg, info) => {
      if (msg.kind !== 'request') return;
      const r = errorResponse(msg as SipRequest, 200, 'OK');
      void t.layer.send(r, responseTarget(r, info)!).catch(() => {});
    };
  });
  after(() => t.layer.close());

  for (const [name, transport] of [
    ['UDP', 'u1'],
    ['TCP', 't1'],
  ] as const) {
    test(`${name}: 50 OPTIONS with rport from a bogus sent-by are all answered at sipp's real port`, async () => {
      const port = transport === 'u1' ? udpPort : tcpPort;
      const r = await sipp(`127.0.0.1:${port}`, transport, 50);
      assert.equal(r.stats['SuccessfulCall(C)'], '50', r.errors);
      assert.equal(r.stats['FailedCall(C)'], '0', r.errors);
      assert.equal(r.code, 0, r.errors);
    });
  }
});
