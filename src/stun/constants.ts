/**
 * STUN (RFC 8489) and TURN (RFC 8656) numbers: methods, classes, attribute types, error codes.
 */

/** RFC 8489 §5: the fixed value in bytes 4–7 of every STUN message. */
export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_BYTES = 20;
/** RFC 8489 §14.7: XOR of the CRC-32 with 0x5354554e ("STUN"). */
export const FINGERPRINT_XOR = 0x5354554e;

export const StunClass = {
  request: 0b00,
  indication: 0b01,
  success: 0b10,
  error: 0b11,
} as const;
export type StunClassName = keyof typeof StunClass;

export const Method = {
  binding: 0x001,
  allocate: 0x003,
  refresh: 0x004,
  send: 0x006,
  data: 0x007,
  createPermission: 0x008,
  channelBind: 0x009,
  connect: 0x00a,
  connectionBind: 0x00b,
  connectionAttempt: 0x00c,
} as const;

export const Attr = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  CHANNEL_NUMBER: 0x000c,
  LIFETIME: 0x000d,
  XOR_PEER_ADDRESS: 0x0012,
  DATA: 0x0013,
  REALM: 0x0014,
  NONCE: 0x0015,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_ADDRESS_FAMILY: 0x0017,
  EVEN_PORT: 0x0018,
  REQUESTED_TRANSPORT: 0x0019,
  DONT_FRAGMENT: 0x001a,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  PASSWORD_ALGORITHM: 0x001d,
  USERHASH: 0x001e,
  XOR_MAPPED_ADDRESS: 0x0020,
  RESERVATION_TOKEN: 0x0022,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  PADDING: 0x0026,
  RESPONSE_PORT: 0x0027,
  CONNECTION_ID: 0x002a,
  ADDITIONAL_ADDRESS_FAMILY: 0x8000,
  /** The code point draft-ietf-tram-turn-ipv6 used for ADDITIONAL-ADDRESS-FAMILY; coturn 4.6 clients still send it. */
  ADDITIONAL_ADDRESS_FAMILY_DRAFT: 0x8032,
  ADDRESS_ERROR_CODE: 0x8001,
  PASSWORD_ALGORITHMS: 0x8002,
  ALTERNATE_DOMAIN: 0x8003,
  ICMP: 0x8004,
  SOFTWARE: 0x8022,
  ALTERNATE_SERVER: 0x8023,
  TRANSACTION_TRANSMIT_COUNTER: 0x8025,
  CACHE_TIMEOUT: 0x8027,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
  RESPONSE_ORIGIN: 0x802b,
  OTHER_ADDRESS: 0x802c,
} as const;

/** Attribute types this codec understands (a comprehension-required type outside this set gets 420). */
export const KNOWN_ATTRIBUTES: ReadonlySet<number> = new Set(Object.values(Attr));

/** RFC 8489 §14.8 and RFC 8656 §18: error codes and their recommended reason phrases. */
export const ErrorCode = {
  tryAlternate: 300,
  badRequest: 400,
  unauthenticated: 401,
  forbidden: 403,
  mobilityForbidden: 405,
  unknownAttribute: 420,
  allocationMismatch: 437,
  staleNonce: 438,
  addressFamilyNotSupported: 440,
  wrongCredentials: 441,
  unsupportedTransportProtocol: 442,
  peerAddressFamilyMismatch: 443,
  connectionAlreadyExists: 446,
  connectionTimeoutOrFailure: 447,
  allocationQuotaReached: 486,
  serverError: 500,
  insufficientCapacity: 508,
} as const;

export const ERROR_REASONS: Readonly<Record<number, string>> = {
  300: 'Try Alternate',
  400: 'Bad Request',
  401: 'Unauthenticated',
  403: 'Forbidden',
  405: 'Mobility Forbidden',
  420: 'Unknown Attribute',
  437: 'Allocation Mismatch',
  438: 'Stale Nonce',
  440: 'Address Family not Supported',
  441: 'Wrong Credentials',
  442: 'Unsupported Transport Protocol',
  443: 'Peer Address Family Mismatch',
  446: 'Connection Already Exists',
  447: 'Connection Timeout or Failure',
  486: 'Allocation Quota Reached',
  500: 'Server Error',
  508: 'Insufficient Capacity',
};

/** RFC 8489 §18.5: password algorithms. */
export const PasswordAlgorithm = { md5: 0x0001, sha256: 0x0002 } as const;

/** RFC 8489 §9.2: the nonce cookie that announces the security feature set. */
export const NONCE_COOKIE = 'obMatJos2';

/** Limits of RFC 8489 §14: lengths of variable attributes, in bytes. */
export const Limits = {
  username: 513,
  realm: 763,
  nonce: 763,
  software: 763,
  reason: 763,
} as const;

/** Composes the 14-bit message type from method and class (RFC 8489 §5, figure 3). */
export function messageType(method: number, cls: number): number {
  return (
    ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | ((cls & 0b10) << 7) | ((cls & 0b01) << 4)
  );
}

export function methodOf(type: number): number {
  return ((type & 0x3e00) >> 2) | ((type & 0x00e0) >> 1) | (type & 0x000f);
}

export function classOf(type: number): number {
  return ((type & 0x0100) >> 7) | ((type & 0x0010) >> 4);
}
