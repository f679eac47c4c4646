import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../../src/common/timers.ts';
import { configSchema } from '../../../src/config/schema.ts';
import { computePortPlan } from '../../../src/ports/index.ts';
import { transportLayerOptions } from '../../../src/sip/transport/from-config.ts';
import { SipTransportLayer } from '../../../src/sip/transport/transport-layer.ts';

test('options from the configuration: limits, connection limits, TLS policy and the plan outbound range', () => {
  const config = configSchema.parse({
    sip: { limits: { maxMessageBytes: 4096 }, connections: { maxConnections: 7, idleTimeoutSeconds: 30 } },
    tls: { caCertificates: 'CA PEM', minVersion: 'TLSv1.3', verifyPeer: false },
  });
  const clock = new FakeClock();
  const o = transportLayerOptions(config, {
    clock,
    outboundPorts: { from: 25000, to: 29999 },
    tlsMaterial: { certificate: 'CERT PEM', privateKey: 'KEY PEM' },
  });
  assert.equal(o.clock, clock);
  assert.deepEqual(o.limits, { maxMessageBytes: 4096, maxHeaders: 128, maxHeaderBytes: 8192 });
  assert.deepEqual(o.connections, { maxConnections: 7, idleTimeoutSeconds: 30, newConnectionsPerSecondPerSource: 0 });
  assert.deepEqual(o.outboundPorts, { from: 25000, to: 29999 });
  assert.deepEqual(o.tls, {
    certificate: 'CERT PEM',
    privateKey: 'KEY PEM',
    caCertificates: 'CA PEM',
    verifyPeer: false,
    minVersion: 'TLSv1.3',
  });
  assert.equal(transportLayerOptions(configSchema.parse({}), { clock, outboundPorts: o.outboundPorts }).tls, undefined);
});

test("the port plan's outbound-sip range is accepted as is", async () => {
  const config = configSchema.parse({ role: 'edge' });
  const plan = computePortPlan(config);
  const range = plan.range('outbound-sip');
  assert.deepEqual([range.from, range.to], [25000, 29999]);
  const layer = new SipTransportLayer(transportLayerOptions(config, { clock: new FakeClock(), outboundPorts: range }));
  const l = await layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 });
  assert.deepEqual(layer.sockets(), [{ transport: 'tcp', address: '127.0.0.1', port: l.port }]);
  await layer.close();
});
