/**
 * H.323 codec throughput: decode and encode of captured RRQ, ARQ, Setup with fast start (Q.931 + UUIE + the
 * OLCs inside) and H.245 TCS, in PDUs per CPU-second and MB per CPU-second, plus heap retained per decoded PDU.
 * Run: node --expose-gc --import tsx bench/h323-codec.ts [seconds-per-case, default 1]
 */

import { buildRcf } from '../src/h323/api.ts';
import type { RasMessage } from '../src/h323/per/generated/types.ts';
import { h245Codec, rasCodec } from '../src/h323/per/schema.ts';
import { decodeCallSignalling, decodeFastStart, encodeCallSignalling } from '../src/h323/q931/call-signalling.ts';
import { TpktFramer } from '../src/h323/transport/tpkt.ts';
import { readPcap, tcpStreams } from '../test/h323/pcap.ts';

const seconds = Number(process.argv[2] ?? 1);
const dir = new URL('../test/vectors/h323/', import.meta.url).pathname;

function tpktPdus(file: string, streamIndex: number): Uint8Array[] {
  const s = tcpStreams(readPcap(dir + file))[streamIndex]!;
  const r = new TpktFramer().push(Buffer.concat(s.segments.map((x) => x.data)));
  if (!r.ok) throw new Error(r.reason);
  return r.value;
}

const gnugk = new Map(
  readPcap(`${dir}h323plus-gnugk-ooh323c.pcap`)
    .filter((p) => p.proto === 'udp')
    .map((p) => [p.frame, new Uint8Array(p.payload)]),
);
const ndpiRrq = new Uint8Array(readPcap(`${dir}ndpi-h323.pcap`).find((p) => p.frame === 71)!.payload);
const setup = tpktPdus('ooh323c-faststart-tunnelled.pcap', 0)[0]!;
const tcs = tcpStreams(readPcap(`${dir}ooh323c-separate-h245.pcap`))
  .flatMap((_, i) => tpktPdus('ooh323c-separate-h245.pcap', i))
  .find((b) => {
    const m = h245Codec.decode(b);
    return m.ok && m.value.choice === 'request' && m.value.value.choice === 'terminalCapabilitySet';
  })!;

const rrq = rasCodec.decode(gnugk.get(7)!);
if (!rrq.ok || rrq.value.choice !== 'registrationRequest') throw new Error('frame 7 is not an RRQ');
const rcf = rasCodec.encode(
  buildRcf(rrq.value.value, { endpointIdentifier: 'ep-000001', timeToLive: 60 }) as RasMessage,
);

interface Case {
  name: string;
  bytes: Uint8Array;
  decode: (b: Uint8Array) => unknown;
  encode: (v: unknown) => Uint8Array;
}

const cases: Case[] = [
  {
    name: 'RRQ (H323Plus, H.460 featureSet)',
    bytes: gnugk.get(7)!,
    decode: (b) => ok(rasCodec.decode(b)),
    encode: (v) => rasCodec.encode(v as never),
  },
  {
    name: 'RCF (buildRcf answer to that RRQ)',
    bytes: rcf,
    decode: (b) => ok(rasCodec.decode(b)),
    encode: (v) => rasCodec.encode(v as never),
  },
  {
    name: 'RRQ (nDPI, OpenH323)',
    bytes: ndpiRrq,
    decode: (b) => ok(rasCodec.decode(b)),
    encode: (v) => rasCodec.encode(v as never),
  },
  {
    name: 'ARQ (H323Plus)',
    bytes: gnugk.get(9)!,
    decode: (b) => ok(rasCodec.decode(b)),
    encode: (v) => rasCodec.encode(v as never),
  },
  {
    name: 'Setup + 2 fast-start OLCs (ooh323c)',
    bytes: setup,
    decode: (b) => {
      const m = decodeCallSignalling(b);
      if (!m.ok) throw m.reason;
      for (const o of decodeFastStart(m.value.uu!)) if (!o.ok) throw o.reason;
      return m.value;
    },
    encode: (v) => encodeCallSignalling(v as never),
  },
  {
    name: 'H.245 TCS (ooh323c)',
    bytes: tcs,
    decode: (b) => ok(h245Codec.decode(b)),
    encode: (v) => h245Codec.encode(v as never),
  },
];

function ok<T>(r: { ok: true; value: T } | { ok: false; reason: { message: string } }): T {
  if (!r.ok) throw new Error(r.reason.message);
  return r.value;
}

/** Operations per CPU-second of this process (user + system), so other load on a shared machine counts less. */
function rate(fn: () => void): number {
  for (let i = 0; i < 2000; i++) fn(); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  const limit = BigInt(Math.round(seconds * 1e9));
  const maxIterations = 5_000_000;
  for (;;) {
    for (let i = 0; i < 500; i++) fn();
    n += 500;
    const el = process.hrtime.bigint() - start;
    if (el >= limit || n >= maxIterations) {
      const cpu = process.cpuUsage(cpu0);
      return n / ((cpu.user + cpu.system) / 1e6);
    }
  }
}

const gc = (globalThis as { gc?: () => void }).gc;
function heapPerPdu(c: Case): number | undefined {
  if (!gc) return undefined;
  const keep: unknown[] = new Array(2000);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < keep.length; i++) keep[i] = c.decode(c.bytes);
  gc();
  const after = process.memoryUsage().heapUsed;
  if (keep.length !== 2000) throw new Error('unreachable');
  return (after - before) / keep.length;
}

console.log(`node ${process.version}, ${seconds}s per case; rates per CPU-second of one core`);
console.log('| PDU | octets | decode PDUs/s | decode MB/s | encode PDUs/s | encode MB/s | heap/decoded PDU |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const c of cases) {
  const value = c.decode(c.bytes);
  const again = c.encode(value);
  if (Buffer.compare(Buffer.from(again), Buffer.from(c.bytes)) !== 0) throw new Error(`${c.name}: re-encoding differs`);
  const d = rate(() => c.decode(c.bytes));
  const e = rate(() => c.encode(value));
  const h = heapPerPdu(c);
  const mb = (r: number) => ((r * c.bytes.length) / 1e6).toFixed(1);
  console.log(
    `| ${c.name} | ${c.bytes.length} | ${Math.round(d).toLocaleString('en')} | ${mb(d)} | ${Math.round(e).toLocaleString('en')} | ${mb(e)} | ${h === undefined ? 'n/a (run with --expose-gc)' : `${Math.round(h).toLocaleString('en')} B`} |`,
  );
}
