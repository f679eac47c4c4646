/**
 * The SIP message model shared by every SIP layer (transport, transaction, transaction users). This file is the
 * contract between them: the message layer (`parser.ts`, `serializer.ts`, `uri.ts`, `headers.ts`, `stream-framer.ts`)
 * implements it; the other layers only read these types and call the functions re-exported from `index.ts`.
 *
 * Header names are kept as received for serialization; lookups are case-insensitive and compact forms
 * (RFC 3261 §7.3.3: i, m, e, l, c, f, s, k, t, v, o, r, b, u, x, y…) are treated as their long names.
 */

/** URI parameters and header parameters keep their order; a parameter without `=value` has value `null`. */
export type Params = Array<[name: string, value: string | null]>;

export interface SipUri {
  scheme: 'sip' | 'sips' | 'tel';
  /** Unescaped user part (for tel: the number). */
  user?: string;
  password?: string;
  /** Host as written, IPv6 without brackets (`::1`), lower-cased for names. Empty for tel:. */
  host: string;
  port?: number;
  params: Params;
  /** `?name=value&...` headers, unescaped. */
  headers: Params;
}

export interface NameAddr {
  displayName?: string;
  uri: SipUri;
  /** Header parameters after the address (`;tag=...`, `;expires=...`, `;q=...`). */
  params: Params;
}

export interface Via {
  /** `SIP/2.0` is implied; the transport token as sent, upper-cased: UDP, TCP, TLS, SCTP, WS, WSS… */
  transport: string;
  host: string;
  port?: number;
  params: Params;
}

export interface CSeq {
  seq: number;
  method: string;
}

export interface Header {
  /** Name as received (serialized unchanged). */
  name: string;
  /** Value with folding removed and surrounding whitespace trimmed; one entry per header line. */
  value: string;
}

export interface MessageBase {
  /** Ordered header lines. Comma-joined multi-values stay in one entry: split them with the typed accessors. */
  headers: Header[];
  body: Buffer;
}

export interface SipRequest extends MessageBase {
  kind: 'request';
  method: string;
  /** Request-URI exactly as received (parsed on demand with `parseUri`). */
  uri: string;
  version: string;
}

export interface SipResponse extends MessageBase {
  kind: 'response';
  status: number;
  reason: string;
  version: string;
}

export type SipMessage = SipRequest | SipResponse;

/** Why a message was refused: a stable code, a human reason usable as a 400 reason phrase, and the status to answer. */
export interface ParseFailure {
  code:
    | 'too-large'
    | 'too-many-headers'
    | 'header-too-long'
    | 'bad-start-line'
    | 'bad-version'
    | 'bad-header'
    | 'missing-header'
    | 'bad-content-length'
    | 'body-mismatch'
    | 'bad-uri'
    | 'bad-via'
    | 'bad-cseq'
    | 'method-mismatch'
    | 'bad-value';
  /** Human-readable, safe for a reason phrase (no CR/LF, ASCII). */
  reason: string;
  /** 400 for most faults; 505 for a bad SIP version; 413 for an oversize message. */
  status: number;
  /** When the start line and enough headers were read to answer statelessly, the partly parsed message. */
  partial?: SipMessage;
}

export interface MessageLimits {
  maxMessageBytes: number;
  maxHeaders: number;
  maxHeaderBytes: number;
}

/** Credentials or a challenge (Authorization, WWW-Authenticate…): scheme and unquoted auth-params. */
export interface AuthHeader {
  /** As written (`Digest`); compare case-insensitively. */
  scheme: string;
  /** auth-params in order, quoted values unquoted. */
  params: Params;
  /** A token68 blob instead of params (e.g. `Basic dXNlcg==`). */
  token68?: string;
}

/** A Content-Type value: type and subtype lower-cased, params as written. */
export interface MediaType {
  type: string;
  subtype: string;
  params: Params;
}

/** How a message reached us: on a stream (TCP/TLS) Content-Length is mandatory (RFC 3261 §18.3). */
export interface ParseOptions {
  transport?: 'datagram' | 'stream';
}
