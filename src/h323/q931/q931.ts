import { CrosswayError } from '../../common/errors.ts';
import { fail, ok, type Result } from '../../common/result.ts';

/**
 * Q.931 messages as H.225.0 §7 uses them: protocol discriminator 0x08, a 2-octet call reference, the message
 * type, then information elements kept in order and as received, so a message re-encodes to the same bytes.
 * The user-user IE (0x7E) has a 2-octet length in H.225.0 (§7.2.2.?; Q.931 itself has one octet).
 */

/** Q.931 §4.3 / H.225.0 Table 4: the message types H.225.0 uses. */
export const Q931_MESSAGE_TYPES = {
  alerting: 0x01,
  callProceeding: 0x02,
  progress: 0x03,
  setup: 0x05,
  connect: 0x07,
  setupAcknowledge: 0x0d,
  releaseComplete: 0x5a,
  facility: 0x62,
  notify: 0x6e,
  statusInquiry: 0x75,
  information: 0x7b,
  status: 0x7d,
} as const;

export type Q931MessageName = keyof typeof Q931_MESSAGE_TYPES;

const TYPE_NAMES = new Map<number, Q931MessageName>(
  Object.entries(Q931_MESSAGE_TYPES).map(([k, v]) => [v, k as Q931MessageName]),
);

/** Name of a message type, or undefined when H.225.0 does not use it. */
export function q931MessageName(type: number): Q931MessageName | undefined {
  return TYPE_NAMES.get(type);
}

/** Information element identifiers (Q.931 §4.5, Table 4-3) that H.225.0 uses. */
export const IE = {
  bearerCapability: 0x04,
  cause: 0x08,
  callState: 0x14,
  facility: 0x1c,
  progressIndicator: 0x1e,
  notificationIndicator: 0x27,
  display: 0x28,
  keypad: 0x2c,
  signal: 0x34,
  connectedNumber: 0x4c,
  callingPartyNumber: 0x6c,
  callingPartySubaddress: 0x6d,
  calledPartyNumber: 0x70,
  calledPartySubaddress: 0x71,
  redirectingNumber: 0x74,
  highLayerCompatibility: 0x7d,
  userUser: 0x7e,
  sendingComplete: 0xa1,
} as const;

const IE_NAMES = new Map<number, string>(Object.entries(IE).map(([k, v]) => [v, k]));

/**
 * The only error the Q.931 / H.225.0 call-signalling decoders return (they never throw). `path` names where
 * decoding failed, from the message down: `Q931.setup.ies[4](userUser).H323-UserInformation.h323-uu-pdu…` (the
 * PER path of the user-user contents follows the IE), `Q931.callReference`, `cause` for an IE decoded on its own;
 * `detail` says what was wrong; `cause` is the PerError when the PER contents failed.
 */
export class Q931Error extends CrosswayError {
  readonly path: string;
  readonly detail: string;

  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super('ERR_Q931_DECODE', `${path}: ${detail}`, options);
    this.path = path;
    this.detail = detail;
  }
}

/** Path segment of the IE at index `i` of a message: `ies[2](display)`, `ies[5](0x2d)` for one we do not name. */
export function iePath(i: number, id: number): string {
  return `ies[${i}](${IE_NAMES.get(id) ?? `0x${id.toString(16).padStart(2, '0')}`})`;
}

function q931Fail(path: string, detail: string): { ok: false; reason: Q931Error } {
  return fail(new Q931Error(path, detail));
}

export const Q931_PROTOCOL_DISCRIMINATOR = 0x08;
/** H.225.0 §7.2.2.?: user-user IE protocol discriminator for X.208/X.209-coded user information. */
export const UUIE_PROTOCOL_DISCRIMINATOR = 0x05;

export interface InformationElement {
  id: number;
  /** Contents after the identifier and length octets (empty for single-octet IEs). */
  data: Uint8Array;
}

export interface Q931Message {
  /** Call reference value (up to 15 bits with a 2-octet call reference). */
  callReference: number;
  /** Call reference flag: true in messages sent by the side that did not allocate the call reference. */
  fromDestination: boolean;
  /** Length of the call reference value in octets (H.225.0: 2). */
  callReferenceLength: number;
  messageType: number;
  ies: InformationElement[];
}

export interface Q931Limits {
  maxIes: number;
}

