import { join } from 'node:path';
import type { Logger } from '../common/log.ts';
import { validateConfig } from '../config/load.ts';
import type { CrosswayConfig } from '../config/schema.ts';
import { NodeStore } from '../store/database.ts';
import { AdminStore } from './admin-store.ts';
import { mergePatch } from './config-admin.ts';

/** The store holding the API's configuration changes: the node's store (in `lab`, the edge's). */
export function configStoreDir(config: Readonly<CrosswayConfig>): string {
  return config.role === 'lab' ? join(config.dataDir, 'edge') : config.dataDir;
}

/**
 * The file's configuration with the changes saved through the management API (a merge patch kept in the store) laid
 * over it. A saved change the file no longer admits is logged and left out: the node starts on its file.
 */
export function withStoredChanges(config: Readonly<CrosswayConfig>, log: Logger): Readonly<CrosswayConfig> {
  let store: NodeStore | undefined;
  try {
    store = NodeStore.open(configStoreDir(config));
    const saved = new AdminStore(store).storedConfig();
    if (!saved) return config;
    const merged = mergePatch(JSON.parse(JSON.stringify(config)), saved.doc);
    const next = validateConfig(merged, 'the configuration saved through the management API');
    log.info(
      { by: saved.updatedBy, at: new Date(saved.updatedAt).toISOString() },
      'configuration changes from the store applied',
    );
    return next;
  } catch (err) {
    log.error(
      { err: (err as Error).message },
      'configuration saved through the API is not valid with this file => ignored',
    );
    return config;
  } finally {
    store?.close();
  }
}
