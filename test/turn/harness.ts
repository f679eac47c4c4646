import { FakeClock } from '../../src/common/timers.ts';
import type { TransportAddress } from '../../src/stun/address.ts';
import { Method } from '../../src/stun/constants.ts';
import { type TurnAnswer, TurnClientSession, turnAttr } from '../../src/turn/client.ts';
import { defaultTurnConfig, type TurnConfigInput } from '../../src/turn/config.ts';
import { ConfigCredentials, type LongTermCredentials } from '../../src/turn/credentials.ts';
import { TurnEngine } from '../../src/turn/engine.ts';
import { PeerPolicy } from '../../src/turn/peer-policy.ts';
import type {
  ClientTransport,
  PeerConnection,
  RelayHandle,
  RelaySink,
  TcpPipeMeter,
  TurnIo,
} from '../../src/turn/types.ts';

export interface FakePeer extends PeerConnection {
  paused: boolean;
  closed: boolean;
  fireClose(): void;
}

export function fakePeer(remoteAddress: string, remotePort: number): FakePeer {
  const closers: (() => void)[] = [];
  const p: FakePeer = {
    remoteAddress,
    remotePort,
    paused: false,
    closed: false,
    pause: () => {
      p.paused = true;
    },
    close: () => {
      if (!p.closed) p.fireClose();
    },
    onClose: (fn) => closers.push(fn),
    fireClose: () => {
      p.closed = true;
      for (const f of closers) f();
    },
  };
  return p;
}

export interface FakeRelay extends RelayHandle {
  sent: { ip: string; port: number; data: Buffer }[];
  closed: boolean;
  sink: RelaySink;
}

export const SERVER_IP = '198.51.100.1';
export const PEER: TransportAddress = { family: 4, address: '192.0.2.10', port: 5000 };

/** A TurnEngine on a FakeClock with fake relay sockets, and helpers to talk to it as clients. */
export function harness(
  input: TurnConfigInput = {},
  opts: {
    families?: (4 | 6)[];
    range?: [number, number];
    /** Credentials in place of the configuration's (given the configuration's, to chain behind). */
    credentials?: (fromConfig: LongTermCredentials) => LongTermCredentials;
  } = {},
) {
  const clock = new FakeClock();
  const relays: FakeRelay[] = [];
  const tcpListeners: { port: number; onPeer: (c: PeerConnection) => void; closed: boolean }[] = [];
  const dialed: FakePeer[] = [];
  const refuse = new Set<number>();
  const io: TurnIo = {
    async openTcpRelay(family, port, onPeer) {
      const l = { port, onPeer, closed: false };
      tcpListeners.push(l);
      return {
        address: { family, address: family === 4 ? SERVER_IP : '2001:db8::1', port },
        send() {},
        close() {
          l.closed = true;
        },
      };
    },
    async connectTcp(_family, ip, port) {
      if (refuse.has(port)) return undefined;
      const p = fakePeer(ip, port);
      dialed.push(p);
      return p;
    },
    relayFamilies: new Set(opts.families ?? [4]),
    async openRelay(family, port, sink) {
      const r: FakeRelay = {
        address: { family, address: family === 4 ? SERVER_IP : '2001:db8::1', port },
        sent: [],
        closed: false,
        sink,
        send(ip, p, data) {
          r.sent.push({ ip, port: p, data: Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.concat(data) });
        },
        close() {
          r.closed = true;
        },
      };
      relays.push(r);
      return r;
    },
  };
  const config = defaultTurnConfig({
    realm: 'crossway.test',
    users: [
      { username: 'alice', password: 'wonderland' },
      { username: 'carol', password: 'c4rol' },
    ],
    sharedSecret: 'shared-secret-1',
    ...input,
  });
  const engine = new TurnEngine({
    config,
    clock,
    io,
    credentials: opts.credentials
      ? opts.credentials(new ConfigCredentials(config, clock))
      : new ConfigCredentials(config, clock),
    peerPolicy: new PeerPolicy({
      denied: config.peers.denied,
      allowed: config.peers.allowed,
      ownAddresses: [SERVER_IP],
    }),
    relayRange: { from: opts.range?.[0] ?? 50000, to: opts.range?.[1] ?? 50009 },
    random: () => 0,
  });

  const flush = () => new Promise((r) => setImmediate(r));

  function client(port = 40000, protocol: 'udp' | 'tcp' = 'udp', listenerPort = 3478) {
    const out: Buffer[] = [];
    const attached: PeerConnection[] = [];
    const meters: TcpPipeMeter[] = [];
    const transport: ClientTransport = {
      attachPeer: (p, meter) => {
        attached.push(p);
        meters.push(meter);
      },
      protocol,
      remote: { family: 4, address: '203.0.113.5', port },
      local: { family: 4, address: SERVER_IP, port: listenerPort },
      key: `${protocol}|${port}`,
      send(d) {
        out.push(Buffer.isBuffer(d) ? Buffer.from(d) : Buffer.concat(d));
      },
    };
    return { transport, out, attached, meters };
  }

  /** Sends bytes and returns the single answer (parsed by `session`), or undefined when none came. */
  async function exchange(c: ReturnType<typeof client>, session: TurnClientSession, bytes: Buffer) {
    const before = c.out.length;
    engine.handleClientData(c.transport, bytes);
    await flush();
    if (c.out.length === before) return undefined;
    return session.answer(c.out[c.out.length - 1]!);
  }

  /** Challenge then authenticated request: the answer to the second. */
  async function authed(
    c: ReturnType<typeof client>,
    session: TurnClientSession,
    method: number,
    attrs: (tid: Buffer) => [number, Buffer][] = () => [],
  ): Promise<TurnAnswer> {
    if (!session.nonce) {
      const first = await exchange(c, session, session.request(method, attrs(Buffer.alloc(12))));
      if (first?.error !== 401) throw new Error(`expected a 401 challenge, got ${first?.error}`);
    }
    const tid = Buffer.from(Array.from({ length: 12 }, () => Math.floor(Math.random() * 256)));
    const a = await exchange(c, session, session.request(method, attrs(tid), tid));
    if (!a) throw new Error('no answer');
    return a;
  }

  async function allocate(
    c = client(),
    session = new TurnClientSession('alice', 'wonderland'),
    extra: [number, Buffer][] = [],
  ) {
    const a = await authed(c, session, Method.allocate, () => [turnAttr.udpTransport(), ...extra]);
    return { c, session, a };
  }

  return { clock, relays, engine, config, client, exchange, authed, allocate, flush, tcpListeners, dialed, refuse };
}
