import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { answerChallenge, pickChallenge } from '../../src/sip/auth/client.ts';
import { LocalCredentialStore } from '../../src/sip/auth/local-credentials.ts';
import { NodeStore } from '../../src/store/database.ts';

/** A parsed SIP message, just enough for the test user agents. */
export interface Msg {
  start: string;
  status: number;
  method: string;
  headers: [string, string][];
  body: string;
  raw: string;
}

export function parse(raw: string): Msg {
  const [head = '', body = ''] = raw.split('\r\n\r\n', 2);
  const lines = head.split('\r\n');
  const start = lines.shift() ?? '';
  const headers = lines.map((l) => {
    const i = l.indexOf(':');
    return [l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim()] as [string, string];
  });
  const m = /^SIP\/2\.0 (\d{3})/.exec(start);
  return { start, status: m ? Number(m[1]) : 0, method: m ? '' : start.split(' ')[0]!, headers, body, raw };
}

export const hdr = (m: Msg, name: string) => m.headers.find(([n]) => n === name)?.[1];
export const hdrs = (m: Msg, name: string) =>
  m.headers.filter(([n]) => n === name).flatMap(([, v]) => v.split(/,\s*(?=<)/));
const rand = () => randomBytes(6).toString('hex');

/**
 * A minimal SIP user agent over UDP for lab tests (REGISTER with digest, INVITE/ACK/BYE with a route set, answering
 * INVITE and BYE), with an RTP socket whose packets are counted here, at the endpoint.
 */
export class TestUa {
  readonly sip: Socket;
  readonly rtp: Socket;
  readonly inbox: Msg[] = [];
  rtpIn = 0;
  rtpFrom = '';
  #waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = [];
  cseq = 1;
  /** Answer incoming INVITEs with 200 and this UA's SDP (when false: not answered). */
  autoAnswer = true;
  dialog: { callId: string; localTag: string; remoteTag: string; remoteUri: string; routes: string[] } | undefined;

