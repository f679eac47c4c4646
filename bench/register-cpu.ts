/**
 * CPU of one digest registration inside Crossway, without the network: the same stack as bench/register-server.ts
 * (transaction layer, registrar, DigestAuthenticator over the local credential store, location table on the SQLite
 * store written behind), fed REGISTER bytes directly (decode, as the UDP transport does, then the transaction layer)
 * and answering through a sender that serializes and keeps the bytes. Each registration is REGISTER → 401 →
 * REGISTER with MD5 credentials → 200, a distinct user each. Process CPU (user + system) is measured around the
 * server's part only (each request from its bytes to its answer's bytes, and the timers and write-behind flushes that
 * run between bursts of 500); the client's work (building requests, reading the 401, the digest) is not counted.
 * Round 0 creates the bindings, later rounds refresh them (new Call-ID each time).
 * For profiling: `node --cpu-prof --import tsx bench/register-cpu.ts`.
 *   node --import tsx bench/register-cpu.ts [--users 20000] [--rounds 3] [--stateless-challenges yes]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../src/common/timers.ts';
import { DigestAuthenticator } from '../src/sip/auth/authenticator.ts';
import { answerChallenge, pickChallenge } from '../src/sip/auth/client.ts';
import { LocalCredentialStore } from '../src/sip/auth/local-credentials.ts';
import { NonceCountTracker } from '../src/sip/auth/nc-tracker.ts';
import { NonceIssuer } from '../src/sip/auth/nonce.ts';
import { LocationTable } from '../src/sip/location/location-table.ts';
import { SqliteRegistrationStore } from '../src/sip/location/sqlite-store.ts';
import { DEFAULT_LIMITS, getHeaders } from '../src/sip/message/index.ts';
import type { SipResponse } from '../src/sip/message/types.ts';
import { registrarConfigSchema } from '../src/sip/registrar/config.ts';
import { Registrar } from '../src/sip/registrar/registrar.ts';
import { TransactionLayer } from '../src/sip/transaction/transaction-layer.ts';
import { transportSender } from '../src/sip/transaction/transport-sender.ts';
import type { TransactionUser } from '../src/sip/transaction/types.ts';
import { decode, setViaParams } from '../src/sip/transport/message-codec.ts';
import type { InboundInfo } from '../src/sip/transport/types.ts';
import { BasicUas } from '../src/sip/tu/basic-uas.ts';
import { NodeStore } from '../src/store/database.ts';
import { benchArg } from './lib.ts';

const users = Number(benchArg('users', '20000'));
const rounds = Number(benchArg('rounds', '3'));
const HOST = '127.0.0.1';
const clock = systemClock;
const store = NodeStore.open(mkdtempSync(join(tmpdir(), 'crossway-bench-regcpu-')));
const credentials = new LocalCredentialStore(store);
store.db.transaction(() => {
  for (let i = 0; i < users; i++) credentials.add(HOST, `u${String(i).padStart(6, '0')}`, 'secret');
})();
const authenticator = new DigestAuthenticator({
  credentials,
  nonces: new NonceIssuer({ secret: randomBytes(32), clock, lifetimeMs: 300_000 }),
  tracker: new NonceCountTracker(200_000, clock.wallNow() - 1),
  opaque: randomBytes(8).toString('hex'),
  algorithms: ['MD5'],
  userhash: false,
  dummyKey: randomBytes(32),
  retryAfterSeconds: 5,
});
const config = registrarConfigSchema.parse({ statelessChallenges: benchArg('stateless-challenges', 'no') === 'yes' });
const location = await LocationTable.open({
  clock,
  store: new SqliteRegistrationStore({
    store,
    clock,
    flushIntervalMs: config.store.flushIntervalMs,
    maxBatch: config.store.maxBatch,
  }),
});
const registrar = new Registrar({ config, domains: [HOST], location, clock, authenticator });
const user = new BasicUas();
user.use(registrar);
let last: Buffer | undefined;
const transactions: TransactionLayer = new TransactionLayer({
  clock,
  timers: { t1: 500, t2: 4000, t4: 5000 },
  maxTransactions: 1_000_000,
  user: user as TransactionUser,
  sender: transportSender(
    {
      send: () => Promise.resolve(),
      sendBytes: () => Promise.resolve(),
      sendBytesNoWait: (bytes) => {
        last = bytes;
      },
    },
    () => {},
  ),
});
const info: InboundInfo = {
  transport: 'UDP',
  secure: false,
  reliable: false,
  source: { address: HOST, port: 5070 },
  local: { address: HOST, port: 5060 },
};

function register(u: string, seq: number, callId: string, branch: string, authorization?: string): Buffer {
  const lines = [
    `REGISTER sip:${HOST}:5060 SIP/2.0`,
    `Via: SIP/2.0/UDP ${HOST}:5070;branch=z9hG4bK${branch};rport`,
    'Max-Forwards: 70',
    `From: <sip:${u}@${HOST}>;tag=${callId}x`,
    `To: <sip:${u}@${HOST}>`,
    `Call-ID: ${callId}`,
    `CSeq: ${seq} REGISTER`,
    `Contact: <sip:${u}@${HOST}:5070>`,
    'Expires: 3600',
    ...(authorization ? [`Authorization: ${authorization}`] : []),
    'Content-Length: 0',
    '',
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}

let serverUs = 0;

/**
 * Server side of one received datagram, CPU-timed: decode, received/rport, the transaction layer and whatever runs in
 * its microtasks (an asynchronous authenticator), the answer serialized. The answer is decoded outside the timing.
 */
