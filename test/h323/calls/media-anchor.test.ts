import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, describe, it } from 'node:test';
import { systemClock } from '../../../src/common/timers.ts';
import { buildAudioOlc, h245Address, olcAddresses } from '../../../src/h323/api.ts';
import { MediaAnchor } from '../../../src/h323/calls/media-anchor.ts';
import type { OpenLogicalChannel } from '../../../src/h323/per/generated/types.ts';
import { openLogicalChannelCodec } from '../../../src/h323/per/schema.ts';
import { type MediaRelay, mediaConfigSchema, startMediaRelay } from '../../../src/media/index.ts';

async function udp(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  return s;
}

const rtp = (seq: number) => {
  const b = Buffer.alloc(172);
  b[0] = 0x80;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(0x1234, 8);
  return b;
};

describe('MediaAnchor on the relay (leg-level entry points)', () => {
  const closers: Array<() => void> = [];
  after(() => {
    for (const c of closers) c();
  });

  it("rewrites each leg's OLC addresses to the relay pair facing the other leg and relays to the H.245 ports", async () => {
    const base = 44_000 + 2 * Math.floor(Math.random() * 5000);
    const relay: MediaRelay = await startMediaRelay({
      node: 'core',
      config: mediaConfigSchema.parse({}),
      pool: { ranges: [{ from: base, to: base + 19, step: 1 }] },
      addresses: {
        endpoint: { bind: '127.0.0.1', advertise: '127.0.0.1' },
        traversal: { bind: '127.0.0.1', advertise: '127.0.0.1' },
      },
      clock: systemClock,
    });
    closers.push(() => relay.close());
    const aRecv = await udp();
    const aSend = await udp(); // A sends from another port than it receives on (as ooh323c does)
    const bRecv = await udp();
    closers.push(() => {
      for (const s of [aRecv, aSend, bRecv]) s.close();
    });
    const anchor = new MediaAnchor(relay.core, 'call-1');
    // A (caller) proposes: it receives RTP at aRecv (reverse channel), RTCP at aRecv+1
    const receive: OpenLogicalChannel = {
      forwardLogicalChannelNumber: 2,
      forwardLogicalChannelParameters: {
        dataType: { choice: 'nullData', value: null },
        multiplexParameters: { choice: 'none', value: null },
      },
      reverseLogicalChannelParameters: {
        dataType: { choice: 'audioData', value: { choice: 'g711Ulaw64k', value: 20 } },
        multiplexParameters: {
          choice: 'h2250LogicalChannelParameters',
          value: {
            sessionID: 1,
            mediaChannel: h245Address('127.0.0.1', aRecv.address().port),
            mediaControlChannel: h245Address('127.0.0.1', aRecv.address().port + 1),
          },
        },
      },
    };
    const [fromA] = await anchor.rewriteFastStart('a', [openLogicalChannelCodec.encode(receive)]);
    const da = openLogicalChannelCodec.decode(fromA!);
    assert.ok(da.ok);
    const seenByB = olcAddresses(da.value);
    const bSendsTo = seenByB.find((x) => x.role === 'media')!.address;
    assert.equal(bSendsTo.ip, '127.0.0.1');
    assert.ok(bSendsTo.port >= base && bSendsTo.port <= base + 19, JSON.stringify(seenByB));

    // B answers A's transmit channel: it receives at bRecv
    const answer = buildAudioOlc(1, { ip: '127.0.0.1', port: bRecv.address().port + 1 });
    const fwd = answer.forwardLogicalChannelParameters.multiplexParameters;
    if (fwd.choice === 'h2250LogicalChannelParameters')
      (fwd.value as { mediaChannel?: unknown }).mediaChannel = h245Address('127.0.0.1', bRecv.address().port);
    const [fromB] = await anchor.rewriteFastStart('b', [openLogicalChannelCodec.encode(answer)]);
    const d = openLogicalChannelCodec.decode(fromB!);
    assert.ok(d.ok);
    const aSendsTo = olcAddresses(d.value).find((x) => x.role === 'media')!.address;
    assert.notEqual(aSendsTo.port, bSendsTo.port, 'a port pair facing each leg');
    // the status shows, per session, the pair each leg was given (RTCP as the rewritten OLCs name it)
    const rtcpOf = (x: ReturnType<typeof olcAddresses>) => x.find((y) => y.role === 'mediaControl')!.address.port;
    assert.deepEqual(anchor.ports(), [
      {
        session: 1,
        address: '127.0.0.1',
        a: { rtp: aSendsTo.port, rtcp: rtcpOf(olcAddresses(d.value)) },
        b: { rtp: bSendsTo.port, rtcp: rtcpOf(seenByB) },
      },
    ]);

    const got = { a: 0, b: 0, aFrom: '', bFrom: '' };
    aRecv.on('message', (_m, r) => {
      got.a++;
      got.aFrom = `${r.address}:${r.port}`;
    });
    bRecv.on('message', (_m, r) => {
      got.b++;
      got.bFrom = `${r.address}:${r.port}`;
    });
    for (let i = 0; i < 20; i++) {
      aSend.send(rtp(i), aSendsTo.port, aSendsTo.ip);
      bRecv.send(rtp(i), bSendsTo.port, bSendsTo.ip);
      await new Promise((r) => setTimeout(r, 2));
    }
    await new Promise((r) => setTimeout(r, 100));
    // no latching: everything reaches the H.245 receive ports (A sent from another port than it receives on)
    assert.equal(got.a, 20);
    assert.equal(got.b, 20);
    // symmetric: each leg receives from the relay port it sends to
    assert.equal(got.aFrom, `127.0.0.1:${aSendsTo.port}`);
    assert.equal(got.bFrom, `127.0.0.1:${bSendsTo.port}`);
    assert.equal(relay.core.portsInUse, 2);
    anchor.close();
    assert.equal(relay.core.portsInUse, 0);
  });

  it("a session's relay ports go back to the pool when its last H.245 channel is closed; fast-start sessions stay until the end", async () => {
    const base = 44_000 + 2 * Math.floor(Math.random() * 5000);
    const relay: MediaRelay = await startMediaRelay({
      node: 'core',
      config: mediaConfigSchema.parse({}),
      pool: { ranges: [{ from: base, to: base + 19, step: 1 }] },
      addresses: {
        endpoint: { bind: '127.0.0.1', advertise: '127.0.0.1' },
        traversal: { bind: '127.0.0.1', advertise: '127.0.0.1' },
      },
      clock: systemClock,
    });
    closers.push(() => relay.close());
    const anchor = new MediaAnchor(relay.core, 'call-2');
    const video = (channel: number): OpenLogicalChannel => {
      const olc = buildAudioOlc(channel, { ip: '127.0.0.1', port: 9001 });
      const m = olc.forwardLogicalChannelParameters.multiplexParameters;
      if (m.choice === 'h2250LogicalChannelParameters') (m.value as { sessionID: number }).sessionID = 2;
      return olc;
    };
    // session 1: A's channel 1 and B's channel 1 (each leg numbers its own); session 2: A's channel 2
    await anchor.rewriteOlc('a', buildAudioOlc(1, { ip: '127.0.0.1', port: 7001 }));
    await anchor.rewriteOlc('b', buildAudioOlc(1, { ip: '127.0.0.1', port: 8001 }));
    await anchor.rewriteOlc('a', video(2));
    assert.equal(relay.core.portsInUse, 4, 'two sessions, a pair facing each leg');
    assert.equal(await anchor.closeChannel('b', 2), false, 'B has no channel 2');
    assert.equal(await anchor.closeChannel('a', 1), false, "B's channel still uses session 1");
    assert.equal(relay.core.portsInUse, 4);
    assert.equal(await anchor.closeChannel('b', 1), true);
    assert.equal(relay.core.portsInUse, 2, "session 1's pairs are free, session 2 runs on");
    assert.deepEqual(
      anchor.ports().map((x) => x.session),
      [2],
      'the status no longer lists session 1',
    );
    assert.equal(await anchor.closeChannel('b', 1), false, 'closing twice frees nothing more');
    // a channel reopened on session 1 gets a new pair
    const again = await anchor.rewriteOlc('a', buildAudioOlc(3, { ip: '127.0.0.1', port: 7001 }));
    assert.equal(relay.core.portsInUse, 4);
    const at = olcAddresses(again)[0]!.address;
    assert.ok(at.port >= base && at.port <= base + 19, `on the relay: ${at.port}`);
    // fast start pins its session: closing its channels frees nothing before the call ends
    const fs = buildAudioOlc(5, { ip: '127.0.0.1', port: 7101 });
    const m = fs.forwardLogicalChannelParameters.multiplexParameters;
    if (m.choice === 'h2250LogicalChannelParameters') (m.value as { sessionID: number }).sessionID = 3;
    await anchor.rewriteFastStart('a', [openLogicalChannelCodec.encode(fs)]);
    assert.equal(relay.core.portsInUse, 6);
    assert.equal(await anchor.closeChannel('a', 5), false);
    assert.equal(relay.core.portsInUse, 6);
    assert.equal(anchor.closedStreams, 1);
    anchor.close();
    assert.equal(relay.core.portsInUse, 0);
  });
});
