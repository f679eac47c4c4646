import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SipMessage } from '../../../src/sip/message/types.ts';
import { responseTarget } from '../../../src/sip/transport/response-target.ts';
import { parsed } from './helpers.ts';

function response(via: string): SipMessage {
  return parsed(
    [
      'SIP/2.0 200 OK',
      `Via: ${via}`,
      'From: <sip:a@example.test>;tag=1',
      'To: <sip:b@example.test>;tag=2',
      'Call-ID: rt@example.test',
      'CSeq: 1 OPTIONS',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

describe('responseTarget (RFC 3261 §18.2.2, RFC 3581 §4)', () => {
  const cases: Array<[string, string, object | undefined, object | undefined]> = [
    [
      'UDP maddr wins',
      'SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1;maddr=239.1.1.1;received=198.51.100.1;rport=4000',
      undefined,
      { transport: 'UDP', address: '239.1.1.1', port: 5070 },
    ],
    [
      'UDP maddr without sent-by port: 5060',
      'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1;maddr=239.1.1.1',
      undefined,
      { transport: 'UDP', address: '239.1.1.1', port: 5060 },
    ],
    [
      'UDP received + rport',
      'SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1;received=198.51.100.1;rport=4000',
      undefined,
      { transport: 'UDP', address: '198.51.100.1', port: 4000 },
    ],
    [
      'UDP received, empty rport: sent-by port',
      'SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1;received=198.51.100.1;rport',
      undefined,
      { transport: 'UDP', address: '198.51.100.1', port: 5070 },
    ],
    [
      'UDP received, no sent-by port: 5060',
      'SIP/2.0/UDP host.example.test;branch=z9hG4bK1;received=198.51.100.1',
      undefined,
      { transport: 'UDP', address: '198.51.100.1', port: 5060 },
    ],
    [
      'UDP sent-by only',
      'SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1',
      undefined,
      { transport: 'UDP', address: '192.0.2.1', port: 5070 },
    ],
    [
      'UDP sent-by, default port',
      'SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1',
      undefined,
      { transport: 'UDP', address: '192.0.2.1', port: 5060 },
    ],
    [
      'IPv6 received in brackets (RFC 5118)',
      'SIP/2.0/UDP [2001:db8::1];branch=z9hG4bK1;received=[2001:db8::9];rport=4000',
      undefined,
      { transport: 'UDP', address: '2001:db8::9', port: 4000 },
    ],
    [
      'TCP: same connection, else received + sent-by port',
      'SIP/2.0/TCP host.example.test:5080;branch=z9hG4bK1;received=198.51.100.1;rport=40000',
      { transport: 'TCP', connectionId: 'tcp-7' },
      { transport: 'TCP', address: '198.51.100.1', port: 5080, connectionId: 'tcp-7' },
    ],
    [
      'TLS default port 5061',
      'SIP/2.0/TLS host.example.test;branch=z9hG4bK1',
      undefined,
      { transport: 'TLS', address: 'host.example.test', port: 5061 },
    ],
    ['SCTP is not ours', 'SIP/2.0/SCTP 192.0.2.1;branch=z9hG4bK1', undefined, undefined],
  ];
  for (const [name, via, info, expected] of cases) {
    test(name, () => {
      assert.deepEqual(responseTarget(response(via), info as never), expected);
    });
  }

  test('no Via: no target', () => {
    const r = response('SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1');
    r.headers = r.headers.filter((h) => h.name !== 'Via');
    assert.equal(responseTarget(r), undefined);
  });
});
