/**
 * `crossway users add|passwd|remove|list`: the local digest credential database of a node, worked on directly in the
 * node's store file (offline or while the node runs: SQLite in WAL mode with a busy timeout; the node reads users
 * through on every lookup, so changes apply to the next REGISTER). Passwords come from a prompt without echo, or from
 * the first line of stdin with `--password-stdin`; never from the command line.
 */
import { join } from 'node:path';
import type { Command } from 'commander';
import { OperationalError } from '../../common/errors.ts';
import { defaultConfig, loadConfigFile } from '../../config/load.ts';
import type { CrosswayConfig } from '../../config/schema.ts';
import { LocalCredentialStore } from '../../sip/auth/local-credentials.ts';
import { NodeStore } from '../../store/database.ts';

/** Options shared by the commands that open a node's store. */
export interface NodeStoreOptions {
  config?: string;
  dataDir?: string;
  node?: string;
}

/** The configuration the CLI works with: the file given, else the defaults (a lab), with `--data-dir` applied. */
export function cliConfig(o: NodeStoreOptions): Readonly<CrosswayConfig> {
  const c = o.config ? loadConfigFile(o.config) : defaultConfig();
  return o.dataDir ? Object.freeze({ ...c, dataDir: o.dataDir }) : c;
}

/** Node kinds whose stores the CLI works on: `--node`, else the role's own (both halves for a lab). */
export function storeKinds(config: Readonly<CrosswayConfig>, node: string | undefined): ('edge' | 'core')[] {
  if (node !== undefined && node !== 'edge' && node !== 'core') {
    throw new OperationalError('ERR_CLI_NODE', `--node must be edge or core, not ${node}`);
  }
  if (config.role !== 'lab') {
    if (node !== undefined && node !== config.role) {
      throw new OperationalError('ERR_CLI_NODE', `this is a ${config.role} node; --node ${node} does not apply`);
    }
    return [config.role];
  }
  return node ? [node] : ['edge', 'core'];
}

/** The store directory of one node kind (a lab keeps `DATADIR/edge` and `DATADIR/core`). */
export function storeDir(config: Readonly<CrosswayConfig>, kind: 'edge' | 'core'): string {
  return config.role === 'lab' ? join(config.dataDir, kind) : config.dataDir;
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) {
    chunks.push(c as Buffer);
    if (Buffer.concat(chunks).includes(0x0a)) break;
  }
  return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
}

/** Reads a line from the terminal without echo. */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    let value = '';
    // Echo off before the prompt shows: nothing typed after the prompt can be echoed.
    stdin.setRawMode(true);
    process.stderr.write(question);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (s: string) => {
      for (const ch of s) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new OperationalError('ERR_CLI_ABORTED', 'aborted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

async function readPassword(fromStdin: boolean | undefined): Promise<string> {
  if (fromStdin) {
    const p = await readStdinLine();
    if (!p) throw new OperationalError('ERR_AUTH_EMPTY_PASSWORD', 'no password on stdin');
    return p;
  }
  if (!process.stdin.isTTY) {
    throw new OperationalError('ERR_CLI_NO_TTY', 'no terminal to prompt on: pipe the password with --password-stdin');
  }
  const a = await promptHidden('Password: ');
  const b = await promptHidden('Again: ');
  if (a !== b) throw new OperationalError('ERR_CLI_MISMATCH', 'the passwords differ');
  if (!a) throw new OperationalError('ERR_AUTH_EMPTY_PASSWORD', 'empty password');
  return a;
}

/** The realm users go into: `--realm`, else the realm of the only configured SIP domain. */
function realmOf(config: Readonly<CrosswayConfig>, realm: string | undefined): string {
  if (realm) return realm;
  const domains = config.sip.domains;
  if (domains.length === 1) {
    const d = domains[0]!.toLowerCase();
    return config.auth.realms[d] ?? d;
  }
  throw new OperationalError(
    'ERR_CLI_REALM',
    `give --realm (the realm of a SIP domain: ${domains.length ? domains.join(', ') : 'no sip.domains configured'})`,
  );
}

interface UserCliOptions extends NodeStoreOptions {
  realm?: string;
  passwordStdin?: boolean;
  json?: boolean;
}

/** Opens the local credential store of the one node kind a users command works on (a lab: the core by default). */
function withUsers<T>(o: UserCliOptions, fn: (users: LocalCredentialStore, config: Readonly<CrosswayConfig>) => T): T {
  const config = cliConfig(o);
  const kinds = storeKinds(config, o.node ?? (config.role === 'lab' ? 'core' : undefined));
  const store = NodeStore.open(storeDir(config, kinds[0]!));
  try {
    return fn(new LocalCredentialStore(store), config);
  } finally {
    store.close();
  }
}

function common(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'the node configuration file (default: the lab defaults)')
    .option('--data-dir <dir>', 'overrides dataDir from the configuration')
    .option('--node <kind>', 'edge or core (a lab node has both; default core)');
}

export function registerUsersCommand(program: Command): void {
  const users = program.command('users').description('local SIP digest credentials (stored as HA1 digests)');
  common(users.command('add'))
    .description('add a user (password prompted, or --password-stdin)')
    .argument('<username>')
    .option('--realm <realm>', 'realm (default: the realm of the only SIP domain)')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .action(async (username: string, o: UserCliOptions) => {
      const password = await readPassword(o.passwordStdin);
      withUsers(o, (u, config) => {
        const realm = realmOf(config, o.realm);
        u.add(realm, username, password);
        process.stdout.write(`added ${username} to realm ${realm}\n`);
      });
    });
  common(users.command('passwd'))
    .description("change a user's password")
    .argument('<username>')
    .option('--realm <realm>', 'realm (default: the realm of the only SIP domain)')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .action(async (username: string, o: UserCliOptions) => {
      const password = await readPassword(o.passwordStdin);
      withUsers(o, (u, config) => {
        const realm = realmOf(config, o.realm);
        u.setPassword(realm, username, password);
        process.stdout.write(`password of ${username} in realm ${realm} changed\n`);
      });
    });
  common(users.command('remove'))
    .description('remove a user')
    .argument('<username>')
    .option('--realm <realm>', 'realm (default: the realm of the only SIP domain)')
    .action((username: string, o: UserCliOptions) => {
      withUsers(o, (u, config) => {
        const realm = realmOf(config, o.realm);
        if (!u.remove(realm, username)) {
          throw new OperationalError('ERR_AUTH_NO_USER', `no user ${username} in realm ${realm}`);
        }
        process.stdout.write(`removed ${username} from realm ${realm}\n`);
      });
    });
  common(users.command('list'))
    .description('list users (no secrets)')
    .option('--realm <realm>', 'only this realm')
    .option('--json', 'JSON output')
    .action((o: UserCliOptions) => {
      withUsers(o, (u) => {
        const list = u.list(o.realm);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
          return;
        }
        for (const x of list) {
          process.stdout.write(`${x.realm}\t${x.username}\t${new Date(x.updatedAt).toISOString()}\n`);
        }
        process.stderr.write(`${list.length} user(s)\n`);
      });
    });
}
