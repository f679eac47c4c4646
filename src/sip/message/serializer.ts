import { bodyUnchanged } from './cache.ts';
import { canonicalName } from './headers.ts';
import type { SipMessage } from './types.ts';

/**
 * Serializes a message: start line, header lines in order as `Name: value` (names as received, folded values
 * as unfolded by the parser), an empty line and the body. Content-Length is written as received when the body is
 * the one the parser (or a builder) saw; it is recomputed from the body when the body was replaced, and added when
 * absent (RFC 3261 §18.3: it is mandatory on streams; always writing it is harmless on datagrams).
 */
export function serializeMessage(msg: SipMessage): Buffer {
  let head =
    msg.kind === 'request'
      ? line(msg.method) + ' ' + line(msg.uri) + ' ' + line(msg.version) + '\r\n'
      : line(msg.version) + ' ' + msg.status + ' ' + line(msg.reason) + '\r\n';
  const keep = bodyUnchanged(msg);
  let clDone = false;
  for (const h of msg.headers) {
    const nl = h.name.length;
    if ((nl === 14 || nl === 1) && canonicalName(h.name) === 'content-length') {
      if (keep) {
        head += h.name + ': ' + line(h.value) + '\r\n';
      } else if (!clDone) {
        head += h.name + ': ' + msg.body.length + '\r\n';
      }
      clDone = true;
      continue;
    }
    head += line(h.name) + ': ' + line(h.value) + '\r\n';
  }
  if (!clDone) head += 'Content-Length: ' + msg.body.length + '\r\n';
  head += '\r\n';
  const hl = Buffer.byteLength(head, 'utf8');
  const out = Buffer.allocUnsafe(hl + msg.body.length);
  out.write(head, 0, 'utf8');
  msg.body.copy(out, hl);
  return out;
}

/**
 * A CR or LF set by an upper layer in a value, a name, the URI or the reason phrase would inject header lines:
 * each run of them becomes one SP. (Parsed values never contain them.)
 */
function line(s: string): string {
  return s.indexOf('\n') < 0 && s.indexOf('\r') < 0 ? s : s.replace(/[\r\n]+/g, ' ');
}
