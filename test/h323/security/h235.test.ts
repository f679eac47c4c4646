import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import { describe, it } from 'node:test';
import { FakeClock, systemClock } from '../../../src/common/timers.ts';
import { aliasFromText, H225_PROTOCOL_ID, h225Address, type IpPort } from '../../../src/h323/api.ts';
import { Gatekeeper, type GatekeeperOptions } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import { RasServer } from '../../../src/h323/gatekeeper/ras-server.ts';
import type { CryptoH323Token, RasMessage, RegistrationRequest } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import {
  findHashedToken,
  h235Key,
  hmacSha1_96,
  ReplayCache,
  signRas,
  verifyHash,
} from '../../../src/h323/security/h235.ts';
import { type H323SecurityMode, RasSecurity } from '../../../src/h323/security/ras-security.ts';
import { IntrusionGuard } from '../../../src/security/intrusion.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../../src/store/database.ts';

const GK_ID = 'crossway-core';
const EP: IpPort = { ip: '198.51.100.7', port: 1719 };
const REALM = 'example.com';

/**
 * Our own H.235.1 test endpoint (the ooh323c peer does not sign). It signs independently of the code under test:
 * the message is encoded with 96 zero bits in the hash, HMAC-SHA1 keyed with SHA-1 of the password is computed over
 * those octets with node:crypto and truncated to 12 octets, and the message is encoded again with that hash.
 */
function endpointSign(
  m: RasMessage,
  password: string,
  clear: { generalID?: string; sendersID?: string; timeStamp: number; random: number },
): { bytes: Uint8Array; mac: Buffer } {
  const token = (hash: Uint8Array): CryptoH323Token => ({
    choice: 'nestedcryptoToken',
    value: {
      choice: 'cryptoHashedToken',
      value: {
        tokenOID: '0.0.8.235.0.2.1',
        hashedVals: { tokenOID: '0.0.8.235.0.2.5', ...clear },
        token: { algorithmOID: '0.0.8.235.0.2.6', paramS: {}, hash: { length: 96, data: hash } },
      },
    },
  });
  const v = m.value as { cryptoTokens?: CryptoH323Token[] };
  v.cryptoTokens = [token(new Uint8Array(12))];
  const zeroed = rasCodec.encode(m);
  const key = createHash('sha1').update(password).digest();
  const mac = createHmac('sha1', key).update(zeroed).digest().subarray(0, 12);
  v.cryptoTokens = [token(mac)];
  return { bytes: rasCodec.encode(m), mac };
}

let seq = 100;
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

function arq(endpointIdentifier: string, dest: string[]): RasMessage {
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
    },
  };
}

function options(): GatekeeperOptions {
  return {
    gatekeeperIdentifier: GK_ID,
    rasAddress: { ip: '192.0.2.1', port: 1719 },
    callSignalAddress: { ip: '192.0.2.1', port: 1720 },
    timeToLive: 60,
    expiryGraceSeconds: 5,
    maxRegistrations: 1000,
    policy: { mode: 'allow-all', patterns: [] },
    allowDialledIp: false,
    maxBandwidthPerCall: 20_000,
  };
}

interface Setup {
  gk: Gatekeeper;
  clock: FakeClock;
  guard: IntrusionGuard;
  users: LocalCredentialStore;
  now: () => number;
}

function setup(mode: H323SecurityMode, authThreshold = 10): Setup {
  const clock = new FakeClock();
  const store = NodeStore.open(':memory:');
  const users = new LocalCredentialStore(store);
  users.add(REALM, 'alice', 'alice-secret');
  users.add(REALM, 'bob', 'bob-secret');
  const gk = new Gatekeeper(options(), clock);
  gk.setSecurity(
    new RasSecurity({
      mode,
      keys: { keyFor: (u) => users.h235Key(REALM, u) },
      timestampWindowSeconds: 300,
      wallNow: () => clock.wallNow(),
    }),
  );
  const guard = new IntrusionGuard({
    clock,
    enabled: true,
    limits: {
      auth: { threshold: authThreshold, windowMs: 60_000, blockMs: 600_000 },
      malformed: { threshold: 5, windowMs: 60_000, blockMs: 300_000 },
      flood: { threshold: 100, windowMs: 10_000, blockMs: 300_000 },
    },
    exempt: [],
    maxTrackedSources: 1000,
  });
  gk.setProtection(guard);
  return { gk, clock, guard, users, now: () => Math.floor(clock.wallNow() / 1000) };
}

