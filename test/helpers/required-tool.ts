import { test } from 'node:test';

/**
 * The `skip` option of a suite that needs an external program (chromium, slapd, snmpget…). Without it the suite is
 * skipped on a developer's machine; under CI (`CI` set in the environment) a missing program is a failure, so a
 * green CI run cannot hide a suite that never ran. scripts/setup.sh installs every such program.
 */
export function skipUnlessTool(available: boolean, missing: string): false | string {
  if (available) return false;
  if (process.env.CI) {
    test(`required in CI: ${missing}`, () => {
      throw new Error(`${missing}, and CI is set: install it with scripts/setup.sh (scripts/deps/apt-packages.txt)`);
    });
  }
  return missing;
}
