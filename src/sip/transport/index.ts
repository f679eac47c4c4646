/** SIP transports: UDP, TCP, TLS and MTLS listeners, connection reuse, outbound source ports, response routing. */
export { CONNECT_ERRORS, type PortRange } from './outbound-ports.ts';
export { defaultPort, responseTarget, viaTransport } from './response-target.ts';
export {
  type AliasPolicy,
  type ConnectionEvent,
  SipTransportLayer,
  type SipTransportLayerOptions,
  type SourcePolicy,
} from './transport-layer.ts';
export type * from './types.ts';
