/**
 * Crossway side of bench/register.ts: one UDP listener, the transaction layer, the registrar with digest
 * authentication (MD5, like the Kamailio script) over the local credential store holding the users of USERS_FILE
 * (one `username password` per line, written by bench/register.ts, which gives Kamailio the same users), and the
 * location table on a SQLite store written behind. This is the stack a node runs (src/roles/sip-service.ts) without
 * the other listeners. Prints its port on stdout; on SIGTERM prints counters.
 * Run: node --import tsx bench/register-server.ts USERS_FILE ADDRESS [RCVBUF_BYTES]
 * RCVBUF_BYTES: the UDP receive buffer of the SIP socket; 0 or absent: a node's default (`sip.udpReceiveBufferBytes`).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { systemClock } from '../src/common/timers.ts';
import { sipSchema } from '../src/config/schema.ts';
import { DigestAuthenticator } from '../src/sip/auth/authenticator.ts';
import { LocalCredentialStore } from '../src/sip/auth/local-credentials.ts';
import { NonceCountTracker } from '../src/sip/auth/nc-tracker.ts';
import { NonceIssuer } from '../src/sip/auth/nonce.ts';
import { LocationTable } from '../src/sip/location/location-table.ts';
import { SqliteRegistrationStore } from '../src/sip/location/sqlite-store.ts';
import { DEFAULT_LIMITS } from '../src/sip/message/index.ts';
import { registrarConfigSchema } from '../src/sip/registrar/config.ts';
import { Registrar } from '../src/sip/registrar/registrar.ts';
import { TransactionLayer } from '../src/sip/transaction/transaction-layer.ts';
import { transportSender } from '../src/sip/transaction/transport-sender.ts';
import type { TransactionUser } from '../src/sip/transaction/types.ts';
import { SipTransportLayer } from '../src/sip/transport/index.ts';
import { BasicUas } from '../src/sip/tu/basic-uas.ts';
import { NodeStore } from '../src/store/database.ts';

const usersPath = process.argv[2];
if (!usersPath) throw new Error('usage: register-server.ts USERS_FILE ADDRESS [RCVBUF_BYTES]');
const address = process.argv[3] ?? '127.0.0.1';
const rcvbuf = Number(process.argv[4] ?? 0) || sipSchema.parse({}).udpReceiveBufferBytes;
const clock = systemClock;
const store = NodeStore.open(mkdtempSync(join(tmpdir(), 'crossway-bench-reg-')));
const credentials = new LocalCredentialStore(store);
const users = readFileSync(usersPath, 'utf8')
  .split('\n')
  .filter((l) => l !== '')
  .map((l) => l.split(' ') as [string, string]);
store.db.transaction(() => {
  for (const [name, password] of users) credentials.add(address, name, password);
})();

const authenticator = new DigestAuthenticator({
  credentials,
  nonces: new NonceIssuer({ secret: randomBytes(32), clock, lifetimeMs: 300_000 }),
  tracker: new NonceCountTracker(Math.max(200_000, users.length * 2), clock.wallNow() - 1),
  opaque: randomBytes(8).toString('hex'),
  algorithms: ['MD5'],
  userhash: false,
  dummyKey: randomBytes(32),
  retryAfterSeconds: 5,
});
const config = registrarConfigSchema.parse({});
const location = await LocationTable.open({
  clock,
  store: new SqliteRegistrationStore({
    store,
    clock,
    flushIntervalMs: config.store.flushIntervalMs,
    maxBatch: config.store.maxBatch,
  }),
});
const registrar = new Registrar({ config, domains: [address], location, clock, authenticator });
const user = new BasicUas();
user.use(registrar);
const transport = new SipTransportLayer({
  clock,
  limits: DEFAULT_LIMITS,
  connections: { maxConnections: 100, idleTimeoutSeconds: 600, newConnectionsPerSecondPerSource: 0 },
  outboundPorts: { from: 40000, to: 40100 },
  udpReceiveBufferBytes: rcvbuf,
});
const transactions: TransactionLayer = new TransactionLayer({
  clock,
  timers: { t1: 500, t2: 4000, t4: 5000 },
  // A completed non-INVITE server transaction lives 64*T1 = 32 s on UDP (Timer J), and a digest registration is two
  // of them: the default cap of 100,000 allows only ~1,560 registrations/s sustained. Kamailio answers statelessly.
  maxTransactions: 1_000_000,
  user: user as TransactionUser,
  sender: transportSender(transport, (key) => {
    if (key) transactions.transportError(key);
  }),
});
transport.onMessage = (msg, info) => transactions.receive(msg, info);
const bound = await transport.listen({ protocol: 'udp', address, port: 0 });
process.stdout.write(`${bound.port}\n`);
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();

// SIGUSR2: a full collection first (when started with --expose-gc), then the figures on stdout: the heap that is
// live, not what the collector has not come back for yet.
process.on('SIGUSR2', () => {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  const mib = (n: number) => Math.round(n / 1048576);
  process.stdout.write(
    `${JSON.stringify({ aors: location.aorCount, bindings: location.bindingCount, transactions: transactions.size, rss: mib(m.rss), heap: mib(m.heapUsed), external: mib(m.external), loopDelayMs: { p99: Math.round(loopDelay.percentile(99) / 1e6), max: Math.round(loopDelay.max / 1e6) } })}\n`,
  );
});
process.on('SIGTERM', async () => {
  process.stderr.write(
    `registrar: ${JSON.stringify({ responses: registrar.counters.responses, aors: location.aorCount, auth: authenticator.counters })}\n`,
  );
  await transport.close();
  await location.close();
  store.close();
  process.exit(0);
});
