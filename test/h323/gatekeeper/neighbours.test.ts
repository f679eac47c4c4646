import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/common/errors.ts';
import { FakeClock } from '../../../src/common/timers.ts';
import { validateConfig } from '../../../src/config/load.ts';
import { aliasFromText, fromH225Address, H225_PROTOCOL_ID, h225Address, type IpPort } from '../../../src/h323/api.ts';
import { Gatekeeper, type GatekeeperSend } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { type HostLookup, NeighbourDns, systemLookup } from '../../../src/h323/gatekeeper/neighbour-dns.ts';
import { Neighbours, type NeighboursOptions } from '../../../src/h323/gatekeeper/neighbours.ts';
import type { CryptoH323Token, LocationRequest, RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import {
  findHashedToken,
  findPwdHash,
  gkPwdHashToken,
  h235Key,
  signRas,
  verifyHash,
  verifyPwdHash,
} from '../../../src/h323/security/h235.ts';
import { type RoutingConfig, routingConfigSchema } from '../../../src/routing/config.ts';

/**
 * H.323 neighbor zones, sans-I/O: LRQ/LCF/LRJ both ways through the node's search rules, hop counts, loops, and a
 * neighbor that never answers (RIP to the endpoint, then ARJ after the zone's LRQ timeout).
 */

const NODE_RAS: IpPort = { ip: '192.0.2.1', port: 1719 };
const NODE_Q931: IpPort = { ip: '192.0.2.1', port: 1720 };
const GK_A: IpPort = { ip: '203.0.113.1', port: 1719 };
const GK_B: IpPort = { ip: '203.0.113.2', port: 1719 };
const EP: IpPort = { ip: '198.51.100.7', port: 1719 };

const routing = routingConfigSchema.parse({
  zones: [
    { name: 'GkA', type: 'neighbor', protocol: 'h323', address: GK_A.ip, gatekeeperIdentifier: 'gk-a', hopCount: 3 },
    { name: 'GkB', type: 'neighbor', protocol: 'h323', address: GK_B.ip, hopCount: 2, lrqTimeoutMs: 1500 },
    { name: 'Sip', type: 'neighbor', address: '203.0.113.9' },
  ],
  searchRules: [
    { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
    { name: 'to-a', priority: 100, pattern: { type: 'prefix', value: '33' }, targetZone: 'GkA' },
    { name: 'to-b', priority: 100, pattern: { type: 'prefix', value: '44' }, targetZone: 'GkB' },
    { name: 'sip-only', priority: 100, pattern: { type: 'prefix', value: '55' }, targetZone: 'Sip' },
    { name: 'bounce', priority: 100, pattern: { type: 'prefix', value: '66' }, targetZone: 'GkA' },
    { name: 'bounce-b', priority: 100, pattern: { type: 'prefix', value: '66' }, targetZone: 'GkB' },
  ],
});

function setup(r: RoutingConfig = routing, extra: Partial<NeighboursOptions> = {}) {
  const clock = new FakeClock();
  const gk = new Gatekeeper(
    {
      gatekeeperIdentifier: 'crossway',
      rasAddress: NODE_RAS,
      callSignalAddress: NODE_Q931,
      timeToLive: 60,
      expiryGraceSeconds: 5,
      maxRegistrations: 100,
      policy: { mode: 'allow-all', patterns: [] },
      allowDialledIp: false,
      maxBandwidthPerCall: 20_000,
    },
    clock,
  );
  const sent: Array<{ to: IpPort; m: RasMessage }> = [];
  const onWire = (s: GatekeeperSend) => {
    const d = rasCodec.decode(s.bytes);
    assert.ok(d.ok, `what we send decodes: ${s.message.choice}`);
    sent.push({ to: s.to, m: d.value });
  };
  gk.onSend = onWire;
  const nb = new Neighbours({ gatekeeper: gk, routing: r, clock, ...extra });
  gk.neighbours = nb;
  /** A datagram in; its direct answer (if any) goes on the wire list too. */
  const rx = (m: RasMessage, from: IpPort) => {
    const out = gk.handleDatagram(rasCodec.encode(m), from);
    if (out) onWire(out);
  };
  return { clock, gk, nb, sent, rx };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

let seq = 100;
function lrq(alias: string, over: Partial<LocationRequest> = {}, reply: IpPort = GK_A): RasMessage {
  return {
    choice: 'locationRequest',
    value: {
      requestSeqNum: ++seq,
      destinationInfo: [aliasFromText(alias)],
      replyAddress: h225Address(reply.ip, reply.port),
      ...over,
    },
  };
}

function register(t: ReturnType<typeof setup>, aliases: string[], csa: IpPort): string {
  t.rx(
    {
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
      },
    },
    csa,
  );
  const rcf = t.sent.pop();
  assert.equal(rcf?.m.choice, 'registrationConfirm');
  return (rcf.m.value as { endpointIdentifier: string }).endpointIdentifier;
}

function arq(endpointIdentifier: string, dest: string, requestSeqNum = ++seq): RasMessage {
  return {
    choice: 'admissionRequest',
    value: {
      requestSeqNum,
      callType: { choice: 'pointToPoint', value: null },
      endpointIdentifier,
      destinationInfo: [aliasFromText(dest)],
      srcInfo: [aliasFromText('alice')],
      bandWidth: 640,
      callReferenceValue: 7,
      conferenceID: new Uint8Array(16).fill(1),
      activeMC: false,
      answerCall: false,
      callIdentifier: { guid: new Uint8Array(16).fill(requestSeqNum & 0xff) },
    },
  };
}

const reason = (s: { m: RasMessage } | undefined) =>
  (s?.m.value as { rejectReason?: { choice: string } } | undefined)?.rejectReason?.choice;

const ofKind = (t: ReturnType<typeof setup>, kind: RasMessage['choice']) => t.sent.filter((s) => s.m.choice === kind);

describe('LRQ from a neighbor gatekeeper', () => {
  it('an alias registered here gets an LCF naming the node (routed model), sent to the replyAddress', async () => {
    const t = setup();
    register(t, ['bob', '2001'], { ip: '198.51.100.20', port: 1720 });
    t.rx(lrq('2001', { hopCount: 1 }, { ip: GK_A.ip, port: 1800 }), GK_A);
    await flush();
    const [lcf] = ofKind(t, 'locationConfirm');
    assert.ok(lcf, JSON.stringify(t.sent));
    assert.deepEqual(lcf.to, { ip: GK_A.ip, port: 1800 });
    const v = lcf.m.value as unknown as { callSignalAddress: never; rasAddress: never; requestSeqNum: number };
    assert.deepEqual(fromH225Address(v.callSignalAddress), NODE_Q931);
    assert.deepEqual(fromH225Address(v.rasAddress), NODE_RAS);
    assert.equal(v.requestSeqNum, seq);
    assert.equal(t.nb.counters.lcfSent, 1);
  });

  it('an alias nobody registered gets LRJ notRegistered', async () => {
    const t = setup();
    t.rx(lrq('nobody', { hopCount: 1 }), GK_A);
    await flush();
    const [lrj] = ofKind(t, 'locationReject');
    assert.equal(reason(lrj), 'notRegistered');
  });

  it('an LRQ from an address that is no neighbor zone gets LRJ requestDenied, even for a registered alias', async () => {
    const t = setup();
    register(t, ['bob'], { ip: '198.51.100.20', port: 1720 });
    const stranger = { ip: '203.0.113.66', port: 1719 };
    t.rx(lrq('bob', {}, stranger), stranger);
    await flush();
    const [lrj] = ofKind(t, 'locationReject');
    assert.equal(reason(lrj), 'requestDenied');
    assert.equal(t.nb.counters.unknownSource, 1);
    assert.equal(ofKind(t, 'locationConfirm').length, 0);
  });

  it('an LRQ naming another gatekeeperIdentifier than the zone configured is not from that zone', async () => {
    const t = setup();
    register(t, ['bob'], { ip: '198.51.100.20', port: 1720 });
    t.rx(lrq('bob', { gatekeeperIdentifier: 'impostor' }), GK_A);
    t.rx(lrq('bob', { gatekeeperIdentifier: 'gk-a' }), GK_A);
    await flush();
    assert.equal(ofKind(t, 'locationReject').length, 1);
    assert.equal(ofKind(t, 'locationConfirm').length, 1);
  });

  it('an LRQ without a usable destination gets LRJ incompleteAddress', async () => {
    const t = setup();
    t.rx(lrq('x', { destinationInfo: [] }), GK_A);
    await flush();
    const [lrj] = ofKind(t, 'locationReject');
    assert.equal(reason(lrj), 'incompleteAddress');
  });

  it('hop count: forwarded with one hop less; with none left it is not forwarded and gets LRJ hopCountExceeded', async () => {
    const t = setup();
    t.rx(lrq('4400', { hopCount: 3 }), GK_A);
    await flush();
    const [fwd] = ofKind(t, 'locationRequest');
    assert.ok(fwd, 'forwarded to GkB');
    assert.deepEqual(fwd.to, GK_B);
    const f = fwd.m.value as LocationRequest;
    assert.equal(f.hopCount, 2, 'min(3 - 1, zone hopCount 2)');
    assert.deepEqual(fromH225Address(f.replyAddress), NODE_RAS);
    // GkB confirms: the node confirms to GkA with its own address (calls go through the node)
    t.rx(
      {
        choice: 'locationConfirm',
        value: {
          requestSeqNum: f.requestSeqNum,
          callSignalAddress: h225Address(GK_B.ip, 1720),
          rasAddress: h225Address(GK_B.ip, 1719),
        },
      },
      GK_B,
    );
    await flush();
    const [lcf] = ofKind(t, 'locationConfirm');
    assert.deepEqual(lcf?.to, GK_A);
    assert.deepEqual(
      fromH225Address((lcf!.m.value as unknown as { callSignalAddress: never }).callSignalAddress),
      NODE_Q931,
    );

    t.sent.length = 0;
    t.rx(lrq('4401', { hopCount: 1 }), GK_A);
    t.rx(lrq('4402'), GK_A); // no hopCount: never forwarded
    await flush();
    assert.equal(ofKind(t, 'locationRequest').length, 0, 'nothing forwarded');
    const reasons = ofKind(t, 'locationReject').map(reason);
    assert.deepEqual(reasons, ['hopCountExceeded', 'hopCountExceeded']);
  });

  it('loops: an LRQ is never sent back to the zone it came from, and one that comes back while forwarded is refused', async () => {
    const t = setup();
    const callIdentifier = { guid: new Uint8Array(16).fill(9) };
    // '66…' matches rules toward GkA and GkB: from GkA it may only go to GkB
    t.rx(lrq('6600', { hopCount: 5, callIdentifier }), GK_A);
    await flush();
    const fwd = ofKind(t, 'locationRequest');
    assert.deepEqual(
      fwd.map((s) => s.to),
      [GK_B],
    );
    // GkB sends the same request back to us (a loop through the neighbors)
    t.rx(lrq('6600', { hopCount: 1, callIdentifier, gatekeeperIdentifier: 'gk-a' }, GK_A), GK_A);
    await flush();
    const lrj = ofKind(t, 'locationReject');
    assert.equal(lrj.length, 1);
    assert.equal(reason(lrj[0]), 'requestDenied');
    assert.equal(t.nb.counters.loops, 1);
  });

  it('a slow search answers the neighbor with a RIP first', async () => {
    const t = setup();
    t.rx(lrq('4400', { hopCount: 3 }), GK_A);
    await flush();
    t.clock.advance(600);
    const [rip] = ofKind(t, 'requestInProgress');
    assert.deepEqual(rip?.to, GK_A);
    t.clock.advance(1000); // GkB's LRQ times out (1500 ms)
    await flush();
    const [lrj] = ofKind(t, 'locationReject');
    assert.equal(reason(lrj), 'notRegistered');
  });
});

describe('ARQ for an alias that a search rule sends to a neighbor zone', () => {
  it('LRQ to the neighbor (its hop count, our identifier and RAS address); its LCF gives an ACF to the node', async () => {
    const t = setup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    t.rx(arq(alice, '4412'), EP);
    await flush();
    const [out] = ofKind(t, 'locationRequest');
    assert.ok(out);
    assert.deepEqual(out.to, GK_B);
    const l = out.m.value as LocationRequest;
    assert.equal(l.hopCount, 2);
    assert.equal(l.gatekeeperIdentifier, 'crossway');
    assert.deepEqual(l.destinationInfo, [aliasFromText('4412')]);
    assert.deepEqual(l.sourceInfo, [aliasFromText('alice')]);
    assert.equal(ofKind(t, 'admissionConfirm').length, 0, 'no answer before the neighbor has spoken');
    t.rx(
      {
        choice: 'locationConfirm',
        value: {
          requestSeqNum: l.requestSeqNum,
          callSignalAddress: h225Address(GK_B.ip, 1720),
          rasAddress: h225Address(GK_B.ip, 1719),
        },
      },
      GK_B,
    );
    await flush();
    const [acf] = ofKind(t, 'admissionConfirm');
    assert.ok(acf, JSON.stringify(t.sent.map((s) => s.m.choice)));
    assert.deepEqual(acf.to, EP);
    assert.deepEqual(
      fromH225Address((acf.m.value as unknown as { destCallSignalAddress: never }).destCallSignalAddress),
      NODE_Q931,
    );
    // the Setup that follows finds the same address without a second LRQ (recent LCF reused)
    const target = await t.nb.routeSetup([{ kind: 'dialledDigits', value: '4412' }], [], {
      ip: '198.51.100.10',
      port: 40000,
    });
    assert.deepEqual(target, {
      kind: 'address',
      address: { ip: GK_B.ip, port: 1720 },
      zone: 'GkB',
      found: { zone: 'GkB', alias: '4412', dialled: '4412' },
      sourceZone: 'LocalZone',
    });
    assert.equal(t.nb.counters.lrqSent, 1);
    assert.equal(t.nb.counters.cacheHits, 1);
  });

  it('an LRJ from the neighbor gives ARJ calledPartyNotRegistered', async () => {
    const t = setup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    t.rx(arq(alice, '4413'), EP);
    await flush();
    const l = ofKind(t, 'locationRequest')[0]!.m.value as LocationRequest;
    t.rx(
      {
        choice: 'locationReject',
        value: { requestSeqNum: l.requestSeqNum, rejectReason: { choice: 'notRegistered', value: null } },
      },
      GK_B,
    );
    await flush();
    const [arj] = ofKind(t, 'admissionReject');
    assert.equal(reason(arj), 'calledPartyNotRegistered');
    assert.deepEqual(t.nb.counters.lrjReceived, { notRegistered: 1 });
  });

  it('a neighbor that never answers: RIP to the endpoint, then ARJ once the zone lrqTimeoutMs has passed', async () => {
    const t = setup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    const n = ++seq;
    t.rx(arq(alice, '4414', n), EP);
    await flush();
    t.clock.advance(500);
    const [rip] = ofKind(t, 'requestInProgress');
    assert.ok(rip, 'RIP sent while waiting');
    assert.deepEqual(rip.to, EP);
    assert.equal((rip.m.value as { requestSeqNum: number }).requestSeqNum, n);
    // the endpoint retransmits its ARQ: no second LRQ
    t.rx(arq(alice, '4414', n), EP);
    await flush();
    assert.equal(ofKind(t, 'locationRequest').length, 1);
    t.clock.advance(999);
    await flush();
    assert.equal(ofKind(t, 'admissionReject').length, 0, 'not before 1500 ms');
    t.clock.advance(1);
    await flush();
    const arjs = ofKind(t, 'admissionReject');
    assert.equal(arjs.length, 1);
    assert.equal(reason(arjs[0]), 'calledPartyNotRegistered');
    assert.equal(t.nb.counters.timeouts, 1);
  });

  it('a RIP from the neighbor extends the wait; an LCF from another address is ignored', async () => {
    const t = setup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    t.rx(arq(alice, '4415'), EP);
    await flush();
    const l = ofKind(t, 'locationRequest')[0]!.m.value as LocationRequest;
    t.rx({ choice: 'requestInProgress', value: { requestSeqNum: l.requestSeqNum, delay: 3000 } }, GK_B);
    const lcf: RasMessage = {
      choice: 'locationConfirm',
      value: {
        requestSeqNum: l.requestSeqNum,
        callSignalAddress: h225Address(GK_B.ip, 1720),
        rasAddress: h225Address(GK_B.ip, 1719),
      },
    };
    t.rx(lcf, { ip: '203.0.113.99', port: 1719 });
    t.clock.advance(2500); // past lrqTimeoutMs, within the RIP's delay
    await flush();
    assert.equal(ofKind(t, 'admissionReject').length, 0);
    assert.equal(t.nb.counters.unexpected, 1);
    t.rx(lcf, GK_B);
    await flush();
    assert.equal(ofKind(t, 'admissionConfirm').length, 1);
  });

  it('local registrations still win (rule priority 50) and SIP zones are never asked by H.323', async () => {
    const t = setup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    register(t, ['4420'], { ip: '198.51.100.11', port: 1720 });
    t.rx(arq(alice, '4420'), EP);
    t.rx(arq(alice, '5500'), EP);
    await flush();
    assert.equal(ofKind(t, 'locationRequest').length, 0);
    assert.equal(ofKind(t, 'admissionConfirm').length, 1);
    assert.equal(ofKind(t, 'admissionReject').length, 1);
  });

  it('without any neighbor zone, admissions still go through transforms, call policy and search rules', async () => {
    const clock = new FakeClock();
    const gk = new Gatekeeper(
      {
        gatekeeperIdentifier: 'crossway',
        rasAddress: NODE_RAS,
        callSignalAddress: NODE_Q931,
        timeToLive: 60,
        expiryGraceSeconds: 5,
        maxRegistrations: 100,
        policy: { mode: 'allow-all', patterns: [] },
        allowDialledIp: false,
        maxBandwidthPerCall: 20_000,
      },
      clock,
    );
    const sent: Array<{ to: IpPort; m: RasMessage }> = [];
    const onWire = (x: GatekeeperSend) => {
      const d = rasCodec.decode(x.bytes);
      assert.ok(d.ok);
      sent.push({ to: x.to, m: d.value });
    };
    gk.onSend = onWire;
    // no zones, the default search rule (any alias → LocalZone); a transform strips a leading 9, and call policy
    // refuses alice → carol
    const nb = new Neighbours({
      gatekeeper: gk,
      routing: routingConfigSchema.parse({
        transforms: [{ name: 'strip-9', pattern: { type: 'prefix', value: '9' }, action: 'strip' }],
        callPolicy: [{ source: 'alice', destination: 'carol', action: 'reject' }],
      }),
      clock,
    });
    gk.neighbours = nb;
    const t = {
      sent,
      rx: (m: RasMessage, from: IpPort) => {
        const out = gk.handleDatagram(rasCodec.encode(m), from);
        if (out) onWire(out);
      },
    } as unknown as ReturnType<typeof setup>;
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    register(t, ['bob', '2002'], { ip: '198.51.100.11', port: 1720 });
    register(t, ['carol'], { ip: '198.51.100.12', port: 1720 });
    const answer = async (dest: string) => {
      sent.length = 0;
      t.rx(arq(alice, dest), EP);
      await flush();
      assert.equal(sent.length, 1, JSON.stringify(sent.map((x) => x.m.choice)));
      return sent[0]!;
    };
    // 92002 → 2002 (bob): admitted, routed to the node
    const acf = await answer('92002');
    assert.ok(acf.m.choice === 'admissionConfirm');
    assert.deepEqual(fromH225Address(acf.m.value.destCallSignalAddress), NODE_Q931);
    // carol is registered, but call policy refuses alice → carol
    const denied = await answer('carol');
    assert.equal(denied.m.choice, 'admissionReject');
    assert.equal(reason(denied), 'requestDenied');
    // bob and carol themselves are still admitted; an unknown alias is not registered
    assert.equal((await answer('bob')).m.choice, 'admissionConfirm');
    const unknown = await answer('nobody-registered');
    assert.equal(reason(unknown), 'calledPartyNotRegistered');
    // an alias nobody has, but the destCallSignalAddress of a registered endpoint (bob): admitted as on the table
    sent.length = 0;
    const byAddress = arq(alice, 'nobody-registered');
    assert.ok(byAddress.choice === 'admissionRequest');
    byAddress.value.destCallSignalAddress = h225Address('198.51.100.11', 1720);
    t.rx(byAddress, EP);
    await flush();
    assert.equal(sent[0]?.m.choice, 'admissionConfirm');
    // ...unless call policy refuses the alias
    sent.length = 0;
    const refused = arq(alice, 'carol');
    assert.ok(refused.choice === 'admissionRequest');
    refused.value.destCallSignalAddress = h225Address('198.51.100.11', 1720);
    t.rx(refused, EP);
    await flush();
    assert.equal(reason(sent[0]), 'requestDenied');
    // the router saw each one: its search history holds the transform and the policy decision
    const h = nb.router.history.recent();
    const transformed = h.find((r) => r.alias === '92002');
    assert.equal(transformed?.transform, 'strip-9');
    assert.equal(transformed?.searchedAlias, '2002');
    assert.equal(transformed?.result, 'found');
    assert.equal(h.find((r) => r.alias === 'carol')?.result, 'rejected');
  });
});

describe('a neighbor named by host name', () => {
  const named = (host: string, extraZones: object[] = [], rules: object[] = []) =>
    routingConfigSchema.parse({
      zones: [
        { name: 'Named', type: 'neighbor', protocol: 'h323', address: host, port: 1730, lrqTimeoutMs: 1000 },
        ...extraZones,
      ],
      searchRules: [
        { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
        { name: 'to-named', priority: 100, pattern: { type: 'prefix', value: '77' }, targetZone: 'Named' },
        ...rules,
      ],
    });
  /** A resolver the test drives: each call is recorded and answered by `answer`. */
  const resolver = (answer: (host: string) => Promise<string>) => {
    const asked: string[] = [];
    const lookup: HostLookup = (host, family) => {
      asked.push(`${host}/${family}`);
      return answer(host);
    };
    return { asked, lookup };
  };
  const lcf = (l: LocationRequest, from: IpPort): RasMessage => ({
    choice: 'locationConfirm',
    value: {
      requestSeqNum: l.requestSeqNum,
      callSignalAddress: h225Address(from.ip, 1720),
      rasAddress: h225Address(from.ip, from.port),
    },
  });

  it('config: an IP or a host name is taken; garbage is refused at routing.zones[i].address', () => {
    assert.equal(
      validateConfig({
        routing: { zones: [{ name: 'A', type: 'neighbor', protocol: 'h323', address: 'gk.example.com' }] },
      }).routing.zones[0]!.address,
      'gk.example.com',
    );
    const bad = ['not a host!', '999.1.1.1', 'gk.example.com:1719', 'http://gk.example.com', '-gk.example.com'];
    assert.throws(
      () =>
        validateConfig({
          routing: {
            zones: bad.map((address, i) => ({ name: `Z${i}`, type: 'neighbor', protocol: 'h323', address })),
          },
        }),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.deepEqual(
          e.issues.map((i) => i.path),
          bad.map((_b, i) => `routing.zones[${i}].address`),
        );
        assert.match(e.message, /IP address or host name/);
        return true;
      },
    );
  });

  it('is looked up when used, its LRQ goes to the address (zone port), its answers and its own LRQs are recognised', async () => {
    const r = resolver(async () => GK_B.ip);
    const t = setup(named('gk-b.example'), { lookup: r.lookup });
    assert.deepEqual(r.asked, [], 'nothing looked up before the zone is used');
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    t.rx(arq(alice, '7701'), EP);
    await flush();
    assert.deepEqual(r.asked, ['gk-b.example/4']);
    const [out] = ofKind(t, 'locationRequest');
    assert.deepEqual(out?.to, { ip: GK_B.ip, port: 1730 });
    t.rx(lcf(out!.m.value as LocationRequest, GK_B), GK_B);
    await flush();
    assert.equal(ofKind(t, 'admissionConfirm').length, 1);
    // an LRQ from the neighbor's resolved address is from the zone (an alias registered here: LCF, not requestDenied)
    t.rx(lrq('alice', {}, GK_B), GK_B);
    await flush();
    assert.equal(ofKind(t, 'locationConfirm').length, 1);
    const st = t.nb.status() as { zones: Array<{ host: string; address: IpPort | null }> };
    assert.deepEqual(st.zones[0], {
      name: 'Named',
      host: 'gk-b.example',
      address: { ip: GK_B.ip, port: 1730 },
      gatekeeperIdentifier: null,
      hopCount: 2,
      h235: false,
    } as never);
  });

  it('is looked up again once its address is a minute old, and follows a new address', async () => {
    let ip = GK_B.ip;
    const r = resolver(async () => ip);
    const t = setup(named('gk-b.example'), { lookup: r.lookup });
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    const ask = async (alias: string) => {
      t.sent.length = 0;
      t.rx(arq(alice, alias), EP);
      await flush();
      return ofKind(t, 'locationRequest')[0]?.to;
    };
    assert.deepEqual(await ask('7702'), { ip: GK_B.ip, port: 1730 });
    t.clock.advance(59_000);
    assert.deepEqual(await ask('7703'), { ip: GK_B.ip, port: 1730 });
    assert.equal(r.asked.length, 1, 'within a minute the cached address serves');
    ip = GK_A.ip;
    t.clock.advance(1_001);
    assert.deepEqual(await ask('7704'), { ip: GK_A.ip, port: 1730 });
    assert.equal(r.asked.length, 2);
    // an LCF from the old address does not answer the LRQ that went to the new one
    const l = ofKind(t, 'locationRequest')[0]!.m.value as LocationRequest;
    t.rx(lcf(l, GK_B), GK_B);
    await flush();
    assert.equal(ofKind(t, 'admissionConfirm').length, 0);
    assert.equal(t.nb.counters.unexpected, 1);
  });

  it('a name that does not resolve: no LRQ, counted, the search goes on to the next rule, else ARJ; never a throw', async () => {
    const r = resolver(async (host) => {
      if (host === 'throws.invalid') throw new Error('resolver broke');
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    });
    const t = setup(
      named(
        'gone.invalid',
        [{ name: 'GkA', type: 'neighbor', protocol: 'h323', address: GK_A.ip }],
        [{ name: 'then-a', priority: 110, pattern: { type: 'prefix', value: '771' }, targetZone: 'GkA' }],
      ),
      { lookup: r.lookup },
    );
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    // 7710: Named (no address) then GkA, which is asked
    t.rx(arq(alice, '7710'), EP);
    await flush();
    const lrqs = ofKind(t, 'locationRequest');
    assert.deepEqual(
      lrqs.map((x) => x.to),
      [GK_A],
    );
    assert.equal(t.nb.counters.unresolved, 1);
    // 7720: only Named: refused as for a neighbor that cannot find it; the failed lookup is reused (5 s), not repeated
    t.rx(arq(alice, '7720'), EP);
    await flush();
    assert.equal(reason(ofKind(t, 'admissionReject')[0]), 'calledPartyNotRegistered');
    assert.equal(r.asked.length, 1);
    assert.equal(t.nb.counters.unresolved, 2);
    const dns = (t.nb.status() as { dns: Record<string, number> }).dns;
    assert.deepEqual(dns, { lookups: 1, failures: 1, timeouts: 0, cacheHits: 1 });
    // an LRQ from an unknown address still gets requestDenied (the name was tried, it gave nothing)
    t.rx(lrq('alice', {}, EP), EP);
    await flush();
    assert.equal(reason(ofKind(t, 'locationReject')[0]), 'requestDenied');
    // a resolver that throws is a failed lookup too
    const u = setup(named('throws.invalid'), { lookup: r.lookup });
    const bob = register(u, ['bob'], { ip: '198.51.100.11', port: 1720 });
    u.rx(arq(bob, '7730'), EP);
    await flush();
    assert.equal(reason(ofKind(u, 'admissionReject')[0]), 'calledPartyNotRegistered');
    assert.equal(u.nb.counters.unresolved, 1);
  });

  it('a lookup slower than the zone lrqTimeoutMs is given up: ARJ at the same time as a silent neighbor', async () => {
    const r = resolver(() => new Promise<string>(() => {}));
    const t = setup(named('slow.example'), { lookup: r.lookup });
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    t.rx(arq(alice, '7740'), EP);
    await flush();
    t.clock.advance(999);
    await flush();
    assert.equal(ofKind(t, 'admissionReject').length, 0);
    t.clock.advance(1);
    await flush();
    assert.equal(reason(ofKind(t, 'admissionReject')[0]), 'calledPartyNotRegistered');
    assert.equal(ofKind(t, 'locationRequest').length, 0);
    assert.equal((t.nb.status() as { dns: { timeouts: number } }).dns.timeouts, 1);
  });

  it('lookUpNames (at start): the address is known without any search; a failure is counted and retried on use', async () => {
    let fail = true;
    const r = resolver(async (host) => {
      if (host === 'gk-b.example') return GK_B.ip;
      if (fail) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
      return GK_A.ip;
    });
    const t = setup(
      named('gk-b.example', [{ name: 'Later', type: 'neighbor', protocol: 'h323', address: 'later.example' }]),
      { lookup: r.lookup },
    );
    assert.equal(t.nb.zoneOf(GK_B.ip), undefined, 'not known before the lookup');
    const names = await t.nb.lookUpNames();
    assert.deepEqual(names, [
      { zone: 'Named', host: 'gk-b.example', result: { ok: true, ip: GK_B.ip } },
      { zone: 'Later', host: 'later.example', result: { ok: false, reason: 'ENOTFOUND' } },
    ]);
    assert.equal(t.nb.zoneOf(GK_B.ip)?.name, 'Named');
    assert.equal(t.sent.length, 0, 'no LRQ, no search');
    assert.deepEqual((t.nb.status() as { dns: object }).dns, { lookups: 2, failures: 1, timeouts: 0, cacheHits: 0 });
    // the failed name: an LRQ from an unknown address after the failure's 5 s looks it up again and finds the zone
    fail = false;
    t.clock.advance(5_000);
    t.rx(lrq('nobody', {}, GK_A), GK_A);
    await flush();
    assert.equal(t.nb.zoneOf(GK_A.ip)?.name, 'Later');
    assert.equal(reason(ofKind(t, 'locationReject')[0]), 'notRegistered', 'from the zone, not requestDenied');
    assert.equal(r.asked.filter((h) => h.startsWith('later.example')).length, 2);
  });

  it('the system resolver: localhost gives 127.0.0.1, a name under .invalid (RFC 2606) gives a failure', async () => {
    const dns = new NeighbourDns({ clock: new FakeClock(), lookup: systemLookup, family: 4 });
    assert.deepEqual(await dns.resolve('localhost', 10_000), { ok: true, ip: '127.0.0.1' });
    const gone = await dns.resolve('crossway-neighbour.invalid', 10_000);
    assert.equal(gone.ok, false);
    assert.equal(dns.known('LOCALHOST'), '127.0.0.1');
    assert.deepEqual(dns.counters, { lookups: 2, failures: 1, timeouts: 0, cacheHits: 0 });
  });
});

describe('H.235 with a neighbour sharing a password (authentication on the zone)', () => {
  const PASSWORD = 'neighbour-secret';
  const signed = routingConfigSchema.parse({
    zones: [
      {
        name: 'GkA',
        type: 'neighbor',
        protocol: 'h323',
        address: GK_A.ip,
        gatekeeperIdentifier: 'gk-a',
        lrqTimeoutMs: 1000,
        authentication: { username: 'crossway', password: PASSWORD },
      },
      { name: 'GkB', type: 'neighbor', protocol: 'h323', address: GK_B.ip },
    ],
    searchRules: [
      { name: 'local', priority: 50, pattern: { type: 'anyAlias' }, targetZone: 'LocalZone' },
      { name: 'to-a', priority: 100, pattern: { type: 'prefix', value: '33' }, targetZone: 'GkA' },
      { name: 'to-b', priority: 100, pattern: { type: 'prefix', value: '44' }, targetZone: 'GkB' },
    ],
  });
  const key = h235Key(PASSWORD);

  /** `setup` whose wire list keeps the datagrams too (tokens are checked against them). */
  function signedSetup() {
    const t = setup(signed);
    const wire: Array<{ to: IpPort; m: RasMessage; bytes: Uint8Array }> = [];
    const inner = t.gk.onSend;
    t.gk.onSend = (s) => {
      inner(s);
      wire.push({ to: s.to, m: t.sent.at(-1)!.m, bytes: s.bytes });
    };
    const rxBytes = (bytes: Uint8Array, from: IpPort) => {
      const out = t.gk.handleDatagram(bytes, from);
      if (out) t.gk.onSend(out);
    };
    return { ...t, wire, rxBytes };
  }
  const now = (t: { clock: FakeClock }) => Math.floor(t.clock.wallNow() / 1000);
  /** An LRQ from GkA as GnuGk signs it (`SendPassword`): its MD5 pwdHash naming its gatekeeperIdentifier. */
  const gnugkLrq = (alias: string, password: string, ts: number, sender = 'gk-a'): Uint8Array => {
    const m = lrq(alias);
    (m.value as LocationRequest).cryptoTokens = [gkPwdHashToken(sender, password, ts)];
    return rasCodec.encode(m);
  };
  const procIToken = (s: { m: RasMessage }) => {
    const f = findHashedToken((s.m.value as { cryptoTokens?: CryptoH323Token[] }).cryptoTokens);
    assert.ok(f?.ok, 'a procedure I token');
    return f.token;
  };

  it('our LRQ to the zone carries GnuGk’s pwdHash and a procedure I token, both good for the password', async () => {
    const t = signedSetup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    t.rx(arq(alice, '3301'), EP);
    t.rx(arq(alice, '4401'), EP);
    await flush();
    const toA = t.wire.find((w) => w.m.choice === 'locationRequest' && w.to.ip === GK_A.ip)!;
    const toB = t.wire.find((w) => w.m.choice === 'locationRequest' && w.to.ip === GK_B.ip)!;
    const pwd = findPwdHash((toA.m.value as LocationRequest).cryptoTokens);
    assert.ok(pwd);
    assert.equal(pwd.sender, 'crossway');
    assert.equal(pwd.timeStamp, now(t));
    assert.ok(verifyPwdHash(pwd, PASSWORD));
    assert.equal(verifyPwdHash(pwd, 'other'), false);
    const tok = procIToken(toA);
    assert.equal(tok.clear.sendersID, 'crossway');
    assert.equal(tok.clear.generalID, 'gk-a');
    assert.ok(verifyHash(toA.bytes, tok.hash, key), 'HMAC over the whole datagram');
    assert.equal(verifyHash(toA.bytes, tok.hash, h235Key('other')), false);
    assert.equal((toB.m.value as LocationRequest).cryptoTokens, undefined, 'a zone without a password: unsigned');
    const status = t.nb.status() as { zones: Array<{ name: string; h235: boolean }> };
    assert.deepEqual(
      status.zones.map((z) => [z.name, z.h235]),
      [
        ['GkA', true],
        ['GkB', false],
      ],
    );
    assert.ok(!JSON.stringify(status).includes(PASSWORD), 'the password is not in the status');
    assert.ok(!JSON.stringify([...t.nb.zones.values()]).includes(PASSWORD), 'nor in the zones');
  });

  it('an LRQ from the zone with GnuGk’s pwdHash is answered, our LCF signed; a bad one gets LRJ securityDenial', async () => {
    const t = signedSetup();
    register(t, ['bob'], { ip: '198.51.100.20', port: 1720 });
    t.rxBytes(gnugkLrq('bob', PASSWORD, now(t)), GK_A);
    await flush();
    const lcf = t.wire.find((w) => w.m.choice === 'locationConfirm');
    assert.ok(lcf, JSON.stringify(t.sent.map((s) => s.m.choice)));
    const tok = procIToken(lcf);
    assert.ok(verifyHash(lcf.bytes, tok.hash, key));
    assert.equal(tok.clear.sendersID, 'crossway');
    assert.equal(t.nb.counters.authenticated, 1);
    // wrong password, unsigned, stale, signed by another name: each refused, counted, no LCF
    const bad: Array<[string, Uint8Array]> = [
      ['wrong password', gnugkLrq('bob', 'guess', now(t))],
      ['unsigned', rasCodec.encode(lrq('bob'))],
      ['stale', gnugkLrq('bob', PASSWORD, now(t) - 301)],
      ['from the future', gnugkLrq('bob', PASSWORD, now(t) + 301)],
      ['another sender', gnugkLrq('bob', PASSWORD, now(t), 'gk-x')],
    ];
    for (const [what, bytes] of bad) {
      const before = t.wire.length;
      t.rxBytes(bytes, GK_A);
      await flush();
      const answers = t.wire.slice(before);
      assert.equal(answers.length, 1, what);
      assert.equal(answers[0]!.m.choice, 'locationReject', what);
      assert.equal(reason(answers[0]), 'securityDenial', what);
    }
    assert.equal(t.nb.counters.securityDenied, bad.length);
    assert.equal(t.nb.counters.lrjSent.securityDenial, bad.length);
    assert.equal(t.nb.counters.lcfSent, 1);
    // a zone without a password is not asked for tokens
    t.rx(lrq('bob', {}, GK_B), GK_B);
    await flush();
    assert.equal(t.nb.counters.lcfSent, 2);
  });

  it('an LRQ signed with procedure I is answered; tampered or replayed it is refused, retransmitted it is not', async () => {
    const t = signedSetup();
    register(t, ['bob'], { ip: '198.51.100.20', port: 1720 });
    const sign = (m: RasMessage, password: string, random: number) =>
      signRas(m, { key: h235Key(password), sendersID: 'gk-a', generalID: 'crossway', timeStamp: now(t), random });
    const good = sign(lrq('bob'), PASSWORD, 7);
    t.rxBytes(good, GK_A);
    await flush();
    t.rxBytes(good, GK_A); // a RAS retry resends the same datagram
    await flush();
    assert.equal(t.nb.counters.lcfSent, 2);
    const tampered = Buffer.from(sign(lrq('bob'), PASSWORD, 8));
    const at = tampered.indexOf(Buffer.from('bob'.split('').flatMap((c) => [0, c.charCodeAt(0)])));
    assert.ok(at > 0);
    tampered[at + 1] = 'x'.charCodeAt(0); // "xob"
    t.rxBytes(tampered, GK_A);
    t.rxBytes(sign(lrq('bob'), 'guess', 9), GK_A);
    t.rxBytes(sign(lrq('bob'), PASSWORD, 7), GK_A); // same timeStamp and random, another message: a replay
    await flush();
    assert.equal(t.nb.counters.securityDenied, 3);
    assert.equal(t.nb.counters.lcfSent, 2);
    assert.equal(t.nb.counters.authenticated, 2);
  });

  it('an answer from the zone with a bad token is dropped (the search times out); an unsigned one, as GnuGk sends, is taken', async () => {
    const t = signedSetup();
    const alice = register(t, ['alice'], { ip: '198.51.100.10', port: 1720 });
    const lcfFor = (l: LocationRequest): RasMessage => ({
      choice: 'locationConfirm',
      value: {
        requestSeqNum: l.requestSeqNum,
        callSignalAddress: h225Address(GK_A.ip, 1720),
        rasAddress: h225Address(GK_A.ip, 1719),
      },
    });
    t.rx(arq(alice, '3302'), EP);
    await flush();
    const l1 = ofKind(t, 'locationRequest')[0]!.m.value as LocationRequest;
    const forged = signRas(lcfFor(l1), {
      key: h235Key('guess'),
      sendersID: 'gk-a',
      generalID: 'crossway',
      timeStamp: now(t),
      random: 1,
    });
    t.rxBytes(forged, GK_A);
    await flush();
    assert.equal(t.nb.counters.badAnswerTokens, 1);
    assert.equal(t.nb.counters.lcfReceived, 0);
    t.clock.advance(1000);
    await flush();
    assert.equal(t.nb.counters.timeouts, 1);
    assert.equal(reason(ofKind(t, 'admissionReject')[0]), 'calledPartyNotRegistered');
    // unsigned LCF (GnuGk signs none of its answers) and a good signed one: both found
    t.rx(arq(alice, '3303'), EP);
    await flush();
    const l2 = ofKind(t, 'locationRequest')[1]!.m.value as LocationRequest;
    t.rx(lcfFor(l2), GK_A);
    t.rx(arq(alice, '3304'), EP);
    await flush();
    const l3 = ofKind(t, 'locationRequest')[2]!.m.value as LocationRequest;
    t.rxBytes(
      signRas(lcfFor(l3), { key, sendersID: 'gk-a', generalID: 'crossway', timeStamp: now(t), random: 2 }),
      GK_A,
    );
    await flush();
    assert.equal(t.nb.counters.lcfReceived, 2);
    assert.equal(ofKind(t, 'admissionConfirm').length, 2);
    assert.equal(t.nb.counters.badAnswerTokens, 1);
  });
});
