import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

function crossway(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', ...args],
      { cwd: root, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('crossway ports', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-ports-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the seed tables for a configuration file, with the setting under each row', async () => {
    const file = join(dir, 'edge.yaml');
    writeFileSync(
      file,
      [
        'role: edge',
        'network: { address: 10.1.0.10, publicAddress: 192.0.2.10 }',
        'traversalZones: [{ name: to-core }, { name: second }]',
        'h323: { enabled: true }',
      ].join('\n'),
    );
    const r = await crossway(['ports', '--config', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /role edge, size small/);
    for (const t of ['== SIP calls', '== H.323 calls', '== Management system', '== LDAP']) {
      assert.ok(r.stdout.includes(t), t);
    }
    assert.match(r.stdout, /core +25000-29999 +TCP or TLS +edge \(private\) +7002\n +↳ traversalZones\[1\]/);
    assert.match(
      r.stdout,
      /== Not opened yet[\s\S]*H\.323 +Initial RAS connection +core +1719 +UDP +edge \(private\) +6002/,
    );
    // The edge plan has no core listeners.
    assert.doesNotMatch(r.stdout, /^core +sip-/m);

    const md = await crossway(['ports', '--config', file, '--size', 'large', '--format', 'markdown']);
    assert.equal(md.code, 0, md.stderr);
    assert.match(md.stdout, /\| 36000-36010 \(even ports\) \| `size`/);
  });

  it('json is the whole plan, parseable', async () => {
    const r = await crossway(['ports', '--role', 'core', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const doc = JSON.parse(r.stdout);
    assert.equal(doc.role, 'core');
    assert.deepEqual(
      doc.nodes.map((n: { node: string }) => n.node),
      ['core'],
    );
    const ids = doc.nodes[0].listeners.map((l: { id: string }) => l.id);
    assert.deepEqual(ids.slice(0, 4), ['sip-udp', 'sip-tcp', 'sip-tls', 'sip-mtls']);
    assert.ok(!ids.some((id: string) => /^(traversal|mux|turn)/.test(id)), ids.join());
    assert.ok(doc.flows.length > 0 && doc.flows.every((f: { id: string }) => typeof f.id === 'string'));
  });

  it('nftables for one target fills the address sets from the configuration and --address', async () => {
    const file = join(dir, 'core.json');
    writeFileSync(
      file,
      JSON.stringify({
        role: 'core',
        network: { address: '10.2.0.5' },
        traversalZones: [{ name: 'z', peerAddress: '10.1.0.10' }],
        ldap: { servers: [{ url: 'ldaps://10.2.0.9' }] },
      }),
    );
    const r = await crossway([
      'ports',
      '--config',
      file,
      '--format',
      'nftables',
      '--target',
      'inside-firewall',
      '--address',
      'management_systems=10.2.0.7,2001:db8::7',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^table inet crossway_inside_fw$/m);
    assert.match(r.stdout, /set core4 \{ type ipv4_addr; flags interval; elements = \{ 10\.2\.0\.5 \}; \}/);
    assert.match(r.stdout, /set edge_private4 \{[^}]*elements = \{ 10\.1\.0\.10 \}/);
    assert.match(r.stdout, /set management_systems6 \{[^}]*elements = \{ 2001:db8::7 \}/);
    assert.match(r.stdout, /tcp sport 25000-29999 tcp dport 7001 ct state new accept comment "SIP: SIP signaling/);
    // LDAP from the core stays inside: not on the inside firewall.
    assert.doesNotMatch(r.stdout, /dport 636/);
    assert.doesNotMatch(r.stdout, /crossway_outside_fw/);
  });

  it('refuses bad options with the option named', async () => {
    const r = await crossway(['ports', '--format', 'xml']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /--format: expected one of table, markdown, json, nftables/);
    const s = await crossway(['ports', '--size', 'huge']);
    assert.match(s.stderr, /--size: expected small, medium or large/);
    const a = await crossway(['ports', '--format', 'nftables', '--address', 'nowhere=1.2.3.4']);
    assert.match(a.stderr, /--address: expected SET=ADDR/);
  });
});
