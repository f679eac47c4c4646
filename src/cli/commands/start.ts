import { type Command, InvalidArgumentError } from 'commander';
import { defaultConfig, loadConfigFile } from '../../config/load.ts';
import { startNode } from '../../roles/start.ts';

function integer(value: string): number {
  if (!/^-?\d+$/.test(value)) throw new InvalidArgumentError('expected an integer');
  return Number(value);
}

export function registerStartCommand(program: Command): void {
  program
    .command('start')
    .description('start a node (with no --config: a lab node on loopback with embedded defaults)')
    .option('-c, --config <file>', 'YAML or JSON configuration file')
    .option('--data-dir <dir>', 'overrides dataDir from the configuration')
    .option('--port-offset <n>', 'overrides portOffset: added to every port of the plan', integer)
    .action(async (opts: { config?: string; dataDir?: string; portOffset?: number }) => {
      // The overrides go through the same validation as the file, so a bad value is refused with its field name.
      const overrides: Record<string, unknown> = {};
      if (opts.dataDir !== undefined) overrides.dataDir = opts.dataDir;
      if (opts.portOffset !== undefined) overrides.portOffset = opts.portOffset;
      const config = opts.config ? loadConfigFile(opts.config, overrides) : defaultConfig(overrides);
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
