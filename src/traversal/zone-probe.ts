import { answerChallenge, pickChallenge } from '../sip/auth/client.ts';
import { createRequest, getHeaders, newBranch, newTag } from '../sip/message/index.ts';
import type { SipRequest, SipResponse } from '../sip/message/types.ts';
import type { Destination } from '../sip/transaction/types.ts';

export interface ZoneProbeOptions {
  /** Sends a request and resolves with its final response (the node's `ClientRequests`). */
  client: { send(request: SipRequest, destination: Destination): Promise<SipResponse> };
  zone: string;
  transport: 'TLS' | 'TCP';
  /** The edge's traversal listener. */
  host: string;
  port: number;
  /** The core's address (Via, From). */
  local: string;
  localPort?: number;
  /** TLS: the name the edge's certificate must carry (TLS verify subject name); default the address dialled. */
  serverName?: string;
  /** The zone's credentials, answered to the edge's digest challenge. */
  credentials?: { username: string; password: string };
}

const formatHost = (h: string) => (h.includes(':') ? `[${h}]` : h);

/**
 * The core's keepalive on a traversal zone's flow: an OPTIONS to the edge's traversal listener; a 401/407 is answered
 * once with the zone's credentials (RFC 3261 §22.2: same Call-ID, CSeq + 1). Resolves when the edge accepted (2xx),
 * rejects with the reason otherwise — the password never appears in a reason.
 */
export function zoneProbe(o: ZoneProbeOptions): () => Promise<void> {
  let cseq = 0;
  const callId = `${newTag()}${newTag()}@${o.local}`;
  const uri = `sip:${formatHost(o.host)}:${o.port};transport=${o.transport.toLowerCase()}`;
  const destination: Destination = {
    transport: o.transport,
    address: o.host,
    port: o.port,
    ...(o.serverName !== undefined && o.transport === 'TLS' ? { serverName: o.serverName } : {}),
  };
  const build = (authorization?: string) =>
    createRequest({
      method: 'OPTIONS',
      uri,
      headers: [
        [
          'Via',
          `SIP/2.0/${o.transport} ${formatHost(o.local)}${o.localPort ? `:${o.localPort}` : ''};branch=${newBranch()};rport`,
        ],
        ['Max-Forwards', '70'],
        ['From', `<sip:${o.zone}@${formatHost(o.local)}>;tag=${newTag()}`],
        ['To', `<sip:${formatHost(o.host)}:${o.port}>`],
        ['Call-ID', callId],
        ['CSeq', `${++cseq} OPTIONS`],
        ...(authorization ? ([['Authorization', authorization]] as [string, string][]) : []),
      ],
    });
  return async () => {
    let res = await o.client.send(build(), destination);
    if ((res.status === 401 || res.status === 407) && o.credentials) {
      const header = res.status === 401 ? 'www-authenticate' : 'proxy-authenticate';
      const challenge = pickChallenge(getHeaders(res, header));
      if (!challenge) throw new Error(`edge answered ${res.status} with no usable digest challenge`);
      const authorization = answerChallenge(challenge, { ...o.credentials, method: 'OPTIONS', uri });
      res = await o.client.send(build(authorization), destination);
      if (res.status === 401 || res.status === 407 || res.status === 403) {
        throw new Error(`zone credentials refused by the edge (${res.status} ${res.reason})`);
      }
    } else if (res.status === 401 || res.status === 407) {
      throw new Error(`edge requires zone authentication (${res.status}) and the zone has no username/password`);
    }
    if (res.status >= 300) throw new Error(`edge answered ${res.status} ${res.reason}`);
  };
}
