import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { aliasFromText, H225_PROTOCOL_ID, h225Address } from '../../src/h323/api.ts';
import type { RasMessage } from '../../src/h323/per/generated/types.ts';
import { rasCodec } from '../../src/h323/per/schema.ts';

/**
 * One place for a test's RAS side of a lab node: a UDP socket on 127.0.0.1 (standing for endpoints, or a neighbour
 * gatekeeper) whose every datagram must decode as RAS. `next(choice)` resolves with the first message received of
 * that choice (or of `orChoice`), taking it out of the inbox, and rejects after `timeoutMs`.
 */
export async function rasPeer(timeoutMs: number) {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const port = socket.address().port;
  const inbox: RasMessage[] = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (b) => {
    const d = rasCodec.decode(b);
    assert.ok(d.ok, 'the node sends RAS that decodes');
    inbox.push(d.value);
    for (const w of waiters.splice(0)) w();
  });
  const next = (choice: RasMessage['choice'], orChoice?: RasMessage['choice']) =>
    new Promise<RasMessage>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${choice}; got ${inbox.map((m) => m.choice)}`)), timeoutMs);
      const look = () => {
        const i = inbox.findIndex((m) => m.choice === choice || m.choice === orChoice);
        if (i < 0) return void waiters.push(look);
        clearTimeout(t);
        resolve(inbox.splice(i, 1)[0]!);
      };
      look();
    });
  return { socket, port, next };
}

/** A full RRQ from 127.0.0.1: `aliases` (as text), call signalling on `callSignalPort`, RAS on `rasPort`. */
export function rrq(requestSeqNum: number, aliases: string[], callSignalPort: number, rasPort: number): RasMessage {
  return {
    choice: 'registrationRequest',
    value: {
      requestSeqNum,
      protocolIdentifier: H225_PROTOCOL_ID,
      discoveryComplete: true,
      callSignalAddress: [h225Address('127.0.0.1', callSignalPort)],
      rasAddress: [h225Address('127.0.0.1', rasPort)],
      terminalType: { terminal: {}, mc: false, undefinedNode: false },
      terminalAlias: aliases.map(aliasFromText),
      endpointVendor: { vendor: { t35CountryCode: 181, t35Extension: 0, manufacturerCode: 1 } },
    },
  };
}
