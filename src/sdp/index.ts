/** SDP (RFC 8866) parsing, serialization and the offer/answer rewriting of the media relay. */
export * from './rewrite.ts';
export * from './session-description.ts';
