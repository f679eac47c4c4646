import { FakeClock } from '../../../src/common/timers.ts';
import type { Header, SipMessage, SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { TransactionLayer } from '../../../src/sip/transaction/transaction-layer.ts';
import type {
  ClientTransactionHandle,
  Destination,
  OutboundTarget,
  ServerTransactionHandle,
  TransactionHandle,
  TransactionSender,
  TransactionTimerConfig,
  TransactionUser,
  TransportInfo,
} from '../../../src/sip/transaction/types.ts';

/** Shared fixtures for the transaction tests: messages built field by field, a recording sender and TU. */

export interface RequestSpec {
  method: string;
  uri?: string;
  branch?: string | null;
  sentBy?: string;
  transport?: string;
  callId?: string;
  fromTag?: string;
  toTag?: string;
  seq?: number;
  cseqMethod?: string;
  extra?: Header[];
}

export function request(spec: RequestSpec): SipRequest {
  const transport = spec.transport ?? 'UDP';
  const branch = spec.branch === undefined ? 'z9hG4bK-test-1' : spec.branch;
  const via = `SIP/2.0/${transport} ${spec.sentBy ?? '192.0.2.1:5060'}${branch === null ? '' : `;branch=${branch}`}`;
  const headers: Header[] = [
    { name: 'Via', value: via },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `<sip:alice@example.com>;tag=${spec.fromTag ?? 'ft1'}` },
    { name: 'To', value: `<sip:bob@example.com>${spec.toTag ? `;tag=${spec.toTag}` : ''}` },
    { name: 'Call-ID', value: spec.callId ?? 'call-1@example.com' },
    { name: 'CSeq', value: `${spec.seq ?? 1} ${spec.cseqMethod ?? spec.method}` },
    ...(spec.extra ?? []),
    { name: 'Content-Length', value: '0' },
  ];
  return {
    kind: 'request',
    method: spec.method,
    uri: spec.uri ?? 'sip:bob@example.com',
    version: 'SIP/2.0',
    headers,
    body: Buffer.alloc(0),
  };
}

const COPY = new Set(['via', 'v', 'from', 'f', 'to', 't', 'call-id', 'i', 'cseq']);

/** A response to `req` as a UAS would build it (RFC 3261 §8.2.6.2), with a To tag on everything but 100. */
export function response(req: SipRequest, status: number, toTag = 'tt1', reason = 'Reason'): SipResponse {
  const headers: Header[] = [];
  for (const h of req.headers) {
    if (!COPY.has(h.name.toLowerCase())) continue;
    if (h.name.toLowerCase() === 'to' && status > 100 && !h.value.includes('tag=')) {
      headers.push({ name: h.name, value: `${h.value};tag=${toTag}` });
    } else headers.push({ name: h.name, value: h.value });
  }
  headers.push({ name: 'Content-Length', value: '0' });
  return { kind: 'response', status, reason, version: 'SIP/2.0', headers, body: Buffer.alloc(0) };
}

export function header(msg: SipMessage, name: string): string | undefined {
  return msg.headers.find((h) => h.name.toLowerCase() === name.toLowerCase())?.value;
}

export const UDP_INFO: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '192.0.2.1', port: 5060 },
  local: { address: '192.0.2.254', port: 5060 },
};

export const TCP_INFO: TransportInfo = {
  transport: 'TCP',
  reliable: true,
  source: { address: '192.0.2.1', port: 40000 },
  local: { address: '192.0.2.254', port: 5060 },
  connectionId: 'c1',
};

export const UDP_DEST: Destination = { transport: 'UDP', address: '192.0.2.254', port: 5060 };
export const TCP_DEST: Destination = { transport: 'TCP', address: '192.0.2.254', port: 5060 };

export interface Sent {
  at: number;
  message: SipMessage;
  target: OutboundTarget;
  key: string | undefined;
}

export class RecordingSender implements TransactionSender {
  readonly sent: Sent[] = [];
  constructor(readonly clock: FakeClock) {}
  send(message: SipMessage, target: OutboundTarget, key?: string): void {
    this.sent.push({ at: this.clock.now(), message, target, key });
  }
  /** Times at which a request with this method was sent. */
  requestTimes(method: string): number[] {
    return this.sent.filter((s) => s.message.kind === 'request' && s.message.method === method).map((s) => s.at);
  }
  responseTimes(status: number): number[] {
    return this.sent.filter((s) => s.message.kind === 'response' && s.message.status === status).map((s) => s.at);
  }
  clear(): void {
    this.sent.length = 0;
  }
}

export type UserEvent =
  | { type: 'request'; request: SipRequest; tx: ServerTransactionHandle }
  | { type: 'ack'; ack: SipRequest; tx: ServerTransactionHandle | undefined }
  | { type: 'response'; response: SipResponse; tx: ClientTransactionHandle }
  | { type: 'stray'; response: SipResponse }
  | { type: 'timeout'; tx: TransactionHandle }
  | { type: 'transport-error'; tx: TransactionHandle }
  | { type: 'terminated'; tx: TransactionHandle };

export class RecordingUser implements TransactionUser {
  readonly events: UserEvent[] = [];
  /** Called on every new request, to let a test respond synchronously. */
  onNewRequest: ((request: SipRequest, tx: ServerTransactionHandle) => void) | undefined;
  onRequest(request: SipRequest, tx: ServerTransactionHandle): void {
    this.events.push({ type: 'request', request, tx });
    this.onNewRequest?.(request, tx);
  }
  onAck(ack: SipRequest, _info: TransportInfo, tx?: ServerTransactionHandle): void {
    this.events.push({ type: 'ack', ack, tx });
  }
  onResponse(response: SipResponse, tx: ClientTransactionHandle): void {
    this.events.push({ type: 'response', response, tx });
  }
  onStrayResponse(response: SipResponse): void {
    this.events.push({ type: 'stray', response });
  }
  onTimeout(tx: TransactionHandle): void {
    this.events.push({ type: 'timeout', tx });
  }
  onTransportError(tx: TransactionHandle): void {
    this.events.push({ type: 'transport-error', tx });
  }
  onTerminated(tx: TransactionHandle): void {
    this.events.push({ type: 'terminated', tx });
  }
  types(): string[] {
    return this.events.map((e) => e.type);
  }
  statuses(): number[] {
    return this.events.flatMap((e) => (e.type === 'response' ? [e.response.status] : []));
  }
  clear(): void {
    this.events.length = 0;
  }
}

export const RFC_TIMERS: TransactionTimerConfig = { t1: 500, t2: 4000, t4: 5000 };

export function setup(timers: Partial<TransactionTimerConfig> = {}) {
  const clock = new FakeClock();
  const sender = new RecordingSender(clock);
  const user = new RecordingUser();
  const layer = new TransactionLayer({ clock, sender, user, timers: { ...RFC_TIMERS, ...timers } });
  return { clock, sender, user, layer };
}
