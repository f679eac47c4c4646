/**
 * Where management listens by default: on an edge, HTTPS and HTTP on the private side only (both sides with
 * management.exposePublic), and no SNMP agent unless management.snmp, in the plan and on a real edge node with a
 * public and a private address.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, describe, it } from 'node:test';
import { defaultConfig } from '../../src/config/load.ts';
import type { CrosswayConfigInput } from '../../src/config/schema.ts';
import { computePortPlan } from '../../src/ports/index.ts';
import type { RunningNode } from '../../src/roles/start.ts';
import { startTestNode } from '../helpers/lab-node.ts';
import { createTlsFixtures } from '../helpers/tls-fixtures.ts';
import { req } from './helpers.ts';

const plan = (input: CrosswayConfigInput) =>
  computePortPlan(defaultConfig(input), { privileged: true, unprivilegedPortStart: 1024 });

describe('management listeners in the port plan', () => {
  it('an edge serves HTTPS and HTTP on its private side by default, on both with exposePublic', () => {
    const edge = plan({ role: 'edge' }).node('edge');
    assert.equal(edge.listener('https')?.side, 'private');
    assert.equal(edge.listener('http')?.side, 'private');
    const exposed = plan({ role: 'edge', management: { exposePublic: true } }).node('edge');
    assert.equal(exposed.listener('https')?.side, 'both');
    assert.equal(exposed.listener('http')?.side, 'both');
    // A core has a single address: private.
    assert.equal(plan({ role: 'core' }).node('core').listener('https')?.side, 'private');
  });

  it('SNMP is off by default on every role, and on (private side) with management.snmp', () => {
    for (const role of ['edge', 'core', 'lab'] as const) {
      const p = plan({ role });
      assert.equal(
        p.listeners.some((l) => l.id === 'snmp'),
        false,
        role,
      );
      assert.ok(
        p.listeners.some((l) => l.id === 'https'),
        `${role} has https`,
      );
    }
    const on = plan({ role: 'edge', management: { snmp: true } }).node('edge');
    assert.equal(on.listener('snmp')?.side, 'private');
    assert.equal(on.listener('snmp')?.transport, 'udp');
  });
});

describe('a real edge with a public and a private address', () => {
  const pki = createTlsFixtures({ extraIps: ['127.0.0.3', '127.0.0.4'] });
  let node: RunningNode | undefined;
  after(async () => {
    await node?.close();
    pki.cleanup();
  });

  const tcpOpen = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const s = connect({ host, port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });

  it('answers HTTPS on the private address only, and opens no SNMP socket', async () => {
    node = await startTestNode({
      role: 'edge',
      network: { address: '127.0.0.3', publicAddress: '127.0.0.4' },
      tls: { certificate: pki.server.certPath, privateKey: pki.server.keyPath, caCertificates: pki.ca.certPath },
    });
    const https = node.plan.port('https', 'edge');
    const http = node.plan.port('http', 'edge');
    const r = await req(`https://127.0.0.3:${https}/api/openapi.json`, { ca: pki.ca.cert });
    assert.equal(r.status, 200);
    assert.equal(await tcpOpen('127.0.0.3', http), true, 'HTTP (redirect) on the private side');
    assert.equal(await tcpOpen('127.0.0.4', https), false, 'no HTTPS on the public side');
    assert.equal(await tcpOpen('127.0.0.4', http), false, 'no HTTP on the public side');
    // SIP TLS is on the public side, so the public address is really in use by this node.
    assert.equal(await tcpOpen('127.0.0.4', node.plan.port('sip-tls', 'edge')), true);
    const mgmt = node.sockets().filter((s) => ['https', 'http', 'snmp'].includes(s.listener));
    assert.deepEqual(mgmt.map((s) => `${s.listener}@${s.address}`).sort(), ['http@127.0.0.3', 'https@127.0.0.3']);
  });
});
