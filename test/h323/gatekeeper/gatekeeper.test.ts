import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../../src/common/timers.ts';
import { aliasFromText, fromH225Address, H225_PROTOCOL_ID, h225Address, type IpPort } from '../../../src/h323/api.ts';
import {
  Gatekeeper,
  type GatekeeperEvent,
  type GatekeeperOptions,
  policyAllows,
} from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { RegistrationStore } from '../../../src/h323/gatekeeper/registration-store.ts';
import type { RasMessage, RegistrationRequest } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import { NodeStore } from '../../../src/store/database.ts';

const NODE: IpPort = { ip: '192.0.2.1', port: 1720 };
const EP: IpPort = { ip: '198.51.100.7', port: 1719 };

function options(over: Partial<GatekeeperOptions> = {}): GatekeeperOptions {
  return {
    gatekeeperIdentifier: 'crossway',
    rasAddress: { ip: '192.0.2.1', port: 1719 },
    callSignalAddress: NODE,
    timeToLive: 60,
    expiryGraceSeconds: 5,
    maxRegistrations: 1000,
    policy: { mode: 'allow-all', patterns: [] },
    allowDialledIp: false,
    maxBandwidthPerCall: 20_000,
    ...over,
  };
}

let seq = 0;
function rrq(aliases: string[], csa: IpPort, over: Partial<RegistrationRequest> = {}): RasMessage {
  return {
    choice: 'registrationRequest',
    value: {
      requestSeqNum: ++seq,
      protocolIdentifier: H225_PROTOCOL_ID,
      discoveryComplete: true,
      callSignalAddress: [h225Address(csa.ip, csa.port)],
      rasAddress: [h225Address(csa.ip, 1719)],
      terminalType: { terminal: {}, mc: false, undefinedNode: false },
      terminalAlias: aliases.map(aliasFromText),
      endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
      ...over,
    },
  };
}

function keepAlive(id: string, ttl?: number): RasMessage {
  return rrq(
    [],
    { ip: '198.51.100.7', port: 1720 },
    {
      keepAlive: true,
      endpointIdentifier: id,
      terminalAlias: undefined,
      ...(ttl ? { timeToLive: ttl } : {}),
    },
  );
}

/** Sends through the codec both ways, as on the wire. */
function ask(gk: Gatekeeper, m: RasMessage, from: IpPort = EP): RasMessage | undefined {
  const out = gk.handleDatagram(rasCodec.encode(m), from);
  if (!out) return undefined;
  const d = rasCodec.decode(out.bytes);
  assert.ok(d.ok, 'our answer decodes');
  return d.value;
}

function register(gk: Gatekeeper, aliases: string[], csa: IpPort): string {
  const r = ask(gk, rrq(aliases, csa));
  assert.equal(r?.choice, 'registrationConfirm', JSON.stringify(r));
  return (r.value as { endpointIdentifier: string }).endpointIdentifier;
}

function arq(endpointIdentifier: string, dest: string[], over: Record<string, unknown> = {}): RasMessage {
  return {
    choice: 'admissionRequest',
    value: {
      requestSeqNum: ++seq,
      callType: { choice: 'pointToPoint', value: null },
      endpointIdentifier,
      destinationInfo: dest.map(aliasFromText),
      srcInfo: [aliasFromText('alice')],
      bandWidth: 1280,
      callReferenceValue: 5,
      conferenceID: new Uint8Array(16).fill(1),
      activeMC: false,
      answerCall: false,
      callIdentifier: { guid: new Uint8Array(16).fill(2) },
      ...over,
    },
  };
}

const reason = (m: RasMessage | undefined) =>
  (m?.value as { rejectReason?: { choice: string } } | undefined)?.rejectReason?.choice;

