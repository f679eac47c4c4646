import type { Command } from 'commander';
import { defaultConfig, loadConfigFile } from '../../config/load.ts';
import { startNode } from '../../roles/start.ts';

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start a node (with no --config: a lab node on loopback with embedded defaults)')
    .option('-c, --config <file>', 'YAML or JSON configuration file')
    .option('--data-dir <dir>', 'overrides dataDir from the configuration')
    .action(async (opts: { config?: string; dataDir?: string }) => {
      let config = opts.config ? loadConfigFile(opts.config) : defaultConfig();
      if (opts.dataDir) config = Object.freeze({ ...config, dataDir: opts.dataDir });
      const node = await startNode(config);
      const stop = (signal: string) => {
        node.log.info({ signal }, 'shutting down');
        node
          .close()
          .then(() => process.exit(0))
          .catch((err: unknown) => {
            node.log.error({ err }, 'shutdown failed');
            process.exit(1);
          });
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
