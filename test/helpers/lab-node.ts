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

/** Starts a node in this process with a fresh data dir, silent logs, and a unique port offset unless one is given. */
export async function startTestNode(input: CrosswayConfigInput = {}): Promise<RunningNode> {
  const config = validateConfig({
    dataDir: mkdtempSync(join(tmpdir(), 'crossway-node-')),
    portOffset: uniqueOffset(),
    ...input,
  });
  return startNode(config, { log: silentLogger });
}
