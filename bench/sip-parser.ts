/**
 * SIP message layer throughput: parse only, parse + typed access to Via/From/To/CSeq/Call-ID, and serialize, over a
 * corpus of a REGISTER with digest Authorization, an INVITE with SDP and a 200 OK with SDP.
 * Run: node --import tsx bench/sip-parser.ts [seconds-per-case, default 2]
 */
import {
  getCallId,
  getCSeq,
  getFrom,
  getTo,
  getTopVia,
  getVias,
  parseMessage,
  type SipMessage,
  serializeMessage,
} from '../src/sip/message/index.ts';

const crlf = (lines: string[]) => lines.join('\r\n');
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
  'a=fmtp:101 0-15',
  'a=sendrecv',
  'm=video 51372 RTP/AVP 96',
  'a=rtpmap:96 H264/90000',
  'a=fmtp:96 profile-level-id=42e01f;packetization-mode=1',
  '',
]);

const register = crlf([
  'REGISTER sip:example.com SIP/2.0',
  'Via: SIP/2.0/TLS 198.51.100.10:51234;branch=z9hG4bK-524287-1---8b2c3a1f2d9e;rport',
  'Max-Forwards: 70',
  'Contact: <sip:alice@198.51.100.10:51234;transport=tls;ob>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"',
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

const invite = crlf([
  'INVITE sip:bob@biloxi.example.com SIP/2.0',
  'Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK776asdhds;rport',
  'Max-Forwards: 70',
  'Route: <sip:edge.example.com;lr>',
  'To: Bob <sip:bob@biloxi.example.com>',
  'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:alice@198.51.100.10:5060>',
  'Allow: INVITE, ACK, CANCEL, OPTIONS, BYE',
  'Supported: timer, replaces',
  'Session-Expires: 1800',
  'User-Agent: Crossway-bench',
  'Content-Type: application/sdp',
  `Content-Length: ${Buffer.byteLength(sdp)}`,
  '',
  sdp,
]);

const ok200 = crlf([
  'SIP/2.0 200 OK',
  'Via: SIP/2.0/TLS core.example.com;branch=z9hG4bKnashds8;received=192.0.2.3',
  'Via: SIP/2.0/TLS edge.example.com;branch=z9hG4bK77ef4c2312983.1;received=192.0.2.2',
  'Via: SIP/2.0/UDP 198.51.100.10:5060;branch=z9hG4bK776asdhds;rport=5060;received=198.51.100.10',
  'Record-Route: <sip:core.example.com;lr>, <sip:edge.example.com;lr>',
  'To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf',
  'From: Alice <sip:alice@atlanta.example.com>;tag=1928301774',
  'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
  'CSeq: 314159 INVITE',
  'Contact: <sip:bob@192.0.2.4>',
  'Content-Type: application/sdp',
  `Content-Length: ${Buffer.byteLength(sdp)}`,
  '',
  sdp,
]);

const corpus = [register, invite, ok200].map((s) => Buffer.from(s));
const bytesPerRound = corpus.reduce((n, b) => n + b.length, 0);
const seconds = Math.min(Number(process.argv[2] ?? 2), 5);

for (const b of corpus) {
  const r = parseMessage(b);
  if (!r.ok) throw new Error(`corpus message does not parse: ${r.reason.reason}`);
}

function run(name: string, body: () => number): void {
  const warmEnd = performance.now() + 300;
  while (performance.now() < warmEnd) body();
  let sink = 0;
  let rounds = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const end = t0 + seconds * 1000;
  while (performance.now() < end && rounds < 50_000_000) {
    for (let i = 0; i < 100; i++) sink += body();
    rounds += 100;
  }
  const wall = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  const cpu = (cu.user + cu.system) / 1e6;
  const msgs = rounds * corpus.length;
  const fmt = (dt: number) =>
    `${Math.round(msgs / dt)
      .toLocaleString('en-US')
      .padStart(11)} msg/s ${((rounds * bytesPerRound) / dt / 1e6).toFixed(1).padStart(7)} MB/s`;
  console.log(
    `${name.padEnd(34)} CPU time: ${fmt(cpu)} ${((cpu / msgs) * 1e6).toFixed(2).padStart(6)} µs/msg | wall: ${fmt(wall)}  (sink ${sink % 10})`,
  );
}

run('parse only', () => {
  let n = 0;
  for (const b of corpus) n += parseMessage(b).ok ? 1 : 0;
  return n;
});

run('parse + Via/From/To/CSeq/Call-ID', () => {
  let n = 0;
  for (const b of corpus) {
    const r = parseMessage(b);
    if (!r.ok) continue;
    const m = r.value;
    const v = getTopVia(m);
    const f = getFrom(m);
    const t = getTo(m);
    const c = getCSeq(m);
    const id = getCallId(m);
    getVias(m);
    if (v?.ok && f?.ok && t?.ok && c?.ok && id) n++;
  }
  return n;
});

const parsed: SipMessage[] = corpus.map((b) => {
  const r = parseMessage(b);
  if (!r.ok) throw new Error('unreachable');
  return r.value;
});
run('serialize', () => {
  let n = 0;
  for (const m of parsed) n += serializeMessage(m).length;
  return n;
});

console.log(`node ${process.version}, corpus ${corpus.map((b) => b.length).join(' + ')} bytes, ${seconds}s per case`);