let rnd = 1;
function send(s: Setup, bytes: Uint8Array, from: IpPort = EP): { m: RasMessage; bytes: Uint8Array } | undefined {
  const out = s.gk.handleDatagram(bytes, from);
  if (!out) return undefined;
  const d = rasCodec.decode(out.bytes);
  assert.ok(d.ok, 'the answer decodes');
  return { m: d.value, bytes: out.bytes };
}

const reason = (m: RasMessage | undefined) =>
  (m?.value as { rejectReason?: { choice: string } } | undefined)?.rejectReason?.choice;

/** Registers alice with a good token; returns the endpointIdentifier. */
function registerAlice(s: Setup): string {
  const { bytes } = endpointSign(rrq(['alice', '2001'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
    generalID: GK_ID,
    sendersID: 'alice',
    timeStamp: s.now(),
    random: rnd++,
  });
  const r = send(s, bytes);
  assert.equal(r?.m.choice, 'registrationConfirm', JSON.stringify(r?.m));
  return (r!.m.value as { endpointIdentifier: string }).endpointIdentifier;
}

describe('H.235.1 primitives', () => {
  it('HMAC-SHA1-96 is the first 96 bits of HMAC-SHA1 (RFC 2202 test case 1)', () => {
    const mac = hmacSha1_96(Buffer.alloc(20, 0x0b), Buffer.from('Hi There'));
    assert.equal(mac.toString('hex'), 'b617318655057264e28bc0b6');
  });

  it('the key is SHA-1 of the password', () => {
    assert.equal(h235Key('password').toString('hex'), '5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8');
  });

  it('procedure I: a hash computed independently over the message with the hash zeroed verifies; one bit off does not', () => {
    const m = rrq(['alice'], { ip: EP.ip, port: 1720 });
    const { bytes, mac } = endpointSign(m, 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: 1_767_225_600,
      random: 42,
    });
    const d = rasCodec.decode(bytes);
    assert.ok(d.ok);
    const found = findHashedToken((d.value.value as { cryptoTokens?: CryptoH323Token[] }).cryptoTokens);
    assert.ok(found?.ok);
    assert.deepEqual(Buffer.from(found.token.hash), mac);
    assert.equal(found.token.clear.sendersID, 'alice');
    assert.equal(verifyHash(bytes, mac, h235Key('alice-secret')), true);
    assert.equal(verifyHash(bytes, mac, h235Key('alice-secreT')), false);
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 3]! ^= 0x01;
    assert.equal(verifyHash(tampered, mac, h235Key('alice-secret')), false);
  });

  it('signRas produces exactly the octets an independent signer produces', () => {
    const clear = { generalID: 'ep-1', sendersID: GK_ID, timeStamp: 1_767_225_600, random: 7 };
    const reference = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }, { requestSeqNum: 5 }), 'pw', clear);
    const ours = signRas(rrq(['alice'], { ip: EP.ip, port: 1720 }, { requestSeqNum: 5 }), {
      key: h235Key('pw'),
      ...clear,
    });
    assert.deepEqual(Buffer.from(ours), Buffer.from(reference.bytes));
  });

  it('replay cache: a seen (sender, timeStamp, random) is a replay, the same datagram soon after a retransmission', () => {
    const c = new ReplayCache(10, 30_000);
    const h1 = new Uint8Array(12).fill(1);
    const h2 = new Uint8Array(12).fill(2);
    assert.equal(c.admit('alice', 100, 1, h1, 0, 600_000), 'new');
    assert.equal(c.admit('alice', 100, 1, h1, 5_000, 600_000), 'repeat');
    assert.equal(c.admit('alice', 100, 1, h2, 5_000, 600_000), 'replay');
    assert.equal(c.admit('alice', 100, 1, h1, 40_000, 600_000), 'replay');
    assert.equal(c.admit('bob', 100, 1, h1, 5_000, 600_000), 'new');
    for (let i = 0; i < 20; i++) c.admit('carol', 100, i, h1, 6_000, 600_000);
    assert.ok(c.size <= 10, 'bounded');
  });
});

