/**
 * `crossway registrations remove h323 ENDPOINT_ID`: an administrator ends an H.323 registration on the node running
 * on the data directory, through its control socket (`h323.unregister`): the gatekeeper sends the endpoint a URQ
 * (H.225.0 §7.10.2, reason maintenance) and the node's audit log records it (who `cli`, from `local`). The identifier
 * is the one `crossway status` lists (`id …`). The management API does the same with
 * `DELETE /api/v1/registrations/h323/{endpointIdentifier}`.
 */
import type { Command } from 'commander';
import { OperationalError } from '../../common/errors.ts';
import { defaultConfig, loadConfigFile } from '../../config/load.ts';
import { callControl } from '../../roles/control.ts';

interface RegistrationsOptions {
  config?: string;
  dataDir?: string;
}

export function registerRegistrationsCommand(program: Command): void {
  const registrations = program.command('registrations').description('registrations held by the running node');
  registrations
    .command('remove')
    .description('end an H.323 registration: the gatekeeper sends the endpoint a URQ')
    .argument('<protocol>', 'h323 (SIP bindings end by the endpoint unregistering or expiring)')
    .argument('<endpointIdentifier>', 'the endpointIdentifier `crossway status` lists')
    .option('-c, --config <file>', 'the node configuration file (default: the lab defaults)')
    .option('--data-dir <dir>', 'overrides dataDir from the configuration')
    .action(async (protocol: string, endpointIdentifier: string, o: RegistrationsOptions) => {
      if (protocol !== 'h323') {
        throw new OperationalError(
          'ERR_CLI_ARGS',
          protocol === 'sip'
            ? 'an administrator cannot remove SIP bindings yet: they end when the endpoint unregisters or expire'
            : `protocol must be h323, not ${protocol}`,
        );
      }
      if (endpointIdentifier.length === 0 || endpointIdentifier.length > 128) {
        throw new OperationalError('ERR_CLI_ARGS', 'endpointIdentifier must be 1 to 128 characters');
      }
      const config = o.config ? loadConfigFile(o.config) : defaultConfig();
      const dataDir = o.dataDir ?? config.dataDir;
      const removed = await callControl(dataDir, 'h323.unregister', { endpointIdentifier });
      if (removed === true) {
        process.stdout.write(`H.323 registration ${endpointIdentifier} removed (URQ sent to the endpoint)\n`);
      } else {
        process.stderr.write(`no H.323 registration ${endpointIdentifier}\n`);
        process.exitCode = 2;
      }
    });
}
