import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, test } from 'node:test';
import { type AliasText, aliasFromText, aliasToText, buildSetup, H225_PROTOCOL_ID } from '../../../src/h323/api.ts';
import { aliasKey, type H323Registration } from '../../../src/h323/gatekeeper/gatekeeper.ts';
import type { RasMessage } from '../../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  encodeCallSignalling,
} from '../../../src/h323/q931/call-signalling.ts';
import { decodeCause, findIe, IE, q931MessageName } from '../../../src/h323/q931/q931.ts';
import {
  CallSecurity,
  type SetupAdmission,
  type SetupRegistrationView,
} from '../../../src/h323/security/call-security.ts';
import { h235Key } from '../../../src/h323/security/h235.ts';
import type { H323SecurityMode } from '../../../src/h323/security/ras-security.ts';
import { encodeTpkt, TpktFramer } from '../../../src/h323/transport/tpkt.ts';
import { callControl } from '../../../src/roles/control.ts';
import { LocalCredentialStore } from '../../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../../src/store/database.ts';
import {
  endpointCheckCall,
  endpointSignCall,
  endpointSignRas,
  endpointSignSetup,
} from '../../helpers/h235-endpoint.ts';
import { startTestNode } from '../../helpers/lab-node.ts';
import { rasPeer, rrq } from '../../helpers/ras.ts';

/**
 * H.235.1 on call signalling: the Setup an endpoint sends to the node's call signalling port is checked like its
 * RAS (procedure I, HMAC-SHA1-96 over the whole Q.931 message), against the credential store, before a call exists.
 */

const GK_ID = 'crossway-core';
const NOW = 1_800_000_000_000;

let cr = 0;
function setup(source: string[], dest = 'bob'): CallSignallingMessage {
  cr++;
  return buildSetup({
    callReference: cr,
    callIdentifier: new Uint8Array(16).fill(cr),
    conferenceID: new Uint8Array(16).fill(cr),
    source: source.map(aliasFromText),
    destination: [aliasFromText(dest)],
  });
}

function reg(endpointIdentifier: string, aliases: string[], authUser?: string): H323Registration {
  return {
    endpointIdentifier,
    aliases: aliases.map((a) => aliasToText(aliasFromText(a))),
    callSignalAddresses: [{ ip: '127.0.0.1', port: 1720 }],
    rasAddress: { ip: '127.0.0.1', port: 1719 },
    timeToLive: 60,
    registeredAt: NOW,
    refreshedAt: NOW,
    vendor: undefined,
    ...(authUser !== undefined ? { authUser } : {}),
  };
}

function view(regs: H323Registration[]): SetupRegistrationView {
  return {
    get: (id) => regs.find((r) => r.endpointIdentifier === id),
    byAlias: (a: AliasText) => regs.find((r) => r.aliases.some((x) => aliasKey(x) === aliasKey(a))),
    gatekeeperIdentifier: GK_ID,
  };
}

function security(mode: H323SecurityMode, now = NOW, everyCallMessage = false): CallSecurity {
  const users: Record<string, string> = { alice: 'alice-secret', carol: 'carol-secret' };
  return new CallSecurity({
    mode,
    keys: { keyFor: (u) => (users[u] ? { kind: 'found', key: h235Key(users[u]) } : { kind: 'unknown' }) },
    timestampWindowSeconds: 300,
    everyCallMessage,
    wallNow: () => now,
  });
}

/** A Q.931 Information from the caller (call reference `cr`), with its Information-UUIE. */
function information(cr: number): CallSignallingMessage {
  return {
    q931: { callReference: cr, fromDestination: false, callReferenceLength: 2, messageType: 0x7b, ies: [] },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': {
          choice: 'information',
          value: { protocolIdentifier: H225_PROTOCOL_ID, callIdentifier: { guid: new Uint8Array(16).fill(cr) } },
        },
        h245Tunnelling: false,
      },
    },
  };
}

/** The ReleaseComplete a refused later message gets: securityDenied, cause 21, the message's call reference. */
function assertReleased(v: SetupAdmission, cr: number, why: RegExp): void {
  assert.equal(v.kind, 'deny', JSON.stringify(v));
  if (v.kind !== 'deny') return;
  assert.match(v.reason, why);
  const d = decodeCallSignalling(v.reply);
  assert.ok(d.ok);
  assert.equal(q931MessageName(d.value.q931.messageType), 'releaseComplete');
  assert.equal(d.value.q931.callReference, cr);
  const body = d.value.uu?.['h323-uu-pdu']['h323-message-body'];
  assert.ok(body?.choice === 'releaseComplete');
  assert.equal(body.value.reason?.choice, 'securityDenied');
  const cause = decodeCause(findIe(d.value.q931, IE.cause)!.data);
  assert.ok(cause.ok && cause.value.value === 21);
}

/** The ReleaseComplete of a refusal: reason securityDenied, cause 21, the caller's call reference and call id. */
function assertDenied(v: SetupAdmission, sent: CallSignallingMessage, why: RegExp): void {
  assert.equal(v.kind, 'deny', JSON.stringify(v));
  if (v.kind !== 'deny') return;
  assert.match(v.reason, why);
  const d = decodeCallSignalling(v.reply);
  assert.ok(d.ok);
  assert.equal(q931MessageName(d.value.q931.messageType), 'releaseComplete');
  assert.equal(d.value.q931.callReference, sent.q931.callReference);
  assert.equal(d.value.q931.fromDestination, true);
  const body = d.value.uu?.['h323-uu-pdu']['h323-message-body'];
  assert.ok(body?.choice === 'releaseComplete');
  assert.equal(body.value.reason?.choice, 'securityDenied');
  const sentBody = sent.uu!['h323-uu-pdu']['h323-message-body'];
  assert.ok(sentBody.choice === 'setup');
  assert.deepEqual(body.value.callIdentifier?.guid, sentBody.value.callIdentifier?.guid);
  const cause = decodeCause(findIe(d.value.q931, IE.cause)!.data);
  assert.ok(cause.ok);
  assert.equal(cause.value.value, 21);
}