describe('gatekeeper with H.235.1 required', () => {
  it('a good token registers; the RCF is signed by the gatekeeper (generalID the endpointIdentifier it assigns, sendersID us)', () => {
    const s = setup('required');
    const { bytes } = endpointSign(rrq(['alice', '2001'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: s.now(),
      random: rnd++,
    });
    const r = send(s, bytes);
    assert.equal(r?.m.choice, 'registrationConfirm');
    const id = (r.m.value as { endpointIdentifier: string }).endpointIdentifier;
    assert.equal(s.gk.get(id)?.authUser, 'alice');
    const found = findHashedToken((r.m.value as { cryptoTokens?: CryptoH323Token[] }).cryptoTokens);
    assert.ok(found?.ok, 'the RCF carries a procedure I token');
    // the endpoint's identity from now on (H323Plus checks the RCF's generalID against it), not the RRQ's sendersID
    assert.equal(found.token.clear.generalID, id);
    assert.equal(found.token.clear.sendersID, GK_ID);
    // the endpoint checks it independently: zero the hash octets, HMAC, compare
    const zeroed = Buffer.from(r.bytes);
    const at = zeroed.indexOf(Buffer.from(found.token.hash));
    zeroed.fill(0, at, at + 12);
    const mac = createHmac('sha1', createHash('sha1').update('alice-secret').digest())
      .update(zeroed)
      .digest()
      .subarray(0, 12);
    assert.deepEqual(mac, Buffer.from(found.token.hash));
  });

  it('an unsigned RRQ → RRJ securityDenial, not counted as a failed authentication', () => {
    const s = setup('required');
    const r = send(s, rasCodec.encode(rrq(['alice'], { ip: EP.ip, port: 1720 })));
    assert.equal(r?.m.choice, 'registrationReject');
    assert.equal(reason(r.m), 'securityDenial');
    assert.equal(s.guard.counters.events.auth, 0);
    assert.equal(s.gk.size, 0);
  });

  it('a wrong password → RRJ securityDenial, counted as a failed authentication; at the threshold the source is blocked', () => {
    const s = setup('required', 3);
    for (let i = 0; i < 3; i++) {
      const { bytes } = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }), 'guess', {
        generalID: GK_ID,
        sendersID: 'alice',
        timeStamp: s.now(),
        random: rnd++,
      });
      const r = send(s, bytes);
      assert.equal(reason(r?.m), 'securityDenial');
    }
    assert.equal(s.guard.counters.events.auth, 3);
    assert.equal(s.guard.blocks()[0]?.address, EP.ip);
    // now even a good RRQ from that address is dropped unanswered
    const { bytes } = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: s.now(),
      random: rnd++,
    });
    assert.equal(send(s, bytes), undefined);
    assert.equal(s.gk.counters.blocked, 1);
  });

  it('GRQ with a bad token → GRJ securityDenial; with a good one → GCF', () => {
    const s = setup('required');
    const grq = (): RasMessage => ({
      choice: 'gatekeeperRequest',
      value: {
        requestSeqNum: ++seq,
        protocolIdentifier: H225_PROTOCOL_ID,
        rasAddress: h225Address(EP.ip, EP.port),
        endpointType: { terminal: {}, mc: false, undefinedNode: false },
        endpointAlias: [aliasFromText('bob')],
      },
    });
    const bad = endpointSign(grq(), 'nope', { sendersID: 'bob', timeStamp: s.now(), random: rnd++ });
    const r1 = send(s, bad.bytes);
    assert.equal(r1?.m.choice, 'gatekeeperReject');
    assert.equal(reason(r1.m), 'securityDenial');
    const good = endpointSign(grq(), 'bob-secret', { sendersID: 'bob', timeStamp: s.now(), random: rnd++ });
    assert.equal(send(s, good.bytes)?.m.choice, 'gatekeeperConfirm');
  });

  it('an unsigned GRQ offering procedure I (pwdHash, HMAC-SHA1-96) → GCF selecting it; one offering nothing else → GRJ', () => {
    const s = setup('required');
    const grq = (algorithmOIDs: string[]): RasMessage => ({
      choice: 'gatekeeperRequest',
      value: {
        requestSeqNum: ++seq,
        protocolIdentifier: H225_PROTOCOL_ID,
        rasAddress: h225Address(EP.ip, EP.port),
        endpointType: { terminal: {}, mc: false, undefinedNode: false },
        endpointAlias: [aliasFromText('bob')],
        // as H323Plus offers it: the password hash among others, the algorithms it knows
        authenticationCapability: [
          { choice: 'pwdHash', value: null },
          { choice: 'dhExch', value: null },
        ],
        algorithmOIDs,
      },
    });
    const r = send(s, rasCodec.encode(grq(['1.2.840.113549.2.5', '0.0.8.235.0.2.6'])));
    assert.ok(r?.m.choice === 'gatekeeperConfirm', JSON.stringify(r?.m));
    assert.deepEqual(r.m.value.authenticationMode, { choice: 'pwdHash', value: null });
    assert.equal(r.m.value.algorithmOID, '0.0.8.235.0.2.6');
    // MD5 only (not procedure I): still refused unsigned in required mode
    assert.equal(reason(send(s, rasCodec.encode(grq(['1.2.840.113549.2.5'])))?.m), 'securityDenial');
    assert.equal(s.gk.size, 0, 'discovery registers nothing');
  });

  it('a timeStamp outside the window, a token for another gatekeeper, an unknown user → securityDenial', () => {
    const s = setup('required');
    const cases = [
      { generalID: GK_ID, sendersID: 'alice', timeStamp: s.now() - 301, random: rnd++ },
      { generalID: GK_ID, sendersID: 'alice', timeStamp: s.now() + 301, random: rnd++ },
      { generalID: 'other-gk', sendersID: 'alice', timeStamp: s.now(), random: rnd++ },
    ];
    for (const c of cases) {
      const { bytes } = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }), 'alice-secret', c);
      assert.equal(reason(send(s, bytes)?.m), 'securityDenial', JSON.stringify(c));
    }
    const { bytes } = endpointSign(rrq(['mallory'], { ip: EP.ip, port: 1720 }), 'x', {
      generalID: GK_ID,
      sendersID: 'mallory',
      timeStamp: s.now(),
      random: rnd++,
    });
    assert.equal(reason(send(s, bytes)?.m), 'securityDenial');
    assert.equal(s.guard.counters.events.auth, 4);
    assert.equal(s.gk.size, 0);
  });

  it('a user may register only aliases that include its own name', () => {
    const s = setup('required');
    const { bytes } = endpointSign(rrq(['bob'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: s.now(),
      random: rnd++,
    });
    assert.equal(reason(send(s, bytes)?.m), 'securityDenial');
  });

  it('replay: the same (timeStamp, random) in another message is refused; the identical datagram (a retransmission) is answered again', () => {
    const s = setup('required');
    const ts = s.now();
    const first = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: ts,
      random: 77,
    });
    assert.equal(send(s, first.bytes)?.m.choice, 'registrationConfirm');
    s.clock.advance(2000);
    assert.equal(send(s, first.bytes)?.m.choice, 'registrationConfirm', 'retransmission');
    const other = endpointSign(rrq(['alice', '2001'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: ts,
      random: 77,
    });
    assert.equal(reason(send(s, other.bytes)?.m), 'securityDenial');
    s.clock.advance(60_000);
    assert.equal(reason(send(s, first.bytes)?.m), 'securityDenial', 'too late for a retransmission');
  });

  it('after registration, requests are signed with sendersID = endpointIdentifier; another user cannot act for the endpoint', () => {
    const s = setup('required');
    const id = registerAlice(s);
    // lightweight RRQ and ARQ as alice, sendersID = her endpointIdentifier
    const ka = endpointSign(
      rrq([], { ip: EP.ip, port: 1720 }, { keepAlive: true, endpointIdentifier: id, terminalAlias: undefined }),
      'alice-secret',
      { generalID: GK_ID, sendersID: id, timeStamp: s.now(), random: rnd++ },
    );
    assert.equal(send(s, ka.bytes)?.m.choice, 'registrationConfirm');
    const ok = endpointSign(arq(id, ['2001']), 'alice-secret', {
      generalID: GK_ID,
      sendersID: id,
      timeStamp: s.now(),
      random: rnd++,
    });
    assert.equal(send(s, ok.bytes)?.m.choice, 'admissionConfirm');
    const asBob = endpointSign(arq(id, ['2001']), 'bob-secret', {
      generalID: GK_ID,
      sendersID: 'bob',
      timeStamp: s.now(),
      random: rnd++,
    });
    const r = send(s, asBob.bytes);
    assert.equal(r?.m.choice, 'admissionReject');
    assert.equal(reason(r.m), 'securityDenial');
    const unsigned = send(s, rasCodec.encode(arq(id, ['2001'])));
    assert.equal(reason(unsigned?.m), 'securityDenial');
  });
});

