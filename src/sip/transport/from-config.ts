import type { Logger } from '../../common/log.ts';
import type { Clock } from '../../common/timers.ts';
import type { CrosswayConfig } from '../../config/schema.ts';
import type { PortRange } from './outbound-ports.ts';
import type { SipTransportLayerOptions } from './transport-layer.ts';
import type { MessageHandler } from './types.ts';

/** What the composition root adds to the configuration: the clock, the plan's outbound range, TLS material. */
export interface TransportDeps {
  clock: Clock;
  log?: Logger;
  /** The port plan's `outbound-sip` range. */
  outboundPorts: PortRange;
  /** The node's certificate and key when the configuration has none (`lab`: generated in the data directory). */
  tlsMaterial?: { certificate: string; privateKey: string };
  onMessage?: MessageHandler;
}

/**
 * Options of a `SipTransportLayer` from the validated configuration (`sip.limits`, `sip.connections`, `tls`): each
 * layer gets its slice, copied, never the whole config.
 */
export function transportLayerOptions(
  config: Pick<CrosswayConfig, 'sip' | 'tls'>,
  deps: TransportDeps,
): SipTransportLayerOptions {
  const certificate = config.tls.certificate ?? deps.tlsMaterial?.certificate;
  const privateKey = config.tls.privateKey ?? deps.tlsMaterial?.privateKey;
  const options: SipTransportLayerOptions = {
    clock: deps.clock,
    limits: { ...config.sip.limits },
    connections: { ...config.sip.connections },
    outboundPorts: { from: deps.outboundPorts.from, to: deps.outboundPorts.to },
  };
  if (deps.log) options.log = deps.log;
  if (deps.onMessage) options.onMessage = deps.onMessage;
  if (certificate && privateKey) {
    options.tls = {
      certificate,
      privateKey,
      verifyPeer: config.tls.verifyPeer,
      minVersion: config.tls.minVersion,
      ...(config.tls.caCertificates ? { caCertificates: config.tls.caCertificates } : {}),
    };
  }
  return options;
}