const t = Math.floor(NOW / 1000);

describe('CallSecurity (H.235.1 on Setup, sans-I/O)', () => {
  const regs = view([reg('ep-alice', ['alice', '2001'], 'alice'), reg('ep-carol', ['carol'])]);

  it('required: a Setup signed by a registered endpoint passes, without its tokens; others are refused', () => {
    const s = security('required');
    const m = setup(['alice']);
    const bytes = endpointSignSetup(m, 'alice-secret', {
      sendersID: 'ep-alice',
      generalID: GK_ID,
      timeStamp: t,
      random: 1,
    });
    const v = s.checkSetup(bytes, regs, false);
    assert.ok(v.kind === 'pass', JSON.stringify(v));
    assert.equal(v.user, 'alice');
    const out = decodeCallSignalling(v.pdu);
    assert.ok(out.ok);
    const body = out.value.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'setup');
    assert.equal(body.value.cryptoTokens, undefined, 'the token stays with the node');
    assert.deepEqual(body.value.sourceAddress, [aliasFromText('alice')]);

    // the same bytes again: a replay
    assertDenied(s.checkSetup(bytes, regs, false), m, /replayed/);
    // unsigned
    const u = setup(['alice']);
    assertDenied(s.checkSetup(encodeCallSignalling(u), regs, false), u, /no H.235.1 token/);
    // wrong password
    const w = setup(['alice']);
    const wb = endpointSignSetup(w, 'guess', { sendersID: 'ep-alice', generalID: GK_ID, timeStamp: t, random: 2 });
    assertDenied(s.checkSetup(wb, regs, false), w, /bad hash from alice/);
    // stale and future timestamps (window 300 s)
    for (const [i, ts] of [t - 301, t + 301].entries()) {
      const x = setup(['alice']);
      const xb = endpointSignSetup(x, 'alice-secret', { sendersID: 'ep-alice', timeStamp: ts, random: 10 + i });
      assertDenied(s.checkSetup(xb, regs, false), x, /outside the window/);
    }
    // a token meant for another gatekeeper
    const g = setup(['alice']);
    const gb = endpointSignSetup(g, 'alice-secret', {
      sendersID: 'ep-alice',
      generalID: 'gk-x',
      timeStamp: t,
      random: 3,
    });
    assertDenied(s.checkSetup(gb, regs, false), g, /token for gk-x/);
    // a good signature, but calling as an alias of another registration
    const f = setup(['alice', 'carol']);
    const fb = endpointSignSetup(f, 'alice-secret', { sendersID: 'ep-alice', timeStamp: t, random: 4 });
    assertDenied(s.checkSetup(fb, regs, false), f, /calling as h323-ID:carol/);
    // a user of the credential store that is not registered
    const r = setup(['dave']);
    const s2 = new CallSecurity({
      mode: 'required',
      keys: { keyFor: () => ({ kind: 'found', key: h235Key('dave-secret') }) },
      timestampWindowSeconds: 300,
      wallNow: () => NOW,
    });
    const rb = endpointSignSetup(r, 'dave-secret', { sendersID: 'dave', timeStamp: t, random: 5 });
    assertDenied(s2.checkSetup(rb, regs, false), r, /dave is not registered/);
    assert.deepEqual(s.counters, {
      authenticated: 1,
      unsigned: 0,
      neighbour: 0,
      denied: 7,
      failures: 6,
      messages: 0,
      messagesUnsigned: 0,
      signed: 0,
      unsignable: 0,
    });
  });

  it('an endpoint registered without authentication signs as the user its alias names', () => {
    const s = security('required');
    const m = setup(['carol']);
    const b = endpointSignSetup(m, 'carol-secret', {
      sendersID: 'ep-carol',
      generalID: GK_ID,
      timeStamp: t,
      random: 1,
    });
    const v = s.checkSetup(b, regs, false);
    assert.ok(v.kind === 'pass' && v.user === 'carol', JSON.stringify(v));
  });

  it('optional: unsigned Setups go on unless they speak for an authenticated registration; off checks nothing', () => {
    const s = security('optional');
    const c = encodeCallSignalling(setup(['carol']));
    assert.deepEqual(s.checkSetup(c, regs, false), { kind: 'pass', pdu: c });
    const a = setup(['alice']);
    assertDenied(s.checkSetup(encodeCallSignalling(a), regs, false), a, /authenticated registration/);
    const w = setup(['alice']);
    const wb = endpointSignSetup(w, 'guess', { sendersID: 'ep-alice', timeStamp: t, random: 1 });
    assertDenied(s.checkSetup(wb, regs, false), w, /bad hash/);
    const off = security('off');
    const ob = endpointSignSetup(setup(['alice']), 'guess', { sendersID: 'ep-alice', timeStamp: t, random: 1 });
    assert.deepEqual(off.checkSetup(ob, regs, false), { kind: 'pass', pdu: ob });
  });

  it('a neighbor zone is not asked for tokens; what is not a Setup is left to the call', () => {
    const s = security('required');
    const n = encodeCallSignalling(setup(['gnugk-user']));
    assert.deepEqual(s.checkSetup(n, regs, true), { kind: 'pass', pdu: n });
    const junk = new Uint8Array([0x08, 0x02, 0x00]);
    assert.deepEqual(s.checkSetup(junk, regs, false), { kind: 'pass', pdu: junk });
    assert.equal(s.counters.neighbour, 1);
  });
});

