/**
 * Tokenizer for the subset of ASN.1 (X.680) notation used by the H.225.0, H.235.0 and H.245 modules.
 * Comments (`-- … --` or to end of line, and `/* … *\/`) are dropped; so are any bytes inside them.
 */
export type TokenKind = 'id' | 'num' | 'str' | 'sym';

export interface Token {
  kind: TokenKind;
  text: string;
  line: number;
}

const SYMBOLS = [
  '::=',
  '...',
  '..',
  '[[',
  ']]',
  '{',
  '}',
  '(',
  ')',
  ',',
  '|',
  '^',
  '.',
  '&',
  '<',
  '@',
  '!',
  ';',
  ':',
  '[',
  ']',
  '-',
];

/** Splits module text into tokens; throws `Error` with the line number on a character it does not know. */
export function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\u00a0') {
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      // X.680 §12.6.3: a comment ends at the next "--" or at the end of the line.
      i += 2;
      while (i < n && text[i] !== '\n' && !(text[i] === '-' && text[i + 1] === '-')) i++;
      if (i < n && text[i] === '-') i += 2;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let j = i; j < stop; j++) if (text[j] === '\n') line++;
      i = stop;
      continue;
    }
    if (/[A-Za-z]/.test(c)) {
      let j = i + 1;
      while (j < n) {
        const d = text[j]!;
        if (/[A-Za-z0-9]/.test(d)) j++;
        else if (d === '-' && /[A-Za-z0-9]/.test(text[j + 1] ?? '') && text[j + 1] !== '-') j++;
        else break;
      }
      out.push({ kind: 'id', text: text.slice(i, j), line });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1;
      while (j < n && /[0-9]/.test(text[j]!)) j++;
      out.push({ kind: 'num', text: text.slice(i, j), line });
      i = j;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      for (;;) {
        if (j >= n) throw new Error(`line ${line}: unterminated string`);
        if (text[j] === '"') {
          if (text[j + 1] === '"') {
            s += '"';
            j += 2;
            continue;
          }
          break;
        }
        s += text[j];
        j++;
      }
      out.push({ kind: 'str', text: s, line });
      i = j + 1;
      continue;
    }
    const sym = SYMBOLS.find((s) => text.startsWith(s, i));
    if (!sym) throw new Error(`line ${line}: unexpected character ${JSON.stringify(c)}`);
    out.push({ kind: 'sym', text: sym, line });
    i += sym.length;
  }
  return out;
}
