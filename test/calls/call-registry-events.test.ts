import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CallEvent, CallRegistry } from '../../src/calls/call-registry.ts';

test('the call registry reports attempt, connected and disconnected (with cause) to its listener', () => {
  const reg = new CallRegistry({ historySize: 10, wallNow: () => 1000 });
  const seen: string[] = [];
  reg.onEvent = (e: CallEvent) =>
    seen.push(`${e.kind}:${e.call.id}${e.kind === 'disconnected' ? `:${e.call.cause}` : ''}`);
  reg.start({ id: 'c1', protocol: 'sip', from: 'sip:a@x', to: 'sip:b@x', sourceZone: 'DefaultZone' });
  reg.addLeg('c1', 'LocalZone', 'sip:b@192.0.2.1');
  reg.answered('c1', 0);
  reg.finish('c1', 200, 'bye from caller');
  reg.start({ id: 'c2', protocol: 'sip', from: 'sip:a@x', to: 'sip:n@x', sourceZone: 'DefaultZone' });
  reg.finish('c2', 404, 'no route');
  assert.deepEqual(seen, [
    'attempt:c1',
    'connected:c1',
    'disconnected:c1:bye from caller',
    'attempt:c2',
    'disconnected:c2:no route',
  ]);
  // A throwing listener never breaks the registry.
  reg.onEvent = () => {
    throw new Error('listener bug');
  };
  reg.start({ id: 'c3', protocol: 'sip', from: 'a', to: 'b', sourceZone: 'DefaultZone' });
  reg.finish('c3', 486, 'busy');
  assert.equal(reg.history(1)[0]?.id, 'c3');
});