describe('CallSecurity (H.235.1 on the messages after a signed Setup, sans-I/O)', () => {
  const sign = (cr: number, password: string, random: number, timeStamp = t) =>
    endpointSignCall(information(cr), password, { sendersID: 'ep-alice', generalID: GK_ID, timeStamp, random });

  it('a good token passes and is removed; the same token again, a wrong password, another user, a stale or foreign token end the call', () => {
    const s = security('optional');
    const v = s.checkMessage(sign(40, 'alice-secret', 400), 'alice', GK_ID);
    assert.ok(v.kind === 'pass', JSON.stringify(v));
    const d = decodeCallSignalling(v.pdu);
    assert.ok(d.ok);
    const body = d.value.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'information');
    assert.equal(body.value.cryptoTokens, undefined, 'the token was for the node');
    assert.deepEqual(body.value.callIdentifier?.guid, new Uint8Array(16).fill(40));

    assertReleased(s.checkMessage(sign(40, 'alice-secret', 400), 'alice', GK_ID), 40, /replayed/);
    assertReleased(s.checkMessage(sign(41, 'guess', 401), 'alice', GK_ID), 41, /bad hash/);
    // carol's own good token on alice's call: not the key of the user who signed the Setup
    assertReleased(s.checkMessage(sign(42, 'carol-secret', 402), 'alice', GK_ID), 42, /bad hash/);
    assertReleased(s.checkMessage(sign(43, 'alice-secret', 403, t - 3600), 'alice', GK_ID), 43, /window/);
    const foreign = endpointSignCall(information(44), 'alice-secret', {
      generalID: 'other-gk',
      timeStamp: t,
      random: 404,
    });
    assertReleased(s.checkMessage(foreign, 'alice', GK_ID), 44, /other-gk/);
    assert.equal(s.counters.messages, 1);
    assert.equal(s.counters.failures, 5);
  });

  it('a message without a token passes unchanged unless required mode asks for every call message', () => {
    const unsigned = encodeCallSignalling(information(45));
    for (const s of [security('optional', NOW, true), security('required'), security('off', NOW, true)]) {
      const v = s.checkMessage(unsigned, 'alice', GK_ID);
      assert.ok(v.kind === 'pass' && v.pdu === unsigned, `${s.mode}: ${JSON.stringify(v)}`);
    }
    const strict = security('required', NOW, true);
    const v = strict.checkMessage(unsigned, 'alice', GK_ID);
    assertReleased(v, 45, /information from alice without an H.235.1 token/);
    assert.ok(v.kind === 'deny' && !v.failure, 'a missing token is not a failed authentication');
    // a good token passes in strict mode too; a body that cannot carry one passes (an `empty` Facility)
    assert.equal(strict.checkMessage(sign(46, 'alice-secret', 406), 'alice', GK_ID).kind, 'pass');
    const empty = information(47);
    empty.uu!['h323-uu-pdu']['h323-message-body'] = { choice: 'empty', value: null };
    assert.equal(strict.checkMessage(encodeCallSignalling(empty), 'alice', GK_ID).kind, 'pass');
  });
});

/** A Q.931 Connect (or Alerting) from the callee's side (`fromDestination`), with its UUIE. */
function answer(cr: number, kind: 'connect' | 'alerting'): CallSignallingMessage {
  return {
    q931: {
      callReference: cr,
      fromDestination: true,
      callReferenceLength: 2,
      messageType: kind === 'connect' ? 0x07 : 0x01,
      ies: [],
    },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': {
          choice: kind,
          value: {
            protocolIdentifier: H225_PROTOCOL_ID,
            destinationInfo: { mc: false, undefinedNode: false },
            callIdentifier: { guid: new Uint8Array(16).fill(cr) },
            ...(kind === 'connect' ? { conferenceID: new Uint8Array(16).fill(cr) } : {}),
          },
        } as never,
        h245Tunnelling: false,
      },
    },
  };
}

