/**
 * The same stateless load against Kamailio (the reference) and Crossway's message layer, in one run: a UDP client
 * keeps a window of REGISTER (with digest Authorization) and INVITE (with SDP) requests in flight to a responder
 * that parses each, reads From/To/Call-ID/CSeq and the top Via branch, and answers 200 OK. Reported: the server's
 * CPU time per answered request (from /proc/PID/stat, user + system) and answers per second.
 * Kamailio runs one UDP worker (children=1; CPU summed over all its processes) with sl + pv; Crossway is bench/sip-parser-responder.ts (node + tsx).
 * Run: node --import tsx bench/sip-parser-kamailio.ts [requests per server, default 30000]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const total = Math.min(Number(process.argv[2] ?? 30_000), 200_000);
const WINDOW = 32;
const TIME_LIMIT_MS = 12_000;
const TICK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

const crlf = (l: string[]) => l.join('\r\n');
const sdp = crlf([
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 198.51.100.10',
  's=-',
  'c=IN IP4 198.51.100.10',
  't=0 0',
  'm=audio 49170 RTP/AVP 0 8 97 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:97 opus/48000/2',
  'a=rtpmap:101 telephone-event/8000',
  'a=sendrecv',
  '',
]);
function requests(): Buffer[] {
  const reg = crlf([
    'REGISTER sip:example.com SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-524287-1---8b2c3a1f2d9e;rport',
    'Max-Forwards: 70',
    'Contact: <sip:alice@127.0.0.1:5999;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"',
    'To: "Alice" <sip:alice@example.com>',
    'From: "Alice" <sip:alice@example.com>;tag=9fxced76sl',
    'Call-ID: 843817637684230@998sdasdh09',
    'CSeq: 1826 REGISTER',
    'Expires: 3600',
    'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY, MESSAGE, SUBSCRIBE, INFO',
    'Supported: replaces, outbound, path, gruu',
    'User-Agent: Bria 6 release 6.5.2',
    'Authorization: Digest username="alice", realm="example.com", nonce="5f3d2c1b0a9988776655443322110000", uri="sip:example.com", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001',
    'Content-Length: 0',
    '',
    '',
  ]);
  const inv = crlf([
    'INVITE sip:bob@biloxi.example.com SIP/2.0',
    'Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'To: Bob <sip:bob@biloxi.example.com>',
    'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@127.0.0.1:5999>',
    'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE',
    'Supported: timer, replaces',
    'Content-Type: application/sdp',
    `Content-Length: ${Buffer.byteLength(sdp)}`,
    '',
    sdp,
  ]);
  return [Buffer.from(reg), Buffer.from(inv)];
}

function statOf(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds of a process and its direct children (Kamailio's workers). */
function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const f = statOf(Number(entry));
    if (f === undefined) continue;
    if (Number(entry) === pid || Number(f[1]) === pid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / TICK;
}

async function load(port: number, pid: number): Promise<{ answered: number; seconds: number; cpu: number }> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const msgs = requests();
  let sent = 0;
  let answered = 0;
  const send = () => {
    sock.send(msgs[sent % msgs.length]!, port, '127.0.0.1');
    sent++;
  };
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    const stop = setTimeout(resolve, TIME_LIMIT_MS);
    // A lost datagram shrinks the window; top it up every 50 ms.
    const topUp = setInterval(() => {
      while (sent - answered < WINDOW && sent < total) send();
    }, 50);
    sock.on('message', () => {
      answered++;
      if (sent < total) send();
      if (answered >= total || (sent >= total && answered >= sent - WINDOW && performance.now() - t0 > 1000)) {
        if (answered >= total) {
          clearTimeout(stop);
          clearInterval(topUp);
          resolve();
        }
      }
    });
    for (let i = 0; i < WINDOW; i++) send();
    stop.unref();
    topUp.unref();
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  sock.close();
  return { answered, seconds, cpu };
}

async function freePort(): Promise<number> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  const p = s.address().port;
  s.close();
  return p;
}

async function waitForAnswer(port: number): Promise<void> {
  const sock = createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  try {
    for (let i = 0; i < 50; i++) {
      const got = new Promise<boolean>((r) => {
        const t = setTimeout(() => r(false), 100);
        sock.once('message', () => {
          clearTimeout(t);
          r(true);
        });
      });
      sock.send(requests()[0]!, port, '127.0.0.1');
      if (await got) return;
    }
    throw new Error(`no answer on port ${port}`);
  } finally {
    sock.close();
  }
}

function stopChild(c: ChildProcess): void {
  if (c.exitCode === null) c.kill('SIGTERM');
}

const dir = mkdtempSync(join(tmpdir(), 'crossway-kamailio-'));
const kport = await freePort();
writeFileSync(
  join(dir, 'kamailio.cfg'),
  `#!KAMAILIO
debug=0
log_stderror=yes
fork=yes
children=1
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:${kport}
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "sl.so"
loadmodule "pv.so"
request_route {
  $var(f) = $fU;
  $var(t) = $tU;
  $var(ft) = $ft;
  $var(c) = $ci;
  $var(s) = $cs;
  $var(b) = $(hdr(Via){param.value,branch});
  sl_send_reply("200", "OK");
  exit;
}
`,
);
const results: Array<{ name: string; answered: number; seconds: number; cpu: number }> = [];
const kam = spawn(
  'kamailio',
  ['-f', join(dir, 'kamailio.cfg'), '-DD', '-E', '-m', '64', '-M', '8', '-u', 'root', '-g', 'root'],
  {
    stdio: ['ignore', 'ignore', 'pipe'],
  },
);
let kamErr = '';
kam.stderr!.on('data', (d) => {
  kamErr += d;
});
try {
  await waitForAnswer(kport);
  results.push({ name: 'Kamailio 5.6 (children=1, sl + pv)', ...(await load(kport, kam.pid!)) });
} catch (e) {
  console.error(`kamailio: ${String(e)}\n${kamErr.slice(-2000)}`);
} finally {
  stopChild(kam);
}
const node = spawn(
  process.execPath,
  ['--import', 'tsx', new URL('./sip-parser-responder.ts', import.meta.url).pathname],
  {
    stdio: ['ignore', 'pipe', 'ignore'],
  },
);
try {
  const port = await new Promise<number>((resolve, reject) => {
    node.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
    node.once('exit', () => reject(new Error('responder exited')));
  });
  await waitForAnswer(port);
  results.push({ name: `Crossway message layer (node ${process.version})`, ...(await load(port, node.pid!)) });
} finally {
  stopChild(node);
  rmSync(dir, { recursive: true, force: true });
}

console.log(`${total} requests per server (REGISTER + INVITE alternating), window ${WINDOW}, UDP on 127.0.0.1`);
for (const r of results) {
  console.log(
    `${r.name.padEnd(44)} answered ${String(r.answered).padStart(6)} in ${r.seconds.toFixed(2)} s = ${Math.round(
      r.answered / r.seconds,
    )
      .toString()
      .padStart(6)}/s; server CPU ${r.cpu.toFixed(2)} s = ${((r.cpu / r.answered) * 1e6).toFixed(1)} µs/request`,
  );
}
if (results.length === 2) {
  const [k, c] = results as [(typeof results)[0], (typeof results)[0]];
  console.log(
    `ratio Crossway/Kamailio: throughput ${(c.answered / c.seconds / (k.answered / k.seconds)).toFixed(2)}, CPU per request ${(c.cpu / c.answered / (k.cpu / k.answered)).toFixed(2)}`,
  );
}
