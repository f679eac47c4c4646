import type { Result } from '../../common/result.ts';
import { type DecodeLimits, decodePer, encodePer } from './codec.ts';
import { type Desc, link } from './descriptor.ts';
import type { PerError } from './errors.ts';
import { ASN1_NAMES, NAMED, TABLE } from './generated/table.ts';
import type * as T from './generated/types.ts';

/** Every generated descriptor, linked once at load. */
export const DESCRIPTORS: readonly Desc[] = link(TABLE);

export type TypeName = keyof typeof NAMED;

/** The descriptor of a named type (TypeScript name, e.g. `RasMessage`, `H225_TransportAddress`). */
export function descriptor(name: TypeName): Desc {
  return DESCRIPTORS[NAMED[name]]!;
}

/** A typed encoder/decoder pair for one named type. */
export interface Codec<V> {
  readonly name: string;
  readonly desc: Desc;
  decode(bytes: Uint8Array, limits?: Partial<DecodeLimits>): Result<V, PerError>;
  encode(value: V): Uint8Array;
}

/** A codec for the named type; `V` is its generated TypeScript type. */
export function codec<V>(name: TypeName): Codec<V> {
  const desc = descriptor(name);
  const root = ASN1_NAMES[name].split('.').pop()!;
  return {
    name: root,
    desc,
    decode: (bytes, limits) => decodePer<V>(desc, bytes, root, limits),
    encode: (value) => encodePer(desc, value, root),
  };
}

/** H.225.0 RAS: one `RasMessage` per UDP datagram. */
export const rasCodec: Codec<T.RasMessage> = codec<T.RasMessage>('RasMessage');
/** H.225.0 call signalling: `H323-UserInformation` in the Q.931 user-user information element. */
export const userInformationCodec: Codec<T.H323_UserInformation> =
  codec<T.H323_UserInformation>('H323_UserInformation');
/** H.245: `MultimediaSystemControlMessage`, tunnelled or on its own TCP connection. */
export const h245Codec: Codec<T.MultimediaSystemControlMessage> = codec<T.MultimediaSystemControlMessage>(
  'MultimediaSystemControlMessage',
);
/** Fast-start elements: each is an encoded H.245 `OpenLogicalChannel`. */
export const openLogicalChannelCodec: Codec<T.OpenLogicalChannel> = codec<T.OpenLogicalChannel>('OpenLogicalChannel');