describe("CallSecurity (H.235.1 on the call signalling the node sends, and on the callee's answers, sans-I/O)", () => {
  it("signMessage puts a procedure I token keyed by the user's password in the message (generalID the endpoint, sendersID the gatekeeper), the rest unchanged", () => {
    const s = security('required');
    const plain = encodeCallSignalling(answer(60, 'connect'));
    const out = s.signMessage(plain, 'alice', 'ep-alice', GK_ID);
    const check = endpointCheckCall(out, 'alice-secret');
    assert.equal(check.valid, true, "alice verifies the node's Connect with her password");
    assert.equal(check.clear?.generalID, 'ep-alice');
    assert.equal(check.clear?.sendersID, GK_ID);
    assert.equal(check.clear?.timeStamp, t);
    assert.equal(endpointCheckCall(out, 'carol-secret').valid, false, 'another password does not verify it');
    const tampered = Buffer.from(out);
    tampered[tampered.length - 1]! ^= 1;
    assert.equal(endpointCheckCall(tampered, 'alice-secret').valid, false, 'the hash covers the whole message');
    // the message itself is the one the node built: only the token was added
    const d = decodeCallSignalling(out);
    assert.ok(d.ok);
    const body = d.value.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'connect');
    const { cryptoTokens, ...rest } = body.value;
    assert.equal(cryptoTokens?.length, 1);
    const orig = decodeCallSignalling(plain);
    assert.ok(orig.ok);
    assert.deepEqual(rest, orig.value.uu!['h323-uu-pdu']['h323-message-body'].value);
    const withoutUu = (q: typeof d.value.q931) => ({ ...q, ies: q.ies.filter((i) => i.id !== IE.userUser) });
    assert.deepEqual(withoutUu(d.value.q931), withoutUu(orig.value.q931));
    // a fresh random per message (replay protection at the endpoint)
    const again = endpointCheckCall(s.signMessage(plain, 'alice', 'ep-alice', GK_ID), 'alice-secret');
    assert.ok(again.valid && again.clear?.random !== check.clear?.random);
    // the Setup toward a signed callee, keyed by the callee's password
    const toCarol = s.signMessage(encodeCallSignalling(setup(['alice'], 'carol')), 'carol', 'ep-carol', GK_ID);
    const c = endpointCheckCall(toCarol, 'carol-secret');
    assert.ok(c.valid && c.clear?.generalID === 'ep-carol' && c.clear.sendersID === GK_ID, JSON.stringify(c));
    assert.equal(s.counters.signed, 3);
  });

  it('signMessage leaves alone what cannot be signed: an empty body, a user without a key, security off', () => {
    const s = security('required');
    const empty = information(61);
    empty.uu!['h323-uu-pdu']['h323-message-body'] = { choice: 'empty', value: null };
    const e = encodeCallSignalling(empty);
    assert.equal(s.signMessage(e, 'alice', 'ep-alice', GK_ID), e);
    const plain = encodeCallSignalling(answer(62, 'alerting'));
    assert.equal(s.signMessage(plain, 'dave', 'ep-dave', GK_ID), plain);
    assert.equal(s.signMessage(new Uint8Array([8, 2, 0]), 'alice', 'ep-alice', GK_ID).length, 3);
    assert.deepEqual([s.counters.signed, s.counters.unsignable], [0, 3]);
    assert.equal(security('off').signMessage(plain, 'alice', 'ep-alice', GK_ID), plain);
  });

  it("a signed callee's answers: a good token passes without it, a bad one gets ReleaseComplete securityDenied toward the callee, a missing one is refused only in required mode with everyCallMessage", () => {
    const s = security('required');
    const signedBy = (cr: number, password: string, random: number) =>
      endpointSignCall(answer(cr, 'connect'), password, {
        sendersID: 'ep-carol',
        generalID: GK_ID,
        timeStamp: t,
        random,
      });
    const v = s.checkMessage(signedBy(63, 'carol-secret', 630), 'carol', GK_ID);
    assert.ok(v.kind === 'pass', JSON.stringify(v));
    const d = decodeCallSignalling(v.pdu);
    assert.ok(d.ok);
    const body = d.value.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'connect' && body.value.cryptoTokens === undefined);
    // the wrong key: the reply goes back to the callee, whose call reference flag is the caller's side
    const bad = s.checkMessage(signedBy(64, 'alice-secret', 640), 'carol', GK_ID);
    assertReleased(bad, 64, /bad hash on connect from carol/);
    assert.ok(bad.kind === 'deny' && bad.failure);
    const rc = decodeCallSignalling((bad as { reply: Uint8Array }).reply);
    assert.ok(rc.ok && rc.value.q931.fromDestination === false);
    const unsigned = encodeCallSignalling(answer(65, 'connect'));
    assert.equal(s.checkMessage(unsigned, 'carol', GK_ID).kind, 'pass');
    const strict = security('required', NOW, true);
    const refused = strict.checkMessage(unsigned, 'carol', GK_ID);
    assertReleased(refused, 65, /connect from carol without an H.235.1 token/);
    assert.ok(refused.kind === 'deny' && !refused.failure);
  });
});

