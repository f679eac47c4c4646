import { createHash, createHmac } from 'node:crypto';
import type { CryptoH323Token, RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';
import { type CallSignallingMessage, encodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';

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