describe('bad input with H.235.1 required', () => {
  it('mutated signed RRQs and random datagrams never throw: each is answered or dropped and counted', () => {
    const s = setup('required', 1_000_000);
    const { bytes } = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }), 'alice-secret', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: s.now(),
      random: rnd++,
    });
    let state = 12345;
    const next = () => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state;
    };
    let answered = 0;
    for (let i = 0; i < 2000; i++) {
      const m = Buffer.from(bytes);
      for (let k = 0; k <= i % 4; k++) m[next() % m.length] = next() & 0xff;
      const out = s.gk.handleDatagram(i % 5 === 0 ? Buffer.from(Array.from({ length: next() % 200 }, next)) : m, {
        ip: `203.0.${i >> 8}.${i & 255}`,
        port: 1719,
      });
      if (out) {
        answered++;
        const d = rasCodec.decode(out.bytes);
        assert.ok(d.ok, `answer ${out.message.choice} decodes: ${d.ok ? '' : d.reason.message}`);
      }
    }
    assert.ok(answered > 0, 'answers');
    assert.ok(s.gk.counters.malformed > 0, 'malformed counted');
    assert.ok(s.gk.counters.securityDenied > 0, 'bad tokens refused');
    // any changed octet changes what the HMAC covers: only an unchanged copy of alice's RRQ can register
    for (const r of s.gk.list()) {
      assert.equal(r.authUser, 'alice');
      assert.deepEqual(
        r.aliases.map((a) => a.value),
        ['alice'],
      );
    }
  });
});

