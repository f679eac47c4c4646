/**
 * One Crossway media relay for the media-relay benchmark, the same whether it runs in the bench process or in a
 * child process of its own (`./media-relay-node.ts`): role (edge with a traversal demux pair, or core), port range,
 * loopback addresses, and offer/answer as plain SDP strings so that the caller does not care where the relay runs.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { systemClock } from '../../src/common/timers.ts';
import {
  type AnswerRequest,
  type MediaRelay,
  mediaConfigSchema,
  type OfferRequest,
  startMediaRelay,
} from '../../src/media/index.ts';
import { span } from '../../src/ports/index.ts';

export type BenchRelayRole = 'edge' | 'core';

/** Offer/answer on one relay, in this process or another; `cpuSeconds` is the relay's process CPU so far. */
export interface BenchRelay {
  offer(req: OfferRequest): Promise<string>;
  answer(req: AnswerRequest): Promise<string>;
  cpuSeconds(): Promise<number>;
  close(): Promise<void>;
}

const config = mediaConfigSchema.parse({ timeoutSeconds: 3600 });
const LO = { bind: '127.0.0.1', advertise: '127.0.0.1' };
/** Port ranges of the benchmark's relays: they never overlap, so an edge and a core may share the host. */
export const RELAY_RANGE: Readonly<Record<BenchRelayRole, readonly [number, number]>> = {
  edge: [40000, 49999],
  core: [50000, 59999],
};

/**
 * Starts a relay for `role`. An edge binds its traversal demux pair on ephemeral loopback ports (the core learns
 * them from the SDP, as between two nodes); a core alone relays endpoint to endpoint.
 */
export function startBenchRelay(role: BenchRelayRole, withMux: boolean): Promise<MediaRelay> {
  const [lo, hi] = RELAY_RANGE[role];
  return startMediaRelay({
    node: role,
    config,
    pool: { ranges: [span(lo, hi)] },
    ...(role === 'edge' && withMux ? { muxPorts: { rtp: [0], rtcp: [0] } } : {}),
    addresses: { endpoint: LO, traversal: LO },
    clock: systemClock,
  });
}

async function sdpOf(r: Promise<{ ok: true; value: { sdp: string } } | { ok: false; reason: { message: string } }>) {
  const got = await r;
  if (!got.ok) throw new Error(got.reason.message);
  return got.value.sdp;
}

/** `relay` driven directly (the bench's own process). */
export function inProcess(relay: MediaRelay): BenchRelay {
  return {
    offer: (req) => sdpOf(relay.core.offer(req)),
    answer: (req) => sdpOf(relay.core.answer(req)),
    cpuSeconds: async () => {
      const c = process.cpuUsage();
      return (c.user + c.system) / 1e6;
    },
    close: async () => relay.close(),
  };
}

/** Messages between the bench and a relay child (`./media-relay-node.ts`). */
export type RelayRequest =
  | { id: number; op: 'offer'; req: OfferRequest }
  | { id: number; op: 'answer'; req: AnswerRequest }
  | { id: number; op: 'cpu' };
export type RelayReply =
  | { id: number; ok: true; sdp?: string; cpuSeconds?: number }
  | { id: number; ok: false; error: string };

/** A request before its id is assigned (`Omit` distributed over the union). */
type Unsent = RelayRequest extends infer R ? (R extends RelayRequest ? Omit<R, 'id'> : never) : never;

const NODE_FILE = fileURLToPath(new URL('./media-relay-node.ts', import.meta.url));
const REPLY_MS = 10_000;

/** Starts a relay for `role` in a child process of its own, driven over IPC. */
export function childProcess(role: BenchRelayRole, withMux: boolean): Promise<BenchRelay> {
  const child = fork(NODE_FILE, [role, withMux ? 'mux' : 'no-mux'], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let next = 1;
  const waiting = new Map<number, { resolve: (r: RelayReply) => void; timer: NodeJS.Timeout }>();
  child.on('message', (m: RelayReply | 'ready') => {
    if (m === 'ready') return;
    const w = waiting.get(m.id);
    if (!w) return;
    clearTimeout(w.timer);
    waiting.delete(m.id);
    w.resolve(m);
  });
  const ask = (msg: Unsent): Promise<RelayReply> =>
    new Promise((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`${role} relay child: no reply in ${REPLY_MS} ms`));
      }, REPLY_MS);
      waiting.set(id, { resolve, timer });
      child.send({ ...msg, id });
    });
  const sdp = async (msg: Unsent) => {
    const r = await ask(msg);
    if (!r.ok) throw new Error(r.error);
    return r.sdp ?? '';
  };
  const handle: BenchRelay = {
    offer: (req) => sdp({ op: 'offer', req }),
    answer: (req) => sdp({ op: 'answer', req }),
    cpuSeconds: async () => {
      const r = await ask({ op: 'cpu' });
      if (!r.ok) throw new Error(r.error);
      return r.cpuSeconds ?? 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${role} relay child did not start in ${REPLY_MS} ms`));
    }, REPLY_MS);
    child.once('message', (m) => {
      if (m !== 'ready') return;
      clearTimeout(timer);
      resolve(handle);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${role} relay child exited ${code} before it was ready`));
    });
  });
}
