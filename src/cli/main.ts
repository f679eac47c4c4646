import { Command } from 'commander';
import { CrosswayError } from '../common/errors.ts';
import { registerAdminCommand } from './commands/admin.ts';
import { registerBlocksCommand } from './commands/blocks.ts';
import { registerConfigCommand } from './commands/config.ts';
import { registerPortsCommand } from './commands/ports.ts';
import { registerRegistrationsCommand } from './commands/registrations.ts';
import { registerStartCommand } from './commands/start.ts';
import { registerStatusCommand } from './commands/status.ts';
import { registerUsersCommand } from './commands/users.ts';

/** The `crossway` command. Each subcommand lives in `commands/<name>.ts` and registers itself here. */
export function buildProgram(): Command {
  const program = new Command('crossway')
    .description('Crossway: firewall-traversal gateway for SIP and H.323 (edge, core or lab node)')
    .version('0.1.0')
    .showHelpAfterError();
  registerStartCommand(program);
  registerConfigCommand(program);
  registerPortsCommand(program);
  registerStatusCommand(program);
  registerUsersCommand(program);
  registerBlocksCommand(program);
  registerRegistrationsCommand(program);
  registerAdminCommand(program);
  return program;
}

const isMain = process.argv[1] && /(?:cli[\\/]main\.ts|bin[\\/]crossway(?:\.js)?)$/.test(process.argv[1]);
if (isMain) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err: unknown) => {
      if (err instanceof CrosswayError) {
        process.stderr.write(`crossway: ${err.message}\n`);
      } else {
        process.stderr.write(`crossway: ${(err as Error)?.stack ?? String(err)}\n`);
      }
      process.exitCode = 1;
    });
}
