import type { CallStats } from './relay-core.ts';

/** What the relay received from one party of a call, over all its streams (RTP and RTCP). */
export interface MediaDirectionTotals {
  packets: number;
  bytes: number;
  /** Wall-clock ms of the last packet from that party (0: none). */
  lastAt: number;
}

/** A call's media per direction, as operators see it (call records, `media.call`). */
export interface CallMediaTotals {
  fromCaller: MediaDirectionTotals;
  fromCallee: MediaDirectionTotals;
}

/**
 * Sums a call's relay statistics per direction. `callerTag` names the caller (the relay's party 0 is the first
 * offerer, which is the callee of a late-offer call); `toWall` turns the relay clock's ms into wall-clock ms.
 */
export function mediaTotals(stats: CallStats, callerTag: string, toWall: (clockMs: number) => number): CallMediaTotals {
  const caller: 0 | 1 = stats.tags[1] === callerTag && stats.tags[0] !== callerTag ? 1 : 0;
  const sum = (party: 0 | 1): MediaDirectionTotals => {
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
