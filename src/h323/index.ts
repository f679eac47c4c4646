/**
 * The H.323 wire layer: what the gatekeeper, call signalling and H.245 code import. See docs/h323-codec.md.
 */
export * from './api.ts';
export type { BitString, ChoiceValue, DecodeLimits, UnknownAlternative, UnknownExtension } from './per/codec.ts';
export { DEFAULT_LIMITS } from './per/codec.ts';
export { PerError } from './per/errors.ts';
export type * from './per/generated/types.ts';
export {
  type Codec,
  codec,
  h245Codec,
  openLogicalChannelCodec,
  rasCodec,
  type TypeName,
  userInformationCodec,
} from './per/schema.ts';
export * from './q931/call-signalling.ts';
export * from './q931/q931.ts';
export * from './transport/tpkt.ts';
