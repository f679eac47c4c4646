import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  createResponse,
  getCallId,
  newBranch,
  newTag,
  parseMessage,
  prependVia,
  type SipMessage,
  serializeMessage,
  setTopViaParams,
} from '../../../src/sip/message/index.ts';

// A third-party parser checks our serializer: Wireshark's SIP dissector (tshark) reads what we produce from the
// torture corpus after parsing, mutating and answering, and must find every message whole, with the same Call-ID.

function ipv4Udp(payload: Buffer): Buffer {
  const ip = Buffer.alloc(28);
  ip[0] = 0x45;
  ip.writeUInt16BE(28 + payload.length, 2);
  ip[8] = 64;
  ip[9] = 17;
  Buffer.from([127, 0, 0, 1]).copy(ip, 12);
  Buffer.from([127, 0, 0, 2]).copy(ip, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += ip.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  ip.writeUInt16BE(~sum & 0xffff, 10);
  ip.writeUInt16BE(5060, 20);
  ip.writeUInt16BE(5060, 22);
  ip.writeUInt16BE(8 + payload.length, 24);
  return Buffer.concat([ip, payload]);
}

/** A classic pcap file with raw IPv4 packets (LINKTYPE_RAW = 101). */
function pcap(payloads: Buffer[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262_144, 16);
  header.writeUInt32LE(101, 20);
  const records = payloads.map((p, i) => {
    const pkt = ipv4Udp(p);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_764_000_000 + i, 0);
    rec.writeUInt32LE(pkt.length, 8);
    rec.writeUInt32LE(pkt.length, 12);
    return Buffer.concat([rec, pkt]);
  });
  return Buffer.concat([header, ...records]);
}

test('tshark dissects every serialized, mutated and answered torture message as whole SIP', (t) => {
  if (spawnSync('tshark', ['--version']).status !== 0) {
    t.skip('tshark not installed');
    return;
  }
  const out: Array<{ bytes: Buffer; callId: string }> = [];
  const push = (m: SipMessage) => out.push({ bytes: serializeMessage(m), callId: getCallId(m)! });
  for (const d of ['rfc4475', 'rfc5118']) {
    const dir = new URL(`../../vectors/sip/${d}/`, import.meta.url);
    for (const f of readdirSync(dir).sort()) {
      if (f === 'index.tsv') continue;
      const r = parseMessage(readFileSync(new URL(f, dir)));
      if (!r.ok) continue;
      const m = r.value;
      if (/\s/.test(getCallId(m) ?? ' ')) continue;
      push(m);
      if (m.kind === 'request') {
        prependVia(m, { transport: 'UDP', host: 'edge.example.com', port: 5060, params: [['branch', newBranch()]] });
        setTopViaParams(m, { received: '192.0.2.77', rport: 5062 });
        push(m);
        if (m.method !== 'ACK') push(createResponse(m, 200, undefined, { toTag: newTag() }));
      }
    }
  }
  assert.ok(out.length > 60);
  const dir = mkdtempSync(join(tmpdir(), 'crossway-tshark-'));
  try {
    const file = join(dir, 'sip.pcap');
    writeFileSync(file, pcap(out.map((o) => o.bytes)));
    const res = spawnSync(
      'tshark',
      [
        '-n',
        '-r',
        file,
        '-d',
        'udp.port==5060,sip',
        '-T',
        'fields',
        '-E',
        'separator=\t',
        '-e',
        'frame.number',
        '-e',
        'sip.Call-ID',
        '-e',
        '_ws.malformed',
        '-e',
        'sip.msg_hdr',
      ],
      { encoding: 'utf8', timeout: 60_000, maxBuffer: 32 * 1024 * 1024 },
    );
    assert.equal(res.status, 0, res.stderr);
    const rows = res.stdout
      .trimEnd()
      .split('\n')
      .map((l) => l.split('\t'));
    assert.equal(rows.length, out.length);
    for (const [i, row] of rows.entries()) {
      assert.equal(row[2] ?? '', '', `frame ${i + 1} malformed`);
      assert.equal(row[1], out[i]!.callId, `frame ${i + 1} Call-ID`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
