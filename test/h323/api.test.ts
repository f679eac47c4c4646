import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  aliasFromText,
  aliasToText,
  buildGcf,
  buildRcf,
  fromH225Address,
  h225Address,
  olcAddresses,
  readArq,
  rewriteOlcAckAddresses,
  rewriteOlcAddresses,
} from '../../src/h323/api.ts';
import type { OpenLogicalChannelAck } from '../../src/h323/per/generated/types.ts';
import { h245Codec, openLogicalChannelCodec, rasCodec } from '../../src/h323/per/schema.ts';
import { decodeCallSignalling, decodeFastStart } from '../../src/h323/q931/call-signalling.ts';
import { TpktFramer } from '../../src/h323/transport/tpkt.ts';
import { readPcap, tcpStreams } from './pcap.ts';

const dir = new URL('../vectors/h323/', import.meta.url).pathname;
const ras = new Map(
  readPcap(`${dir}h323plus-gnugk-ooh323c.pcap`)
    .filter((p) => p.proto === 'udp')
    .map((p) => [p.frame, p.payload]),
);

describe('H.323 typed API', () => {
  it('aliases and addresses as text', () => {
    assert.deepEqual(aliasFromText('1001'), { choice: 'dialledDigits', value: '1001' });
    assert.deepEqual(aliasFromText('alice'), { choice: 'h323-ID', value: 'alice' });
    assert.deepEqual(aliasFromText('h323:bob@example.com'), { choice: 'url-ID', value: 'h323:bob@example.com' });
    assert.deepEqual(aliasFromText('bob@example.com'), { choice: 'email-ID', value: 'bob@example.com' });
    assert.deepEqual(aliasToText({ choice: 'transportID', value: h225Address('10.0.0.1', 1720) }), {
      kind: 'transportID',
      value: '10.0.0.1:1720',
    });
    assert.deepEqual(fromH225Address(h225Address('2001:db8::1', 1720)), { ip: '2001:db8::1', port: 1720 });
  });

  it('answers the H323Plus GRQ and RRQ: same requestSeqNum, and the answer survives the wire', () => {
    const grq = rasCodec.decode(ras.get(5)!);
    assert.ok(grq.ok && grq.value.choice === 'gatekeeperRequest');
    const gcf = rasCodec.decode(
      rasCodec.encode(
        buildGcf(grq.value.value, { rasAddress: { ip: '127.0.0.1', port: 1719 }, gatekeeperIdentifier: 'crossway' }),
      ),
    );
    assert.ok(gcf.ok && gcf.value.choice === 'gatekeeperConfirm');
    assert.equal(gcf.value.value.requestSeqNum, grq.value.value.requestSeqNum);
    assert.equal(gcf.value.value.gatekeeperIdentifier, 'crossway');
    const rrq = rasCodec.decode(ras.get(7)!);
    assert.ok(rrq.ok && rrq.value.choice === 'registrationRequest');
    const rcf = rasCodec.decode(
      rasCodec.encode(buildRcf(rrq.value.value, { endpointIdentifier: 'ep-1', timeToLive: 300 })),
    );
    assert.ok(rcf.ok && rcf.value.choice === 'registrationConfirm');
    assert.equal(rcf.value.value.timeToLive, 300);
    assert.deepEqual(rcf.value.value.terminalAlias?.map(aliasToText), [{ kind: 'h323-ID', value: 'hp-alice' }]);
  });

  it("reads an ARQ's aliases and addresses (H323Plus via GnuGk, frame 9)", () => {
    const arq = rasCodec.decode(ras.get(9)!);
    assert.ok(arq.ok && arq.value.choice === 'admissionRequest');
    const s = readArq(arq.value.value);
    assert.deepEqual(s.source, [{ kind: 'h323-ID', value: 'hp-alice' }]);
    assert.deepEqual(s.destination, [{ kind: 'h323-ID', value: 'bob' }]);
    assert.equal(s.answerCall, false);
    assert.equal(s.conferenceID.length, 16);
  });

  it("rewrites a fast-start OLC's RTP/RTCP addresses and leaves the original alone", () => {
    const stream = tcpStreams(readPcap(`${dir}ooh323c-faststart-tunnelled.pcap`))[0]!;
    const r = new TpktFramer().push(Buffer.concat(stream.segments.map((s) => s.data)));
    assert.ok(r.ok);
    const setup = decodeCallSignalling(r.value[0]!);
    assert.ok(setup.ok);
    const olc = decodeFastStart(setup.value.uu!)[0]!;
    assert.ok(olc.ok);
    const before = olcAddresses(olc.value);
    assert.ok(before.length > 0);
    const moved = rewriteOlcAddresses(olc.value, (a) => ({ ip: '192.0.2.10', port: a.port + 1000 }));
    const back = openLogicalChannelCodec.decode(openLogicalChannelCodec.encode(moved));
    assert.ok(back.ok);
    assert.deepEqual(
      olcAddresses(back.value),
      before.map((b) => ({ ...b, address: { ip: '192.0.2.10', port: b.address.port + 1000 } })),
    );
    assert.deepEqual(olcAddresses(olc.value), before);
  });

  it("rewrites an OLCAck's media addresses (ooh323c separate H.245, frame 31)", () => {
    const s = tcpStreams(readPcap(`${dir}ooh323c-separate-h245.pcap`));
    const pdus = s.flatMap((x) => {
      const r = new TpktFramer().push(Buffer.concat(x.segments.map((y) => y.data)));
      return r.ok ? r.value : [];
    });
    const acks = pdus
      .map((p) => h245Codec.decode(p))
      .flatMap((m) =>
        m.ok && m.value.choice === 'response' && m.value.value.choice === 'openLogicalChannelAck'
          ? [m.value.value.value as OpenLogicalChannelAck]
          : [],
      );
    assert.equal(acks.length, 2);
    const ack = rewriteOlcAckAddresses(acks[0]!, () => ({ ip: '198.51.100.7', port: 40000 }));
    const p = ack.forwardMultiplexAckParameters;
    assert.ok(p?.choice === 'h2250LogicalChannelAckParameters');
    const mc = p.value.mediaChannel;
    assert.ok(mc?.choice === 'unicastAddress' && mc.value.choice === 'iPAddress');
    assert.deepEqual([...mc.value.value.network, mc.value.value.tsapIdentifier], [198, 51, 100, 7, 40000]);
  });
});
