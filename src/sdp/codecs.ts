import { type SdpMedia, splitAttribute } from './session-description.ts';

/** RFC 3551 §6 static payload types a party may list without `a=rtpmap`. */
const STATIC_PAYLOAD_TYPES: Readonly<Record<string, string>> = {
  '0': 'PCMU',
  '3': 'GSM',
  '4': 'G723',
  '5': 'DVI4',
  '6': 'DVI4',
  '7': 'LPC',
  '8': 'PCMA',
  '9': 'G722',
  '10': 'L16',
  '11': 'L16',
  '12': 'QCELP',
  '13': 'CN',
  '14': 'MPA',
  '15': 'G728',
  '16': 'DVI4',
  '17': 'DVI4',
  '18': 'G729',
  '25': 'CelB',
  '26': 'JPEG',
  '28': 'nv',
  '31': 'H261',
  '32': 'MPV',
  '33': 'MP2T',
  '34': 'H263',
};

/** Most codec names kept per media description (a record stays small whatever a party lists). */
export const MAX_CODECS_PER_MEDIA = 16;

/**
 * The codecs a media description lists, in its order, as `<media>:<encoding name>` (`audio:PCMU`, `video:H264`,
 * `audio:telephone-event`): the `a=rtpmap` name of each payload type, else its RFC 3551 static name, else the payload
 * type itself. A rejected stream (port 0) lists none; non-RTP formats are kept as written. At most
 * {@link MAX_CODECS_PER_MEDIA}, duplicates dropped.
 */
export function sdpCodecs(m: SdpMedia): string[] {
  if (m.port === 0) return [];
  const names = new Map<string, string>();
  for (const l of m.lines) {
    if (l.type !== 'a') continue;
    const a = splitAttribute(l.value);
    if (a.name !== 'rtpmap' || a.value === undefined) continue;
    const sp = a.value.indexOf(' ');
    if (sp <= 0) continue;
    const name = a.value
      .slice(sp + 1)
      .split('/')[0]
      ?.trim();
    if (name) names.set(a.value.slice(0, sp), name);
  }
  const rtp = m.proto.toUpperCase().includes('RTP');
  const out: string[] = [];
  for (const f of m.formats) {
    const name = names.get(f) ?? (rtp ? (STATIC_PAYLOAD_TYPES[f] ?? f) : f);
    const codec = `${m.media}:${name}`;
    if (!out.includes(codec)) out.push(codec);
    if (out.length >= MAX_CODECS_PER_MEDIA) break;
  }
  return out;
}
