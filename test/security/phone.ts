import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { answerChallenge, pickChallenge } from '../../src/sip/auth/client.ts';
import { parseMessage } from '../../src/sip/message/index.ts';
import type { SipResponse } from '../../src/sip/message/types.ts';

/** A UDP SIP client on 127.0.0.1 that registers with digest. */
export class Phone {
  readonly #domain: string;
  readonly #target: string;

  constructor(domain: string, target = '127.0.0.2') {
    this.#domain = domain;
    this.#target = target;
  }

  readonly sock: Socket = createSocket('udp4');
  readonly #queue: SipResponse[] = [];
  #waiter: (() => void) | undefined;
  #seq = 0;
  readonly callId = `${Math.random().toString(36).slice(2)}@phone`;

  async open(): Promise<this> {
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.sock.on('message', (m) => {
      const p = parseMessage(m);
      if (p.ok && p.value.kind === 'response') {
        this.#queue.push(p.value);
        this.#waiter?.();
      }
    });
    return this;
  }

  get port(): number {
    return this.sock.address().port;
  }

  async next(ms: number): Promise<SipResponse | undefined> {
    const deadline = Date.now() + ms;
    while (this.#queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiter = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return this.#queue.shift();
  }

  async register(target: number, user: string, authorization?: string): Promise<SipResponse | undefined> {
    const n = ++this.#seq;
    const lines = [
      `REGISTER sip:${this.#domain} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${this.port};branch=z9hG4bK-${this.callId}-${n};rport`,
      'Max-Forwards: 70',
      `From: <sip:${user}@${this.#domain}>;tag=t${n}`,
      `To: <sip:${user}@${this.#domain}>`,
      `Call-ID: ${user}-${this.callId}`,
      `CSeq: ${n} REGISTER`,
      `Contact: <sip:${user}@127.0.0.1:${this.port}>`,
      'Expires: 300',
      ...(authorization ? [`Authorization: ${authorization}`] : []),
      'Content-Length: 0',
      '',
      '',
    ];
    await new Promise<void>((r, j) =>
      this.sock.send(lines.join('\r\n'), target, this.#target, (e) => (e ? j(e) : r())),
    );
    // Skip provisional answers.
    for (;;) {
      const res = await this.next(1500);
      if (!res || res.status >= 200) return res;
    }
  }

  /** REGISTER, answer the challenge, return the final answer. */
  async login(target: number, user: string, password: string): Promise<SipResponse | undefined> {
    const first = await this.register(target, user);
    if (first?.status !== 401) return first;
    const ch = pickChallenge(
      first.headers.filter((h) => h.name.toLowerCase() === 'www-authenticate').map((h) => h.value),
    );
    assert.ok(ch, 'a digest challenge');
    return this.register(
      target,
      user,
      answerChallenge(ch, { username: user, password, method: 'REGISTER', uri: `sip:${this.#domain}` }),
    );
  }

  close(): void {
    this.sock.close();
  }
}
