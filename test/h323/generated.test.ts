import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { generate } from '../../src/h323/asn1/generate.ts';

describe('generated PER descriptors and types', () => {
  it('are what `npm run gen:asn1` produces from test/vectors/asn1 (regenerate after changing the generator)', () => {
    const root = new URL('../../', import.meta.url).pathname;
    const { table, types } = generate(`${root}test/vectors/asn1`);
    assert.ok(
      table === readFileSync(`${root}src/h323/per/generated/table.ts`, 'utf8'),
      'table.ts is stale: run npm run gen:asn1',
    );
    assert.ok(
      types === readFileSync(`${root}src/h323/per/generated/types.ts`, 'utf8'),
      'types.ts is stale: run npm run gen:asn1',
    );
  });

  it('the modules are the unmodified ITU-T files (SHA-256 as listed in the shared test data SHA256SUMS)', () => {
    const root = new URL('../../', import.meta.url).pathname;
    const sums: Record<string, string> = {
      'H235-SECURITY-MESSAGES.asn': '4cf55f4c288a0630fcb045c35690ba4ebbdee9fdac4508d79cf7b30f38526f18',
      'H323-MESSAGES.asn': 'b5f22bce506431c1cdc1aea602bf165430240aab9bbf71170885bdfb12bba4ad',
      'MULTIMEDIA-SYSTEM-CONTROL.asn': 'b5341ef2bb34b6104701fe66e1da7e92e2f1587ca9bc9f281ebc96773444828d',
    };
    for (const [f, want] of Object.entries(sums)) {
      assert.equal(
        createHash('sha256')
          .update(readFileSync(`${root}test/vectors/asn1/${f}`))
          .digest('hex'),
        want,
        f,
      );
    }
  });
});
