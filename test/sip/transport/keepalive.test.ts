import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { KeepaliveEvent } from '../../../src/sip/transport/types.ts';
import { readAddress } from '../../../src/stun/attributes.ts';
import { StunBuilder } from '../../../src/stun/builder.ts';
import { Attr, Method, StunClass } from '../../../src/stun/constants.ts';
import { decodeStun, findAttribute } from '../../../src/stun/message.ts';
import { makeLayer } from './helpers.ts';

/** RFC 5626 keepalives as the SIP transport sees them: STUN on UDP (§4.4.2, §8), CRLF pings on TCP (§4.4.1). */
describe('RFC 5626 keepalives on the SIP ports', () => {
  const events: KeepaliveEvent[] = [];
  const t = makeLayer({ onKeepalive: (e) => events.push(e) });
  let udpPort = 0;
  let tcpPort = 0;

  before(async () => {
    udpPort = (await t.layer.listen({ protocol: 'udp', address: '127.0.0.1', port: 0 })).port;
    tcpPort = (await t.layer.listen({ protocol: 'tcp', address: '127.0.0.1', port: 0 })).port;
  });
  after(async () => {
    await t.layer.close();
  });

  async function exchange(request: Buffer): Promise<{ answer: Buffer | undefined; port: number }> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    const port = s.address().port;
    try {
      const answer = await new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 500);
        s.once('message', (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        s.send(request, udpPort, '127.0.0.1');
      });
      return { answer, port };
    } finally {
      s.close();
    }
  }

  test('§4.4.2/§8: a STUN Binding request on the SIP UDP port gets a Binding success with its XOR-MAPPED-ADDRESS, and the flow is reported alive', async () => {
    const txid = randomBytes(12);
    const before = t.layer.counters().keepalives.stun;
    const { answer, port } = await exchange(
      new StunBuilder(Method.binding, StunClass.request, txid).finish({ fingerprint: true }),
    );
    assert.ok(answer, 'answered');
    const m = decodeStun(answer);
    assert.ok(m.ok);
    assert.equal(m.value.method, Method.binding);
    assert.equal(m.value.cls, StunClass.success);
    assert.deepEqual(Buffer.from(m.value.transactionId), txid);
    assert.ok(m.value.fingerprintOffset >= 0, 'FINGERPRINT because the request had one');
    const ref = findAttribute(m.value, Attr.XOR_MAPPED_ADDRESS);
    assert.ok(ref);
    const mapped = readAddress(m.value, ref, true);
    assert.ok(mapped.ok);
    assert.deepEqual({ address: mapped.value.address, port: mapped.value.port }, { address: '127.0.0.1', port });
    assert.equal(t.layer.counters().keepalives.stun, before + 1);
    const e = events.find((x) => x.transport === 'UDP' && x.source.port === port);
    assert.deepEqual(e, {
      transport: 'UDP',
      source: { address: '127.0.0.1', port },
      local: { address: '127.0.0.1', port: udpPort },
    });
    assert.equal(t.inbox.length, 0, 'not handed up as SIP');
  });

  test('a STUN message other than a Binding request, or a malformed one, is dropped and counted, not answered', async () => {
    const indication = new StunBuilder(Method.binding, StunClass.indication, randomBytes(12)).finish();
    const r1 = await exchange(indication);
    assert.equal(r1.answer, undefined);
    const broken = Buffer.from(new StunBuilder(Method.binding, StunClass.request, randomBytes(12)).finish());
    broken.writeUInt16BE(8, 2); // length field says 8 more bytes than there are
    const r2 = await exchange(broken);
    assert.equal(r2.answer, undefined);
    const drops = t.layer.counters().drops;
    assert.equal(drops['stun-not-binding-request'], 1);
    assert.equal(drops['stun-malformed'], 1);
    assert.ok(!events.some((x) => x.source.port === r1.port || x.source.port === r2.port));
  });

  test('§4.4.1: a CRLF ping on a TCP connection is answered and reported with the connection id', async () => {
    const sock = connect(tcpPort, '127.0.0.1');
    await new Promise<void>((r) => sock.once('connect', () => r()));
    try {
      const pong = new Promise<string>((r) => sock.once('data', (d) => r(d.toString())));
      sock.write('\r\n\r\n');
      assert.equal(await pong, '\r\n');
      const e = events.find((x) => x.transport === 'TCP' && x.source.port === sock.localPort);
      assert.ok(e?.connectionId, 'the connection is named');
      assert.equal(e.local.port, tcpPort);
      assert.ok(t.layer.counters().keepalives.crlf >= 1);
    } finally {
      sock.destroy();
    }
  });
});
