/**
 * `crossway blocks list|clear`: sources blocked by intrusion protection. With a node running on the data directory,
 * the commands go through its control socket (`security.blocks.*`), so a clear takes effect at once; with none
 * running, they work on the blocks persisted in the node store(s), which a starting node restores.
 */
import type { Command } from 'commander';
import { OperationalError } from '../../common/errors.ts';
import { callControl } from '../../roles/control.ts';
import { BlockStore } from '../../security/block-store.ts';
import { type BlockView, viewBlocks } from '../../security/service.ts';
import { NodeStore } from '../../store/database.ts';
import { cliConfig, type NodeStoreOptions, storeDir, storeKinds } from './users.ts';

interface BlocksOptions extends NodeStoreOptions {
  json?: boolean;
  all?: boolean;
}

function offline(err: unknown): boolean {
  return (err as { code?: string }).code === 'ERR_CONTROL_UNREACHABLE';
}

function print(rows: { node: string; blocks: BlockView[] }[], json: boolean | undefined, note: string): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    if (note) process.stderr.write(`${note.trim()}\n`);
    return;
  }
  let n = 0;
  for (const r of rows) {
    for (const b of r.blocks) {
      n++;
      process.stdout.write(
        `${r.node}\t${b.address}\t${b.category}\tsince ${new Date(b.since).toISOString()}\t${b.remainingSeconds}s left\n`,
      );
    }
  }
  process.stderr.write(`${n} block(s)${note}\n`);
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'the node configuration file (default: the lab defaults)')
    .option('--data-dir <dir>', 'overrides dataDir from the configuration')
    .option('--node <kind>', 'edge or core (default: every node kind of the data directory)');
}

export function registerBlocksCommand(program: Command): void {
  const blocks = program.command('blocks').description('sources blocked by intrusion protection');
  common(blocks.command('list'))
    .description('list blocked sources')
    .option('--json', 'JSON output')
    .action(async (o: BlocksOptions) => {
      const config = cliConfig(o);
      const kinds = storeKinds(config, o.node);
      try {
        const rows = (await callControl(config.dataDir, 'security.blocks.list', o.node ? { node: o.node } : {})) as {
          node: string;
          blocks: BlockView[];
        }[];
        print(rows, o.json, '');
        return;
      } catch (err) {
        if (!offline(err)) throw err;
      }
      const now = Date.now();
      const rows = kinds.map((kind) => {
        const store = NodeStore.open(storeDir(config, kind));
        try {
          return { node: kind, blocks: viewBlocks(new BlockStore(store).active(now), now) };
        } finally {
          store.close();
        }
      });
      print(rows, o.json, ' (no node running: read from the store)');
    });
  common(blocks.command('clear'))
    .description('unblock a source (or every source with --all)')
    .argument('[address]')
    .option('--all', 'clear every block')
    .action(async (address: string | undefined, o: BlocksOptions) => {
      if (!address && !o.all) throw new OperationalError('ERR_CLI_ARGS', 'give an address or --all');
      const config = cliConfig(o);
      const kinds = storeKinds(config, o.node);
      const args: Record<string, unknown> = address ? { address } : { all: true };
      if (o.node) args['node'] = o.node;
      let cleared = 0;
      let note = '';
      try {
        const rows = (await callControl(config.dataDir, 'security.blocks.clear', args)) as { cleared: number }[];
        cleared = rows.reduce((n, r) => n + r.cleared, 0);
      } catch (err) {
        if (!offline(err)) throw err;
        note = ' (no node running: cleared in the store)';
        for (const kind of kinds) {
          const store = NodeStore.open(storeDir(config, kind));
          try {
            const bs = new BlockStore(store);
            cleared += address ? (bs.delete(address) ? 1 : 0) : bs.deleteAll();
          } finally {
            store.close();
          }
        }
      }
      process.stdout.write(`${cleared} block(s) cleared${note}\n`);
      if (address && cleared === 0) process.exitCode = 2;
    });
}
