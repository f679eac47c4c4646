import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { netLabAvailability, netLabRequired } from '../../helpers/netlab.ts';
import { ooh323cBinary } from '../../helpers/ooh323c.ts';

/**
 * The real ooh323c endpoint finds our gatekeeper by multicast discovery (`--gk-discover`: GRQ to 224.0.1.41:1718,
 * the well-known port, from its RAS socket) and registers with the RAS address the GCF gave. ooh323c does not
 * choose a multicast interface, so it runs in a network namespace of its own whose loopback carries the group
 * (multicast route 224.0.0.0/4 via lo): nothing leaves the machine, and 1718/1719 are free there.
 */
const bin = ooh323cBinary();
// Under CI a lab that cannot run (no namespaces or nft, or no ooh323c build) fails instead of skipping.
const skip = netLabRequired(
  'ooh323c-discovery.test.ts',
  bin ? netLabAvailability() : { ok: false, reason: 'ooh323c peer not available' },
);
const helper = new URL('../../helpers/h323-discovery-peer.ts', import.meta.url).pathname;

describe('ooh323c discovers the gatekeeper by multicast', {
  skip,
}, () => {
  it('--gk-discover: multicast GRQ → GCF (unicast to its rasAddress) → RRQ/RCF with the RAS address the GCF named', () => {
    const ns = `cwdisc-${process.pid}-${randomBytes(3).toString('hex')}`;
    const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
    ip('netns', 'add', ns);
    try {
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'multicast', 'on');
      ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'lo');
      const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', helper, bin!], {
        encoding: 'utf8',
        timeout: 60_000,
        cwd: new URL('../../..', import.meta.url).pathname,
      });
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as {
        registered: number;
        aliases: Array<{ kind: string; value: string }>;
        rasAddress: { ip: string; port: number };
        discovery: { grq: number; gcf: number; ignored: number };
        sent: Record<string, number>;
        endpointOutput: string;
      };
      assert.equal(
        r.registered,
        1,
        `ooh323c registered after discovery: ${JSON.stringify(r.discovery)}\n${r.endpointOutput}`,
      );
      assert.ok(r.discovery.grq >= 1 && r.discovery.gcf >= 1, JSON.stringify(r.discovery));
      assert.ok((r.sent.registrationConfirm ?? 0) >= 1);
      assert.ok(r.aliases.some((a) => a.value === 'alice'));
      assert.equal(r.rasAddress.ip, '127.0.0.2');
    } finally {
      ip('netns', 'del', ns);
    }
  });
});