async function serve(bytes: Buffer): Promise<SipResponse> {
  const c0 = process.cpuUsage();
  last = undefined;
  const r = decode(bytes, DEFAULT_LIMITS, false);
  if (!r.ok) throw new Error('bench REGISTER did not parse');
  setViaParams(r.value, { received: HOST, rport: info.source.port });
  transactions.receive(r.value, info);
  for (let i = 0; i < 20 && !last; i++) await Promise.resolve();
  const c1 = process.cpuUsage(c0);
  serverUs += c1.user + c1.system;
  if (!last) throw new Error('no answer');
  const res = decode(last, DEFAULT_LIMITS, false);
  if (!res.ok || res.value.kind !== 'response') throw new Error('answer did not parse');
  return res.value;
}

for (let round = 0; round < rounds; round++) {
  serverUs = 0;
  let ok = 0;
  const t0 = process.cpuUsage();
  const tw = performance.now();
  for (let i = 0; i < users; i++) {
    const u = `u${String(i).padStart(6, '0')}`;
    const callId = `${round}-${i}-${randomBytes(4).toString('hex')}`;
    const first = register(u, 1, callId, `${callId}a`);
    const challenge = await serve(first);
    if (challenge.status !== 401) throw new Error(`expected 401, got ${challenge.status}`);
    const c = pickChallenge(getHeaders(challenge, 'www-authenticate'), ['MD5']);
    if (!c) throw new Error('no MD5 challenge');
    const auth = answerChallenge(c, { username: u, password: 'secret', method: 'REGISTER', uri: `sip:${HOST}:5060` });
    const second = register(u, 2, callId, `${callId}b`, auth);
    const done = await serve(second);
    if (done.status === 200) ok++;
    // Let timers and the store's write-behind run between bursts, as they would between datagrams.
    if (i % 500 === 499) {
      const c0 = process.cpuUsage();
      await new Promise((r) => setImmediate(r));
      const c1 = process.cpuUsage(c0);
      serverUs += c1.user + c1.system;
    }
  }
  const cpu = process.cpuUsage(t0);
  const total = cpu.user + cpu.system;
  console.log(
    JSON.stringify({
      round,
      registrations: users,
      ok,
      serverCpuUsPerRegistration: Math.round((serverUs / users) * 10) / 10,
      processCpuUsPerRegistration: Math.round((total / users) * 10) / 10,
      wallSeconds: Math.round(performance.now() - tw) / 1000,
    }),
  );
}
await location.close();
store.close();
process.exit(0);
