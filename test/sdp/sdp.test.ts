import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  attribute,
  directionOf,
  effectiveConnection,
  type MediaTarget,
  parseSdp,
  rewriteSdp,
  serializeSdp,
} from '../../src/sdp/index.ts';

const crlf = (lines: string[]) => `${lines.join('\r\n')}\r\n`;

const OFFER = crlf([
  'v=0',
  'o=alice 2890844526 2890844526 IN IP4 192.0.2.10',
  's=-',
  'c=IN IP4 192.0.2.10',
  't=0 0',
  'a=ice-ufrag:F7gI',
  'a=ice-pwd:x9cml/YzichV2+XlhiMu8g',
  'a=x-unknown-session:keep me',
  'm=audio 49170 RTP/SAVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=rtcp:49171',
  'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32',
  'a=candidate:1 1 UDP 2130706431 192.0.2.10 49170 typ host',
  'a=candidate:2 1 UDP 1694498815 203.0.113.7 61000 typ srflx raddr 192.0.2.10 rport 49170',
  'a=end-of-candidates',
  'a=sendrecv',
  'm=video 51372 RTP/AVP 96',
  'c=IN IP4 192.0.2.11',
  'a=rtpmap:96 H264/90000',
  'a=rtcp:51373 IN IP4 192.0.2.11',
  'a=rtcp-mux',
  'a=x-video-thing',
]);

const T = (rtpPort: number, address = '203.0.113.1'): MediaTarget => ({ address, rtpPort, rtcpPort: rtpPort + 1 });

describe('SDP parse and serialize', () => {
  it('round-trips every line, unknown ones included, byte for byte', () => {
    const p = parseSdp(OFFER);
    assert.ok(p.ok);
    assert.equal(serializeSdp(p.value), OFFER);
    assert.equal(p.value.media.length, 2);
    assert.deepEqual(
      { media: p.value.media[0]!.media, port: p.value.media[0]!.port, proto: p.value.media[0]!.proto },
      { media: 'audio', port: 49170, proto: 'RTP/SAVP' },
    );
    assert.deepEqual(p.value.media[0]!.formats, ['0', '8', '101']);
  });

  it('reads LF-only bodies and port counts', () => {
    const p = parseSdp('v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 5000/2 RTP/AVP 0\n');
    assert.ok(p.ok);
    assert.equal(p.value.media[0]!.portCount, 2);
    assert.match(serializeSdp(p.value), /^m=audio 5000\/2 RTP\/AVP 0\r$/m);
  });

  it('refuses what is not SDP, with a reason', () => {
    for (const [text, why] of [
      ['', /v=0/],
      ['v=1\r\n', /v=0/],
      ['v=0\r\nbogus\r\n', /line 2/],
      ['v=0\r\nm=audio x RTP/AVP 0\r\n', /port/],
      ['v=0\r\nm=audio 70000 RTP/AVP 0\r\n', /range/],
      ['v=0\r\nm=audio\r\n', /m= needs/],
    ] as const) {
      const p = parseSdp(text);
      assert.equal(p.ok, false, text);
      if (!p.ok) assert.match(p.reason, why);
    }
    const many = `v=0\r\n${'m=audio 1 RTP/AVP 0\r\n'.repeat(40)}`;
    const p = parseSdp(many);
    assert.ok(!p.ok && /more than 32 media/.test(p.reason));
    assert.ok(!parseSdp('v=0\r\n' + 'a=x\r\n'.repeat(3000)).ok);
  });

  it('never throws on arbitrary input, and what parses re-parses to the same thing', () => {
    const line = fc.oneof(
      fc.constantFrom('v=0', 'c=IN IP4 1.2.3.4', 'm=audio 1 RTP/AVP 0', 'a=rtcp:9', 'a=rtcp-mux', 'c=IN IP4 0.0.0.0'),
      fc.string({ maxLength: 30 }),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fc.boolean(), (lines, prefix) => {
        const text = (prefix ? ['v=0', ...lines] : lines).join('\r\n');
        const p = parseSdp(text);
        if (!p.ok) return;
        const again = parseSdp(serializeSdp(p.value));
        assert.ok(again.ok);
        assert.deepEqual(again.value, p.value);
        // The rewriter never throws on what the parser accepts either.
        rewriteSdp(
          p.value,
          p.value.media.map(() => T(40000)),
          { ice: 'remove' },
        );
      }),
      { numRuns: 500 },
    );
  });
});