describe('gatekeeper with H.235.1 optional', () => {
  it('unsigned endpoints register; a bad token is still refused; an unsigned request cannot act for an authenticated registration', () => {
    const s = setup('optional');
    assert.equal(
      send(s, rasCodec.encode(rrq(['carol'], { ip: '198.51.100.9', port: 1720 })))?.m.choice,
      'registrationConfirm',
    );
    const bad = endpointSign(rrq(['alice'], { ip: EP.ip, port: 1720 }), 'wrong', {
      generalID: GK_ID,
      sendersID: 'alice',
      timeStamp: s.now(),
      random: rnd++,
    });
    assert.equal(reason(send(s, bad.bytes)?.m), 'securityDenial');
    const id = registerAlice(s);
    assert.equal(reason(send(s, rasCodec.encode(arq(id, ['carol'])))?.m), 'securityDenial');
    // nor replace it by registering the same call signalling address unsigned
    const takeover = send(s, rasCodec.encode(rrq(['alice'], { ip: EP.ip, port: 1720 })));
    assert.equal(reason(takeover?.m), 'securityDenial');
    assert.equal(s.gk.get(id)?.authUser, 'alice');
  });
});

describe('credential store keeps an H.235.1 key, never the password', () => {
  it('users add / passwd store SHA-1 of the password beside the HA1s', () => {
    const store = NodeStore.open(':memory:');
    const users = new LocalCredentialStore(store);
    users.add(REALM, 'dave', 'first');
    const k1 = users.h235Key(REALM, 'dave');
    assert.equal(k1.kind, 'found');
    assert.equal(k1.kind === 'found' && k1.key.toString('hex'), createHash('sha1').update('first').digest('hex'));
    users.setPassword(REALM, 'dave', 'second');
    const k2 = users.h235Key(REALM, 'dave');
    assert.equal(k2.kind === 'found' && k2.key.toString('hex'), createHash('sha1').update('second').digest('hex'));
    assert.equal(users.h235Key(REALM, 'nobody').kind, 'unknown');
    const row = store.db.prepare('SELECT * FROM credentials WHERE username = ?').get('dave') as Record<string, unknown>;
    assert.ok(!Object.values(row).some((v) => typeof v === 'string' && v.includes('second')), 'no plaintext');
  });
});

