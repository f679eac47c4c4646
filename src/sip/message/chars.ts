/**
 * Character classes of the RFC 3261 §25.1 grammar as lookup tables, so scanners test a char code with one array
 * read instead of a regular expression (no backtracking on untrusted input).
 */

function table(chars: string, ranges: Array<[number, number]> = []): Uint8Array {
  const t = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) t[chars.charCodeAt(i)] = 1;
  for (const [a, b] of ranges) for (let c = a; c <= b; c++) t[c] = 1;
  return t;
}

const ALNUM: Array<[number, number]> = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x61, 0x7a],
];

/** RFC 3261 §25.1 token: alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" */
export const TOKEN = table("-.!%*_+`'~", ALNUM);
/** unreserved = alphanum / mark */
export const UNRESERVED = table("-_.!~*'()", ALNUM);
/** user = 1*( unreserved / escaped / user-unreserved ) */
export const USER = table("-_.!~*'()&=+$,;?/", ALNUM);
/** password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
export const PASSWORD = table("-_.!~*'()&=+$,", ALNUM);
/** paramchar = param-unreserved / unreserved / escaped */
export const PARAMCHAR = table("-_.!~*'()[]/:&+$", ALNUM);
/** hname / hvalue = *( hnv-unreserved / unreserved / escaped ) */
export const HNVCHAR = table("-_.!~*'()[]/?:+$", ALNUM);
/** hostname characters (alphanum, "-", "."; also "_", which the grammar forbids but real hosts send). */
export const HOSTCHAR = table('-._', ALNUM);
/** Characters allowed in an unquoted generic-param value (token / host), a little wider for robustness. */
export const GENVALUE = table("-.!%*_+`'~:[]/=@?&$#", ALNUM);
/** Characters of a Call-ID word (RFC 3261 §25.1 word). */
export const WORD = table('-.!%*_+`\'~()<>:\\"/[]?{}', ALNUM);
/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
export const SCHEME = table('+-.', ALNUM);

/** True when every code unit of `s` is in the table (non-ASCII never is). */
export function allIn(t: Uint8Array, s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || t[c] !== 1) return false;
  }
  return s.length > 0;
}

/** True for SP / HTAB / CR / LF. */
export function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Trims SP / HTAB / CR / LF only (String.prototype.trim would also eat U+FEFF, NBSP… which are content in SIP). */
export function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** True when the char code is a token character. */
export function isTokenChar(c: number): boolean {
  return c < 128 && TOKEN[c] === 1;
}

/** Index of the first non-token character at or after `i`. */
export function tokenEnd(s: string, i: number): number {
  while (i < s.length && isTokenChar(s.charCodeAt(i))) i++;
  return i;
}

/** True when the string is a non-empty token. */
export function isToken(s: string): boolean {
  return allIn(TOKEN, s);
}

/** True when `s` is 1..max decimal digits. */
export function isDigits(s: string, max = 10): boolean {
  if (s.length === 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

function hexVal(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/**
 * Checks `s` against a character table allowing `%HH` escapes and returns it unescaped (UTF-8 when the escaped
 * bytes form valid UTF-8, else Latin-1 so that no byte is lost), or undefined when a character is not allowed.
 */
export function unescapeChecked(s: string, t: Uint8Array): string | undefined {
  let hasEscape = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      if (i + 2 >= s.length) return undefined;
      if (hexVal(s.charCodeAt(i + 1)) < 0 || hexVal(s.charCodeAt(i + 2)) < 0) return undefined;
      hasEscape = true;
      i += 2;
    } else if (c >= 128 || t[c] !== 1) {
      return undefined;
    }
  }
  if (!hasEscape) return s;
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25) {
      bytes.push(hexVal(s.charCodeAt(i + 1)) * 16 + hexVal(s.charCodeAt(i + 2)));
      i += 2;
    } else {
      bytes.push(c);
    }
  }
  const buf = Buffer.from(bytes);
  const utf8 = buf.toString('utf8');
  return Buffer.byteLength(utf8) === buf.length && Buffer.from(utf8, 'utf8').equals(buf)
    ? utf8
    : buf.toString('latin1');
}

const HEX = '0123456789ABCDEF';

/** Escapes every character of `s` not in the table as `%HH` of its UTF-8 bytes. */
export function escapeChars(s: string, t: Uint8Array): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 128 || t[c] !== 1) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    if (b < 128 && t[b] === 1) out += String.fromCharCode(b);
    else out += '%' + HEX[b >> 4] + HEX[b & 15];
  }
  return out;
}