describe('gatekeeper: discovery', () => {
  it('GRQ → GCF with our identifier and RAS address; a GRQ naming another gatekeeper → GRJ terminalExcluded', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    const grq = (over = {}): RasMessage => ({
      choice: 'gatekeeperRequest',
      value: {
        requestSeqNum: 9,
        protocolIdentifier: H225_PROTOCOL_ID,
        rasAddress: h225Address(EP.ip, EP.port),
        endpointType: { terminal: {}, mc: false, undefinedNode: false },
        ...over,
      },
    });
    const gcf = ask(gk, grq());
    assert.equal(gcf?.choice, 'gatekeeperConfirm');
    if (gcf?.choice !== 'gatekeeperConfirm') return;
    assert.equal(gcf.value.requestSeqNum, 9);
    assert.equal(gcf.value.gatekeeperIdentifier, 'crossway');
    assert.deepEqual(fromH225Address(gcf.value.rasAddress), { ip: '192.0.2.1', port: 1719 });
    const grj = ask(gk, grq({ gatekeeperIdentifier: 'other' }));
    assert.equal(grj?.choice, 'gatekeeperReject');
    assert.equal(reason(grj), 'terminalExcluded');
  });
});

describe('gatekeeper: registration', () => {
  it('RRQ → RCF with an endpoint identifier and timeToLive capped by configuration; aliases of every type resolve', () => {
    const gk = new Gatekeeper(options({ timeToLive: 60 }), new FakeClock());
    const r = ask(
      gk,
      rrq(
        ['alice', '2001', 'h323:alice@example.com', 'alice@example.com'],
        { ip: '198.51.100.7', port: 1720 },
        { timeToLive: 3600 },
      ),
    );
    assert.equal(r?.choice, 'registrationConfirm');
    if (r?.choice !== 'registrationConfirm') return;
    assert.equal(r.value.timeToLive, 60);
    assert.ok(r.value.endpointIdentifier.length > 0);
    for (const [kind, value] of [
      ['h323-ID', 'alice'],
      ['dialledDigits', '2001'],
      ['partyNumber', '2001'],
      ['url-ID', 'h323:alice@example.com'],
      ['email-ID', 'Alice@Example.com'],
    ] as const) {
      const t = gk.resolve([{ kind, value }]);
      assert.equal(t?.kind === 'endpoint' && t.registration.endpointIdentifier, r.value.endpointIdentifier, `${kind}`);
    }
    assert.equal(gk.resolve([{ kind: 'h323-ID', value: 'bob' }]), undefined);
  });

  it('RRJ with the right reasons: duplicateAlias, invalidCallSignalAddress, securityDenial (policy), resourceUnavailable', () => {
    const gk = new Gatekeeper(
      options({ maxRegistrations: 2, policy: { mode: 'deny-list', patterns: ['evil*'] } }),
      new FakeClock(),
    );
    register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    const dup = ask(gk, rrq(['alice'], { ip: '198.51.100.8', port: 1720 }));
    assert.equal(reason(dup), 'duplicateAlias');
    assert.deepEqual((dup?.value as { rejectReason: { value: unknown } } | undefined)?.rejectReason.value, [
      aliasFromText('alice'),
    ]);
    assert.equal(reason(ask(gk, rrq(['carol'], { ip: '198.51.100.9', port: 0 }))), 'invalidCallSignalAddress');
    assert.equal(reason(ask(gk, rrq(['evil-eve'], { ip: '198.51.100.9', port: 1720 }))), 'securityDenial');
    register(gk, ['bob'], { ip: '198.51.100.10', port: 1720 });
    assert.equal(reason(ask(gk, rrq(['dave'], { ip: '198.51.100.11', port: 1720 }))), 'resourceUnavailable');
    assert.equal(gk.counters.rejected['registrationReject:duplicateAlias'], 1);
  });

  it('the same endpoint registering again (same call signalling address) replaces itself and keeps its identifier', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    const b = register(gk, ['alice', '2001'], { ip: '198.51.100.7', port: 1720 });
    assert.equal(a, b);
    assert.equal(gk.size, 1);
    assert.ok(gk.resolve([{ kind: 'dialledDigits', value: '2001' }]));
  });

  it('allow-list policy admits only matching aliases', () => {
    const p = { mode: 'allow-list' as const, patterns: ['2*', 'alice'] };
    assert.equal(policyAllows(p, [{ kind: 'dialledDigits', value: '2001' }]), true);
    assert.equal(policyAllows(p, [{ kind: 'h323-ID', value: 'alice' }]), true);
    assert.equal(policyAllows(p, [{ kind: 'h323-ID', value: 'alice2' }]), false);
    assert.equal(policyAllows({ mode: 'allow-all', patterns: [] }, []), true);
  });

  it('lightweight keep-alives refresh; without them the registration expires after timeToLive + grace', () => {
    const clock = new FakeClock();
    const gk = new Gatekeeper(options({ timeToLive: 10, expiryGraceSeconds: 2 }), clock);
    const events: GatekeeperEvent[] = [];
    gk.on((e) => events.push(e));
    const id = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    clock.advance(9_000);
    const ka = ask(gk, keepAlive(id));
    assert.equal(ka?.choice, 'registrationConfirm');
    clock.advance(11_000);
    assert.equal(gk.size, 1, 'refreshed by the keep-alive at 9 s');
    clock.advance(1_500);
    assert.equal(gk.size, 0, 'expired 12 s after the last keep-alive');
    assert.equal(gk.counters.expired, 1);
    assert.deepEqual(
      events.map((e) => (e.kind === 'unregistered' ? `${e.kind}:${e.reason}` : e.kind)),
      ['registered', 'unregistered:expired'],
    );
    // H.225.0 §7.9.1: a keep-alive from an unknown endpoint must register fully
    assert.equal(reason(ask(gk, keepAlive(id))), 'fullRegistrationRequired');
  });

  it('URQ from the endpoint → UCF (then URJ notCurrentlyRegistered); URQ from the gatekeeper on removal', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    const id = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    const urq = (): RasMessage => ({
      choice: 'unregistrationRequest',
      value: { requestSeqNum: ++seq, callSignalAddress: [h225Address('198.51.100.7', 1720)], endpointIdentifier: id },
    });
    assert.equal(ask(gk, urq())?.choice, 'unregistrationConfirm');
    assert.equal(gk.size, 0);
    assert.equal(reason(ask(gk, urq())), 'notCurrentlyRegistered');

    const id2 = register(gk, ['bob'], { ip: '198.51.100.8', port: 1720 });
    const sent: Array<{ to: IpPort; m: RasMessage }> = [];
    gk.onSend = (s) => sent.push({ to: s.to, m: s.message });
    assert.equal(gk.unregister(id2), true);
    assert.equal(gk.unregister(id2), false);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.m.choice, 'unregistrationRequest');
    assert.deepEqual(sent[0]!.to, { ip: '198.51.100.8', port: 1719 });
    assert.equal(gk.resolve([{ kind: 'h323-ID', value: 'bob' }]), undefined);
  });

  it('a malformed RAS PDU is dropped and counted, never thrown', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        gk.handleDatagram(b, EP);
      }),
      { numRuns: 2000 },
    );
    assert.equal(gk.handleDatagram(Uint8Array.of(0xff, 0xff, 0xff), EP), undefined);
    assert.ok(gk.counters.malformed > 0);
  });
});

