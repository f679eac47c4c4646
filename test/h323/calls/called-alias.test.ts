import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { calledAfterRouting } from '../../../src/h323/calls/called-alias.ts';
import type { H323Registration, H323Route } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { decodePartyNumber, encodePartyNumber, IE, type InformationElement } from '../../../src/h323/q931/q931.ts';

const reg = (aliases: H323Registration['aliases']): H323Registration => ({
  endpointIdentifier: 'e1',
  aliases,
  callSignalAddresses: [{ ip: '192.0.2.8', port: 1720 }],
  rasAddress: { ip: '192.0.2.8', port: 1719 },
  timeToLive: 60,
  registeredAt: 0,
  refreshedAt: 0,
  vendor: undefined,
});
const display: InformationElement = { id: IE.display, data: Uint8Array.of(0x61) };
const calledNumber = (digits: string): InformationElement => ({
  id: IE.calledPartyNumber,
  data: encodePartyNumber({ typeOfNumber: 2, numberingPlan: 1, digits }),
});
const toNeighbour = (alias: string, dialled: string): H323Route => ({
  kind: 'address',
  address: { ip: '203.0.113.5', port: 1720 },
  zone: 'Peer',
  found: { zone: 'Peer', alias, dialled },
});

describe('the called party of the Setup sent on after routing', () => {
  it('is left alone when routing did not rewrite the alias, or did not say what it searched', () => {
    const called = { destinationAddress: [{ choice: 'h323-ID' as const, value: 'bob' }], ies: [display] };
    assert.equal(calledAfterRouting(called, toNeighbour('bob', 'bob')), called);
    assert.equal(calledAfterRouting(called, { kind: 'endpoint', registration: reg([]) }), called);
  });

  it('carries a rewritten number in destinationAddress and in the Called party number (type and plan kept)', () => {
    const out = calledAfterRouting(
      { destinationAddress: [{ choice: 'dialledDigits', value: '92002' }], ies: [display, calledNumber('92002')] },
      toNeighbour('2002', '92002'),
    );
    assert.deepEqual(out.destinationAddress, [{ choice: 'dialledDigits', value: '2002' }]);
    assert.equal(out.ies[0], display, 'other IEs unchanged');
    const n = decodePartyNumber(out.ies[1]!.data);
    assert.ok(n.ok);
    assert.deepEqual([n.value.digits, n.value.typeOfNumber, n.value.numberingPlan], ['2002', 2, 1]);
  });

  it('drops the Called party number when the new alias is no number, and types the alias as the callee registered it', () => {
    const route: H323Route = {
      kind: 'endpoint',
      registration: reg([{ kind: 'h323-ID', value: 'bob' }]),
      found: { zone: 'LocalZone', alias: 'bob', dialled: '9bob' },
    };
    const out = calledAfterRouting(
      { destinationAddress: [{ choice: 'h323-ID', value: '9bob' }], ies: [calledNumber('9'), display] },
      route,
    );
    assert.deepEqual(out.destinationAddress, [{ choice: 'h323-ID', value: 'bob' }]);
    assert.deepEqual(out.ies, [display]);
    // registered as an H.323-ID made of digits: the callee is asked for its H.323-ID, not a dialledDigits alias
    const digitsId = calledAfterRouting(
      { destinationAddress: undefined, ies: [] },
      {
        kind: 'endpoint',
        registration: reg([{ kind: 'h323-ID', value: '2002' }]),
        found: { zone: 'LocalZone', alias: '2002', dialled: '92002' },
      },
    );
    assert.deepEqual(digitsId.destinationAddress, [{ choice: 'h323-ID', value: '2002' }]);
  });
});
