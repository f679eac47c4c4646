import type { CallRegistry } from '../calls/call-registry.ts';
import { LOCAL_ZONE } from '../routing/config.ts';
import type { AliasText } from './api.ts';
import type { RoutedCallInfo } from './calls/routed-call.ts';

/** Aliases as a record shows them: `h323-ID:alice,dialledDigits:2001`. */
export function aliasList(aliases: readonly AliasText[]): string {
  return aliases.map((a) => `${a.kind}:${a.value}`).join(',');
}

/**
 * Feeds a node's call registry (active calls, history, call detail records in the store — the ones SIP calls write)
 * from routed H.323 calls: one record per call, protocol `h323`, `from`/`to` the caller's and called aliases, one leg
 * toward the callee's call signalling address, the cause the call ended with, and while it runs its media path
 * (codecs each side sends, the relay ports facing each side: `mediaPath`). Zones are the routing's, named as SIP
 * records name them: `sourceZone` the zone the Setup came from (a neighbor zone's name, else `LocalZone`, known once
 * routing has run: `LocalZone` until then), the leg's zone (the record's `targetZone` once answered) the zone the
 * callee was found in (`LocalZone` for a registration here). Returns the listener to hand to
 * `CallServer.onCallState`.
 */
export function h323CallRecorder(registry: CallRegistry): (info: Readonly<RoutedCallInfo>) => void {
  const legged = new Set<string>();
  return (info) => {
    const id = `h323:${info.id}`;
    if (info.state === 'routing' && !registry.get(id)) {
      registry.start({
        id,
        protocol: 'h323',
        from: aliasList(info.source),
        to: aliasList(info.destination),
        sourceZone: info.sourceZone ?? LOCAL_ZONE,
      });
      return;
    }
    const call = registry.get(id);
    if (!call) return; // released before a Setup was read: no call to record
    if (info.sourceZone !== undefined && call.sourceZone !== info.sourceZone)
      registry.setSourceZone(id, info.sourceZone);
    if (info.codecs.a.length + info.codecs.b.length + info.relay.length > 0) {
      registry.setMediaPath(id, {
        codecs: { caller: info.codecs.a, callee: info.codecs.b },
        relay: info.relay.map((r) => ({ session: r.session, address: r.address, caller: r.a, callee: r.b })),
      });
    }
    if (info.target && !legged.has(id) && info.state !== 'released') {
      legged.add(id);
      registry.addLeg(id, info.targetZone ?? LOCAL_ZONE, `${info.target.ip}:${info.target.port}`);
    }
    if (info.state === 'alerting') registry.legStatus(id, 0, 180);
    if (info.state === 'connected') {
      registry.legStatus(id, 0, 200);
      registry.answered(id, 0);
    }
    if (info.state === 'released') {
      legged.delete(id);
      const answered = info.connectedAt !== undefined;
      registry.finish(id, answered ? 200 : 0, info.endReason ?? (answered ? 'released' : 'not connected'));
    }
  };
}
