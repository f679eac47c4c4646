import {
  cloneSdp,
  connectionValue,
  isUnspecified,
  parseConnection,
  type SdpLine,
  type SessionDescription,
  splitAttribute,
} from './session-description.ts';

/** ICE handling when a relay anchors media: drop the endpoint's candidates (default) or pass them through. */
export type IcePolicy = 'remove' | 'pass';

/** Attributes that belong to ICE (RFC 8839): removed together with the candidates. */
export const ICE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'candidate',
  'remote-candidates',
  'end-of-candidates',
  'ice-ufrag',
  'ice-pwd',
  'ice-options',
  'ice-lite',
  'ice-mismatch',
  'ice-pacing',
]);

/** Where one media description's media must now go: an address and port pair of the relay. */
export interface MediaTarget {
  address: string;
  rtpPort: number;
  rtcpPort: number;
  /** Write `a=rtcp` even when the original had none (needed when RTCP is not on RTP + 1). */
  forceRtcpAttribute?: boolean;
  /** Extra attributes added at the end of the media description (the traversal mux id). */
  addAttributes?: readonly SdpLine[];
}

export interface RewriteOptions {
  ice: IcePolicy;
  /** `a=` names removed everywhere before `addAttributes` (Crossway's own node-to-node attributes). */
  removeAttributes?: ReadonlySet<string>;
}

/**
 * Rewrites an SDP offer or answer so that media flows through the relay: every `c=` (session- and media-level) and
 * every `m=` port point at `targets[i]`, `a=rtcp` (RFC 3605) at its RTCP port. Everything else passes untouched —
 * codecs, `a=crypto` and `a=fingerprint` (so SRTP and DTLS-SRTP pass end to end), `a=rtcp-mux`, direction
 * attributes. A media description with port 0 (rejected or disabled, RFC 3264 §6) keeps port 0; a `c=` holding
 * 0.0.0.0 / `::` (the RFC 2543 hold form, RFC 3264 §8.4) is kept so the hold stays meaningful. `targets[i]` null
 * keeps media description `i` as it is. Returns a new description.
 */
export function rewriteSdp(
  input: SessionDescription,
  targets: readonly (MediaTarget | null)[],
  options: RewriteOptions,
): SessionDescription {
  const sd = cloneSdp(input);
  const drop = (l: SdpLine): boolean => {
    if (l.type !== 'a') return false;
    const name = splitAttribute(l.value).name;
    return (options.ice === 'remove' && ICE_ATTRIBUTES.has(name)) || options.removeAttributes?.has(name) === true;
  };
  const first = targets.find((t): t is MediaTarget => t !== null && t !== undefined);
  // Session-level c= applies to every media description without its own: all of ours use the same relay address.
  sd.session = sd.session.filter((l) => !drop(l));
  if (first) rewriteConnections(sd.session, first.address);
  sd.media.forEach((m, i) => {
    const t = targets[i];
    m.lines = m.lines.filter((l) => !drop(l));
    if (!t) return;
    rewriteConnections(m.lines, t.address);
    if (m.port !== 0) m.port = t.rtpPort;
    let hadRtcp = false;
    for (const l of m.lines) {
      if (l.type !== 'a') continue;
      const a = splitAttribute(l.value);
      if (a.name !== 'rtcp' || a.value === undefined) continue;
      hadRtcp = true;
      l.value = rtcpValue(t, a.value.split(' ').length >= 4);
    }
    if (!hadRtcp && t.forceRtcpAttribute && m.port !== 0) m.lines.push({ type: 'a', value: rtcpValue(t, true) });
    if (t.addAttributes && m.port !== 0) for (const l of t.addAttributes) m.lines.push({ ...l });
  });
  return sd;
}

function rtcpValue(t: MediaTarget, withAddress: boolean): string {
  return withAddress ? `rtcp:${t.rtcpPort} ${connectionValue(t.address)}` : `rtcp:${t.rtcpPort}`;
}

function rewriteConnections(lines: SdpLine[], address: string): void {
  for (const l of lines) {
    if (l.type !== 'c') continue;
    const c = parseConnection(l.value);
    if (c && isUnspecified(c.address)) continue;
    l.value = connectionValue(address);
  }
}
