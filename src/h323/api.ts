import { isIPv4, isIPv6 } from 'node:net';
import type {
  AdmissionConfirm,
  AdmissionRequest,
  AliasAddress,
  CloseLogicalChannel,
  GatekeeperRequest,
  H225_TransportAddress,
  H245_TransportAddress,
  MultimediaSystemControlMessage,
  OpenLogicalChannel,
  OpenLogicalChannelAck,
  RasMessage,
  RegistrationRequest,
  ReleaseCompleteReason,
  TerminalCapabilitySet,
  UUIEsRequested,
} from './per/generated/types.ts';
import { openLogicalChannelCodec } from './per/schema.ts';
import type { CallSignallingMessage } from './q931/call-signalling.ts';
import {
  encodeBearerCapability,
  encodeCause,
  encodeDisplay,
  IE,
  type InformationElement,
  Q931_MESSAGE_TYPES,
} from './q931/q931.ts';

/**
 * A small typed API over the generated H.225.0/H.245 types for what the gatekeeper and the call code need, so the
 * rest of Crossway never touches bit layouts: addresses and aliases as text, building confirms from requests,
 * reading an ARQ, rewriting an OLC's media addresses.
 */

/** H.225.0 v7 protocol identifier (itu-t recommendation h 2250 version 7). */
export const H225_PROTOCOL_ID = '0.0.8.2250.0.7';
/** H.245 v15 protocol identifier. */
export const H245_PROTOCOL_ID = '0.0.8.245.0.15';

export interface IpPort {
  ip: string;
  port: number;
}

