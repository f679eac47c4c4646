/**
 * Intrusion protection of one node: the guard, its persisted blocks, and the log lines. Blocks are written to the
 * node store when they start and deleted when cleared or found expired; a restarted node restores the running ones.
 */
import { category, type Logger } from '../common/log.ts';
import type { Clock } from '../common/timers.ts';
import type { NodeStore } from '../store/database.ts';
import { BlockStore } from './block-store.ts';
import type { SecurityConfig } from './config.ts';
import { type Block, IntrusionGuard } from './intrusion.ts';

export interface IntrusionProtectionOptions {
  config: SecurityConfig;
  store: NodeStore;
  clock: Clock;
  log: Logger;
}

/** A block as the CLI and status show it. */
export interface BlockView extends Block {
  remainingSeconds: number;
}

/** Builds the guard of a node from its configuration, restoring persisted blocks. */
export function createIntrusionProtection(o: IntrusionProtectionOptions): {
  guard: IntrusionGuard;
  blocks: BlockStore;
} {
  const log = category(o.log, 'security.intrusion');
  const blocks = new BlockStore(o.store);
  const c = o.config.intrusion;
  const limits = (x: { threshold: number; windowSeconds: number; blockSeconds: number }) => ({
    threshold: x.threshold,
    windowMs: x.windowSeconds * 1000,
    blockMs: x.blockSeconds * 1000,
  });
  const guard = new IntrusionGuard({
    clock: o.clock,
    enabled: c.enabled,
    limits: { auth: limits(c.authFailures), malformed: limits(c.malformed), flood: limits(c.flood) },
    exempt: c.exempt,
    maxTrackedSources: c.maxTrackedSources,
    onBlock: (b) => {
      log.warn(
        { source: b.address, category: b.category, events: b.events, until: new Date(b.until).toISOString() },
        'source over threshold => blocked',
      );
      try {
        blocks.save(b);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'block not persisted');
      }
    },
    onUnblock: (address, why) => {
      log.info({ source: address, why }, 'block ended');
      try {
        blocks.delete(address);
      } catch (err) {
        log.error({ err: (err as Error).message }, 'block removal not persisted');
      }
    },
  });
  const now = o.clock.wallNow();
  const restored = blocks.active(now);
  for (const b of restored) guard.restore(b);
  if (restored.length > 0) log.info({ blocks: restored.length }, 'blocks restored from the store');
  return { guard, blocks };
}

/** Blocks with their remaining time, for the CLI. */
export function viewBlocks(list: readonly Block[], now: number): BlockView[] {
  return list.map((b) => ({ ...b, remainingSeconds: Math.max(0, Math.ceil((b.until - now) / 1000)) }));
}
