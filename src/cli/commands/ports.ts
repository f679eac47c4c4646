import type { Command } from 'commander';
import { ConfigError } from '../../common/errors.ts';
import { defaultConfig, loadConfigFile, validateConfig } from '../../config/load.ts';
import { type CrosswayConfig, roleSchema, sizeSchema } from '../../config/schema.ts';
import {
  ADDRESS_SETS,
  type AddressBook,
  type AddressSetName,
  addressesFromConfig,
  computePortPlan,
  NFT_TARGETS,
  type NftTarget,
  renderAllNftables,
  renderJson,
  renderMarkdown,
  renderNftables,
  renderTable,
} from '../../ports/index.ts';

const FORMATS = ['table', 'markdown', 'json', 'nftables'] as const;
type Format = (typeof FORMATS)[number];

interface PortsOptions {
  config?: string;
  role?: string;
  size?: string;
  format: string;
  target: string;
  address: string[];
  unprivileged?: boolean;
}

function bad(path: string, message: string): never {
  throw new ConfigError([{ path, message }]);
}

/** `--address edge_private=10.1.0.2,10.1.0.3`, repeatable: fills the nftables address sets. */
function parseAddresses(args: readonly string[], book: AddressBook): AddressBook {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(book)) out[k] = [...(v ?? [])];
  for (const a of args) {
    const eq = a.indexOf('=');
    const name = a.slice(0, eq) as AddressSetName;
    if (eq < 0 || !ADDRESS_SETS.includes(name))
      bad('--address', `expected SET=ADDR[,ADDR], SET one of ${ADDRESS_SETS.join(', ')}`);
    const list = out[name] ?? [];
    for (const addr of a.slice(eq + 1).split(',')) if (addr && !list.includes(addr)) list.push(addr);
    out[name] = list;
  }
  return out;
}

/** Renders the port plan of a configuration in the format asked for. Exported for tests. */
export function renderPorts(opts: PortsOptions): string {
  const format = opts.format as Format;
  if (!FORMATS.includes(format)) bad('--format', `expected one of ${FORMATS.join(', ')}`);
  const target = opts.target as NftTarget | 'all';
  if (target !== 'all' && !NFT_TARGETS.includes(target)) bad('--target', `expected all or ${NFT_TARGETS.join(', ')}`);
  let config: Readonly<CrosswayConfig> = opts.config ? loadConfigFile(opts.config) : defaultConfig();
  const role = opts.role === undefined ? undefined : roleSchema.safeParse(opts.role);
  if (role && !role.success) bad('--role', 'expected edge, core or lab');
  const size = opts.size === undefined ? undefined : sizeSchema.safeParse(opts.size);
  if (size && !size.success) bad('--size', 'expected small, medium or large');
  if (role || size) {
    config = validateConfig(
      { ...config, ...(role?.success ? { role: role.data } : {}), ...(size?.success ? { size: size.data } : {}) },
      opts.config,
    );
  }
  const plan = computePortPlan(config, { privileged: !opts.unprivileged });
  switch (format) {
    case 'table':
      return renderTable(plan);
    case 'markdown':
      return renderMarkdown(plan);
    case 'json':
      return renderJson(plan);
    case 'nftables': {
      const book = parseAddresses(opts.address, addressesFromConfig(config));
      return target === 'all' ? renderAllNftables(plan, book) : renderNftables(plan, target, book);
    }
  }
}

export function registerPortsCommand(program: Command): void {
  program
    .command('ports')
    .description('print the port plan: every listener and every flow the firewalls must allow, and why')
    .option('-c, --config <file>', 'YAML or JSON configuration file (default: the embedded lab defaults)')
    .option('--role <role>', 'edge, core or lab (overrides the configuration)')
    .option('--size <size>', 'small, medium or large (overrides the configuration)')
    .option('--format <format>', `output format: ${FORMATS.join(', ')}`, 'table')
    .option('--target <target>', `nftables ruleset: all, ${NFT_TARGETS.join(', ')}`, 'all')
    .option(
      '--address <set=addr,...>',
      `nftables address set elements (${ADDRESS_SETS.join(', ')}); repeatable`,
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--unprivileged', 'plan as an unprivileged lab would (ports below 1024 moved up by 8000)')
    .action((opts: PortsOptions) => {
      process.stdout.write(renderPorts(opts));
    });
}
