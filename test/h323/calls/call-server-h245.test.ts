import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/common/log.ts';
import { systemClock } from '../../../src/common/timers.ts';
import {
  buildSetup,
  buildTerminalCapabilitySet,
  buildUserInput,
  fromH225Address,
  h225Address,
  type IpPort,
} from '../../../src/h323/api.ts';
import { CallServer } from '../../../src/h323/calls/call-server.ts';
import type { Gatekeeper } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import type { H225_TransportAddress } from '../../../src/h323/per/generated/types.ts';
import { h245Codec } from '../../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  encodeCallSignalling,
} from '../../../src/h323/q931/call-signalling.ts';
import { Q931_MESSAGE_TYPES } from '../../../src/h323/q931/q931.ts';
import { encodeTpkt, TpktFramer } from '../../../src/h323/transport/tpkt.ts';

/**
 * The call server's separate H.245 connections over real TCP, with scripted endpoints: it connects to the callee's
 * H.245 address from the outbound range, gives the caller a listener of its own from that range, accepts only the
 * caller's host there, relays H.245 between the two connections and closes them at the end.
 */

/** TPKT PDUs read from a socket, one at a time, each within a bounded wait. */
function reader(s: net.Socket) {
  const framer = new TpktFramer();
  const queue: Uint8Array[] = [];
  const waiting: Array<(p: Uint8Array) => void> = [];
  s.on('data', (chunk) => {
    const r = framer.push(chunk);
    assert.ok(r.ok);
    for (const p of r.value) {
      const w = waiting.shift();
      if (w) w(p);
      else queue.push(p);
    }
  });
  return {
    next(what: string, ms = 3000): Promise<Uint8Array> {
      const q = queue.shift();
      if (q) return Promise.resolve(q);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
        waiting.push((p) => {
          clearTimeout(t);
          resolve(p);
        });
      });
    },
  };
}

const q931 = (p: Uint8Array): CallSignallingMessage => {
  const d = decodeCallSignalling(p);
  assert.ok(d.ok);
  return d.value;
};
const h245AddressOf = (m: CallSignallingMessage) => {
  const v = m.uu!['h323-uu-pdu']['h323-message-body'].value as { h245Address?: H225_TransportAddress };
  return v.h245Address ? fromH225Address(v.h245Address) : undefined;
};

function listen(host: string): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, host, () => resolve(srv));
  });
}
const accepted = (srv: net.Server, ms = 3000) =>
  new Promise<net.Socket>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timed out waiting for a connection')), ms);
    srv.once('connection', (s) => {
      clearTimeout(t);
      resolve(s);
    });
  });
const connectFrom = (localAddress: string, to: IpPort) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: to.ip, port: to.port, localAddress });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
const closedBy = (s: net.Socket, ms = 3000) =>
  new Promise<void>((resolve, reject) => {
    if (s.destroyed || s.readableEnded) return resolve();
    const t = setTimeout(() => reject(new Error('the node kept the connection open')), ms);
    s.once('end', () => {
      clearTimeout(t);
      resolve();
    });
    s.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });

const guid = new Uint8Array(16).fill(9);

