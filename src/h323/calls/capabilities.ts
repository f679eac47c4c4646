import type {
  AudioCapability,
  Capability,
  CapabilityDescriptor,
  CapabilityTableEntry,
  DataType,
  TerminalCapabilitySet,
  VideoCapability,
} from '../per/generated/types.ts';

/**
 * Capability filtering of a TerminalCapabilitySet the node relays from one leg to the other (H.245 §8.4, routed
 * calls): the other leg only hears of what the node's media relay can anchor.
 *
 * Kept (the relay forwards any RTP payload, so every standard audio/video codec can be anchored):
 * - audio: every standard AudioCapability (G.711 µ-law/A-law, G.722, G.723.1, G.728, G.729 and its annexes,
 *   GSM, MPEG audio, genericAudioCapability with a standard identifier…), receive, transmit or both;
 * - video: H.261, H.262, H.263, IS 11172 and genericVideoCapability with a standard identifier (H.264 is
 *   0.0.8.241.0.0.1);
 * - user input (UserInputIndication: basicString, iA5String, generalString, dtmf, hookflash…, but not its
 *   nonStandard form), RFC 2833 telephone events and tones carried in RTP.
 *
 * Removed: nonStandard entries at every level (capability, audio, video, user input, generic with a non-standard
 * identifier), data applications (T.120, T.38, …), encryption (H.233, H.235 security capabilities — the relay
 * carries media it cannot key), conference, generic control, multiplexed streams, FEC, redundancy and
 * multiple-payload capabilities (they name other table entries), `oneOfCapabilities`, `maxPendingReplacementFor`,
 * and alternatives this node's ASN.1 does not know.
 *
 * Descriptors follow: an alternative set loses the entry numbers that were removed, an emptied alternative set is
 * dropped, and a descriptor whose simultaneous capabilities all went is dropped.
 *
 * Intersection with the other leg (only when its TerminalCapabilitySet is already known): an audio or video
 * codec is removed when the other endpoint listed no capability of the same codec (compared by codec only — the
 * G.729 family as one, generic codecs by identifier — never by parameters such as frames per packet, profile or
 * level, which H.245 lets each side choose within its own limits). User input is never intersected. When the
 * intersection would leave no audio or video codec at all, it is not applied (the filtered set is sent): an empty
 * capability set means "close every channel" in H.245, and a later TerminalCapabilitySet from the other leg may
 * widen what it has. The node terminates capability exchange on each leg (`h245-session.ts`): whenever either leg
 * sends a new set, both outgoing sets are computed again and a leg hears of a set only when it changed.
 *
 * Policy (`h323.calls.codecs`, `codecPolicy`): when an administrator lists the codecs allowed, audio and video
 * capabilities of any other codec are removed as well (user input is not a codec and stays).
 */

export interface CapabilityFilterResult {
  tcs: TerminalCapabilitySet;
  /** Table entries removed by policy (what the relay cannot anchor). */
  removedByPolicy: number;
  /** Table entries removed because the other leg has no such codec. */
  removedByIntersection: number;
}

/** The codec an audio/video capability names (`audio:g711Ulaw`, `video:generic:0.0.8.241.0.0.1`), or undefined. */
export function codecKey(c: Capability | undefined): string | undefined {
  if (!c) return undefined;
  switch (c.choice) {
    case 'receiveAudioCapability':
    case 'transmitAudioCapability':
    case 'receiveAndTransmitAudioCapability':
      return audioKey(c.value);
    case 'receiveVideoCapability':
    case 'transmitVideoCapability':
    case 'receiveAndTransmitVideoCapability':
      return videoKey(c.value);
    default:
      return undefined;
  }
}

/**
 * The codec a logical channel carries (an OpenLogicalChannel's dataType), as `codecKey` names it; `data`, `h235Media`…
 * by their alternative; undefined for nullData (no channel in that direction).
 */
export function dataTypeCodec(d: DataType | undefined): string | undefined {
  if (!d || d.choice === 'nullData') return undefined;
  if (d.choice === 'audioData') return audioKey(d.value) ?? `audio:${d.value.choice}`;
  if (d.choice === 'videoData') return videoKey(d.value) ?? `video:${d.value.choice}`;
  return d.choice;
}

function audioKey(a: AudioCapability): string | undefined {
  switch (a.choice) {
    case 'nonStandard':
    case '$unknown':
    case 'audioTelephonyEvent':
    case 'audioTone':
    case 'vbd':
      return undefined;
    case 'g711Ulaw64k':
    case 'g711Ulaw56k':
      return 'audio:g711Ulaw';
    case 'g711Alaw64k':
    case 'g711Alaw56k':
      return 'audio:g711Alaw';
    case 'g722-64k':
    case 'g722-56k':
    case 'g722-48k':
      return 'audio:g722';
    case 'g729':
    case 'g729AnnexA':
    case 'g729wAnnexB':
    case 'g729AnnexAwAnnexB':
    case 'g729Extensions':
      return 'audio:g729';
    case 'g7231':
    case 'g7231AnnexCCapability':
      return 'audio:g7231';
    case 'genericAudioCapability': {
      const id = a.value.capabilityIdentifier;
      return id.choice === 'standard' ? `audio:generic:${id.value}` : undefined;
    }
    default:
      return `audio:${a.choice}`;
  }
}

