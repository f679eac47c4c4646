import { createHash, createHmac } from 'node:crypto';
import type { CryptoH323Token, RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import {
  type CallSignallingMessage,
  decodeCallSignalling,
  encodeCallSignalling,
} from '../../src/h323/q931/call-signalling.ts';

/**
 * Our own H.235.1 test endpoint (the ooh323c peer does not sign), written apart from the code under test: procedure
 * I's token (OIDs A, T, U) with the ClearToken's timeStamp, random, generalID and sendersID; the message encoded with
 * 96 zero bits in the hash, HMAC-SHA1 keyed with SHA-1 of the password computed over those octets with node:crypto
 * and truncated to 12 octets, and the message encoded again with that hash.
 */
export interface EndpointClear {
  generalID?: string;
  sendersID?: string;
  /** Seconds since 1970 (default: now). */
  timeStamp?: number;
  random: number;
}

function token(clear: EndpointClear, hash: Uint8Array): CryptoH323Token {
  return {
    choice: 'nestedcryptoToken',
    value: {
      choice: 'cryptoHashedToken',
      value: {
        tokenOID: '0.0.8.235.0.2.1',
        hashedVals: {
          tokenOID: '0.0.8.235.0.2.5',
          timeStamp: clear.timeStamp ?? Math.floor(Date.now() / 1000),
          random: clear.random,
          ...(clear.generalID !== undefined ? { generalID: clear.generalID } : {}),
          ...(clear.sendersID !== undefined ? { sendersID: clear.sendersID } : {}),
        },
        token: { algorithmOID: '0.0.8.235.0.2.6', paramS: {}, hash: { length: 96, data: hash } },
      },
    },
  };
}

const hmac96 = (password: string, data: Uint8Array) =>
  createHmac('sha1', createHash('sha1').update(password).digest()).update(data).digest().subarray(0, 12);

/** A RAS message signed as an endpoint does: the hash over the whole RAS PDU. */
export function endpointSignRas(m: RasMessage, password: string, clear: EndpointClear): Uint8Array {
  const c = { ...clear, timeStamp: clear.timeStamp ?? Math.floor(Date.now() / 1000) };
  const v = m.value as { cryptoTokens?: CryptoH323Token[] };
  v.cryptoTokens = [token(c, new Uint8Array(12))];
  const mac = hmac96(password, rasCodec.encode(m));
  v.cryptoTokens = [token(c, mac)];
  return rasCodec.encode(m);
}

/**
 * A Setup signed as an endpoint does (H.235.1 on call signalling): the token in `Setup-UUIE.cryptoTokens`, the hash
 * over the whole Q.931 message with 96 zero bits in its place (as H323Plus signs, and GnuGk checks).
 */
export function endpointSignSetup(m: CallSignallingMessage, password: string, clear: EndpointClear): Uint8Array {
  const c = { ...clear, timeStamp: clear.timeStamp ?? Math.floor(Date.now() / 1000) };
  const body = m.uu?.['h323-uu-pdu']['h323-message-body'];
  if (body?.choice !== 'setup') throw new Error('not a Setup');
  body.value.cryptoTokens = [token(c, new Uint8Array(12))];
  const mac = hmac96(password, encodeCallSignalling(m));
  body.value.cryptoTokens = [token(c, mac)];
  return encodeCallSignalling(m);
}

/**
 * Any call signalling message after the Setup signed the same way (H.235.1 §13.2): the token in its UUIE's
 * `cryptoTokens` (Information, Facility, Progress, ReleaseComplete …), the hash over the whole Q.931 message.
 */
export function endpointSignCall(m: CallSignallingMessage, password: string, clear: EndpointClear): Uint8Array {
  const c = { ...clear, timeStamp: clear.timeStamp ?? Math.floor(Date.now() / 1000) };
  const body = m.uu?.['h323-uu-pdu']['h323-message-body'];
  if (!body || body.choice === 'empty' || typeof body.value !== 'object' || body.value === null)
    throw new Error('a body that carries no tokens');
  const v = body.value as { cryptoTokens?: CryptoH323Token[] };
  v.cryptoTokens = [token(c, new Uint8Array(12))];
  const mac = hmac96(password, encodeCallSignalling(m));
  v.cryptoTokens = [token(c, mac)];
  return encodeCallSignalling(m);
}

/** What an endpoint finds when it checks a signed call signalling message (`endpointCheckCall`). */
export interface EndpointCheck {
  /** The ClearToken of the procedure I token (undefined: the message carries none). */
  clear?: { generalID?: string; sendersID?: string; timeStamp?: number; random?: number | bigint };
  /** Whether HMAC-SHA1-96 keyed with SHA-1 of the password, over the octets with the hash zeroed, matches. */
  valid: boolean;
}

/**
 * Checks a call signalling message the node signed, as the receiving endpoint does: the procedure I token of the
 * UUIE (OIDs A, T, U), its 12 hash octets looked up in the message as received, zeroed in a copy, HMAC-SHA1 over
 * the copy with SHA-1 of `password` as key, the first 12 octets compared.
 */
export function endpointCheckCall(raw: Uint8Array, password: string): EndpointCheck {
  const d = decodeCallSignalling(raw);
  if (!d.ok) return { valid: false };
  const body = d.value.uu?.['h323-uu-pdu']['h323-message-body'];
  const tokens =
    body && typeof body.value === 'object' && body.value !== null
      ? (body.value as { cryptoTokens?: CryptoH323Token[] }).cryptoTokens
      : undefined;
  const t = tokens?.find((x) => x.choice === 'nestedcryptoToken' && x.value.choice === 'cryptoHashedToken');
  if (t?.choice !== 'nestedcryptoToken' || t.value.choice !== 'cryptoHashedToken') return { valid: false };
  const h = t.value.value;
  const c = h.hashedVals;
  const clear = {
    ...(c.generalID !== undefined ? { generalID: c.generalID } : {}),
    ...(c.sendersID !== undefined ? { sendersID: c.sendersID } : {}),
    ...(c.timeStamp !== undefined ? { timeStamp: c.timeStamp } : {}),
    ...(c.random !== undefined ? { random: c.random } : {}),
  };
  const oids =
    h.tokenOID === '0.0.8.235.0.2.1' && c.tokenOID === '0.0.8.235.0.2.5' && h.token.algorithmOID === '0.0.8.235.0.2.6';
  if (!oids || h.token.hash.length !== 96) return { clear, valid: false };
  const hash = Buffer.from(h.token.hash.data.subarray(0, 12));
  const bytes = Buffer.from(raw);
  for (let at = bytes.indexOf(hash); at >= 0; at = bytes.indexOf(hash, at + 1)) {
    const copy = Buffer.from(bytes);
    copy.fill(0, at, at + 12);
    if (hmac96(password, copy).equals(hash)) return { clear, valid: true };
  }
  return { clear, valid: false };
}