/** Decodes a Q.931 message; never throws: a failure is a Q931Error with the path of the failing part. */
export function decodeQ931(b: Uint8Array, limits: Q931Limits = { maxIes: 64 }): Result<Q931Message, Q931Error> {
  if (b.length < 3) return q931Fail('Q931', `message of ${b.length} octets, shorter than 3`);
  if (b[0] !== Q931_PROTOCOL_DISCRIMINATOR) return q931Fail('Q931.protocolDiscriminator', `${b[0]} is not Q.931 (8)`);
  const crLen = b[1]! & 0x0f;
  if ((b[1]! & 0xf0) !== 0 || crLen > 2) return q931Fail('Q931.callReference', `length ${crLen}`);
  if (b.length < 3 + crLen) return q931Fail('Q931.callReference', 'truncated');
  let cr = 0;
  let flag = false;
  for (let i = 0; i < crLen; i++) {
    let o = b[2 + i]!;
    if (i === 0) {
      flag = (o & 0x80) !== 0;
      o &= 0x7f;
    }
    cr = (cr << 8) | o;
  }
  let p = 2 + crLen;
  const messageType = b[p++]! & 0x7f;
  if ((b[p - 1]! & 0x80) !== 0) return q931Fail('Q931.messageType', 'bit 8 set');
  const at = `Q931.${q931MessageName(messageType) ?? `0x${messageType.toString(16).padStart(2, '0')}`}`;
  const ies: InformationElement[] = [];
  while (p < b.length) {
    const id = b[p]!;
    const where = `${at}.${iePath(ies.length, id)}`;
    if (ies.length >= limits.maxIes) return q931Fail(where, `more than ${limits.maxIes} information elements`);
    if ((id & 0x80) !== 0) {
      // Q.931 §4.5.1: single-octet information element
      ies.push({ id, data: new Uint8Array(0) });
      p++;
      continue;
    }
    let len: number;
    let head: number;
    if (id === IE.userUser) {
      if (p + 3 > b.length) return q931Fail(where, 'truncated length');
      len = (b[p + 1]! << 8) | b[p + 2]!;
      head = 3;
    } else {
      if (p + 2 > b.length) return q931Fail(where, 'truncated length');
      len = b[p + 1]!;
      head = 2;
    }
    if (p + head + len > b.length) return q931Fail(where, `${len} octets exceed the message`);
    ies.push({ id, data: new Uint8Array(b.subarray(p + head, p + head + len)) });
    p += head + len;
  }
  return ok({ callReference: cr, fromDestination: flag, callReferenceLength: crLen, messageType, ies });
}

/** Encodes a Q.931 message with its IEs in the given order. */
export function encodeQ931(m: Q931Message): Uint8Array {
  let size = 3 + m.callReferenceLength;
  for (const ie of m.ies) size += (ie.id & 0x80) !== 0 ? 1 : (ie.id === IE.userUser ? 3 : 2) + ie.data.length;
  const out = new Uint8Array(size);
  out[0] = Q931_PROTOCOL_DISCRIMINATOR;
  out[1] = m.callReferenceLength;
  for (let i = 0; i < m.callReferenceLength; i++) {
    out[2 + i] = (m.callReference >>> (8 * (m.callReferenceLength - 1 - i))) & 0xff;
  }
  if (m.callReferenceLength > 0 && m.fromDestination) out[2]! |= 0x80;
  let p = 2 + m.callReferenceLength;
  out[p++] = m.messageType;
  for (const ie of m.ies) {
    out[p++] = ie.id;
    if ((ie.id & 0x80) !== 0) continue;
    if (ie.id === IE.userUser) {
      if (ie.data.length > 0xffff) throw new RangeError('user-user IE too large');
      out[p++] = ie.data.length >>> 8;
    } else if (ie.data.length > 0xff) throw new RangeError(`IE 0x${ie.id.toString(16)} too large`);
    out[p++] = ie.data.length & 0xff;
    out.set(ie.data, p);
    p += ie.data.length;
  }
  return out;
}

/** The first IE with this identifier. */
export function findIe(m: Q931Message, id: number): InformationElement | undefined {
  return m.ies.find((ie) => ie.id === id);
}

// ───────────────────────────── typed information elements ─────────────────────────────

/** Q.931 §4.5.5 bearer capability, the fields H.225.0 sets. */
export interface BearerCapability {
  codingStandard: number;
  /** 0x00 speech, 0x08 unrestricted digital, 0x10 3.1 kHz audio, 0x18 video (H.225.0 7.2.2.1). */
  informationTransferCapability: number;
  transferMode: number;
  /** 0x10 64 kbit/s, 0x18 multirate … */
  informationTransferRate: number;
  rateMultiplier?: number;
  /** Layer 1 protocol (octet 5 low bits), e.g. 5 = G.711 µ-law… */
  userInfoLayer1?: number;
}