describe('gatekeeper: admission, bandwidth, disengage, info (routed mode)', () => {
  it('ARQ → ACF whose destCallSignalAddress is the node, gatekeeperRouted; answerCall ARQ too', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    register(gk, ['bob', '2002'], { ip: '198.51.100.8', port: 1720 });
    for (const dest of ['bob', '2002']) {
      const acf = ask(gk, arq(a, [dest]));
      assert.equal(acf?.choice, 'admissionConfirm');
      if (acf?.choice !== 'admissionConfirm') return;
      assert.deepEqual(fromH225Address(acf.value.destCallSignalAddress), NODE);
      assert.equal(acf.value.callModel.choice, 'gatekeeperRouted');
    }
    const answer = ask(gk, arq(a, [], { answerCall: true }));
    assert.equal(answer?.choice, 'admissionConfirm');
    assert.equal(gk.activeCalls, 1, 'same call identifier: one call per endpoint');
  });

  it('ARJ reasons: calledPartyNotRegistered, callerNotRegistered, requestDenied for a dialled IP when policy forbids', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    assert.equal(reason(ask(gk, arq(a, ['nobody']))), 'calledPartyNotRegistered');
    assert.equal(reason(ask(gk, arq('deadbeef', ['alice']))), 'callerNotRegistered');
    const ip = arq(a, [], { destCallSignalAddress: h225Address('203.0.113.5', 1720) });
    assert.equal(reason(ask(gk, ip)), 'requestDenied');
    const gk2 = new Gatekeeper(options({ allowDialledIp: true }), new FakeClock());
    const a2 = register(gk2, ['alice'], { ip: '198.51.100.7', port: 1720 });
    assert.equal(
      ask(gk2, arq(a2, [], { destCallSignalAddress: h225Address('203.0.113.5', 1720) }))?.choice,
      'admissionConfirm',
    );
  });

  it('admissions are bounded (ARJ resourceUnavailable) and forgotten with their endpoint, not with its re-registration', () => {
    const clock = new FakeClock();
    const gk = new Gatekeeper(options({ maxAdmittedCalls: 2, timeToLive: 60 }), clock);
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    const c = register(gk, ['carol'], { ip: '198.51.100.9', port: 1720 });
    register(gk, ['bob'], { ip: '198.51.100.8', port: 1720 });
    const call = (id: string, n: number) =>
      arq(id, ['bob'], { callReferenceValue: n, callIdentifier: { guid: new Uint8Array(16).fill(n) } });
    const first = call(a, 1);
    assert.equal(ask(gk, first)?.choice, 'admissionConfirm');
    assert.equal(ask(gk, call(c, 2))?.choice, 'admissionConfirm');
    assert.equal(reason(ask(gk, call(a, 3))), 'resourceUnavailable', 'no room for a third');
    assert.equal(ask(gk, first)?.choice, 'admissionConfirm', 'a retransmitted ARQ of an admitted call is answered');
    assert.equal(gk.activeCalls, 2);
    // alice registers again (full RRQ, same address): her admission stays
    register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    assert.equal(gk.activeCalls, 2);
    // carol unregisters without a DRQ: her admission goes with her, and there is room again
    const urq: RasMessage = {
      choice: 'unregistrationRequest',
      value: { requestSeqNum: ++seq, callSignalAddress: [h225Address('198.51.100.9', 1720)], endpointIdentifier: c },
    };
    assert.equal(ask(gk, urq)?.choice, 'unregistrationConfirm');
    assert.equal(gk.activeCalls, 1);
    assert.equal(ask(gk, call(a, 4))?.choice, 'admissionConfirm');
    // alice stops sending keep-alives: at expiry both her admissions are forgotten
    clock.advance((60 + 5) * 1000 + 1);
    assert.equal(gk.get(a), undefined);
    assert.equal(gk.activeCalls, 0);
  });

  it('BRQ → BCF (capped), DRQ → DCF (the call is forgotten), unknown endpoints → BRJ notBound / DRJ notRegistered', () => {
    const gk = new Gatekeeper(options({ maxBandwidthPerCall: 1000 }), new FakeClock());
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    register(gk, ['bob'], { ip: '198.51.100.8', port: 1720 });
    ask(gk, arq(a, ['bob']));
    const common = {
      conferenceID: new Uint8Array(16).fill(1),
      callReferenceValue: 5,
      callIdentifier: { guid: new Uint8Array(16).fill(2) },
    };
    const brq = (id: string): RasMessage => ({
      choice: 'bandwidthRequest',
      value: { requestSeqNum: ++seq, endpointIdentifier: id, bandWidth: 5000, ...common },
    });
    const bcf = ask(gk, brq(a));
    assert.equal(bcf?.choice, 'bandwidthConfirm');
    assert.equal((bcf?.value as { bandWidth: number } | undefined)?.bandWidth, 1000);
    assert.equal(reason(ask(gk, brq('nope'))), 'notBound');
    const drq = (id: string): RasMessage => ({
      choice: 'disengageRequest',
      value: {
        requestSeqNum: ++seq,
        endpointIdentifier: id,
        disengageReason: { choice: 'normalDrop', value: null },
        ...common,
      },
    });
    assert.equal(gk.activeCalls, 1);
    assert.equal(ask(gk, drq(a))?.choice, 'disengageConfirm');
    assert.equal(gk.activeCalls, 0);
    assert.equal(reason(ask(gk, drq('nope'))), 'notRegistered');
  });

  it('IRR with needResponse → IACK for a registered endpoint, IRQ-less INAK notRegistered otherwise', () => {
    const gk = new Gatekeeper(options(), new FakeClock());
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    const irr = (id: string): RasMessage => ({
      choice: 'infoRequestResponse',
      value: {
        requestSeqNum: ++seq,
        endpointType: { terminal: {}, mc: false, undefinedNode: false },
        endpointIdentifier: id,
        rasAddress: h225Address('198.51.100.7', 1719),
        callSignalAddress: [h225Address('198.51.100.7', 1720)],
        needResponse: true,
      },
    });
    assert.equal(ask(gk, irr(a))?.choice, 'infoRequestAck');
    assert.equal(ask(gk, irr('nope'))?.choice, 'infoRequestNak');
  });

  it('IRQ from the gatekeeper to an endpoint: its IRR answers it (and refreshes it); silence or unknown → undefined', async () => {
    const clock = new FakeClock();
    const gk = new Gatekeeper(options({ timeToLive: 60 }), clock);
    const out: Array<{ to: IpPort; m: RasMessage }> = [];
    gk.onSend = (x) => {
      const d = rasCodec.decode(x.bytes);
      assert.ok(d.ok);
      out.push({ to: x.to, m: d.value });
    };
    const a = register(gk, ['alice'], { ip: '198.51.100.7', port: 1720 });
    assert.equal(await gk.infoRequest('nobody'), undefined, 'not registered: nothing sent');
    assert.equal(out.length, 0);
    clock.advance(50_000);
    const asked = gk.infoRequest(a, 3000);
    assert.equal(out.length, 1);
    const irq = out[0]!;
    assert.ok(irq.m.choice === 'infoRequest');
    assert.deepEqual(irq.to, { ip: '198.51.100.7', port: 1719 }, "to the endpoint's RAS address");
    assert.equal(irq.m.value.callReferenceValue, 0, 'all its calls');
    assert.deepEqual(fromH225Address(irq.m.value.replyAddress!), { ip: '192.0.2.1', port: 1719 });
    const irr: RasMessage = {
      choice: 'infoRequestResponse',
      value: {
        requestSeqNum: irq.m.value.requestSeqNum,
        endpointType: { terminal: {}, mc: false, undefinedNode: false },
        endpointIdentifier: a,
        rasAddress: h225Address('198.51.100.7', 1719),
        callSignalAddress: [h225Address('198.51.100.7', 1720)],
        perCallInfo: [
          {
            callReferenceValue: 5,
            conferenceID: new Uint8Array(16).fill(1),
            callIdentifier: { guid: new Uint8Array(16).fill(2) },
            h245: { sendAddress: h225Address('198.51.100.7', 3000) },
            callSignalling: { sendAddress: h225Address('198.51.100.7', 1720) },
            callType: { choice: 'pointToPoint', value: null },
            callModel: { choice: 'gatekeeperRouted', value: null },
            bandWidth: 640,
          },
        ],
      },
    };
    assert.equal(ask(gk, irr), undefined, 'a solicited IRR needs no answer');
    const got = await asked;
    assert.equal(got?.perCallInfo?.[0]?.callReferenceValue, 5);
    // the IRR was a sign of life: 50 s after the registration, it now lives timeToLive + grace from the IRR
    clock.advance(60_000);
    assert.ok(gk.get(a), 'refreshed by the IRR');
    // an endpoint that does not answer: undefined after the timeout
    const silent = gk.infoRequest(a, 3000);
    clock.advance(3000);
    assert.equal(await silent, undefined);
  });
});

