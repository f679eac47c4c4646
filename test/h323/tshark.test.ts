import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import {
  buildAcf,
  buildAudioOlc,
  buildCloseLogicalChannel,
  buildGcf,
  buildMasterSlaveDetermination,
  buildOlcAck,
  buildRcf,
  buildTerminalCapabilitySet,
  buildUserInput,
} from '../../src/h323/api.ts';
import type { Desc } from '../../src/h323/per/descriptor.ts';
import type {
  AdmissionRequest,
  GatekeeperRequest,
  H323_UserInformation,
  MultimediaSystemControlMessage,
  RasMessage,
  RegistrationRequest,
} from '../../src/h323/per/generated/types.ts';
import { h245Codec, openLogicalChannelCodec, rasCodec, userInformationCodec } from '../../src/h323/per/schema.ts';
import { encodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';
import {
  encodeBearerCapability,
  encodeCause,
  encodeDisplay,
  encodePartyNumber,
  IE,
  type InformationElement,
  Q931_MESSAGE_TYPES,
  type Q931MessageName,
} from '../../src/h323/q931/q931.ts';
import { encodeTpkt } from '../../src/h323/transport/tpkt.ts';
import { type OutPacket, writePcap } from './pcap.ts';
import { minimalValue } from './values.ts';

function hasTshark(): boolean {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Q.931 message type → the H323-UU-PDU body alternative H.225.0 sends in it. */
const BODY: Record<Exclude<Q931MessageName, 'setupAcknowledge'>, string> = {
  setup: 'setup',
  callProceeding: 'callProceeding',
  alerting: 'alerting',
  connect: 'connect',
  releaseComplete: 'releaseComplete',
  facility: 'facility',
  progress: 'progress',
  information: 'information',
  notify: 'notify',
  status: 'status',
  statusInquiry: 'statusInquiry',
};

function uuie(bodyName: string, h245?: MultimediaSystemControlMessage[]): H323_UserInformation {
  const d = userInformationCodec.desc;
  assert.ok(d.k === 'seq');
  const pdu = d.fields[0]!.type;
  assert.ok(pdu.k === 'seq');
  const bodyDesc = pdu.fields[0]!.type as Extract<Desc, { k: 'choice' }>;
  const alt = bodyDesc.byName.get(bodyName)!;
  return {
    'h323-uu-pdu': {
      'h323-message-body': { choice: bodyName, value: minimalValue(alt.type) } as never,
      h245Tunnelling: h245 !== undefined,
      ...(h245 ? { h245Control: h245.map((m) => h245Codec.encode(m)) } : {}),
    },
  };
}

function q931(name: Q931MessageName, uu: H323_UserInformation, crv: number): Uint8Array {
  const ies: InformationElement[] = [];
  if (name === 'setup') {
    ies.push({
      id: IE.bearerCapability,
      data: encodeBearerCapability({
        codingStandard: 0,
        informationTransferCapability: 0x08,
        transferMode: 0,
        informationTransferRate: 0x10,
        userInfoLayer1: 5,
      }),
    });
  }
  if (name === 'releaseComplete')
    ies.push({ id: IE.cause, data: encodeCause({ codingStandard: 0, location: 0, value: 16 }) });
  ies.push({ id: IE.display, data: encodeDisplay('Crossway') });
  if (name === 'setup') {
    ies.push({
      id: IE.callingPartyNumber,
      data: encodePartyNumber({ typeOfNumber: 0, numberingPlan: 1, presentation: 0, screening: 0, digits: '1001' }),
    });
    ies.push({
      id: IE.calledPartyNumber,
      data: encodePartyNumber({ typeOfNumber: 0, numberingPlan: 1, digits: '2002' }),
    });
  }
  return encodeCallSignalling({
    q931: {
      callReference: crv,
      fromDestination: name !== 'setup',
      callReferenceLength: 2,
      messageType: Q931_MESSAGE_TYPES[name],
      ies,
    },
    uu,
  });
}

describe('Wireshark agrees with our encodings', { skip: hasTshark() ? false : 'tshark not installed' }, () => {
  it('tshark dissects every RAS message type, Q.931 message type and H.245 message without a malformed packet', () => {
    const packets: OutPacket[] = [];
    const expected: string[] = [];
    // ── RAS: every RasMessage alternative, GCF/RCF/ACF built with the API from minimal requests
    const rasDesc = rasCodec.desc as Extract<Desc, { k: 'choice' }>;
    const grq = minimalValue(rasDesc.byName.get('gatekeeperRequest')!.type) as GatekeeperRequest;
    const rrq = minimalValue(rasDesc.byName.get('registrationRequest')!.type) as RegistrationRequest;
    const arq = minimalValue(rasDesc.byName.get('admissionRequest')!.type) as AdmissionRequest;
    for (const alt of [...rasDesc.root, ...(rasDesc.ext ?? [])]) {
      let m: RasMessage = { choice: alt.name, value: minimalValue(alt.type) } as RasMessage;
      if (alt.name === 'gatekeeperConfirm')
        m = buildGcf(grq, { rasAddress: { ip: '127.0.0.1', port: 1719 }, gatekeeperIdentifier: 'crossway' });
      if (alt.name === 'registrationConfirm') m = buildRcf(rrq, { endpointIdentifier: 'ep1', timeToLive: 60 });
      if (alt.name === 'admissionConfirm')
        m = buildAcf(arq, { destCallSignalAddress: { ip: '127.0.0.2', port: 1720 }, callModel: 'direct' });
      packets.push({
        proto: 'udp',
        src: '127.0.0.1',
        dst: '127.0.0.2',
        sport: 1719,
        dport: 1719,
        payload: rasCodec.encode(m),
      });
      expected.push(`RAS: ${alt.name}`);
    }
    // ── Q.931 message types with their UUIE, on TCP 1720
    let seq = 1;
    const cs = (payload: Uint8Array) => {
      const tpkt = encodeTpkt(payload);
      packets.push({ proto: 'tcp', src: '127.0.0.1', dst: '127.0.0.2', sport: 40000, dport: 1720, seq, payload: tpkt });
      seq += tpkt.length;
    };
    let crv = 1;
    for (const [name, body] of Object.entries(BODY) as Array<[Q931MessageName, string]>) {
      cs(q931(name, uuie(body), crv++));
      expected.push(`CS: ${body}`);
    }
    // ── H.245: fast start in a Setup, tunnelled in Facility, and on its own TPKT-framed connection
    const olc = buildAudioOlc(1, { ip: '127.0.0.1', port: 5001 });
    const fsSetup = uuie('setup');
    const body = fsSetup['h323-uu-pdu']['h323-message-body'];
    assert.ok(body.choice === 'setup');
    body.value.fastStart = [
      openLogicalChannelCodec.encode(olc),
      openLogicalChannelCodec.encode(buildAudioOlc(3, { ip: '127.0.0.1', port: 5003 })),
    ];
    cs(q931('setup', fsSetup, crv++));
    expected.push('CS: setup');
    const h245: Array<[string, MultimediaSystemControlMessage]> = [
      ['terminalCapabilitySet', buildTerminalCapabilitySet(1)],
      ['masterSlaveDetermination', buildMasterSlaveDetermination(50, 12345)],
      ['openLogicalChannel', { choice: 'request', value: { choice: 'openLogicalChannel', value: olc } }],
      [
        'openLogicalChannelAck',
        {
          choice: 'response',
          value: {
            choice: 'openLogicalChannelAck',
            value: buildOlcAck(1, { ip: '127.0.0.2', port: 6000 }, { ip: '127.0.0.2', port: 6001 }),
          },
        },
      ],
      [
        'closeLogicalChannel',
        { choice: 'request', value: { choice: 'closeLogicalChannel', value: buildCloseLogicalChannel(1) } },
      ],
      ['userInput', buildUserInput('5')],
    ];
    for (const [name, m] of h245) {
      cs(q931('facility', uuie('empty', [m]), crv));
      expected.push(`CS: empty ${name}`);
    }
    let hseq = 1;
    for (const [name, m] of h245) {
      const tpkt = encodeTpkt(h245Codec.encode(m));
      packets.push({
        proto: 'tcp',
        src: '127.0.0.1',
        dst: '127.0.0.2',
        sport: 40001,
        dport: 15000,
        seq: hseq,
        payload: tpkt,
      });
      hseq += tpkt.length;
      expected.push(name);
    }

    const dir = new URL('../../test-artifacts/', import.meta.url).pathname;
    mkdirSync(dir, { recursive: true });
    const file = `${dir}h323-crossway-encodings.pcap`;
    writeFileSync(file, writePcap(packets));
    const out = execFileSync(
      'tshark',
      [
        '-n',
        '-r',
        file,
        '-d',
        'tcp.port==15000,h245',
        '-T',
        'fields',
        '-e',
        'frame.number',
        '-e',
        '_ws.col.Info',
        '-e',
        '_ws.malformed',
        '-e',
        '_ws.expert.severity',
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const rows = out
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    assert.equal(rows.length, expected.length);
    rows.forEach(([frame, info, malformed], i) => {
      assert.equal(malformed ?? '', '', `frame ${frame} (${expected[i]}): malformed: ${info}`);
      assert.ok((info ?? '').includes(expected[i]!), `frame ${frame}: expected "${expected[i]}" in "${info}"`);
    });
    const errors = execFileSync(
      'tshark',
      ['-n', '-r', file, '-d', 'tcp.port==15000,h245', '-Y', '_ws.malformed || _ws.expert.severity == "Error"'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    assert.equal(errors.trim(), '', 'no malformed packet and no error-level expert info');
  });
});