export function decodeBearerCapability(d: Uint8Array): Result<BearerCapability, Q931Error> {
  if (d.length < 2) return q931Fail('bearerCapability', 'shorter than 2 octets');
  const bc: BearerCapability = {
    codingStandard: (d[0]! >> 5) & 3,
    informationTransferCapability: d[0]! & 0x1f,
    transferMode: (d[1]! >> 5) & 3,
    informationTransferRate: d[1]! & 0x1f,
  };
  let p = 2;
  if (bc.informationTransferRate === 0x18 && p < d.length) bc.rateMultiplier = d[p++]! & 0x7f;
  if (p < d.length && ((d[p]! >> 5) & 3) === 1) bc.userInfoLayer1 = d[p]! & 0x1f;
  return ok(bc);
}

export function encodeBearerCapability(bc: BearerCapability): Uint8Array {
  const out = [
    0x80 | (bc.codingStandard << 5) | bc.informationTransferCapability,
    0x80 | (bc.transferMode << 5) | bc.informationTransferRate,
  ];
  if (bc.informationTransferRate === 0x18) out.push(0x80 | (bc.rateMultiplier ?? 1));
  if (bc.userInfoLayer1 !== undefined) out.push(0x80 | (1 << 5) | bc.userInfoLayer1);
  return Uint8Array.from(out);
}

/** Q.931 §4.5.8/§4.5.10 party numbers (calling, called, connected). */
export interface PartyNumberIe {
  typeOfNumber: number;
  numberingPlan: number;
  presentation?: number;
  screening?: number;
  digits: string;
}

export function decodePartyNumber(d: Uint8Array): Result<PartyNumberIe, Q931Error> {
  if (d.length < 1) return q931Fail('partyNumber', 'empty');
  const n: PartyNumberIe = { typeOfNumber: (d[0]! >> 4) & 7, numberingPlan: d[0]! & 0x0f, digits: '' };
  let p = 1;
  if ((d[0]! & 0x80) === 0) {
    if (d.length < 2) return q931Fail('partyNumber', 'truncated octet 3a');
    n.presentation = (d[1]! >> 5) & 3;
    n.screening = d[1]! & 3;
    p = 2;
  }
  for (; p < d.length; p++) n.digits += String.fromCharCode(d[p]! & 0x7f);
  return ok(n);
}

export function encodePartyNumber(n: PartyNumberIe): Uint8Array {
  const head =
    n.presentation === undefined
      ? [0x80 | (n.typeOfNumber << 4) | n.numberingPlan]
      : [(n.typeOfNumber << 4) | n.numberingPlan, 0x80 | (n.presentation << 5) | (n.screening ?? 0)];
  return Uint8Array.from([...head, ...Array.from(n.digits, (c) => c.charCodeAt(0) & 0x7f)]);
}

/** Q.931 §4.5.12 cause. */
export interface CauseIe {
  codingStandard: number;
  location: number;
  /** Cause value (Q.850), e.g. 16 normal call clearing. */
  value: number;
  diagnostics?: Uint8Array;
}

export function decodeCause(d: Uint8Array): Result<CauseIe, Q931Error> {
  if (d.length < 2) return q931Fail('cause', 'shorter than 2 octets');
  let p = 1;
  if ((d[0]! & 0x80) === 0) p = 2; // octet 3a (recommendation)
  if (p >= d.length) return q931Fail('cause', 'truncated after octet 3a');
  const c: CauseIe = { codingStandard: (d[0]! >> 5) & 3, location: d[0]! & 0x0f, value: d[p]! & 0x7f };
  if (p + 1 < d.length) c.diagnostics = new Uint8Array(d.subarray(p + 1));
  return ok(c);
}

export function encodeCause(c: CauseIe): Uint8Array {
  return Uint8Array.from([0x80 | (c.codingStandard << 5) | c.location, 0x80 | c.value, ...(c.diagnostics ?? [])]);
}

/** Q.931 §4.5.16 display: IA5 characters. */
export function decodeDisplay(d: Uint8Array): string {
  let s = '';
  for (const b of d) if (b !== 0) s += String.fromCharCode(b & 0x7f);
  return s;
}

export function encodeDisplay(s: string, nulTerminated = false): Uint8Array {
  const out = Array.from(s, (c) => c.charCodeAt(0) & 0x7f);
  if (nulTerminated) out.push(0);
  return Uint8Array.from(out);
}
