import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OperationalError } from '../../../src/common/errors.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import type { SipMessage } from '../../../src/sip/message/types.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import { transportSender } from '../../../src/sip/transaction/transport-sender.ts';
import type { InboundInfo, SendTarget } from '../../../src/sip/transport/types.ts';
import { RecordingUser, RFC_TIMERS, request, response } from './helpers.ts';

// The glue between the transaction layer and the transport layer's `send(msg, SendTarget)`: requests to the TU's
// destination, responses by RFC 3261 §18.2.2 through `responseTarget`, failures back as transaction transport errors.

class FakeTransport {
  readonly sent: { message: SipMessage; target: SendTarget }[] = [];
  failFor = new Set<string>();
  async send(message: SipMessage, target: SendTarget): Promise<void> {
    this.sent.push({ message, target });
    if (this.failFor.has(target.address)) throw new OperationalError('ERR_TEST', `cannot reach ${target.address}`);
  }
}

function build() {
  const clock = new FakeClock();
  const transport = new FakeTransport();
  const user = new RecordingUser();
  const errors: unknown[] = [];
  const layer: TransactionLayer = new TransactionLayer({
    clock,
    timers: RFC_TIMERS,
    user,
    sender: transportSender(transport, (key, err) => {
      errors.push(err);
      if (key) layer.transportError(key);
    }),
  });
  return { clock, transport, user, layer, errors };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test('requests go to the destination the TU chose, with its connection and TLS server name', async () => {
  const { transport, layer } = build();
  layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-ts1' }), {
    transport: 'TLS',
    address: '192.0.2.7',
    port: 5061,
    connectionId: 'c9',
    serverName: 'edge.example.com',
  });
  assert.deepEqual(transport.sent[0]!.target, {
    transport: 'TLS',
    address: '192.0.2.7',
    port: 5061,
    connectionId: 'c9',
    serverName: 'edge.example.com',
  });
});

test("a destination's own socket (the listener the target is reached through) is where the request leaves from", () => {
  const { transport, layer } = build();
  layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-ts-local' }), {
    transport: 'UDP',
    address: '10.0.0.77',
    port: 5060,
    local: { address: '10.0.0.1', port: 5060 },
  });
  assert.deepEqual(transport.sent[0]!.target, {
    transport: 'UDP',
    address: '10.0.0.77',
    port: 5060,
    local: { address: '10.0.0.1', port: 5060 },
  });
});

test('responses go back on the connection the request came on (RFC 3261 §18.2.2, reliable transport)', () => {
  const { transport, layer, user } = build();
  const info: InboundInfo = {
    transport: 'TCP',
    secure: false,
    reliable: true,
    source: { address: '198.51.100.4', port: 40123 },
    local: { address: '192.0.2.254', port: 5060 },
    connectionId: 'conn-42',
  };
  user.onNewRequest = (req, tx) => tx.respond(response(req, 200));
  layer.receive(request({ method: 'OPTIONS', transport: 'TCP', sentBy: 'client.example.com:5070' }), info);
  assert.equal(transport.sent.length, 1);
  assert.equal(transport.sent[0]!.target.connectionId, 'conn-42');
  assert.equal(transport.sent[0]!.target.transport, 'TCP');
});

test('a failed send is reported as a transport error of its transaction: TU informed, Terminated', async () => {
  const { transport, layer, user, errors } = build();
  transport.failFor.add('203.0.113.1');
  const tx = layer.sendRequest(request({ method: 'MESSAGE', branch: 'z9hG4bK-ts2' }), {
    transport: 'UDP',
    address: '203.0.113.1',
    port: 5060,
  });
  assert.equal(tx.state, 'Trying');
  await tick();
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['transport-error', 'terminated']);
  assert.ok(errors[0] instanceof OperationalError);
});

test('a destination on a transport we do not carry fails the transaction instead of throwing', async () => {
  const { layer, user } = build();
  const tx = layer.sendRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-ts3' }), {
    transport: 'SCTP',
    address: '192.0.2.1',
    port: 5060,
  });
  await tick();
  assert.equal(tx.state, 'Terminated');
  assert.deepEqual(user.types(), ['transport-error', 'terminated']);
});

test('sendStateless: a response forwarded by its top Via alone', () => {
  const { transport, layer } = build();
  const res = response(request({ method: 'OPTIONS', sentBy: '192.0.2.33:5080' }), 200);
  layer.sendStateless(res, { kind: 'response' });
  assert.deepEqual(transport.sent[0]!.target, { transport: 'UDP', address: '192.0.2.33', port: 5080 });
});
