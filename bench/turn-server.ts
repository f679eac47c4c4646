/**
 * Crossway's TURN server as a process of its own for `bench/turn.ts` (so its CPU and memory can be read from
 * /proc). Usage: node --import tsx bench/turn-server.ts PORT RELAY_FROM RELAY_TO
 */
import { defaultTurnConfig } from '../src/turn/config.ts';
import { startTurnServer } from '../src/turn/server.ts';

const [port, from, to] = process.argv.slice(2).map(Number) as [number, number, number];
const server = await startTurnServer({
  config: defaultTurnConfig({
    enabled: true,
    realm: 'crossway.test',
    users: [{ username: 'alice', password: 'wonderland' }],
    peers: { allowed: ['127.0.0.1/32'] },
    quotas: { allocationsPerUser: 0, allocationsTotal: 100_000 },
  }),
  listen: [{ address: '127.0.0.1', port }],
  relayAddresses: { ipv4: '127.0.0.1' },
  relayRange: { from, to },
  udpBufferBytes: 4 * 1024 * 1024,
  relayBufferBytes: 1024 * 1024,
});
console.log(`READY ${server.listening.map((l) => `${l.protocol}:${l.port}`).join(' ')}`);
const stop = async () => {
  console.log(`COUNTERS ${JSON.stringify(server.counters)}`);
  await server.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
