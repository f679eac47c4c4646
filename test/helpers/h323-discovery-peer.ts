/**
 * Run inside a network namespace by `test/h323/gatekeeper/ooh323c-discovery.test.ts` (`ip netns exec <ns> node
 * --import tsx <this file> <ooh323c binary>`): a gatekeeper on 127.0.0.1:1719 with multicast discovery on
 * 224.0.1.41:1718 (joined on 127.0.0.1), and ooh323c started with `--gk-discover` on 127.0.0.2. Prints one JSON line
 * with what happened, then exits.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/common/timers.ts';
import { DiscoveryServer } from '../../src/h323/gatekeeper/discovery.ts';
import { Gatekeeper } from '../../src/h323/gatekeeper/gatekeeper.ts';
import { RasServer } from '../../src/h323/gatekeeper/ras-server.ts';

const bin = process.argv[2];
if (!bin) throw new Error('usage: h323-discovery-peer.ts <ooh323c simple binary>');
const gk = new Gatekeeper(
  {
    gatekeeperIdentifier: 'crossway-discovery',
    rasAddress: { ip: '127.0.0.1', port: 1719 },
    callSignalAddress: { ip: '127.0.0.1', port: 1720 },
    timeToLive: 30,
    expiryGraceSeconds: 5,
    maxRegistrations: 10,
    policy: { mode: 'allow-all', patterns: [] },
    allowDialledIp: false,
    maxBandwidthPerCall: 20_000,
  },
  systemClock,
);
const ras = await RasServer.start(gk, '127.0.0.1', 1719);
const discovery = await DiscoveryServer.start(gk, { port: 1718, interfaceAddress: '127.0.0.1' });
const cwd = mkdtempSync(join(tmpdir(), 'ooh323c-discovery-'));
const endpoint = spawn(
  bin,
  [
    '--rtp-test',
    '--no-video',
    '--gk-discover',
    '--use-ip',
    '127.0.0.2',
    '--use-port',
    '11720',
    '--h323id',
    'alice',
    '--listen',
  ],
  { cwd, stdio: ['pipe', 'pipe', 'pipe'] },
);
let out = '';
endpoint.stdout.on('data', (d) => {
  out += d;
});
const start = Date.now();
while (gk.size < 1 && Date.now() - start < 10_000) await new Promise((r) => setTimeout(r, 50));
const registration = gk.list()[0];
console.log(
  JSON.stringify({
    registered: gk.size,
    aliases: registration?.aliases ?? [],
    rasAddress: registration?.rasAddress,
    discovery: discovery.counters,
    sent: gk.counters.sent,
    endpointOutput: gk.size < 1 ? out.slice(-2000) : '',
  }),
);
endpoint.kill('SIGKILL');
await discovery.close();
await ras.close();
rmSync(cwd, { recursive: true, force: true });
process.exit(0);
