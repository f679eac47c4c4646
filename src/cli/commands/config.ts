import type { Command } from 'commander';
import { loadConfigFile } from '../../config/load.ts';

export function registerConfigCommand(program: Command): void {
  const config = program.command('config').description('work with configuration files');
  config
    .command('check')
    .description('validate a configuration file and print the effective configuration')
    .argument('<file>', 'YAML or JSON configuration file')
    .option('--quiet', 'print nothing when the file is valid')
    .action((file: string, opts: { quiet?: boolean }) => {
      const cfg = loadConfigFile(file);
      if (!opts.quiet) process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
    });
}
