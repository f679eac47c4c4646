/**
 * One Crossway media relay (edge or core) in a process of its own, for `bench/media-relay.ts --pair-processes`:
 * the bench forks one per role (`childProcess` in ./media-relay.ts) and drives offer/answer over IPC; media flows
 * between the two processes through the traversal demux pair, as between two nodes. Stops on SIGTERM.
 *
 *   (forked) bench/lib/media-relay-node.ts edge|core mux|no-mux
 */
import { type BenchRelayRole, inProcess, type RelayReply, type RelayRequest, startBenchRelay } from './media-relay.ts';

const role = process.argv[2];
if (role !== 'edge' && role !== 'core') {
  console.error('usage: media-relay-node.ts edge|core mux|no-mux');
  process.exit(2);
}
const relay = inProcess(await startBenchRelay(role as BenchRelayRole, process.argv[3] === 'mux'));

process.on('message', (m: RelayRequest) => {
  const reply = (r: RelayReply) => process.send?.(r);
  const fail = (err: unknown) => reply({ id: m.id, ok: false, error: (err as Error).message });
  if (m.op === 'offer') relay.offer(m.req).then((sdp) => reply({ id: m.id, ok: true, sdp }), fail);
  else if (m.op === 'answer') relay.answer(m.req).then((sdp) => reply({ id: m.id, ok: true, sdp }), fail);
  else if (m.op === 'cpu') relay.cpuSeconds().then((cpuSeconds) => reply({ id: m.id, ok: true, cpuSeconds }), fail);
  else fail(new Error(`unknown request ${JSON.stringify(m)}`));
});
process.on('SIGTERM', () => {
  void relay.close().then(() => process.exit(0));
});
process.on('disconnect', () => {
  void relay.close().then(() => process.exit(0));
});
process.send?.('ready');
