import type { FakeClock } from '../../../src/common/timers.ts';
import { parseMessage, serializeMessage } from '../../../src/sip/message/index.ts';
import type { SipMessage } from '../../../src/sip/message/types.ts';
import type { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import type { Endpoint, OutboundTarget, TransactionSender } from '../../../src/sip/transaction/types.ts';

/**
 * A loopback "network" for transaction tests, in the manner of pjsip's `sip_transport_loop`: every message is
 * serialized, may be dropped, duplicated or delayed under a seeded RNG, and is delivered (parsed again) to the node it
 * was meant for when the FakeClock reaches its arrival time. UDP only: the layers retransmit.
 */

/** mulberry32: a tiny deterministic PRNG; same seed, same run. */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LinkControls {
  /** Probability that a datagram is lost. */
  dropRate: number;
  /** Probability that a delivered datagram arrives twice. */
  duplicateRate: number;
  /** One-way delay, uniform in [min, max] ms (reordering follows when the range is wide). */
  minDelayMs: number;
  maxDelayMs: number;
  /** Drops the next N datagrams whatever the rate (SIP.js `receiveDropOnce` style). */
  dropNext: number;
}

export interface LinkStats {
  sent: number;
  dropped: number;
  duplicated: number;
  delivered: number;
  unparsable: number;
  unroutable: number;
}

interface Node {
  name: string;
  address: Endpoint;
  layer: () => TransactionLayer;
}

const keyOf = (e: Endpoint) => `${e.address}:${e.port}`;

export class LoopNetwork {
  readonly controls: LinkControls;
  readonly stats: LinkStats = { sent: 0, dropped: 0, duplicated: 0, delivered: 0, unparsable: 0, unroutable: 0 };
  /** Every datagram put on the wire, with its fate. */
  readonly log: { at: number; from: string; to: string; first: string; fate: 'dropped' | 'sent' | 'duplicated' }[] = [];
  readonly #clock: FakeClock;
  readonly #rng: () => number;
  readonly #nodes = new Map<string, Node>();

  constructor(clock: FakeClock, rng: () => number, controls: Partial<LinkControls> = {}) {
    this.#clock = clock;
    this.#rng = rng;
    this.controls = { dropRate: 0, duplicateRate: 0, minDelayMs: 5, maxDelayMs: 5, dropNext: 0, ...controls };
  }

  /** Adds a node; returns the sender its transaction layer must use. */
  attach(name: string, address: Endpoint, layer: () => TransactionLayer): TransactionSender {
    const node = { name, address, layer };
    this.#nodes.set(keyOf(address), node);
    return { send: (message, target) => this.#send(node, message, target) };
  }

  #send(from: Node, message: SipMessage, target: OutboundTarget): void {
    const to = target.kind === 'request' ? target.destination : target.replyTo?.source;
    if (!to) {
      this.stats.unroutable++;
      return;
    }
    const wire = serializeMessage(message);
    const first = wire.subarray(0, wire.indexOf(13)).toString('latin1');
    this.stats.sent++;
    const c = this.controls;
    if (c.dropNext > 0 || this.#rng() < c.dropRate) {
      if (c.dropNext > 0) c.dropNext--;
      this.stats.dropped++;
      this.log.push({ at: this.#clock.now(), from: from.name, to: keyOf(to), first, fate: 'dropped' });
      return;
    }
    const copies = this.#rng() < c.duplicateRate ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    this.log.push({
      at: this.#clock.now(),
      from: from.name,
      to: keyOf(to),
      first,
      fate: copies === 2 ? 'duplicated' : 'sent',
    });
    for (let i = 0; i < copies; i++) {
      const delay = c.minDelayMs + this.#rng() * (c.maxDelayMs - c.minDelayMs);
      this.#clock.setTimer(delay, () => this.#deliver(from, to, wire));
    }
  }

  #deliver(from: Node, to: Endpoint, wire: Buffer): void {
    const node = this.#nodes.get(keyOf(to));
    if (!node) {
      this.stats.unroutable++;
      return;
    }
    const parsed = parseMessage(wire);
    if (!parsed.ok) {
      this.stats.unparsable++;
      return;
    }
    this.stats.delivered++;
    node
      .layer()
      .receive(parsed.value, { transport: 'UDP', reliable: false, source: from.address, local: node.address });
  }
}