function ipBytes(ip: string): Uint8Array {
  if (isIPv4(ip)) return Uint8Array.from(ip.split('.').map(Number));
  if (!isIPv6(ip)) throw new TypeError(`not an IP address: ${ip}`);
  const [head = '', tail] = ip.split('::');
  const words = (s: string) => (s ? s.split(':').map((w) => Number.parseInt(w, 16)) : []);
  const h = words(head);
  const t = tail === undefined ? [] : words(tail);
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function ipText(b: Uint8Array): string {
  if (b.length === 4) return [...b].join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
}

/** An H.225.0 TransportAddress for an IPv4 or IPv6 address. */
export function h225Address(ip: string, port: number): H225_TransportAddress {
  const b = ipBytes(ip);
  return b.length === 4
    ? { choice: 'ipAddress', value: { ip: b, port } }
    : { choice: 'ip6Address', value: { ip: b, port } };
}

/** The IP address and port of an H.225.0 TransportAddress, when it is one. */
export function fromH225Address(a: H225_TransportAddress): IpPort | undefined {
  if (a.choice === 'ipAddress' || a.choice === 'ip6Address') return { ip: ipText(a.value.ip), port: a.value.port };
  return undefined;
}

/** An H.245 unicast TransportAddress. */
export function h245Address(ip: string, port: number): H245_TransportAddress {
  const b = ipBytes(ip);
  return {
    choice: 'unicastAddress',
    value:
      b.length === 4
        ? { choice: 'iPAddress', value: { network: b, tsapIdentifier: port } }
        : { choice: 'iP6Address', value: { network: b, tsapIdentifier: port } },
  };
}

export function fromH245Address(a: H245_TransportAddress): IpPort | undefined {
  if (a.choice !== 'unicastAddress') return undefined;
  const u = a.value;
  if (u.choice === 'iPAddress' || u.choice === 'iP6Address')
    return { ip: ipText(u.value.network), port: u.value.tsapIdentifier };
  return undefined;
}

/** An alias as text: its kind (the AliasAddress alternative) and value. */
export interface AliasText {
  kind: string;
  value: string;
}

/** Reads an alias as text (transport addresses as `ip:port`, party numbers as their digits). */
export function aliasToText(a: AliasAddress): AliasText {
  switch (a.choice) {
    case 'dialledDigits':
    case 'h323-ID':
    case 'url-ID':
    case 'email-ID':
      return { kind: a.choice, value: a.value };
    case 'transportID': {
      const t = fromH225Address(a.value);
      return { kind: a.choice, value: t ? `${t.ip}:${t.port}` : '' };
    }
    case 'partyNumber': {
      const p = a.value;
      const digits =
        p.choice === 'e164Number'
          ? p.value.publicNumberDigits
          : p.choice === 'privateNumber'
            ? p.value.privateNumberDigits
            : p.choice === '$unknown'
              ? ''
              : p.value;
      return { kind: a.choice, value: digits };
    }
    default:
      return { kind: a.choice, value: '' };
  }
}

/** Makes an alias from text: digits (and `#*,`) → dialledDigits, `scheme:` → url-ID, `x@y` → email-ID, else h323-ID. */
export function aliasFromText(s: string): AliasAddress {
  if (/^[0-9#*,]{1,128}$/.test(s)) return { choice: 'dialledDigits', value: s };
  if (/^[a-z][a-z0-9+.-]*:/i.test(s)) return { choice: 'url-ID', value: s };
  if (/^[^@\s]+@[^@\s]+$/.test(s)) return { choice: 'email-ID', value: s };
  return { choice: 'h323-ID', value: s };
}

/** The RAS message's name (its RasMessage alternative) and requestSeqNum. */
export function rasInfo(m: RasMessage): { name: RasMessage['choice']; requestSeqNum: number | undefined } {
  const v = m.value as { requestSeqNum?: number };
  return {
    name: m.choice,
    requestSeqNum: typeof v === 'object' && v !== null && 'requestSeqNum' in v ? v.requestSeqNum : undefined,
  };
}

/** What a gatekeeper reads from an ARQ. */
export interface ArqSummary {
  requestSeqNum: number;
  endpointIdentifier: string;
  source: AliasText[];
  destination: AliasText[];
  destCallSignalAddress: IpPort | undefined;
  bandWidth: number;
  answerCall: boolean;
  callIdentifier: Uint8Array | undefined;
  conferenceID: Uint8Array;
}

export function readArq(arq: AdmissionRequest): ArqSummary {
  return {
    requestSeqNum: arq.requestSeqNum,
    endpointIdentifier: arq.endpointIdentifier,
    source: arq.srcInfo.map(aliasToText),
    destination: (arq.destinationInfo ?? []).map(aliasToText),
    destCallSignalAddress: arq.destCallSignalAddress ? fromH225Address(arq.destCallSignalAddress) : undefined,
    bandWidth: arq.bandWidth,
    answerCall: arq.answerCall,
    callIdentifier: arq.callIdentifier?.guid,
    conferenceID: arq.conferenceID,
  };
}

/** GCF answering a GRQ (H.225.0 §7.?: same requestSeqNum). */
export function buildGcf(grq: GatekeeperRequest, o: { rasAddress: IpPort; gatekeeperIdentifier?: string }): RasMessage {
  return {
    choice: 'gatekeeperConfirm',
    value: {
      requestSeqNum: grq.requestSeqNum,
      protocolIdentifier: H225_PROTOCOL_ID,
      ...(o.gatekeeperIdentifier ? { gatekeeperIdentifier: o.gatekeeperIdentifier } : {}),
      rasAddress: h225Address(o.rasAddress.ip, o.rasAddress.port),
    },
  };
}

/** RCF answering an RRQ: the endpoint identifier assigned, the aliases accepted, the time to live (s). */
export function buildRcf(
  rrq: RegistrationRequest,
  o: { endpointIdentifier: string; gatekeeperIdentifier?: string; timeToLive?: number; terminalAlias?: AliasAddress[] },
): RasMessage {
  return {
    choice: 'registrationConfirm',
    value: {
      requestSeqNum: rrq.requestSeqNum,
      protocolIdentifier: H225_PROTOCOL_ID,
      callSignalAddress: rrq.callSignalAddress,
      ...((o.terminalAlias ?? rrq.terminalAlias) ? { terminalAlias: o.terminalAlias ?? rrq.terminalAlias } : {}),
      ...(o.gatekeeperIdentifier ? { gatekeeperIdentifier: o.gatekeeperIdentifier } : {}),
      endpointIdentifier: o.endpointIdentifier,
      ...(o.timeToLive !== undefined ? { timeToLive: o.timeToLive } : {}),
      willRespondToIRR: false,
      maintainConnection: false,
    },
  };
}

const NO_UUIES: UUIEsRequested = {
  setup: false,
  callProceeding: false,
  connect: false,
  alerting: false,
  information: false,
  releaseComplete: false,
  facility: false,
  progress: false,
  empty: false,
  status: false,
  statusInquiry: false,
  setupAcknowledge: false,
  notify: false,
};

/** ACF answering an ARQ: where to send the Setup, and whether the gatekeeper routes the call signalling. */
export function buildAcf(
  arq: AdmissionRequest,
  o: {
    destCallSignalAddress: IpPort;
    callModel: 'direct' | 'gatekeeperRouted';
    bandWidth?: number;
    irrFrequency?: number;
  },
): RasMessage {
  const acf: AdmissionConfirm = {
    requestSeqNum: arq.requestSeqNum,
    bandWidth: o.bandWidth ?? arq.bandWidth,
    callModel: { choice: o.callModel, value: null },
    destCallSignalAddress: h225Address(o.destCallSignalAddress.ip, o.destCallSignalAddress.port),
    ...(o.irrFrequency ? { irrFrequency: o.irrFrequency } : {}),
    willRespondToIRR: false,
    uuiesRequested: NO_UUIES,
  };
  return { choice: 'admissionConfirm', value: acf };
}

type LogicalChannelParams = OpenLogicalChannel['forwardLogicalChannelParameters']['multiplexParameters'];

/** Rewrites H.245 transport addresses through `map` (returning undefined keeps the address). */
export type AddressMapper = (
  a: IpPort,
  where: { direction: 'forward' | 'reverse'; role: 'media' | 'mediaControl' },
) => IpPort | undefined;

function mapAddress(a: H245_TransportAddress | undefined, map: AddressMapper, where: Parameters<AddressMapper>[1]) {
  if (!a) return a;
  const ip = fromH245Address(a);
  const to = ip && map(ip, where);
  return to ? h245Address(to.ip, to.port) : a;
}

function mapH2250<P extends { mediaChannel?: H245_TransportAddress; mediaControlChannel?: H245_TransportAddress }>(
  p: P,
  map: AddressMapper,
  direction: 'forward' | 'reverse',
): P {
  const out = { ...p };
  if (p.mediaChannel) out.mediaChannel = mapAddress(p.mediaChannel, map, { direction, role: 'media' });
  if (p.mediaControlChannel)
    out.mediaControlChannel = mapAddress(p.mediaControlChannel, map, { direction, role: 'mediaControl' });
  return out;
}

function mapMux<M extends { choice: string; value: unknown }>(m: M, map: AddressMapper, dir: 'forward' | 'reverse'): M {
  if (m.choice !== 'h2250LogicalChannelParameters') return m;
  return { ...m, value: mapH2250(m.value as Parameters<typeof mapH2250>[0], map, dir) };
}

/** A copy of an OpenLogicalChannel with its RTP/RTCP addresses (forward and reverse) passed through `map`. */
export function rewriteOlcAddresses(olc: OpenLogicalChannel, map: AddressMapper): OpenLogicalChannel {
  const out: OpenLogicalChannel = {
    ...olc,
    forwardLogicalChannelParameters: {
      ...olc.forwardLogicalChannelParameters,
      multiplexParameters: mapMux(
        olc.forwardLogicalChannelParameters.multiplexParameters as LogicalChannelParams,
        map,
        'forward',
      ),
    },
  };
  const rev = olc.reverseLogicalChannelParameters;
  if (rev?.multiplexParameters) {
    out.reverseLogicalChannelParameters = {
      ...rev,
      multiplexParameters: mapMux(rev.multiplexParameters, map, 'reverse'),
    };
  }
  return out;
}

/** A copy of an OpenLogicalChannelAck with its RTP/RTCP addresses passed through `map`. */
export function rewriteOlcAckAddresses(ack: OpenLogicalChannelAck, map: AddressMapper): OpenLogicalChannelAck {
  const out = { ...ack };
  const f = ack.forwardMultiplexAckParameters;
  if (f && f.choice === 'h2250LogicalChannelAckParameters') {
    out.forwardMultiplexAckParameters = { choice: f.choice, value: mapH2250(f.value, map, 'forward') };
  }
  const rev = ack.reverseLogicalChannelParameters;
  if (rev?.multiplexParameters)
    out.reverseLogicalChannelParameters = {
      ...rev,
      multiplexParameters: mapMux(rev.multiplexParameters, map, 'reverse'),
    };
  return out;
}

/** The media (RTP) and control (RTCP) addresses an OLC carries, forward then reverse. */
export function olcAddresses(
  olc: OpenLogicalChannel,
): Array<{ direction: 'forward' | 'reverse'; role: 'media' | 'mediaControl'; address: IpPort }> {
  const found: ReturnType<typeof olcAddresses> = [];
  rewriteOlcAddresses(olc, (address, where) => {
    found.push({ ...where, address });
    return undefined;
  });
  return found;
}

// ───────────────────────────── H.245 messages the call code sends ─────────────────────────────

/** A TCS offering G.711 µ-law and A-law (20 ms frames) and DTMF as user input. */
export function buildTerminalCapabilitySet(sequenceNumber: number): MultimediaSystemControlMessage {
  const tcs: TerminalCapabilitySet = {
    sequenceNumber,
    protocolIdentifier: H245_PROTOCOL_ID,
    multiplexCapability: {
      choice: 'h2250Capability',
      value: {
        maximumAudioDelayJitter: 60,
        receiveMultipointCapability: {
          multicastCapability: false,
          multiUniCastConference: false,
          mediaDistributionCapability: [
            {
              centralizedControl: false,
              distributedControl: false,
              centralizedAudio: false,
              distributedAudio: false,
              centralizedVideo: false,
              distributedVideo: false,
            },
          ],
        },
        transmitMultipointCapability: {
          multicastCapability: false,
          multiUniCastConference: false,
          mediaDistributionCapability: [
            {
              centralizedControl: false,
              distributedControl: false,
              centralizedAudio: false,
              distributedAudio: false,
              centralizedVideo: false,
              distributedVideo: false,
            },
          ],
        },
        receiveAndTransmitMultipointCapability: {
          multicastCapability: false,
          multiUniCastConference: false,
          mediaDistributionCapability: [
            {
              centralizedControl: false,
              distributedControl: false,
              centralizedAudio: false,
              distributedAudio: false,
              centralizedVideo: false,
              distributedVideo: false,
            },
          ],
        },
        mcCapability: { centralizedConferenceMC: false, decentralizedConferenceMC: false },
        rtcpVideoControlCapability: false,
        mediaPacketizationCapability: { h261aVideoPacketization: false },
      },
    },
    capabilityTable: [
      {
        capabilityTableEntryNumber: 1,
        capability: { choice: 'receiveAudioCapability', value: { choice: 'g711Ulaw64k', value: 20 } },
      },
      {
        capabilityTableEntryNumber: 2,
        capability: { choice: 'receiveAudioCapability', value: { choice: 'g711Alaw64k', value: 20 } },
      },
      {
        capabilityTableEntryNumber: 3,
        capability: { choice: 'receiveUserInputCapability', value: { choice: 'dtmf', value: null } },
      },
    ],
    capabilityDescriptors: [{ capabilityDescriptorNumber: 0, simultaneousCapabilities: [[1, 2], [3]] }],
  };
  return { choice: 'request', value: { choice: 'terminalCapabilitySet', value: tcs } };
}

/** MasterSlaveDetermination (H.245 §8.2): terminal type 50 is a terminal, 240 a gatekeeper/MCU-like entity. */
export function buildMasterSlaveDetermination(
  terminalType: number,
  statusDeterminationNumber: number,
): MultimediaSystemControlMessage {
  return {
    choice: 'request',
    value: { choice: 'masterSlaveDetermination', value: { terminalType, statusDeterminationNumber } },
  };
}

/** An audio OLC (G.711 µ-law) for RTP session 1 with its RTCP address. */
export function buildAudioOlc(channel: number, rtcp: IpPort, framesPerPacket = 20): OpenLogicalChannel {
  return {
    forwardLogicalChannelNumber: channel,
    forwardLogicalChannelParameters: {
      dataType: { choice: 'audioData', value: { choice: 'g711Ulaw64k', value: framesPerPacket } },
      multiplexParameters: {
        choice: 'h2250LogicalChannelParameters',
        value: { sessionID: 1, mediaControlChannel: h245Address(rtcp.ip, rtcp.port), silenceSuppression: false },
      },
    },
  };
}

/** The acknowledgement of an OLC, giving where to send RTP and RTCP. */
export function buildOlcAck(channel: number, rtp: IpPort, rtcp: IpPort): OpenLogicalChannelAck {
  return {
    forwardLogicalChannelNumber: channel,
    forwardMultiplexAckParameters: {
      choice: 'h2250LogicalChannelAckParameters',
      value: {
        sessionID: 1,
        mediaChannel: h245Address(rtp.ip, rtp.port),
        mediaControlChannel: h245Address(rtcp.ip, rtcp.port),
        flowControlToZero: false,
      },
    },
  };
}

export function buildCloseLogicalChannel(channel: number): CloseLogicalChannel {
  return { forwardLogicalChannelNumber: channel, source: { choice: 'user', value: null } };
}

/** UserInputIndication alphanumeric (DTMF as text, H.245 §6.?). */
export function buildUserInput(text: string): MultimediaSystemControlMessage {
  return { choice: 'indication', value: { choice: 'userInput', value: { choice: 'alphanumeric', value: text } } };
}

// ───────────────────────────── call signalling ─────────────────────────────

/** What a Setup needs; identifiers are 16 octets (H.225.0 GloballyUniqueID). */
export interface SetupOptions {
  callReference: number;
  callIdentifier: Uint8Array;
  conferenceID: Uint8Array;
  source: AliasAddress[];
  destination?: AliasAddress[];
  destCallSignalAddress?: IpPort;
  sourceCallSignalAddress?: IpPort;
  display?: string;
  /** Fast-start proposals (H.323 §8.1.7), encoded into `fastStart`. */
  fastStart?: OpenLogicalChannel[];
  h245Tunnelling?: boolean;
}

/** A Q.931 Setup with its H.225.0 Setup-UUIE (bearer capability for unrestricted digital, display when given). */
export function buildSetup(o: SetupOptions): CallSignallingMessage {
  const ies: InformationElement[] = [
    {
      id: IE.bearerCapability,
      data: encodeBearerCapability({
        codingStandard: 0,
        informationTransferCapability: 0x08,
        transferMode: 0,
        informationTransferRate: 0x10,
        userInfoLayer1: 5,
      }),
    },
  ];
  if (o.display) ies.push({ id: IE.display, data: encodeDisplay(o.display, true) });
  return {
    q931: {
      callReference: o.callReference,
      fromDestination: false,
      callReferenceLength: 2,
      messageType: Q931_MESSAGE_TYPES.setup,
      ies,
    },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': {
          choice: 'setup',
          value: {
            protocolIdentifier: H225_PROTOCOL_ID,
            sourceAddress: o.source,
            sourceInfo: { terminal: {}, mc: false, undefinedNode: false },
            ...(o.destination ? { destinationAddress: o.destination } : {}),
            ...(o.destCallSignalAddress
              ? { destCallSignalAddress: h225Address(o.destCallSignalAddress.ip, o.destCallSignalAddress.port) }
              : {}),
            activeMC: false,
            conferenceID: o.conferenceID,
            conferenceGoal: { choice: 'create', value: null },
            callType: { choice: 'pointToPoint', value: null },
            ...(o.sourceCallSignalAddress
              ? { sourceCallSignalAddress: h225Address(o.sourceCallSignalAddress.ip, o.sourceCallSignalAddress.port) }
              : {}),
            callIdentifier: { guid: o.callIdentifier },
            ...(o.fastStart ? { fastStart: o.fastStart.map((olc) => openLogicalChannelCodec.encode(olc)) } : {}),
            mediaWaitForConnect: false,
            canOverlapSend: false,
            multipleCalls: false,
            maintainConnection: false,
          },
        },
        h245Tunnelling: o.h245Tunnelling ?? true,
      },
    },
  };
}

/** A Q.931 ReleaseComplete with cause 16 (normal call clearing) and its ReleaseComplete-UUIE. */
export function buildReleaseComplete(
  callReference: number,
  fromDestination: boolean,
  callIdentifier: Uint8Array,
  reason?: ReleaseCompleteReason,
): CallSignallingMessage {
  return {
    q931: {
      callReference,
      fromDestination,
      callReferenceLength: 2,
      messageType: Q931_MESSAGE_TYPES.releaseComplete,
      ies: [{ id: IE.cause, data: encodeCause({ codingStandard: 0, location: 0, value: 16 }) }],
    },
    uu: {
      'h323-uu-pdu': {
        'h323-message-body': {
          choice: 'releaseComplete',
          value: {
            protocolIdentifier: H225_PROTOCOL_ID,
            ...(reason ? { reason } : {}),
            callIdentifier: { guid: callIdentifier },
          },
        },
        h245Tunnelling: false,
      },
    },
  };
}
