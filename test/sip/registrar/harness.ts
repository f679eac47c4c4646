import { FakeClock } from '../../../src/common/timers.ts';
import type { AuthResult, RequestAuthenticator } from '../../../src/sip/auth/types.ts';
import { LocationTable } from '../../../src/sip/location/location-table.ts';
import { createResponse, getHeaders, parseMessage } from '../../../src/sip/message/index.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/message/types.ts';
import { type RegistrarConfig, registrarConfigSchema } from '../../../src/sip/registrar/config.ts';
import { Registrar } from '../../../src/sip/registrar/registrar.ts';
import type { ServerTransactionHandle, TransportInfo } from '../../../src/sip/transaction/types.ts';

export const DOMAIN = 'example.com';

export interface RegisterInit {
  user?: string;
  toHost?: string;
  ruri?: string;
  callId?: string;
  cseq?: number;
  contacts?: string[];
  expires?: number;
  extra?: string[];
}

let seq = 0;

/** A REGISTER as a UA would send it, parsed by our parser. */
export function register(init: RegisterInit = {}): SipRequest {
  const user = init.user ?? 'alice';
  const lines = [
    `REGISTER ${init.ruri ?? `sip:${DOMAIN}`} SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bKreg${++seq};rport`,
    'Max-Forwards: 70',
    `From: <sip:${user}@${init.toHost ?? DOMAIN}>;tag=f${seq}`,
    `To: <sip:${user}@${init.toHost ?? DOMAIN}>`,
    `Call-ID: ${init.callId ?? 'call-1'}`,
    `CSeq: ${init.cseq ?? 1} REGISTER`,
    ...(init.contacts ?? ['<sip:alice@192.0.2.10:5060>']).map((c) => `Contact: ${c}`),
    ...(init.expires !== undefined ? [`Expires: ${init.expires}`] : []),
    ...(init.extra ?? []),
    'Content-Length: 0',
    '',
    '',
  ];
  const r = parseMessage(Buffer.from(lines.join('\r\n')));
  if (!r.ok || r.value.kind !== 'request') throw new Error(`test REGISTER does not parse: ${JSON.stringify(r)}`);
  return r.value;
}

export const UDP_INFO: TransportInfo = {
  transport: 'UDP',
  reliable: false,
  source: { address: '192.0.2.10', port: 5060 },
  local: { address: '198.51.100.1', port: 5060 },
};

/** A server transaction that records what the registrar answered. */
export function fakeTransaction(request: SipRequest): ServerTransactionHandle & { responses: SipResponse[] } {
  const responses: SipResponse[] = [];
  return {
    key: 'k',
    kind: 'nist',
    state: 'Trying',
    request,
    transportInfo: UDP_INFO,
    responses,
    respond(res: SipResponse) {
      if (responses.some((r) => r.status >= 200)) return false;
      responses.push(res);
      return true;
    },
  };
}

/** A fake authenticator: challenges without Authorization, accepts `Authorization: Fake user`. */
export class FakeAuthenticator implements RequestAuthenticator {
  calls: { realm: string; mode: string }[] = [];
  async = false;
  authenticate(
    request: SipRequest,
    ctx: { realm: string; mode: 'registrar' | 'proxy' },
  ): AuthResult | Promise<AuthResult> {
    this.calls.push({ realm: ctx.realm, mode: ctx.mode });
    const auth = getHeaders(request, 'authorization')[0];
    let r: AuthResult;
    if (!auth) {
      r = {
        kind: 'challenge',
        response: createResponse(request, 401, 'Unauthorized', {
          toTag: 'x',
          headers: [['WWW-Authenticate', `Digest realm="${ctx.realm}", nonce="n"`]],
        }),
      };
    } else if (auth === 'Fake wrong') {
      r = { kind: 'rejected', response: createResponse(request, 403, 'Forbidden', { toTag: 'x' }) };
    } else {
      r = { kind: 'authenticated', username: auth.replace(/^Fake /, ''), realm: ctx.realm };
    }
    return this.async ? Promise.resolve(r) : r;
  }
}

export interface Harness {
  clock: FakeClock;
  table: LocationTable;
  registrar: Registrar;
  send(req: SipRequest, info?: TransportInfo): SipResponse;
  sendAsync(req: SipRequest, info?: TransportInfo): Promise<SipResponse>;
}

export function harness(
  config: Partial<Record<keyof RegistrarConfig, unknown>> = {},
  authenticator?: RequestAuthenticator,
  realms?: Record<string, string>,
  authPolicy?: 'check' | 'treat-as-authenticated' | 'do-not-check',
): Harness {
  const clock = new FakeClock();
  const table = new LocationTable({ clock });
  const registrar = new Registrar({
    config: registrarConfigSchema.parse(config),
    domains: [DOMAIN, '198.51.100.1'],
    location: table,
    clock,
    ...(authenticator ? { authenticator } : {}),
    ...(realms ? { realms } : {}),
    ...(authPolicy ? { authPolicy: () => authPolicy } : {}),
  });
  const send = (req: SipRequest, info = UDP_INFO) => {
    const res = registrar.process(req, info);
    if (res instanceof Promise) throw new Error('unexpected asynchronous answer');
    return res;
  };
  const sendAsync = async (req: SipRequest, info = UDP_INFO) => registrar.process(req, info);
  return { clock, table, registrar, send, sendAsync };
}

/** Contact values of a response as `uri;params` strings. */
export function contactsOf(res: SipResponse): string[] {
  return getHeaders(res, 'contact').map((c) => c.trim());
}
