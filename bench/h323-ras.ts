/**
 * RAS registration cost in the gatekeeper engine (decode RRQ → RCF encoded), in process, one core, no socket:
 * new registrations/s per 10,000 as the table grows to N, then lightweight keep-alives/s over the full table, and
 * heap used per registration. Not the side-by-side UDP run against GnuGk (rasload.py): see docs/h323.md.
 *   node --import tsx bench/h323-ras.ts [N=100000]
 */
import { FakeClock } from '../src/common/timers.ts';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../src/h323/api.ts';
import { Gatekeeper } from '../src/h323/gatekeeper/gatekeeper.ts';
import type { RasMessage } from '../src/h323/per/generated/types.ts';
import { rasCodec } from '../src/h323/per/schema.ts';

const N = Number(process.argv[2] ?? 100_000);
const clock = new FakeClock();
const gk = new Gatekeeper(
  {
    gatekeeperIdentifier: 'bench',
    rasAddress: { ip: '10.0.0.1', port: 1719 },
    callSignalAddress: { ip: '10.0.0.1', port: 1720 },
    timeToLive: 1800,
    expiryGraceSeconds: 30,
    maxRegistrations: N + 1,
    policy: { mode: 'allow-all', patterns: [] },
    allowDialledIp: false,
    maxBandwidthPerCall: 20_000,
  },
  clock,
);
const ip = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const rrq = (i: number, keepAlive?: string): Uint8Array => {
  const m: RasMessage = {
    choice: 'registrationRequest',
    value: {
      requestSeqNum: (i % 65535) + 1,
      protocolIdentifier: H225_PROTOCOL_ID,
      discoveryComplete: true,
      callSignalAddress: [h225Address(ip(i), 1720)],
      rasAddress: [h225Address(ip(i), 1719)],
      terminalType: { terminal: {}, mc: false, undefinedNode: false },
      ...(keepAlive
        ? { keepAlive: true, endpointIdentifier: keepAlive }
        : { terminalAlias: [aliasFromText(`ep${i}`), aliasFromText(String(100000 + i))] }),
      endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      timeToLive: 30,
    },
  };
  return rasCodec.encode(m);
};

global.gc?.();
const heap0 = process.memoryUsage().heapUsed;
const ids: string[] = [];
const bucket = 10_000;
for (let start = 0; start < N; start += bucket) {
  const pdus = Array.from({ length: Math.min(bucket, N - start) }, (_, k) => rrq(start + k));
  const t0 = performance.now();
  for (const [k, b] of pdus.entries()) {
    const out = gk.handleDatagram(b, { ip: ip(start + k), port: 1719 });
    if (out?.message.choice !== 'registrationConfirm') throw new Error(`no RCF for ${start + k}`);
    ids.push(out.message.value.endpointIdentifier);
  }
  const dt = performance.now() - t0;
  console.log(`new RRQ ${start}..${start + pdus.length}: ${Math.round((pdus.length / dt) * 1000)}/s`);
}
global.gc?.();
const heap1 = process.memoryUsage().heapUsed;
console.log(
  `registered ${gk.size}; heap ${((heap1 - heap0) / 1048576) | 0} MiB (${Math.round((heap1 - heap0) / gk.size)} B each)`,
);
const kas = ids.map((id, i) => rrq(i, id));
const t0 = performance.now();
for (const [i, b] of kas.entries()) {
  const out = gk.handleDatagram(b, { ip: ip(i), port: 1719 });
  if (out?.message.choice !== 'registrationConfirm') throw new Error('keep-alive refused');
}
console.log(`keep-alive RRQ over ${N}: ${Math.round((kas.length / (performance.now() - t0)) * 1000)}/s`);
gk.close();
