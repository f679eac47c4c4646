import { getParam } from '../message/params.ts';
import type { SipMessage, Via } from '../message/types.ts';
import { topVia } from './message-codec.ts';
import type { InboundInfo, SendTarget, SipTransportName } from './types.ts';

/** The Via transport token as one of ours, or undefined for transports we do not carry (SCTP, WS…). */
export function viaTransport(token: string): SipTransportName | undefined {
  const t = token.toUpperCase();
  return t === 'UDP' || t === 'TCP' || t === 'TLS' ? t : undefined;
}

/** RFC 3261 §19.1.2 / §18.2.2: 5061 for TLS, 5060 otherwise. */
export function defaultPort(transport: SipTransportName): number {
  return transport === 'TLS' ? 5061 : 5060;
}

function portParam(v: string | null | undefined): number | undefined {
  if (typeof v !== 'string' || !/^\d{1,5}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function hostParam(v: string | null | undefined): string | undefined {
  if (typeof v !== 'string' || v.length === 0) return undefined;
  return v.startsWith('[') && v.endsWith(']') ? v.slice(1, -1) : v;
}

/**
 * Where a server transport sends a response, from its top Via (which carries the `received`/`rport` the layer
 * added to the request) and the inbound info of the request. Undefined when the response has no usable Via.
 */
export function responseTarget(
  response: SipMessage,
  request?: Pick<Partial<InboundInfo>, 'transport' | 'connectionId' | 'local'>,
): SendTarget | undefined {
  const via = topVia(response);
  if (!via) return undefined;
  const transport = request?.transport ?? viaTransport(via.transport);
  if (!transport) return undefined;
  const received = hostParam(getParam(via.params, 'received'));
  const reliable = transport !== 'UDP';
  if (reliable) {
    // RFC 3261 §18.2.2: "If the sent-protocol is a reliable transport protocol such as TCP or SCTP, or TLS over
    // those, the response MUST be sent using the existing connection to the source of the original request that
    // created the transaction, if that connection is still open. [...] If that connection is no longer open, the
    // server SHOULD open a connection to the IP address in the received parameter, if present, using the port in
    // the sent-by value, or the default port for that transport, if no port is specified."
    const target: SendTarget = {
      transport,
      address: received ?? via.host,
      port: via.port ?? defaultPort(transport),
    };
    if (request?.connectionId) target.connectionId = request.connectionId;
    return target;
  }
  const target = unreliableTarget(transport, via, received);
  // RFC 3581 §4: "the response MUST be sent from the same address and port that the corresponding request was
  // received on" (so that it passes the NAT binding the request opened).
  if (request?.local) target.local = { address: request.local.address, port: request.local.port };
  return target;
}

function unreliableTarget(transport: SipTransportName, via: Via, received: string | undefined): SendTarget {
  // RFC 3261 §18.2.2: "Otherwise, if the Via header field value contains a maddr parameter, the response MUST be
  // forwarded to the address listed there, using the port indicated in sent-by, or port 5060 if none is present."
  const maddr = hostParam(getParam(via.params, 'maddr'));
  if (maddr) return { transport, address: maddr, port: via.port ?? 5060 };
  if (received) {
    // RFC 3581 §4: "[...] but there is both a received parameter and an rport parameter, the response MUST be sent
    // to the IP address listed in the received parameter, and the port in the rport parameter."
    const rport = portParam(getParam(via.params, 'rport'));
    if (rport !== undefined) return { transport, address: received, port: rport };
    // RFC 3261 §18.2.2: "[...] the response MUST be sent to the address in the received parameter, using the port
    // indicated in the sent-by value, or using port 5060 if none is specified explicitly."
    return { transport, address: received, port: via.port ?? 5060 };
  }
  // RFC 3261 §18.2.2: "Otherwise, [...] the server SHOULD send the response to the address indicated by the sent-by
  // value, using the procedures in Section 5 of [4]" (RFC 3263).
  return { transport, address: via.host, port: via.port ?? 5060 };
}
