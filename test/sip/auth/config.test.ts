import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/common/errors.ts';
import { validateConfig } from '../../../src/config/load.ts';

function issues(input: unknown): string[] {
  try {
    validateConfig(input);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.issues.map((i) => i.path);
  }
  return [];
}

describe('auth and security configuration', () => {
  it('an empty file gives digest with SHA-256 then MD5, local credentials, check everywhere, protection on', () => {
    const c = validateConfig({});
    assert.deepEqual(c.auth.algorithms, ['SHA-256', 'MD5']);
    assert.equal(c.auth.credentials.source, 'local');
    assert.deepEqual(c.auth.zones, { default: 'check' });
    assert.equal(c.security.intrusion.enabled, true);
    assert.equal(c.security.intrusion.authFailures.threshold, 10);
    assert.deepEqual(c.security.intrusion.exempt, ['127.0.0.0/8', '::1/128']);
  });

  it('refuses bad fields with their paths', () => {
    assert.ok(issues({ auth: { credentials: { source: 'ldap' } } }).some((p) => p.startsWith('auth.credentials')));
    assert.ok(issues({ auth: { algorithms: ['SHA-1'] } }).includes('auth.algorithms[0]'));
    assert.ok(issues({ auth: { zones: { trunk: 'maybe' } } }).includes('auth.zones.trunk'));
    assert.ok(
      issues({ security: { intrusion: { exempt: ['10.0.0.0/33'] } } }).includes('security.intrusion.exempt[0]'),
    );
    assert.ok(issues({ security: { intrusion: { exempt: ['not-an-ip'] } } }).includes('security.intrusion.exempt[0]'));
    assert.ok(
      issues({
        auth: { credentials: { source: 'ldap', ldap: { baseDn: 'o=x', bindPassword: 'a', bindPasswordFile: '/f' } } },
      }).includes('auth.credentials.ldap.bindPasswordFile'),
    );
    assert.deepEqual(issues({ auth: { credentials: { source: 'ldap', ldap: { baseDn: 'o=x' } } } }), []);
  });
});
