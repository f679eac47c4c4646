/**
 * `npm run gen:asn1`: regenerates src/h323/per/generated/{table,types}.ts from the ITU-T modules in
 * test/vectors/asn1/. `--check` exits 1 when the committed files are out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate } from '../../src/h323/asn1/generate.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const out = join(root, 'src/h323/per/generated');
const { table, types } = generate(join(root, 'test/vectors/asn1'));
const files: Array<[string, string]> = [
  [join(out, 'table.ts'), table],
  [join(out, 'types.ts'), types],
];
if (process.argv.includes('--check')) {
  const stale = files.filter(([f, text]) => {
    try {
      return readFileSync(f, 'utf8') !== text;
    } catch {
      return true;
    }
  });
  for (const [f] of stale) console.error(`stale: ${f}`);
  process.exit(stale.length ? 1 : 0);
}
for (const [f, text] of files) writeFileSync(f, text);
console.log(`wrote ${files.map(([f]) => f).join(', ')}`);