describe('H.235.1 over UDP against the RasServer', () => {
  it('a signed RRQ gets a signed RCF; a forged one gets RRJ securityDenial', async () => {
    const store = NodeStore.open(':memory:');
    const users = new LocalCredentialStore(store);
    users.add(REALM, 'alice', 'alice-secret');
    const gk = new Gatekeeper(options(), systemClock);
    gk.setSecurity(
      new RasSecurity({
        mode: 'required',
        keys: { keyFor: (u) => users.h235Key(REALM, u) },
        timestampWindowSeconds: 300,
        wallNow: () => Date.now(),
      }),
    );
    const server = await RasServer.start(gk, '127.0.0.1', 0);
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const port = sock.address().port;
    const answers: RasMessage[] = [];
    sock.on('message', (b) => {
      const d = rasCodec.decode(b);
      if (d.ok) answers.push(d.value);
    });
    const exchange = async (bytes: Uint8Array) => {
      const n = answers.length;
      sock.send(bytes, server.address().port, '127.0.0.1');
      for (let i = 0; i < 100 && answers.length === n; i++) await new Promise((r) => setTimeout(r, 10));
      return answers[n];
    };
    try {
      const now = Math.floor(Date.now() / 1000);
      const good = endpointSign(rrq(['alice'], { ip: '127.0.0.1', port }), 'alice-secret', {
        generalID: GK_ID,
        sendersID: 'alice',
        timeStamp: now,
        random: 1,
      });
      const a1 = await exchange(good.bytes);
      assert.equal(a1?.choice, 'registrationConfirm');
      assert.ok(findHashedToken((a1.value as { cryptoTokens?: CryptoH323Token[] }).cryptoTokens)?.ok);
      const forged = endpointSign(rrq(['alice'], { ip: '127.0.0.1', port }), 'not-her-password', {
        generalID: GK_ID,
        sendersID: 'alice',
        timeStamp: now,
        random: 2,
      });
      const a2 = await exchange(forged.bytes);
      assert.equal(a2?.choice, 'registrationReject');
      assert.equal(reason(a2), 'securityDenial');
      assert.equal(gk.counters.securityDenied, 1);
    } finally {
      sock.close();
      await server.close();
    }
  });
});
