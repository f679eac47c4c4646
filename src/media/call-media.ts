import type { CallMedia, CallMediaDirection, CallMediaPath } from '../calls/call-registry.ts';
import type { CallStats } from './relay-core.ts';

/**
 * Sums a call's relay statistics per direction. `callerTag` names the caller (the relay's party 0 is the first
 * offerer, which is the callee of a late-offer call); `toWall` turns the relay clock's ms into wall-clock ms.
 */
export function mediaTotals(stats: CallStats, callerTag: string, toWall: (clockMs: number) => number): CallMedia {
  const caller = callerParty(stats, callerTag);
  const sum = (party: 0 | 1): CallMediaDirection => {
    let packets = 0;
    let bytes = 0;
    let last = 0;
    for (const s of stats.streams) {
      const side = s.sides[party];
      packets += side.packetsIn;
      bytes += side.bytesIn;
      if (side.lastInAt > last) last = side.lastInAt;
    }
    return { packets, bytes, lastAt: last > 0 ? Math.round(toWall(last)) : 0 };
  };
  return { fromCaller: sum(caller), fromCallee: sum((1 - caller) as 0 | 1) };
}

/** The relay's party (0: first offerer) that `callerTag` names; 0 when it names neither. */
function callerParty(stats: CallStats, callerTag: string): 0 | 1 {
  return stats.tags[1] === callerTag && stats.tags[0] !== callerTag ? 1 : 0;
}

/**
 * A relayed SDP call's media path, as call records keep it: the codecs of each party's latest SDP (over its streams,
 * in order, duplicates once) and per stream (`session`: the m= line's index) the relay's port pairs facing caller and
 * callee, with the address advertised to the caller (`calleeAddress` too when the callee is given another, e.g. a
 * traversal leg). Undefined when the call has no stream.
 */
export function mediaPathOf(stats: CallStats, callerTag: string): CallMediaPath | undefined {
  if (stats.streams.length === 0) return undefined;
  const caller = callerParty(stats, callerTag);
  const callee = (1 - caller) as 0 | 1;
  const codecs = (party: 0 | 1) => [...new Set(stats.streams.flatMap((s) => s.sides[party].codecs))];
  return {
    codecs: { caller: codecs(caller), callee: codecs(callee) },
    relay: stats.streams.map((s) => {
      const a = s.sides[caller];
      const b = s.sides[callee];
      return {
        session: s.index,
        address: a.localAddress,
        ...(b.localAddress !== a.localAddress ? { calleeAddress: b.localAddress } : {}),
        caller: { rtp: a.localRtpPort, rtcp: a.localRtcpPort },
        callee: { rtp: b.localRtpPort, rtcp: b.localRtcpPort },
      };
    }),
  };
}
