/**
 * The port plan: the one source of truth for every listener, every pool of ports and every flow a firewall must
 * allow. Every module that opens a socket asks it for the port; the firewall reports are rendered from it.
 *
 * ```ts
 * const plan = computePortPlan(config, detectPrivileges());
 * const tls = plan.port('sip-tls');             // 5061 (+ portOffset)
 * const out = plan.range('outbound-sip');       // 25000–29999
 * const pool = plan.mediaPool();                // media range without the demux ports
 * ```
 */

export * from './inventory.ts';
export * from './plan.ts';
export * from './port-range.ts';
export * from './privileges.ts';
export * from './render-json.ts';
export * from './render-nftables.ts';
export * from './render-table.ts';
export * from './types.ts';
