import type { TransactionTimerConfig } from './types.ts';

/**
 * The RFC 3261 Table 4 timers (ms) for one transaction, resolved from T1/T2/T4 and the transport's reliability.
 * `undefined` for A/E/G means "not armed" (reliable transport: no retransmissions).
 */
export interface TimerValues {
  readonly t1: number;
  readonly t2: number;
  readonly t4: number;
  /** INVITE request retransmit, initially T1; unreliable only. */
  readonly A: number | undefined;
  /** INVITE transaction timeout, 64*T1. */
  readonly B: number;
  /** Wait for response retransmissions: ≥ 32 s unreliable, 0 reliable. */
  readonly D: number;
  /** Non-INVITE request retransmit, initially T1; unreliable only. */
  readonly E: number | undefined;
  /** Non-INVITE transaction timeout, 64*T1. */
  readonly F: number;
  /** INVITE response retransmit, initially T1; unreliable only. */
  readonly G: number | undefined;
  /** Wait for ACK receipt, 64*T1. */
  readonly H: number;
  /** Wait for ACK retransmissions: T4 unreliable, 0 reliable. */
  readonly I: number;
  /** Wait for non-INVITE request retransmissions: 64*T1 unreliable, 0 reliable. */
  readonly J: number;
  /** Wait for non-INVITE response retransmissions: T4 unreliable, 0 reliable. */
  readonly K: number;
  /** RFC 6026: wait for INVITE retransmissions after a 2xx (server), 64*T1. */
  readonly L: number;
  /** RFC 6026: wait for 2xx retransmissions (client), 64*T1. */
  readonly M: number;
  /** Delay before the INVITE server transaction sends 100 Trying on its own; < 0 never. */
  readonly trying100: number;
}

/** Resolves the timer set for a transport; see RFC 3261 Table 4 and RFC 6026 §8.11. */
export function resolveTimers(config: TransactionTimerConfig, reliable: boolean): TimerValues {
  const { t1, t2, t4 } = config;
  const long = 64 * t1;
  return {
    t1,
    t2,
    t4,
    A: reliable ? undefined : t1,
    B: long,
    D: reliable ? 0 : (config.timerD ?? Math.max(32_000, long)),
    E: reliable ? undefined : t1,
    F: long,
    G: reliable ? undefined : t1,
    H: long,
    I: reliable ? 0 : t4,
    J: reliable ? 0 : long,
    K: reliable ? 0 : t4,
    L: long,
    M: long,
    trying100: config.trying100Ms ?? 200,
  };
}
