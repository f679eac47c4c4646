/**
 * A Crossway lab node with the H.323 gatekeeper and call server enabled, for benchmarks that load it from another
 * process (`startCrosswayH323` in ./h323-servers.ts spawns this file). Media relay, store and security are those of
 * a deployed node. Prints `READY <ras ip> <ras port> <q931 ip> <q931 port>` once listening, stops on SIGTERM.
 *
 *   node --import tsx bench/lib/h323-node.ts '<json: { dataDir, maxRegistrations?, identifier?, timeToLive?, logLevel? }>'
 */
import { createLogger, silentLogger } from '../../src/common/log.ts';
import { validateConfig } from '../../src/config/load.ts';
import { startNode } from '../../src/roles/start.ts';

const o = JSON.parse(process.argv[2] ?? '{}') as {
  dataDir: string;
  maxRegistrations?: number;
  identifier?: string;
  timeToLive?: number;
  /** A pino level (`warn`…) to log at on stderr; silent by default. */
  logLevel?: string;
};
const config = validateConfig({
  dataDir: o.dataDir,
  portOffset: 3000 + (process.pid % 500),
  h323: {
    enabled: true,
    gatekeeper: {
      identifier: o.identifier ?? 'AnchorGK',
      timeToLive: o.timeToLive ?? 600,
      maxRegistrations: o.maxRegistrations ?? 200_000,
      // Load tools send many requests from few sources: a per-source flood limit would measure the limiter, not
      // the gatekeeper (a deployment sees one source per endpoint). GnuGk, the reference, has no such limit.
      floodLimits: { rasPerSecondPerSource: 0, setupsPerSecondPerSource: 0 },
    },
  },
});
const log = o.logLevel ? createLogger({ level: o.logLevel, destination: process.stderr }) : silentLogger;
const node = await startNode(config, { log });
const core = node.sockets().filter((s) => s.node === 'core');
const ras = core.find((s) => s.listener === 'h323-ras')!;
const q931 = core.find((s) => s.listener === 'h323-q931')!;
console.log(`READY ${ras.address} ${ras.port} ${q931.address} ${q931.port}`);
process.on('SIGTERM', () => void node.close().then(() => process.exit(0)));
await new Promise(() => {});
