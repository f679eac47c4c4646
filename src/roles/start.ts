import type { Logger } from '../common/log.ts';
import { createLogger } from '../common/log.ts';
import type { CrosswayConfig } from '../config/schema.ts';

/** A running node: what the CLI and tests hold on to. */
export interface RunningNode {
  readonly log: Logger;
  readonly config: Readonly<CrosswayConfig>;
  close(): Promise<void>;
}

/** Starts the node for the configured role. Composition roots own sockets and the real clock; nothing else does. */
export async function startNode(config: Readonly<CrosswayConfig>): Promise<RunningNode> {
  const log = createLogger({ level: config.log.level, name: `crossway-${config.role}` });
  log.info({ role: config.role, size: config.size }, 'starting');
  return {
    log,
    config,
    async close() {
      log.info('stopped');
    },
  };
}
