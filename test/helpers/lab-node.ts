import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/log.ts';
import { validateConfig } from '../../src/config/load.ts';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import { type RunningNode, startNode } from '../../src/roles/start.ts';

let nextOffset = 0;

/**
 * A port offset no other test file in this run uses: test files run in parallel processes, so the offset mixes the
 * process id in, and steps of 40 keep each node's SIP ports (5060–5062 + offset) apart.
 */
export function uniqueOffset(): number {
  nextOffset += 1;
  return 100 + ((process.pid * 7 + nextOffset * 40) % 4000);
}

/**
 * A start that failed only because another process holds one of the node's ports (another test file's node): the
 * error itself, or the socket error a listener wrapped (`ERR_SIP_TRANSPORT_LISTEN` keeps EADDRINUSE as its cause).
 */
function portTaken(err: unknown): boolean {
  for (let e = err as (NodeJS.ErrnoException & { cause?: unknown }) | undefined, depth = 0; e && depth < 4; depth++) {
    if (e.code === 'EADDRINUSE' || e.code === 'ERR_MEDIA_MUX_BIND') return true;
    e = e.cause as typeof e;
  }
  return false;
}

/**
 * Starts a node with `start` on the configuration `input` plus a data dir and a port offset: without an offset of the
 * caller's, a start whose port another test process holds (parallel files pick offsets independently, and one node's
 * SIP port can be another's TURN or demux port) is tried again on the next offset, at most four times in all. A
 * failed start closes what it opened.
 */
export async function startOnFreeOffset<T>(
  input: CrosswayConfigInput,
  dataDir: string,
  start: (config: ReturnType<typeof validateConfig>) => Promise<T>,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const config = validateConfig({ dataDir, portOffset: uniqueOffset(), ...input });
    try {
      return await start(config);
    } catch (err) {
      if (input.portOffset !== undefined || attempt === 4 || !portTaken(err)) throw err;
    }
  }
}

/** Starts a node in this process with a fresh data dir, silent logs, and a unique port offset unless one is given. */
export async function startTestNode(input: CrosswayConfigInput = {}): Promise<RunningNode> {
  const dataDir = input.dataDir ?? mkdtempSync(join(tmpdir(), 'crossway-node-'));
  return startOnFreeOffset(input, dataDir, (config) => startNode(config, { log: silentLogger }));
}
