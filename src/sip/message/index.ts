/**
 * The SIP message layer: parser, typed lazy accessors, URI / name-addr / Via codecs, mutation helpers, serializer,
 * builders and the stream framer. Other SIP layers import only from here.
 */
export {
  findHeader,
  findHeaders,
  getCallId,
  getContacts,
  getContentLength,
  getContentType,
  getCSeq,
  getExpires,
  getFrom,
  getFromTag,
  getHeader,
  getHeaders,
  getMaxForwards,
  getRecordRoutes,
  getRequestUri,
  getRoutes,
  getTo,
  getTopVia,
  getToTag,
  getVias,
  parseContactList,
  parseCSeq,
  parseMediaType,
  parseNameAddrList,
  parseViaList,
  UNSUPPORTED_SCHEME,
} from './access.ts';
export { parseAuthorization, parseChallenge } from './auth.ts';
export {
  BRANCH_COOKIE,
  createRequest,
  createResponse,
  newBranch,
  newTag,
  REASON_PHRASES,
  type RequestInit,
  type ResponseOptions,
} from './build.ts';
export { releaseParsed } from './cache.ts';
export { canonicalName, isListHeader, splitList } from './headers.ts';
export {
  addHeader,
  checkHeaderValue,
  prependHeader,
  prependVia,
  removeHeader,
  removeTopVia,
  setHeader,
  setTopViaParams,
} from './mutate.ts';
export { formatNameAddr, parseNameAddr, type ScannedNameAddr, scanNameAddr } from './name-addr.ts';
export { formatParams, getParam, parseParams, quote, setParam, unquote } from './params.ts';
export { DEFAULT_LIMITS, parseMessage } from './parser.ts';
export { serializeMessage } from './serializer.ts';
export { type Frame, StreamFramer } from './stream-framer.ts';
export type * from './types.ts';
export { formatUri, isAbsoluteUri, parseUri, uriEquals } from './uri.ts';
export { formatVia, parseVia } from './via.ts';