/** Connects from `localAddress`, sends `bytes`, returns the first PDU the node answers (or undefined on close). */
async function call(
  q931: { address: string; port: number },
  bytes: Uint8Array,
  localAddress = '127.0.0.1',
): Promise<CallSignallingMessage | undefined> {
  const s = net.connect({ host: q931.address, port: q931.port, localAddress });
  try {
    await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
    const framer = new TpktFramer();
    const first = new Promise<CallSignallingMessage | undefined>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer from the node')), 5000);
      s.on('data', (d) => {
        const r = framer.push(d);
        assert.ok(r.ok);
        for (const p of r.value) {
          const m = decodeCallSignalling(p);
          assert.ok(m.ok);
          clearTimeout(timer);
          resolve(m.value);
        }
      });
      s.on('close', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
    s.write(encodeTpkt(bytes));
    return await first;
  } finally {
    s.destroy();
  }
}

const reasonOf = (m: CallSignallingMessage | undefined) => {
  const b = m?.uu?.['h323-uu-pdu']['h323-message-body'];
  return b?.choice === 'releaseComplete' ? b.value.reason?.choice : b?.choice;
};

/** Registers `alias` on the lab node with an RRQ signed by the user of that name (password `<alias>-secret`). */
function registerSigned(n: Awaited<ReturnType<typeof labNode>>, seq: number, alias: string, callSignalPort: number) {
  return n.register(
    endpointSignRas(rrq(seq, [alias], callSignalPort, n.peer.port), `${alias}-secret`, {
      sendersID: alias,
      generalID: GK_ID,
      random: seq,
    }),
  );
}

/** A node with bob's call signalling listener; registers endpoints over RAS and reads h323.status. */
async function labNode(
  mode: H323SecurityMode,
  authFailureThreshold?: number,
  routing?: Record<string, unknown>,
  everyCallMessage = false,
) {
  const dataDir = mkdtempSync(join(tmpdir(), `crossway-h235-setup-${mode}-`));
  const seed = NodeStore.open(join(dataDir, 'core'));
  const creds = new LocalCredentialStore(seed);
  creds.add('example.com', 'alice', 'alice-secret');
  creds.add('example.com', 'bob', 'bob-secret');
  seed.close();
  const bobLegs: Array<{
    socket: net.Socket;
    setup: Promise<CallSignallingMessage>;
    messages: CallSignallingMessage[];
    /** The PDUs as received (to check the node's tokens). */
    raw: Uint8Array[];
  }> = [];
  const bob = net.createServer((socket) => {
    const framer = new TpktFramer();
    const messages: CallSignallingMessage[] = [];
    const raw: Uint8Array[] = [];
    const setup = new Promise<CallSignallingMessage>((resolve) => {
      socket.on('data', (d) => {
        const r = framer.push(d);
        if (!r.ok) return;
        for (const p of r.value) {
          const m = decodeCallSignalling(p);
          if (m.ok) {
            messages.push(m.value);
            raw.push(p);
            resolve(m.value);
          }
        }
      });
    });
    socket.on('error', () => {});
    bobLegs.push({ socket, setup, messages, raw });
  });
  await new Promise<void>((r) => bob.listen(0, '127.0.0.1', () => r()));
  const bobPort = (bob.address() as net.AddressInfo).port;
  const node = await startTestNode({
    dataDir,
    h323: { enabled: true, gatekeeper: { timeToLive: 60, security: { mode, realm: 'example.com', everyCallMessage } } },
    ...(routing ? { routing } : {}),
    // loopback is exempt from intrusion protection by default: not here, when the test looks at blocks
    ...(authFailureThreshold
      ? {
          security: {
            intrusion: {
              exempt: [],
              authFailures: { threshold: authFailureThreshold, windowSeconds: 60, blockSeconds: 600 },
            },
          },
        }
      : {}),
  });
  const ras = node.sockets().find((s) => s.listener === 'h323-ras' && s.node === 'core')!;
  const q931 = node.sockets().find((s) => s.listener === 'h323-q931' && s.node === 'core')!;
  const peer = await rasPeer(4000);
  const register = async (bytes: Uint8Array) => {
    peer.socket.send(bytes, ras.port, ras.address);
    const rcf = await peer.next('registrationConfirm', 'registrationReject');
    assert.equal(rcf.choice, 'registrationConfirm', JSON.stringify(rcf));
    return (rcf.value as { endpointIdentifier: string }).endpointIdentifier;
  };
  const counters = async () =>
    (
      (await callControl(dataDir, 'h323.status')) as Array<{
        node: string;
        calls: { counters: { securityDenied: number; securityReleased: number; accepted: number } };
      }>
    ).find((s) => s.node === 'core')!.calls.counters;
  const close = async () => {
    for (const l of bobLegs) l.socket.destroy();
    peer.socket.close();
    bob.close();
    await node.close();
  };
  const blocks = async () =>
    (
      (await callControl(dataDir, 'security.blocks.list', { node: 'core' })) as Array<{
        blocks: Array<{ address: string; category: string }>;
      }>
    )[0]!.blocks.map((b) => `${b.address} ${b.category}`);
  return { node, dataDir, ras, q931, peer, register, counters, blocks, close, bobLegs, bobPort };
}

test('a lab node with H.235.1 required: a signed Setup from a registered endpoint is routed; unsigned, bad password, replayed and stale Setups get ReleaseComplete securityDenied, counted (a source with 3 bad tokens is blocked), and open no leg B', async () => {
  const n = await labNode('required', 3);
  try {
    const rrqOf = (alias: string, csa: number, seq: number): RasMessage => rrq(seq, [alias], csa, n.peer.port);
    const aliceId = await n.register(
      endpointSignRas(rrqOf('alice', 11790, 1), 'alice-secret', { sendersID: 'alice', generalID: GK_ID, random: 1 }),
    );
    const bobId = await n.register(
      endpointSignRas(rrqOf('bob', n.bobPort, 2), 'bob-secret', { sendersID: 'bob', generalID: GK_ID, random: 2 }),
    );
    // an unsigned RRQ is refused, as before
    n.peer.socket.send(rasCodec.encode(rrqOf('eve', 11791, 3)), n.ras.port, n.ras.address);
    assert.equal((await n.peer.next('registrationReject')).choice, 'registrationReject');

    // 1. signed by alice (sendersID: her endpointIdentifier) → routed: bob gets the Setup, without alice's token
    const signed = endpointSignSetup(setup(['alice']), 'alice-secret', {
      sendersID: aliceId,
      generalID: GK_ID,
      random: 100,
    });
    const s = net.connect({ host: n.q931.address, port: n.q931.port });
    await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
    s.on('error', () => {});
    s.write(encodeTpkt(signed));
    for (let i = 0; i < 50 && n.bobLegs.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(n.bobLegs.length, 1, 'leg B opened to bob');
    const atBob = await n.bobLegs[0]!.setup;
    const body = atBob.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'setup');
    assert.deepEqual(body.value.sourceAddress, [aliasFromText('alice')]);
    // not alice's token (it was for the node): bob registered signed, so the node signs its Setup with bob's key
    const atBobCheck = endpointCheckCall(n.bobLegs[0]!.raw[0]!, 'bob-secret');
    assert.ok(atBobCheck.valid, JSON.stringify(atBobCheck));
    assert.deepEqual([atBobCheck.clear?.generalID, atBobCheck.clear?.sendersID], [bobId, GK_ID]);
    s.destroy();

    // 2. unsigned, 3. wrong password, 4. the same signed bytes again, 5. a stale timestamp: each refused, each
    // from a source of its own (then 127.0.0.2 tries two more wrong passwords)
    const stale = Math.floor(Date.now() / 1000) - 3600;
    const guess = (random: number) =>
      endpointSignSetup(setup(['alice']), 'guess', { sendersID: aliceId, generalID: GK_ID, random });
    const refused: Array<[string, Uint8Array]> = [
      ['127.0.0.1', encodeCallSignalling(setup(['alice']))],
      ['127.0.0.2', guess(101)],
      ['127.0.0.3', signed],
      [
        '127.0.0.4',
        endpointSignSetup(setup(['alice']), 'alice-secret', {
          sendersID: aliceId,
          generalID: GK_ID,
          timeStamp: stale,
          random: 102,
        }),
      ],
      ['127.0.0.2', guess(103)],
      ['127.0.0.2', guess(104)],
    ];
    for (const [i, [from, bytes]] of refused.entries()) {
      const answer = await call(n.q931, bytes, from);
      assert.equal(q931MessageName(answer?.q931.messageType ?? -1), 'releaseComplete', `case ${i}`);
      assert.equal(reasonOf(answer), 'securityDenied', `case ${i}`);
      const cause = decodeCause(findIe(answer!.q931, IE.cause)!.data);
      assert.ok(cause.ok && cause.value.value === 21, `case ${i}: cause 21`);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(n.bobLegs.length, 1, 'no leg B for a refused Setup');
    const c = await n.counters();
    assert.equal(c.securityDenied, 6, JSON.stringify(c));
    // bad tokens count as failed authentications: 127.0.0.2's third one blocked it; missing tokens do not count
    assert.deepEqual(await n.blocks(), ['127.0.0.2 auth']);
    assert.equal(await call(n.q931, guess(105), '127.0.0.2'), undefined, 'a blocked source is not answered');
  } finally {
    await n.close();
  }
});

test('a lab node with H.235.1 optional: an unsigned Setup from an endpoint registered without a token is routed', async () => {
  const n = await labNode('optional');
  try {
    await n.register(rasCodec.encode(rrq(1, ['carol'], 11792, n.peer.port)));
    await n.register(rasCodec.encode(rrq(2, ['bob'], n.bobPort, n.peer.port)));
    const s = net.connect({ host: n.q931.address, port: n.q931.port });
    await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
    s.on('error', () => {});
    s.write(encodeTpkt(encodeCallSignalling(setup(['carol']))));
    for (let i = 0; i < 50 && n.bobLegs.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(n.bobLegs.length, 1, 'leg B opened to bob');
    const body = (await n.bobLegs[0]!.setup).uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'setup');
    assert.deepEqual(body.value.sourceAddress, [aliasFromText('carol')]);
    s.destroy();
    assert.equal((await n.counters()).securityDenied, 0);
  } finally {
    await n.close();
  }
});

test('a lab node with H.235.1 optional and a call-policy rule refusing unauthenticated callers: the signed Setup and ARQ go through, the unsigned ones are refused by policy (ReleaseComplete securityDenied cause 21, ARJ requestDenied)', async () => {
  const n = await labNode('optional', undefined, { callPolicy: [{ authenticated: false, action: 'reject' }] });
  try {
    const aliceId = await registerSigned(n, 1, 'alice', 11793);
    const carolId = await n.register(rasCodec.encode(rrq(2, ['carol'], 11794, n.peer.port)));
    await n.register(rasCodec.encode(rrq(3, ['bob'], n.bobPort, n.peer.port)));
    const arq = (seq: number, endpointIdentifier: string, from: string): RasMessage => ({
      choice: 'admissionRequest',
      value: {
        requestSeqNum: seq,
        callType: { choice: 'pointToPoint', value: null },
        endpointIdentifier,
        destinationInfo: [aliasFromText('bob')],
        srcInfo: [aliasFromText(from)],
        bandWidth: 640,
        callReferenceValue: seq,
        conferenceID: new Uint8Array(16).fill(seq),
        activeMC: false,
        answerCall: false,
        callIdentifier: { guid: new Uint8Array(16).fill(seq) },
      },
    });
    // ARQ: alice's, signed, is admitted; carol's, unsigned, is refused by the policy rule
    n.peer.socket.send(
      endpointSignRas(arq(10, aliceId, 'alice'), 'alice-secret', { sendersID: aliceId, generalID: GK_ID, random: 10 }),
      n.ras.port,
      n.ras.address,
    );
    const acf = await n.peer.next('admissionConfirm', 'admissionReject');
    assert.equal(acf.choice, 'admissionConfirm', JSON.stringify(acf));
    n.peer.socket.send(rasCodec.encode(arq(11, carolId, 'carol')), n.ras.port, n.ras.address);
    const arj = await n.peer.next('admissionConfirm', 'admissionReject');
    assert.ok(arj.choice === 'admissionReject', JSON.stringify(arj));
    assert.equal(arj.value.rejectReason.choice, 'requestDenied');

    // Setup: carol's, unsigned, passes the H.235.1 check (optional) but call policy refuses it: cause 21, no leg B
    const refused = await call(n.q931, encodeCallSignalling(setup(['carol'])));
    assert.equal(q931MessageName(refused?.q931.messageType ?? -1), 'releaseComplete');
    assert.equal(reasonOf(refused), 'securityDenied');
    const cause = decodeCause(findIe(refused!.q931, IE.cause)!.data);
    assert.ok(cause.ok && cause.value.value === 21, 'cause 21');
    assert.equal(n.bobLegs.length, 0, 'no leg B for the refused Setup');
    assert.equal((await n.counters()).securityDenied, 0, 'refused by policy, not by the token check');

    // alice's, signed: authenticated, so the rule does not apply and bob gets the Setup
    const s = net.connect({ host: n.q931.address, port: n.q931.port });
    await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
    s.on('error', () => {});
    s.write(
      encodeTpkt(
        endpointSignSetup(setup(['alice']), 'alice-secret', { sendersID: aliceId, generalID: GK_ID, random: 12 }),
      ),
    );
    for (let i = 0; i < 50 && n.bobLegs.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(n.bobLegs.length, 1, 'leg B opened to bob');
    const body = (await n.bobLegs[0]!.setup).uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'setup');
    assert.deepEqual(body.value.sourceAddress, [aliasFromText('alice')]);
    s.destroy();

    // H.323 routing's search history (h323.status): who signed, and what policy made of it
    const status = (await callControl(n.dataDir, 'h323.status')) as Array<{
      node: string;
      neighbours: { searches: Array<{ label: string; authenticated: boolean; policy: string; result: string }> };
    }>;
    const searches = status
      .find((x) => x.node === 'core')!
      .neighbours.searches.map((r) => `${r.label} | ${r.authenticated} | ${r.policy} | ${r.result}`);
    assert.deepEqual(searches, [
      'Setup from 127.0.0.1 signed by alice | true | allow (no rule) | found',
      'Setup from 127.0.0.1 | false | reject (rule 1) | rejected',
      `ARQ from ${carolId} | false | reject (rule 1) | rejected`,
      `ARQ from ${aliceId} signed by alice | true | allow (no rule) | found`,
    ]);
  } finally {
    await n.close();
  }
});

test('a lab node with H.235.1 required and everyCallMessage: after a signed Setup, a signed Information reaches the callee without its token; an unsigned one, or one with a wrong password, ends the call (ReleaseComplete securityDenied to the caller, the callee released)', async () => {
  const n = await labNode('required', undefined, undefined, true);
  try {
    const aliceId = await registerSigned(n, 1, 'alice', 11795);
    const bobId = await registerSigned(n, 2, 'bob', n.bobPort);
    const clear = (random: number) => ({ sendersID: aliceId, generalID: GK_ID, random });
    /** A signed call from alice to bob, up to bob's leg; returns the caller's socket and what it receives. */
    const placeCall = async (random: number) => {
      const m = setup(['alice']);
      const cr = m.q931.callReference;
      const s = net.connect({ host: n.q931.address, port: n.q931.port });
      await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
      s.on('error', () => {});
      const got: CallSignallingMessage[] = [];
      const framer = new TpktFramer();
      s.on('data', (d) => {
        const r = framer.push(d);
        if (!r.ok) return;
        for (const p of r.value) {
          const x = decodeCallSignalling(p);
          if (x.ok) got.push(x.value);
        }
      });
      const legs = n.bobLegs.length;
      s.write(encodeTpkt(endpointSignSetup(m, 'alice-secret', clear(random))));
      for (let i = 0; i < 50 && n.bobLegs.length === legs; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(n.bobLegs.length, legs + 1, 'leg B opened to bob');
      const leg = n.bobLegs[legs]!;
      await leg.setup;
      return { s, cr, got, leg };
    };
    const waitFor = async (what: () => boolean) => {
      for (let i = 0; i < 50 && !what(); i++) await new Promise((r) => setTimeout(r, 100));
      return what();
    };
    const released = (got: CallSignallingMessage[]) =>
      got.find((x) => q931MessageName(x.q931.messageType) === 'releaseComplete');

    // 1. a signed Information goes through, without alice's token; then an unsigned one ends the call
    const c1 = await placeCall(200);
    c1.s.write(encodeTpkt(endpointSignCall(information(c1.cr), 'alice-secret', clear(201))));
    const isInfo = (x: CallSignallingMessage) => q931MessageName(x.q931.messageType) === 'information';
    assert.ok(await waitFor(() => c1.leg.messages.some(isInfo)), 'bob got the Information');
    // alice's token stayed with the node; bob (registered signed) gets the node's, keyed with his password
    const infoAt = c1.leg.messages.findIndex(isInfo);
    const infoCheck = endpointCheckCall(c1.leg.raw[infoAt]!, 'bob-secret');
    assert.ok(infoCheck.valid && infoCheck.clear?.generalID === bobId, JSON.stringify(infoCheck));
    assert.equal(endpointCheckCall(c1.leg.raw[infoAt]!, 'alice-secret').valid, false);
    c1.s.write(encodeTpkt(encodeCallSignalling(information(c1.cr))));
    assert.ok(await waitFor(() => released(c1.got) !== undefined), 'alice got a ReleaseComplete');
    const rc = released(c1.got)!;
    assert.equal(reasonOf(rc), 'securityDenied');
    assert.equal(rc.q931.callReference, c1.cr);
    const cause = decodeCause(findIe(rc.q931, IE.cause)!.data);
    assert.ok(cause.ok && cause.value.value === 21);
    assert.ok(await waitFor(() => released(c1.leg.messages) !== undefined), 'bob was released');
    assert.equal(c1.leg.messages.filter(isInfo).length, 1, 'the unsigned Information did not reach bob');

    // 2. an Information signed with a wrong password ends the call too
    const c2 = await placeCall(210);
    c2.s.write(encodeTpkt(endpointSignCall(information(c2.cr), 'guess', clear(211))));
    assert.ok(await waitFor(() => released(c2.got) !== undefined), 'alice got a ReleaseComplete');
    assert.equal(reasonOf(released(c2.got)), 'securityDenied');
    assert.ok(await waitFor(() => released(c2.leg.messages) !== undefined), 'bob was released');
    assert.equal(c2.leg.messages.filter(isInfo).length, 0);
    c1.s.destroy();
    c2.s.destroy();
    const c = await n.counters();
    assert.equal(c.securityReleased, 2, JSON.stringify(c));
    assert.equal(c.securityDenied, 0);
  } finally {
    await n.close();
  }
});

test("a lab node with H.235.1 required: the node signs what it sends a signed caller and a signed callee (each verifies it with its own password), and checks the callee's answers (a bad token ends the call: ReleaseComplete securityDenied to the callee, the caller released)", async () => {
  const n = await labNode('required');
  try {
    const aliceId = await registerSigned(n, 1, 'alice', 11797);
    const bobId = await registerSigned(n, 2, 'bob', n.bobPort);
    const waitFor = async (what: () => boolean) => {
      for (let i = 0; i < 50 && !what(); i++) await new Promise((r) => setTimeout(r, 100));
      return what();
    };
    const name = (m: CallSignallingMessage) => q931MessageName(m.q931.messageType);
    /** Alice's signed Setup to bob; returns her socket, what she receives (decoded and raw) and bob's leg. */
    const placeCall = async (random: number) => {
      const m = setup(['alice']);
      const s = net.connect({ host: n.q931.address, port: n.q931.port });
      await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
      s.on('error', () => {});
      const got: CallSignallingMessage[] = [];
      const raw: Uint8Array[] = [];
      const framer = new TpktFramer();
      s.on('data', (d) => {
        const r = framer.push(d);
        if (!r.ok) return;
        for (const p of r.value) {
          const x = decodeCallSignalling(p);
          if (x.ok) {
            got.push(x.value);
            raw.push(p);
          }
        }
      });
      const legs = n.bobLegs.length;
      s.write(encodeTpkt(endpointSignSetup(m, 'alice-secret', { sendersID: aliceId, generalID: GK_ID, random })));
      assert.ok(await waitFor(() => n.bobLegs.length === legs + 1), 'leg B opened to bob');
      const leg = n.bobLegs[legs]!;
      const atBob = await leg.setup;
      return { s, got, raw, leg, bobCr: atBob.q931.callReference };
    };
    /** Bob's answer on his leg, signed with `password` (sendersID his endpointIdentifier). */
    const bobAnswers = (
      leg: { socket: net.Socket },
      cr: number,
      kind: 'alerting' | 'connect',
      password: string,
      random: number,
    ) => {
      const m = answer(cr, kind);
      const body = m.uu!['h323-uu-pdu']['h323-message-body'] as { value: { callIdentifier?: { guid: Uint8Array } } };
      // the call identifier of the Setup bob got (the node keeps the caller's)
      body.value.callIdentifier = { guid: new Uint8Array(16).fill(cr) };
      leg.socket.write(encodeTpkt(endpointSignCall(m, password, { sendersID: bobId, generalID: GK_ID, random })));
    };

    // 1. bob answers with good tokens: the call connects; everything the node sent either side verifies with that
    // side's password and names it (generalID) as coming from the gatekeeper (sendersID)
    const c1 = await placeCall(300);
    const setupCheck = endpointCheckCall(c1.leg.raw[0]!, 'bob-secret');
    assert.ok(setupCheck.valid, `bob verifies the node's Setup: ${JSON.stringify(setupCheck)}`);
    assert.deepEqual([setupCheck.clear?.generalID, setupCheck.clear?.sendersID], [bobId, GK_ID]);
    assert.equal(endpointCheckCall(c1.leg.raw[0]!, 'alice-secret').valid, false, "not alice's token passed on");
    bobAnswers(c1.leg, c1.bobCr, 'alerting', 'bob-secret', 301);
    bobAnswers(c1.leg, c1.bobCr, 'connect', 'bob-secret', 302);
    assert.ok(
      await waitFor(() => c1.got.some((x) => name(x) === 'connect')),
      `alice got the Connect: ${c1.got.map(name)}`,
    );
    assert.ok(c1.got.some((x) => name(x) === 'alerting'));
    for (const [i, m] of c1.got.entries()) {
      const body = m.uu?.['h323-uu-pdu']['h323-message-body'];
      if (!body || body.choice === 'empty') continue;
      const check = endpointCheckCall(c1.raw[i]!, 'alice-secret');
      assert.ok(check.valid, `alice verifies the node's ${name(m)}: ${JSON.stringify(check)}`);
      assert.deepEqual([check.clear?.generalID, check.clear?.sendersID], [aliceId, GK_ID]);
      assert.equal(endpointCheckCall(c1.raw[i]!, 'bob-secret').valid, false, `not bob's token on ${name(m)}`);
    }
    const connect = c1.got.find((x) => name(x) === 'connect')!;
    const connectBody = connect.uu!['h323-uu-pdu']['h323-message-body'];
    assert.ok(connectBody.choice === 'connect' && connectBody.value.cryptoTokens?.length === 1);
    c1.s.destroy();
    assert.ok(await waitFor(() => c1.leg.messages.some((x) => name(x) === 'releaseComplete')), 'bob released');
    const rcAt = c1.leg.messages.findIndex((x) => name(x) === 'releaseComplete');
    assert.ok(endpointCheckCall(c1.leg.raw[rcAt]!, 'bob-secret').valid, "the node's ReleaseComplete to bob is signed");

    // 2. bob's Connect signed with a wrong password ends the call: bob hears securityDenied (signed with his key),
    // alice is released (signed with hers) and never sees a Connect
    const c2 = await placeCall(310);
    bobAnswers(c2.leg, c2.bobCr, 'connect', 'guess', 311);
    const released = (got: CallSignallingMessage[]) => got.findIndex((x) => name(x) === 'releaseComplete');
    assert.ok(await waitFor(() => released(c2.leg.messages) >= 0), 'bob got a ReleaseComplete');
    const toBob = c2.leg.messages[released(c2.leg.messages)]!;
    assert.equal(reasonOf(toBob), 'securityDenied');
    assert.equal(toBob.q931.callReference, c2.bobCr);
    assert.equal(toBob.q931.fromDestination, false);
    const cause = decodeCause(findIe(toBob.q931, IE.cause)!.data);
    assert.ok(cause.ok && cause.value.value === 21);
    assert.ok(endpointCheckCall(c2.leg.raw[released(c2.leg.messages)]!, 'bob-secret').valid);
    assert.ok(await waitFor(() => released(c2.got) >= 0), 'alice got a ReleaseComplete');
    assert.ok(endpointCheckCall(c2.raw[released(c2.got)]!, 'alice-secret').valid);
    assert.ok(!c2.got.some((x) => name(x) === 'connect'), 'no Connect reached alice');
    c2.s.destroy();
    const c = await n.counters();
    assert.equal(c.securityReleased, 1, JSON.stringify(c));
    assert.equal(c.securityDenied, 0);
  } finally {
    await n.close();
  }
});