describe('call server: separate H.245 connections (TCP)', () => {
  it("connects to the callee's H.245, listens for the caller's from the outbound range, relays both ways, closes at the end", async () => {
    const bobQ931 = await listen('127.0.0.1');
    const bobH245 = await listen('127.0.0.1');
    const bobAt = bobQ931.address() as net.AddressInfo;
    const bobH245At = bobH245.address() as net.AddressInfo;
    const base = 24_000 + Math.floor(Math.random() * 3000);
    const calls = await CallServer.start({
      gatekeeper: {} as Gatekeeper,
      route: async () => ({ kind: 'address', address: { ip: '127.0.0.1', port: bobAt.port } }),
      listen: { ip: '127.0.0.1', port: 0 },
      outboundPorts: { from: base, to: base + 49 },
      clock: systemClock,
      log: silentLogger,
    });
    const sockets: net.Socket[] = [];
    try {
      // the caller (its own loopback address) sends a Setup without tunnelling
      const alice = await connectFrom('127.0.32.2', calls.address());
      sockets.push(alice);
      const fromNode = reader(alice);
      alice.write(
        encodeTpkt(
          encodeCallSignalling(
            buildSetup({
              callReference: 5,
              callIdentifier: guid,
              conferenceID: guid,
              source: [{ choice: 'h323-ID', value: 'alice' }],
              destination: [{ choice: 'h323-ID', value: 'bob' }],
              h245Tunnelling: false,
            }),
          ),
        ),
      );
      const bob = await accepted(bobQ931);
      sockets.push(bob);
      const atBob = reader(bob);
      const setup = q931(await atBob.next('the Setup'));
      assert.equal(setup.uu!['h323-uu-pdu'].h245Tunnelling, true, 'tunnelling offered to the callee');
      assert.equal(h245AddressOf(setup), undefined);
      const cr = setup.q931.callReference;
      // the callee answers without tunnelling, naming its H.245 listener
      const bobH245Conn = accepted(bobH245);
      bob.write(
        encodeTpkt(
          encodeCallSignalling({
            q931: { callReference: cr, fromDestination: true, callReferenceLength: 2, messageType: 0x07, ies: [] },
            uu: {
              'h323-uu-pdu': {
                'h323-message-body': {
                  choice: 'connect',
                  value: {
                    protocolIdentifier: '0.0.8.2250.0.7',
                    h245Address: h225Address('127.0.0.1', bobH245At.port),
                    destinationInfo: { mc: false, undefinedNode: false },
                    conferenceID: guid,
                    callIdentifier: { guid },
                  },
                },
                h245Tunnelling: false,
              },
            },
          }),
        ),
      );
      const nodeToBob = await bobH245Conn;
      sockets.push(nodeToBob);
      assert.ok(
        nodeToBob.remotePort! >= base && nodeToBob.remotePort! <= base + 49,
        `the node connects from the outbound range (${nodeToBob.remotePort})`,
      );
      const connect = q931(await fromNode.next('the Connect'));
      assert.equal(connect.q931.messageType, Q931_MESSAGE_TYPES.connect);
      const nodeH245 = h245AddressOf(connect)!;
      assert.equal(nodeH245.ip, '127.0.0.1');
      assert.ok(nodeH245.port >= base && nodeH245.port <= base + 49, 'the listener is in the outbound range');
      assert.notEqual(nodeH245.port, bobH245At.port, "the callee's address is not given to the caller");

      // another host may not take the caller's H.245 connection
      const intruder = await connectFrom('127.0.32.9', nodeH245);
      sockets.push(intruder);
      await closedBy(intruder);
      assert.equal(calls.counters.h245Refused, 1);

      const aliceH245 = await connectFrom('127.0.32.2', nodeH245);
      sockets.push(aliceH245);
      const atAliceH245 = reader(aliceH245);
      const atBobH245 = reader(nodeToBob);
      // each leg's H.245 is with the node: its own master/slave determination first, on both connections
      const h245Of = (bytes: Uint8Array) => {
        const d = h245Codec.decode(new Uint8Array(bytes));
        assert.ok(d.ok, 'H.245 from the node decodes');
        return d.value;
      };
      for (const [who, at] of [
        ['caller', atAliceH245],
        ['callee', atBobH245],
      ] as const) {
        const m = h245Of(await at.next(`the node's MSD to the ${who}`));
        assert.ok(m.choice === 'request' && m.value.choice === 'masterSlaveDetermination', who);
        assert.equal(m.value.value.terminalType, 190);
      }
      // the caller's capabilities: acknowledged by the node, and given to the callee as the node's own set
      const tcs = buildTerminalCapabilitySet(1);
      aliceH245.write(encodeTpkt(h245Codec.encode(tcs)));
      assert.deepEqual(h245Of(await atAliceH245.next('the TCS Ack')), {
        choice: 'response',
        value: { choice: 'terminalCapabilitySetAck', value: { sequenceNumber: 1 } },
      });
      const atCallee = h245Of(await atBobH245.next("the caller's capabilities at the callee"));
      assert.ok(atCallee.choice === 'request' && atCallee.value.choice === 'terminalCapabilitySet');
      assert.ok(tcs.choice === 'request' && tcs.value.choice === 'terminalCapabilitySet');
      assert.equal(atCallee.value.value.sequenceNumber, 0);
      assert.deepEqual(atCallee.value.value.capabilityTable, tcs.value.value.capabilityTable);
      const dtmf = h245Codec.encode(buildUserInput('7'));
      nodeToBob.write(encodeTpkt(dtmf));
      assert.deepEqual(new Uint8Array(await atAliceH245.next("the callee's DTMF at the caller")), dtmf);
      assert.deepEqual(calls.active()[0]!.h245, { a: 'separate', b: 'separate' });

      // the caller hangs up: ReleaseComplete reaches the callee, both H.245 connections are closed by the node
      alice.write(
        encodeTpkt(
          encodeCallSignalling({
            q931: { callReference: 5, fromDestination: false, callReferenceLength: 2, messageType: 0x5a, ies: [] },
            uu: {
              'h323-uu-pdu': {
                'h323-message-body': {
                  choice: 'releaseComplete',
                  value: { protocolIdentifier: '0.0.8.2250.0.7', callIdentifier: { guid } },
                },
                h245Tunnelling: false,
              },
            },
          }),
        ),
      );
      const rc = q931(await atBob.next('the ReleaseComplete'));
      assert.equal(rc.q931.messageType, Q931_MESSAGE_TYPES.releaseComplete);
      await closedBy(nodeToBob);
      await closedBy(aliceH245);
      assert.equal(calls.ended.at(-1)?.endReason, 'released by caller');
    } finally {
      for (const s of sockets) s.destroy();
      await calls.close();
      bobQ931.close();
      bobH245.close();
    }
  });
});
