import dgram from 'node:dgram';
import { SEED } from '../../ports/index.ts';
import { fromH225Address, type IpPort } from '../api.ts';
import { rasCodec } from '../per/schema.ts';
import { type Gatekeeper, type GatekeeperSend, MAX_RAS_DATAGRAM } from './gatekeeper.ts';

/** The well-known gatekeeper discovery group (H.225.0 §7.2.1, IANA "h323 gatekeeper discovery"). */
export const DISCOVERY_GROUP: string = SEED.h323DiscoveryGroup;

/** What the discovery socket saw (status and tests). */
export interface DiscoveryCounters {
  /** GRQs received on the discovery group. */
  grq: number;
  /** GCFs sent back (unicast, to the GRQ's rasAddress). */
  gcf: number;
  /** GRJs sent back (the GRQ's aliases refused by policy or security). */
  grj: number;
  /** GRQs meant for another gatekeeper (they name its gatekeeperIdentifier): left unanswered. */
  notForUs: number;
  /** Datagrams that were not a GRQ (other RAS messages have no business on the discovery group), or malformed. */
  ignored: number;
}

/**
 * The answer to a datagram that reached the discovery group (sans-I/O): only a GRQ is answered, by the gatekeeper
 * exactly as a unicast GRQ (policy, H.235.1, intrusion protection and flood limits included), and the answer goes
 * to the GRQ's `rasAddress` (H.225.0 §7.2.1), not to the datagram's source. A GRQ naming another gatekeeper is not
 * answered: on a shared group a GRJ `terminalExcluded` from every other gatekeeper is only noise.
 */
export function answerDiscovery(
  gk: Gatekeeper,
  bytes: Uint8Array,
  from: IpPort,
  counters: DiscoveryCounters,
): GatekeeperSend | undefined {
  const d = bytes.length > MAX_RAS_DATAGRAM ? undefined : rasCodec.decode(bytes);
  if (!d?.ok || d.value.choice !== 'gatekeeperRequest') {
    counters.ignored++;
    // malformed datagrams count against their source like any RAS
    if (!d?.ok) gk.handleDatagram(bytes, from);
    return undefined;
  }
  counters.grq++;
  const grq = d.value.value;
  const reply = gk.handleDatagram(bytes, from);
  if (!reply) return undefined;
  if (reply.message.choice === 'gatekeeperReject' && reply.message.value.rejectReason.choice === 'terminalExcluded') {
    counters.notForUs++;
    return undefined;
  }
  if (reply.message.choice === 'gatekeeperConfirm') counters.gcf++;
  else counters.grj++;
  const to = fromH225Address(grq.rasAddress);
  return { ...reply, to: to && to.port > 0 ? to : from };
}

/**
 * The discovery socket: bound to the group and port of the plan's `h323-ras-discovery` listener, member of the
 * group on the node's RAS-side address. Answers leave from the RAS socket (`gk.onSend`), so the endpoint hears the
 * gatekeeper from the address it will register with.
 */
export class DiscoveryServer {
  readonly #socket: dgram.Socket;
  readonly counters: DiscoveryCounters = { grq: 0, gcf: 0, grj: 0, notForUs: 0, ignored: 0 };
  readonly group: string;
  #closed = false;

  private constructor(socket: dgram.Socket, gk: Gatekeeper, group: string) {
    this.#socket = socket;
    this.group = group;
    socket.on('message', (msg, rinfo) => {
      if (this.#closed) return;
      const reply = answerDiscovery(gk, msg, { ip: rinfo.address, port: rinfo.port }, this.counters);
      if (reply) gk.onSend(reply);
    });
    socket.on('error', () => {
      // nothing a datagram does may end the node
    });
  }

  /**
   * Binds `group:port` (several gatekeepers on one host may: the socket reuses the address) and joins the group
   * on `interfaceAddress` (the node's RAS-side address; a multicast route through that interface must exist).
   */
  static async start(
    gk: Gatekeeper,
    o: { port: number; interfaceAddress: string; group?: string },
  ): Promise<DiscoveryServer> {
    const group = o.group ?? DISCOVERY_GROUP;
    const socket = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port, group, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    try {
      socket.addMembership(group, o.interfaceAddress);
    } catch (e) {
      socket.close();
      throw new Error(`cannot join ${group} on ${o.interfaceAddress}: ${(e as Error).message}`);
    }
    return new DiscoveryServer(socket, gk, group);
  }

  address(): IpPort {
    const a = this.#socket.address();
    return { ip: a.address, port: a.port };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}
