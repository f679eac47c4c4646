import { join } from 'node:path';
import type { Command } from 'commander';
import { ConfigError } from '../../common/errors.ts';
import { defaultConfig, loadConfigFile } from '../../config/load.ts';
import { type AccessLevel, accessLevelSchema, type CrosswayConfig } from '../../config/schema.ts';
import { AdminStore } from '../../management/admin-store.ts';
import { NodeStore } from '../../store/database.ts';

interface AdminOptions {
  config?: string;
  dataDir?: string;
  node?: string;
}

/** The stores the command works on: the node's, or in `lab` each half's (or the one named by --node). */
function storeDirs(o: AdminOptions): { kind: string; dir: string }[] {
  let config: Readonly<CrosswayConfig> = o.config ? loadConfigFile(o.config) : defaultConfig();
  if (o.dataDir) config = { ...config, dataDir: o.dataDir };
  if (config.role !== 'lab') return [{ kind: config.role, dir: config.dataDir }];
  const kinds = o.node ? [o.node] : ['edge', 'core'];
  for (const k of kinds) {
    if (k !== 'edge' && k !== 'core') throw new ConfigError([{ path: '--node', message: 'expected edge or core' }]);
  }
  return kinds.map((k) => ({ kind: k, dir: join(config.dataDir, k) }));
}

function withStores<T>(o: AdminOptions, fn: (admin: AdminStore, kind: string) => T): T[] {
  return storeDirs(o).map(({ kind, dir }) => {
    const store = NodeStore.open(dir);
    try {
      return fn(new AdminStore(store), kind);
    } finally {
      store.close();
    }
  });
}

async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin || !process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  // Interactive: no echo.
  const ask = (prompt: string) =>
    new Promise<string>((resolve) => {
      process.stderr.write(prompt);
      const stdin = process.stdin;
      stdin.setRawMode(true);
      stdin.resume();
      let s = '';
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.setRawMode(false);
            stdin.pause();
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(s);
            return;
          }
          if (ch === '\u0003') process.exit(130);
          if (ch === '\u007f') s = s.slice(0, -1);
          else s += ch;
        }
      };
      stdin.on('data', onData);
    });
  const a = await ask('password: ');
  const b = await ask('again: ');
  if (a !== b) throw new ConfigError([{ path: 'password', message: 'the two passwords differ' }]);
  return a;
}

const common = (c: Command) =>
  c
    .option('-c, --config <file>', 'the node configuration (its dataDir and role)')
    .option('--data-dir <dir>', 'overrides dataDir')
    .option('--node <kind>', 'lab only: edge or core (default: both)');

/**
 * `crossway admin`: local administrator accounts in the node's store, offline (the node may be running). The first
 * administrator of a node is created here or with the one-time setup token the node prints at first start.
 */
export function registerAdminCommand(program: Command): void {
  const admin = program.command('admin').description('local administrator accounts of the management API and web UI');
  common(
    admin
      .command('add')
      .description('create or replace an administrator (password from the terminal, or stdin with --password-stdin)')
      .argument('<name>', 'account name (letters, digits, . _ @ -)')
      .option('-l, --level <level>', 'read-write, read-only or auditor', 'read-write')
      .option('--password-stdin', 'read the password from stdin'),
  ).action(async (name: string, o: AdminOptions & { level: string; passwordStdin?: boolean }) => {
    if (!/^[A-Za-z0-9._@-]{1,64}$/.test(name)) {
      throw new ConfigError([{ path: 'name', message: 'letters, digits, . _ @ - (at most 64)' }]);
    }
    const level = accessLevelSchema.safeParse(o.level);
    if (!level.success)
      throw new ConfigError([{ path: '--level', message: 'expected read-write, read-only or auditor' }]);
    const password = await readPassword(o.passwordStdin === true);
    if (password.length < 12) throw new ConfigError([{ path: 'password', message: 'at least 12 characters' }]);
    const dirs = storeDirs(o);
    for (const { kind, dir } of dirs) {
      const store = NodeStore.open(dir);
      try {
        const a = new AdminStore(store);
        await a.setAccount(name, level.data as AccessLevel, password);
        a.audit('cli', 'local', 'account-set', `${name} (${level.data})`);
      } finally {
        store.close();
      }
      process.stdout.write(`${kind}: administrator ${name} (${level.data}) saved\n`);
    }
  });
  common(admin.command('list').description('list administrators')).action((o: AdminOptions) => {
    withStores(o, (a, kind) => {
      for (const acct of a.listAccounts()) process.stdout.write(`${kind}\t${acct.name}\t${acct.level}\n`);
    });
  });
  common(admin.command('delete').description('delete an administrator').argument('<name>')).action(
    (name: string, o: AdminOptions) => {
      const done = withStores(o, (a, kind) => {
        const ok = a.deleteAccount(name);
        if (ok) a.audit('cli', 'local', 'account-delete', name);
        process.stdout.write(`${kind}: ${ok ? `deleted ${name}` : `no account ${name}`}\n`);
        return ok;
      });
      if (!done.some(Boolean)) process.exitCode = 1;
    },
  );
  common(
    admin
      .command('setup-token')
      .description('replace the one-time setup token of a node that has no administrator yet'),
  ).action((o: AdminOptions) => {
    withStores(o, (a, kind) => {
      const t = a.resetSetupToken();
      // Audited like every administrative action; the token itself is never written anywhere but stdout.
      if (t) a.audit('cli', 'local', 'setup-token', 'one-time setup token replaced');
      process.stdout.write(t ? `${kind}: setup token ${t}\n` : `${kind}: has an administrator: no setup token\n`);
    });
  });
}