describe('gatekeeper: registrations survive a restart through the node store', () => {
  it('registrations written through are restored; a keep-alive after the restart is recognised', () => {
    const store = NodeStore.open(':memory:');
    const clock = new FakeClock();
    const gk1 = new Gatekeeper(options(), clock);
    new RegistrationStore(store).attach(gk1);
    const a = register(gk1, ['alice', '2001'], { ip: '198.51.100.7', port: 1720 });
    const b = register(gk1, ['bob'], { ip: '198.51.100.8', port: 1720 });
    ask(gk1, {
      choice: 'unregistrationRequest',
      value: { requestSeqNum: ++seq, callSignalAddress: [h225Address('198.51.100.8', 1720)], endpointIdentifier: b },
    });
    gk1.close();

    const gk2 = new Gatekeeper(options(), clock);
    assert.equal(new RegistrationStore(store).attach(gk2), 1);
    assert.equal(ask(gk2, keepAlive(a))?.choice, 'registrationConfirm');
    assert.equal(reason(ask(gk2, keepAlive(b))), 'fullRegistrationRequired');
    const t = gk2.resolve([{ kind: 'dialledDigits', value: '2001' }]);
    assert.equal(t?.kind === 'endpoint' && t.registration.endpointIdentifier, a);
    store.close();
  });
});