function videoKey(v: VideoCapability): string | undefined {
  switch (v.choice) {
    case 'h261VideoCapability':
    case 'h262VideoCapability':
    case 'h263VideoCapability':
    case 'is11172VideoCapability':
      return `video:${v.choice}`;
    case 'genericVideoCapability': {
      const id = v.value.capabilityIdentifier;
      return id.choice === 'standard' ? `video:generic:${id.value}` : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * Codec names an administrator allows (`h323.calls.codecs`), as in the configuration: `g711Ulaw`, `g711Alaw`,
 * `g722`, `g7231`, `g728`, `g729`, `h261`, `h263`, `h264`… The set holds `codecKey` names (`audio:g711Ulaw`,
 * `video:h263VideoCapability`, `video:generic:0.0.8.241.0.0.1`).
 */
export type CodecPolicy = ReadonlySet<string> | undefined;

/** Configuration names of the codecs a policy can name, to their `codecKey`. */
export const POLICY_CODECS: Readonly<Record<(typeof POLICY_CODEC_NAMES)[number], string>> = {
  g711Ulaw: 'audio:g711Ulaw',
  g711Alaw: 'audio:g711Alaw',
  g722: 'audio:g722',
  g7231: 'audio:g7231',
  g728: 'audio:g728',
  g729: 'audio:g729',
  gsm: 'audio:gsmFullRate',
  h261: 'video:h261VideoCapability',
  h262: 'video:h262VideoCapability',
  h263: 'video:h263VideoCapability',
  h264: 'video:generic:0.0.8.241.0.0.1',
};

/** The names `h323.calls.codecs` accepts. */
export const POLICY_CODEC_NAMES = [
  'g711Ulaw',
  'g711Alaw',
  'g722',
  'g7231',
  'g728',
  'g729',
  'gsm',
  'h261',
  'h262',
  'h263',
  'h264',
] as const;

/** The policy of configuration names (undefined: every codec the relay can anchor). */
export function codecPolicy(names: readonly (typeof POLICY_CODEC_NAMES)[number][] | undefined): CodecPolicy {
  if (!names) return undefined;
  return new Set(names.map((n) => POLICY_CODECS[n]));
}

/** Whether the relay can anchor (and policy keeps) one capability, whatever the other leg has. */
export function keptByPolicy(c: Capability | undefined, allowed?: CodecPolicy): boolean {
  if (!c) return false;
  switch (c.choice) {
    case 'receiveUserInputCapability':
    case 'transmitUserInputCapability':
    case 'receiveAndTransmitUserInputCapability':
      return c.value.choice !== 'nonStandard' && c.value.choice !== '$unknown';
    case 'receiveRTPAudioTelephonyEventCapability':
    case 'receiveRTPAudioToneCapability':
      return true;
    default: {
      const k = codecKey(c);
      return k !== undefined && (!allowed || allowed.has(k));
    }
  }
}

/** Whether a logical channel's codec may be opened under the policy (fast-start proposals). */
export function dataTypeAllowed(d: DataType | undefined, allowed: CodecPolicy): boolean {
  if (!allowed || !d || d.choice === 'nullData') return true;
  const k = dataTypeCodec(d);
  return k !== undefined && allowed.has(k);
}

/**
 * Filters `tcs` (from one leg) for the other leg; `other` is the other leg's own TerminalCapabilitySet when it is
 * known. `removed` holds the entry numbers this leg's earlier sets lost (a descriptor may name entries of an
 * earlier set, H.245 §8.4.2); it is updated. An entry without a capability (a deletion) is kept. Returns the set
 * unchanged (same object) when nothing is removed.
 */
export function filterCapabilities(
  tcs: TerminalCapabilitySet,
  other?: TerminalCapabilitySet,
  removed: Set<number> = new Set(),
  allowed?: CodecPolicy,
): CapabilityFilterResult {
  const table = tcs.capabilityTable ?? [];
  const policy = table.filter((e) => e.capability === undefined || keptByPolicy(e.capability, allowed));
  let kept: CapabilityTableEntry[] = policy;
  const theirs = new Set(
    (other?.capabilityTable ?? []).map((e) => codecKey(e.capability)).filter((k) => k !== undefined),
  );
  if (theirs.size > 0) {
    const both = policy.filter((e) => {
      const k = codecKey(e.capability);
      return k === undefined || theirs.has(k);
    });
    if (both.some((e) => codecKey(e.capability) !== undefined)) kept = both;
  }
  const keptNumbers = new Set(kept.map((e) => e.capabilityTableEntryNumber));
  for (const e of table) {
    if (keptNumbers.has(e.capabilityTableEntryNumber)) removed.delete(e.capabilityTableEntryNumber);
    else removed.add(e.capabilityTableEntryNumber);
  }
  const names = (d: CapabilityDescriptor) => (d.simultaneousCapabilities ?? []).flat();
  const descriptorsTouched = (tcs.capabilityDescriptors ?? []).some((d) => names(d).some((n) => removed.has(n)));
  if (kept.length === table.length && !descriptorsTouched) return { tcs, removedByPolicy: 0, removedByIntersection: 0 };
  const descriptors: CapabilityDescriptor[] = [];
  for (const d of tcs.capabilityDescriptors ?? []) {
    if (!d.simultaneousCapabilities) {
      descriptors.push(d);
      continue;
    }
    const sets = d.simultaneousCapabilities.map((alt) => alt.filter((n) => !removed.has(n))).filter((a) => a.length);
    if (sets.length > 0) descriptors.push({ ...d, simultaneousCapabilities: sets });
  }
  const out: TerminalCapabilitySet = { ...tcs };
  if (kept.length > 0) out.capabilityTable = kept;
  else delete out.capabilityTable;
  if (descriptors.length > 0) out.capabilityDescriptors = descriptors;
  else delete out.capabilityDescriptors;
  return {
    tcs: out,
    removedByPolicy: table.length - policy.length,
    removedByIntersection: policy.length - kept.length,
  };
}