describe('SDP rewriting for the relay', () => {
  const offer = () => {
    const p = parseSdp(OFFER);
    assert.ok(p.ok);
    return p.value;
  };

  it('points session and media c=, m= ports and a=rtcp at the relay; keeps crypto, rtcp-mux and unknown lines', () => {
    const out = serializeSdp(rewriteSdp(offer(), [T(40000), T(40002)], { ice: 'remove' }));
    const lines = out.split('\r\n');
    assert.ok(lines.includes('c=IN IP4 203.0.113.1'));
    assert.equal(lines.filter((l) => l.startsWith('c=')).length, 2);
    assert.ok(!out.includes('192.0.2.11'), 'media-level c= rewritten too');
    assert.ok(lines.includes('m=audio 40000 RTP/SAVP 0 8 101'));
    assert.ok(lines.includes('m=video 40002 RTP/AVP 96'));
    assert.ok(lines.includes('a=rtcp:40001'));
    assert.ok(lines.includes('a=rtcp:40003 IN IP4 203.0.113.1'), 'RFC 3605 form with an address keeps its form');
    assert.ok(lines.includes('a=rtcp-mux'));
    assert.ok(
      lines.includes('a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32'),
    );
    assert.ok(lines.includes('a=x-unknown-session:keep me') && lines.includes('a=x-video-thing'));
    assert.ok(lines.includes('o=alice 2890844526 2890844526 IN IP4 192.0.2.10'), 'o= is not ours to change');
  });

  it('removes ICE candidates and a=ice-* when told to, passes them when told to', () => {
    const removed = serializeSdp(rewriteSdp(offer(), [T(40000), T(40002)], { ice: 'remove' }));
    assert.doesNotMatch(removed, /a=candidate|a=ice-|a=end-of-candidates/);
    const passed = serializeSdp(rewriteSdp(offer(), [T(40000), T(40002)], { ice: 'pass' }));
    assert.equal((passed.match(/a=candidate/g) ?? []).length, 2);
    assert.match(passed, /a=ice-ufrag:F7gI/);
  });

  it('keeps hold meaningful: c=0.0.0.0 stays, direction attributes pass, port 0 stays 0', () => {
    const held = parseSdp(
      crlf([
        'v=0',
        'o=- 1 2 IN IP4 192.0.2.10',
        's=-',
        'c=IN IP4 0.0.0.0',
        't=0 0',
        'm=audio 49170 RTP/AVP 0',
        'a=sendonly',
        'm=video 0 RTP/AVP 96',
        'm=audio 49180 RTP/AVP 0',
        'c=IN IP4 192.0.2.10',
        'a=inactive',
      ]),
    );
    assert.ok(held.ok);
    const rw = rewriteSdp(held.value, [T(40000), T(40002), T(40004)], { ice: 'remove' });
    const out = serializeSdp(rw);
    assert.match(out, /^c=IN IP4 0\.0\.0\.0\r$/m);
    assert.match(out, /^m=audio 40000 RTP\/AVP 0\r\na=sendonly\r$/m);
    assert.match(out, /^m=video 0 RTP\/AVP 96\r$/m);
    assert.match(out, /^m=audio 40004 RTP\/AVP 0\r\nc=IN IP4 203\.0\.113\.1\r\na=inactive\r$/m);
    assert.equal(directionOf(rw, rw.media[0]!), 'sendonly');
    assert.equal(effectiveConnection(rw, rw.media[0]!)?.address, '0.0.0.0');
  });

  it('adds the traversal mux attribute and an explicit a=rtcp for demux ports; strips a peer node attribute', () => {
    const p = parseSdp(
      crlf([
        'v=0',
        'o=- 1 1 IN IP4 10.0.0.2',
        's=-',
        'c=IN IP4 10.0.0.2',
        't=0 0',
        'm=audio 41000 RTP/AVP 0',
        'a=x-crossway-mux:77',
      ]),
    );
    assert.ok(p.ok);
    const rw = rewriteSdp(
      p.value,
      [
        {
          address: '10.0.0.1',
          rtpPort: 36000,
          rtcpPort: 36001,
          forceRtcpAttribute: true,
          addAttributes: [{ type: 'a', value: 'x-crossway-mux:99' }],
        },
      ],
      { ice: 'remove', removeAttributes: new Set(['x-crossway-mux']) },
    );
    assert.equal(attribute(rw.media[0]!.lines, 'x-crossway-mux'), '99');
    assert.equal(rw.media[0]!.lines.filter((l) => l.value.startsWith('x-crossway-mux')).length, 1);
    assert.equal(attribute(rw.media[0]!.lines, 'rtcp'), '36001 IN IP4 10.0.0.1');
  });

  it('writes IPv6 connection lines for an IPv6 relay address, and leaves the input untouched', () => {
    const input = offer();
    const before = serializeSdp(input);
    const out = serializeSdp(rewriteSdp(input, [T(40000, '2001:db8::1'), null], { ice: 'pass' }));
    assert.match(out, /^c=IN IP6 2001:db8::1\r$/m);
    assert.match(out, /^m=video 51372 RTP\/AVP 96\r\nc=IN IP4 192\.0\.2\.11\r$/m, 'null target keeps the stream');
    assert.equal(serializeSdp(input), before);
  });
});
