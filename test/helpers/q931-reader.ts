import assert from 'node:assert/strict';
import type net from 'node:net';
import { type CallSignallingMessage, decodeCallSignalling } from '../../src/h323/q931/call-signalling.ts';
import { q931MessageName } from '../../src/h323/q931/q931.ts';
import { TpktFramer } from '../../src/h323/transport/tpkt.ts';

/**
 * Reads the call signalling the node sends on a TCP socket (TPKT-framed Q.931/H.225.0, each PDU must decode) and
 * returns a function that waits at most `ms` for the next message of a Q.931 type (`setup`, `releaseComplete`…),
 * taking it out of what arrived; messages of other types stay for later calls.
 */
export function callSignallingReader(s: net.Socket) {
  const framer = new TpktFramer();
  const inbox: CallSignallingMessage[] = [];
  const waiters: Array<() => void> = [];
  s.on('data', (d) => {
    const r = framer.push(d);
    assert.ok(r.ok);
    for (const p of r.value) {
      const m = decodeCallSignalling(p);
      assert.ok(m.ok, 'the node sends call signalling that decodes');
      inbox.push(m.value);
    }
    for (const w of waiters.splice(0)) w();
  });
  return (name: string, ms = 5000) =>
    new Promise<CallSignallingMessage>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${name}; got ${inbox.map((m) => m.q931.messageType)}`)), ms);
      const look = () => {
        const i = inbox.findIndex((m) => q931MessageName(m.q931.messageType) === name);
        if (i < 0) return void waiters.push(look);
        clearTimeout(t);
        resolve(inbox.splice(i, 1)[0]!);
      };
      look();
    });
}
