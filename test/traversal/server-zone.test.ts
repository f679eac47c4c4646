import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/common/timers.ts';
import type { AuthResult, RequestAuthenticator } from '../../src/sip/auth/types.ts';
import { createRequest, createResponse, getHeader } from '../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message/types.ts';
import type { ServerTransactionHandle, TransportInfo } from '../../src/sip/transaction/types.ts';
import { type ServerZoneStatus, TraversalServerZone } from '../../src/traversal/server-zone.ts';

const ZONE_PORT = 7001;

function options(): SipRequest {
  return createRequest({
    method: 'OPTIONS',
    uri: 'sip:192.0.2.1:7001;transport=tls',
    headers: [
      ['Via', 'SIP/2.0/TLS 10.0.0.2:5061;branch=z9hG4bKtest'],
      ['From', '<sip:tz1@10.0.0.2>;tag=a'],
      ['To', '<sip:192.0.2.1:7001>'],
      ['Call-ID', 'c1'],
      ['CSeq', '1 OPTIONS'],
    ],
  });
}

const info = (connectionId: string, port = ZONE_PORT, address = '10.0.0.2'): TransportInfo => ({
  transport: 'TLS',
  reliable: true,
  source: { address, port: 25001 },
  local: { address: '192.0.2.1', port },
  connectionId,
});

/** Accepts a request carrying `Authorization: good`, refuses `bad` (403), challenges the rest (401). */
const authenticator: RequestAuthenticator = {
  authenticate(req): AuthResult {
    const a = getHeader(req, 'authorization');
    if (a === 'good') return { kind: 'authenticated', username: 'tz1-core', realm: 'traversal' };
    if (a === 'bad') return { kind: 'rejected', response: createResponse(req, 403, 'Forbidden') };
    return {
      kind: 'challenge',
      response: createResponse(req, 401, 'Unauthorized', {
        headers: [['WWW-Authenticate', 'Digest realm="traversal", nonce="n"']],
      }),
    };
  },
};

function tx(req: SipRequest): ServerTransactionHandle & { sent: SipResponse[] } {
  const sent: SipResponse[] = [];
  return {
    key: `k${Math.random()}`,
    kind: 'nist',
    request: req,
    transportInfo: info('x'),
    sent,
    respond: (r: SipResponse) => {
      sent.push(r);
      return true;
    },
  } as unknown as ServerTransactionHandle & { sent: SipResponse[] };
}

const settle = async () => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

function zone() {
  const changes: ServerZoneStatus[] = [];
  const z = new TraversalServerZone({
    name: 'tz1',
    port: ZONE_PORT,
    realm: 'traversal',
    authenticator,
    clock: new FakeClock(),
    onChange: (s) => changes.push(s),
  });
  return { z, changes };
}

test('server zone: a request on the zone listener from an unauthenticated flow is challenged, and the flow stays unknown', async () => {
  const { z } = zone();
  const t = tx(options());
  assert.equal(z.handle(options(), t, info('c1')), true);
  await settle();
  assert.equal(t.sent[0]?.status, 401);
  assert.equal(z.state, 'checking');
  assert.equal(z.flow, undefined);
  assert.equal(z.status().challenged, 1);
});

test('server zone: the authenticated request makes its connection the zone flow; later requests on it pass on', async () => {
  const { z, changes } = zone();
  const req = options();
  req.headers.push({ name: 'Authorization', value: 'good' });
  const t = tx(req);
  assert.equal(z.handle(req, t, info('c1')), true);
  await settle();
  assert.equal(t.sent[0]?.status, 200);
  assert.equal(z.state, 'active');
  assert.deepEqual(z.flow, { transport: 'TLS', address: '10.0.0.2', port: 25001, connectionId: 'c1' });
  assert.equal(changes.at(-1)?.peer, '10.0.0.2:25001');
  // The same flow: not the zone's to answer any more (the basic UAS and the proxy take it).
  assert.equal(z.handle(options(), tx(options()), info('c1')), false);
  assert.equal(z.isZoneFlow(info('c1')), true);
  assert.equal(z.isZoneFlow(info('c2')), false);
});

test('server zone: requests on other listeners and over UDP pass by', () => {
  const { z } = zone();
  assert.equal(z.handle(options(), tx(options()), info('c1', 5061)), false);
  assert.equal(z.handle(options(), tx(options()), { ...info('c1'), transport: 'UDP', connectionId: undefined }), false);
});

test('server zone: a stranger with bad credentials does not fail an active zone; the flow closing does', async () => {
  const { z, changes } = zone();
  const good = options();
  good.headers.push({ name: 'Authorization', value: 'good' });
  z.handle(good, tx(good), info('c1'));
  await settle();
  const bad = options();
  bad.headers.push({ name: 'Authorization', value: 'bad' });
  const t = tx(bad);
  z.handle(bad, t, info('c9', ZONE_PORT, '203.0.113.5'));
  await settle();
  assert.equal(t.sent[0]?.status, 403);
  assert.equal(z.state, 'active');
  assert.match(z.status().lastError ?? '', /refused \(403\) from 203\.0\.113\.5/);
  z.connectionClosed('c9');
  assert.equal(z.state, 'active');
  z.connectionClosed('c1');
  assert.equal(z.state, 'failed');
  assert.equal(z.flow, undefined);
  assert.equal(z.status().lastError, 'flow closed');
  assert.equal(changes.at(-1)?.state, 'failed');
  // The core reconnects and authenticates again: active on the new connection.
  z.handle(good, tx(good), info('c2'));
  await settle();
  assert.equal(z.state, 'active');
  assert.equal(z.isZoneFlow(info('c2')), true);
});

test('server zone: refused credentials before any flow fail the zone with the reason', async () => {
  const { z } = zone();
  const bad = options();
  bad.headers.push({ name: 'Authorization', value: 'bad' });
  z.handle(bad, tx(bad), info('c1'));
  await settle();
  assert.equal(z.state, 'failed');
  assert.match(z.status().lastError ?? '', /credentials refused/);
});

test('server zone: a core authenticated as another user than the zone names is refused (403) and the zone fails', async () => {
  const z = new TraversalServerZone({
    name: 'tz1',
    port: ZONE_PORT,
    realm: 'traversal',
    authenticator,
    username: 'tz2-core',
    clock: new FakeClock(),
  });
  const req = options();
  req.headers.push({ name: 'Authorization', value: 'good' });
  const t = tx(req);
  z.handle(req, t, info('c1'));
  await settle();
  assert.equal(t.sent[0]?.status, 403);
  assert.equal(z.state, 'failed');
  assert.equal(z.status().lastError, 'authenticated as tz1-core, the zone expects tz2-core');
  assert.equal(z.flow, undefined);
});
