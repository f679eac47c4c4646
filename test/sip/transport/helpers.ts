import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import type { Clock } from '../../../src/common/timers.ts';
import { systemClock } from '../../../src/common/timers.ts';
import { parseMessage } from '../../../src/sip/message/parser.ts';
import type { SipMessage } from '../../../src/sip/message/types.ts';
import { SipTransportLayer, type SipTransportLayerOptions } from '../../../src/sip/transport/transport-layer.ts';
import type { InboundInfo } from '../../../src/sip/transport/types.ts';

export const LIMITS = { maxMessageBytes: 65_535, maxHeaders: 128, maxHeaderBytes: 8192 };

/** A layer with test defaults and a queue of what it received. */
export function makeLayer(over: Partial<SipTransportLayerOptions> = {}, clock: Clock = systemClock) {
  const inbox: Array<{ msg: SipMessage; info: InboundInfo }> = [];
  const waiters: Array<() => void> = [];
  const layer = new SipTransportLayer({
    clock,
    limits: LIMITS,
    connections: { maxConnections: 100, idleTimeoutSeconds: 60, newConnectionsPerSecondPerSource: 0 },
    outboundPorts: { from: 25000, to: 29999 },
    onMessage: (msg, info) => {
      inbox.push({ msg, info });
      for (const w of waiters.splice(0)) w();
    },
    ...over,
  });
  /** Resolves with the n-th message received (1-based), waiting up to `ms`. */
  async function nth(n: number, ms = 3000) {
    const deadline = Date.now() + ms;
    while (inbox.length < n) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for message ${n} (have ${inbox.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return inbox[n - 1]!;
  }
  return { layer, inbox, nth };
}

let seq = 0;

/** A well-formed request as text (CRLF line ends). */
export function request(
  o: {
    method?: string;
    transport?: string;
    viaHost?: string;
    viaPort?: number;
    viaParams?: string;
    body?: string;
    callId?: string;
    extra?: string[];
  } = {},
): string {
  const method = o.method ?? 'OPTIONS';
  const body = o.body ?? '';
  const n = ++seq;
  const via = `SIP/2.0/${o.transport ?? 'UDP'} ${o.viaHost ?? '192.0.2.10'}${o.viaPort ? ':' + o.viaPort : ''}`;
  return [
    `${method} sip:crossway.test SIP/2.0`,
    `Via: ${via};branch=z9hG4bK-test-${n}${o.viaParams ?? ''}`,
    'Max-Forwards: 70',
    `From: <sip:alice@example.test>;tag=a${n}`,
    'To: <sip:crossway.test>',
    `Call-ID: ${o.callId ?? `call-${n}@example.test`}`,
    `CSeq: ${n} ${method}`,
    ...(o.extra ?? []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

/** Value of the first header `name` (case-insensitive) of a message. */
export function header(msg: SipMessage, name: string): string | undefined {
  const n = name.toLowerCase();
  return msg.headers.find((h) => h.name.toLowerCase() === n)?.value;
}

/** A UDP client on 127.0.0.1 (or ::1) collecting what it receives. */
export async function udpClient(family: 4 | 6 = 4) {
  const sock: UdpSocket = createSocket(family === 4 ? 'udp4' : 'udp6');
  await new Promise<void>((r) => sock.bind(0, family === 4 ? '127.0.0.1' : '::1', r));
  const got: Buffer[] = [];
  const from: Array<{ address: string; port: number }> = [];
  const waiters: Array<() => void> = [];
  sock.on('message', (m, rinfo) => {
    got.push(m);
    from.push({ address: rinfo.address, port: rinfo.port });
    for (const w of waiters.splice(0)) w();
  });
  return {
    port: sock.address().port,
    send: (data: string | Buffer, port: number, address = family === 4 ? '127.0.0.1' : '::1') =>
      new Promise<void>((r, j) => sock.send(data, port, address, (e) => (e ? j(e) : r()))),
    got,
    next: (ms = 2000) =>
      waitUntil(
        () => {
          from.shift();
          return got.shift();
        },
        waiters,
        ms,
      ),
    /** The next datagram with the address it came from. */
    nextFrom: (ms = 2000) =>
      waitUntil(
        () => {
          if (got.length === 0) return undefined;
          return { msg: got.shift()!, rinfo: from.shift()! };
        },
        waiters,
        ms,
      ),
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
}

async function waitUntil<T>(probe: () => T | undefined, waiters: Array<() => void>, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error('timed out');
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

/** A stream client collecting bytes; `closed` resolves when the server closes. */
export function streamClient(socket: Socket) {
  let buf = Buffer.alloc(0);
  const waiters: Array<() => void> = [];
  let ended = false;
  const closed = new Promise<void>((resolve) => {
    socket.on('close', () => {
      ended = true;
      for (const w of waiters.splice(0)) w();
      resolve();
    });
  });
  socket.on('error', () => {});
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    for (const w of waiters.splice(0)) w();
  });
  return {
    socket,
    closed,
    get ended() {
      return ended;
    },
    text: () => buf.toString('latin1'),
    /** Waits until the received text contains `s` (or `n` bytes arrived); returns all text so far. */
    waitFor: (s: string | number, ms = 3000) =>
      waitUntil(
        () =>
          (typeof s === 'number' ? buf.length >= s : buf.toString('latin1').includes(s))
            ? buf.toString('latin1')
            : undefined,
        waiters,
        ms,
      ),
    write: (d: string | Buffer) => new Promise<void>((r, j) => socket.write(d, (e) => (e ? j(e) : r()))),
  };
}

export function tcpConnect(port: number, host = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host });
    s.once('connect', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** Polls `cond` every 10 ms up to `ms`. */
export async function eventually(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Parses test text that must be well-formed. */
export function parsed(text: string): SipMessage {
  const r = parseMessage(Buffer.from(text), LIMITS);
  if (!r.ok) throw new Error(`test message does not parse: ${r.reason.reason}`);
  return r.value;
}