  private constructor(
    readonly user: string,
    readonly domain: string,
    readonly ip: string,
    sip: Socket,
    rtp: Socket,
  ) {
    this.sip = sip;
    this.rtp = rtp;
    sip.on('message', (b) => this.#onSip(parse(b.toString())));
    rtp.on('message', (_b, r) => {
      this.rtpIn++;
      this.rtpFrom = `${r.address}:${r.port}`;
    });
  }

  static async create(user: string, domain: string, ip: string): Promise<TestUa> {
    const bind = async () => {
      const s = createSocket('udp4');
      await new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.bind(0, ip, () => res());
      });
      return s;
    };
    return new TestUa(user, domain, ip, await bind(), await bind());
  }

  get port(): number {
    return this.sip.address().port;
  }

  get rtpPort(): number {
    return this.rtp.address().port;
  }

  sdp(): string {
    return [
      'v=0',
      `o=${this.user} 1 1 IN IP4 ${this.ip}`,
      's=-',
      `c=IN IP4 ${this.ip}`,
      't=0 0',
      `m=audio ${this.rtpPort} RTP/AVP 0`,
      'a=rtpmap:0 PCMU/8000',
      'a=sendrecv',
      '',
    ].join('\r\n');
  }

  send(text: string, host: string, port: number): void {
    this.sip.send(Buffer.from(text), port, host);
  }

  wait(pred: (m: Msg) => boolean, what: string, timeoutMs = 8000): Promise<Msg> {
    const have = this.inbox.findIndex(pred);
    if (have >= 0) return Promise.resolve(this.inbox.splice(have, 1)[0]!);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      this.#waiters.push(w);
      setTimeout(() => {
        this.#waiters = this.#waiters.filter((x) => x !== w);
        reject(new Error(`${this.user}: timed out waiting for ${what}; inbox: ${this.inbox.map((m) => m.start)}`));
      }, timeoutMs).unref();
    });
  }

  #onSip(m: Msg): void {
    if (m.method === 'INVITE' && this.autoAnswer) {
      this.#answerInvite(m);
      return;
    }
    if (m.method === 'BYE') {
      this.#respond(m, 200, 'OK');
      this.dialog = undefined;
    }
    if (m.method === 'OPTIONS') this.#respond(m, 200, 'OK');
    const i = this.#waiters.findIndex((w) => w.pred(m));
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(m);
    else this.inbox.push(m);
  }

  #respond(req: Msg, status: number, reason: string, extra: string[] = [], body = '', toTag?: string): void {
    const via = hdrs(req, 'via').length ? req.headers.filter(([n]) => n === 'via').map(([, v]) => `Via: ${v}`) : [];
    const to = hdr(req, 'to') ?? '';
    const lines = [
      `SIP/2.0 ${status} ${reason}`,
      ...via,
      `From: ${hdr(req, 'from')}`,
      `To: ${to}${toTag && !/;tag=/.test(to) ? `;tag=${toTag}` : ''}`,
      `Call-ID: ${hdr(req, 'call-id')}`,
      `CSeq: ${hdr(req, 'cseq')}`,
      ...extra,
      `Content-Length: ${Buffer.byteLength(body)}`,
      '',
      body,
    ];
    // Responses go back to the top Via (received/rport as the proxy wrote them).
    const top = req.headers.find(([n]) => n === 'via')![1];
    const sent = /SIP\/2\.0\/UDP ([^;:\s]+)(?::(\d+))?/.exec(top)!;
    const rport = /;rport=(\d+)/.exec(top)?.[1];
    const received = /;received=([^;\s]+)/.exec(top)?.[1];
    this.send(lines.join('\r\n'), received ?? sent[1]!, Number(rport ?? sent[2] ?? 5060));
  }

  #answerInvite(inv: Msg): void {
    const tag = rand();
    const rr = hdrs(inv, 'record-route');
    const contact = /<([^>]+)>/.exec(hdr(inv, 'contact') ?? '')?.[1] ?? '';
    const from = hdr(inv, 'from') ?? '';
    this.dialog = {
      callId: hdr(inv, 'call-id') ?? '',
      localTag: tag,
      remoteTag: /;tag=([^;\s]+)/.exec(from)?.[1] ?? '',
      remoteUri: contact,
      routes: rr,
    };
    this.offerSeen = inv.body;
    this.#respond(
      inv,
      200,
      'OK',
      [
        ...rr.map((r) => `Record-Route: ${r}`),
        `Contact: <sip:${this.user}@${this.ip}:${this.port}>`,
        'Content-Type: application/sdp',
      ],
      this.sdp(),
      tag,
    );
    const i = this.#waiters.findIndex((w) => w.pred(inv));
    if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve(inv);
  }

  offerSeen = '';

  /** REGISTER to `host:port` for this UA's AOR, answering one 401 with `password`. Resolves with the final response. */
  async register(host: string, port: number, password: string): Promise<Msg> {
    const callId = `${rand()}@${this.ip}`;
    const build = (auth?: string) =>
      [
        `REGISTER sip:${this.domain} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ip}:${this.port};branch=z9hG4bK${rand()};rport`,
        'Max-Forwards: 70',
        `From: <sip:${this.user}@${this.domain}>;tag=${rand()}`,
        `To: <sip:${this.user}@${this.domain}>`,
        `Call-ID: ${callId}`,
        `CSeq: ${this.cseq++} REGISTER`,
        `Contact: <sip:${this.user}@${this.ip}:${this.port}>`,
        'Expires: 300',
        ...(auth ? [`Authorization: ${auth}`] : []),
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
    const isFinal = (m: Msg) => hdr(m, 'call-id') === callId && m.status >= 200;
    this.send(build(), host, port);
    let res = await this.wait(isFinal, 'REGISTER response');
    if (res.status === 401) {
      const ch = pickChallenge(res.headers.filter(([n]) => n === 'www-authenticate').map(([, v]) => v))!;
      const auth = answerChallenge(ch, {
        username: this.user,
        password,
        method: 'REGISTER',
        uri: `sip:${this.domain}`,
      });
      this.send(build(auth), host, port);
      res = await this.wait(isFinal, 'REGISTER response after 401');
    }
    return res;
  }

  /** Sends an INVITE for `to` to `host:port`, waits for the 2xx and ACKs it along the route set. */
  async call(to: string, host: string, port: number): Promise<Msg> {
    const callId = `${rand()}@${this.ip}`;
    const tag = rand();
    const body = this.sdp();
    const n = this.cseq++;
    this.send(
      [
        `INVITE sip:${to} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ip}:${this.port};branch=z9hG4bK${rand()};rport`,
        'Max-Forwards: 70',
        `From: <sip:${this.user}@${this.domain}>;tag=${tag}`,
        `To: <sip:${to}>`,
        `Call-ID: ${callId}`,
        `CSeq: ${n} INVITE`,
        `Contact: <sip:${this.user}@${this.ip}:${this.port}>`,
        'Content-Type: application/sdp',
        `Content-Length: ${Buffer.byteLength(body)}`,
        '',
        body,
      ].join('\r\n'),
      host,
      port,
    );
    const ok = await this.wait((m) => hdr(m, 'call-id') === callId && m.status >= 200, 'INVITE final response');
    if (ok.status !== 200) throw new Error(`call answered ${ok.start}`);
    this.dialog = {
      callId,
      localTag: tag,
      remoteTag: /;tag=([^;\s]+)/.exec(hdr(ok, 'to') ?? '')?.[1] ?? '',
      remoteUri: /<([^>]+)>/.exec(hdr(ok, 'contact') ?? '')?.[1] ?? '',
      // RFC 3261 §12.1.2: the UAC's route set is the Record-Route in reverse order.
      routes: hdrs(ok, 'record-route').reverse(),
    };
    this.inDialog('ACK', n);
    return ok;
  }

  /** Sends an in-dialog request (ACK, BYE) to the first Route (loose routing). */
  inDialog(method: 'ACK' | 'BYE', cseq = this.cseq++): void {
    const d = this.dialog!;
    const first = /<sip:([^;>]+)/.exec(d.routes[0] ?? `<${d.remoteUri}>`)![1]!;
    const [h, p] = first.includes('@') ? first.split('@')[1]!.split(':') : first.split(':');
    this.send(
      [
        `${method} ${d.remoteUri} SIP/2.0`,
        `Via: SIP/2.0/UDP ${this.ip}:${this.port};branch=z9hG4bK${rand()};rport`,
        'Max-Forwards: 70',
        ...d.routes.map((r) => `Route: ${r}`),
        `From: <sip:${this.user}@${this.domain}>;tag=${d.localTag}`,
        `To: <sip:x@${this.domain}>;tag=${d.remoteTag}`,
        `Call-ID: ${d.callId}`,
        `CSeq: ${cseq} ${method}`,
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
      h!,
      Number(p ?? 5060),
    );
  }

  /** Sends `count` RTP packets (20 ms apart) to the address and port of `sdp`. */
  async sendRtp(sdp: string, count: number): Promise<void> {
    const ip = /c=IN IP4 (\S+)/.exec(sdp)![1]!;
    const port = Number(/m=audio (\d+)/.exec(sdp)![1]);
    const ssrc = randomBytes(4).readUInt32BE(0);
    for (let i = 0; i < count; i++) {
      const p = Buffer.alloc(172);
      p[0] = 0x80;
      p[1] = 0;
      p.writeUInt16BE(i, 2);
      p.writeUInt32BE(i * 160, 4);
      p.writeUInt32BE(ssrc, 8);
      this.rtp.send(p, port, ip);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  close(): void {
    this.sip.close();
    this.rtp.close();
  }
}

/**
 * Writes digest users into a lab node kind's store before the node starts (`DATADIR/edge` or `DATADIR/core`), so a
 * traversal zone authenticates on its first keepalive instead of failing until the test adds them.
 */
export function seedCredentials(dataDir: string, kind: 'edge' | 'core', users: [string, string, string][]): void {
  mkdirSync(join(dataDir, kind), { recursive: true, mode: 0o700 });
  const store = NodeStore.open(join(dataDir, kind));
  try {
    const creds = new LocalCredentialStore(store);
    for (const [realm, user, password] of users) creds.add(realm, user, password);
  } finally {
    store.close();
  }
}
