import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/common/errors.ts';
import { defaultConfig, loadConfigFile, validateConfig } from '../../src/config/load.ts';

test('an empty configuration is a lab node with safe defaults', () => {
  const cfg = defaultConfig();
  assert.equal(cfg.role, 'lab');
  assert.equal(cfg.size, 'small');
  assert.equal(cfg.tls.verifyPeer, true);
  assert.equal(cfg.tls.minVersion, 'TLSv1.2');
  assert.equal(cfg.management.exposePublic, false);
  assert.equal(cfg.sip.timers.t1, 500);
  assert.ok(Object.isFrozen(cfg.sip.timers), 'layers receive a frozen configuration');
});

test('an invalid configuration is refused with the path of each bad field', () => {
  try {
    validateConfig({
      role: 'gateway',
      network: { address: '300.1.1.1' },
      traversalZones: [{ name: 'tz', port: 70000 }],
    });
    assert.fail('expected a ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    const paths = e.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['network.address', 'role', 'traversalZones[0].port']);
    assert.match(e.message, /role: .*edge.*core.*lab/);
  }
});

test('a traversal zone over TCP with a TLS verify subject name is refused at that field', () => {
  assert.throws(
    () => validateConfig({ traversalZones: [{ name: 'tz', transport: 'tcp', tlsVerifySubjectName: 'core.example' }] }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.issues.map((i) => i.path).join() === 'traversalZones[0].tlsVerifySubjectName' &&
      /needs transport: tls/.test(e.message),
  );
  assert.equal(
    validateConfig({ traversalZones: [{ name: 'tz', tlsVerifySubjectName: 'core.example' }] }).traversalZones[0]!
      .transport,
    'tls',
  );
});

test('t1 larger than t2 is refused at sip.timers.t1', () => {
  try {
    validateConfig({ sip: { timers: { t1: 5000, t2: 4000 } } });
    assert.fail('expected a ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['sip.timers.t1'],
    );
  }
});

test('the transaction table caps are validated: defaults 100,000 live / 1,000,000 completed, too small refused', () => {
  const cfg = defaultConfig();
  assert.equal(cfg.sip.transactions.maxTransactions, 100_000);
  assert.equal(cfg.sip.transactions.maxCompletedTransactions, 1_000_000);
  const set = validateConfig({ sip: { transactions: { maxCompletedTransactions: 50_000 } } });
  assert.equal(set.sip.transactions.maxCompletedTransactions, 50_000);
  assert.equal(set.sip.transactions.maxTransactions, 100_000);
  try {
    validateConfig({ sip: { transactions: { maxCompletedTransactions: 10 } } });
    assert.fail('expected a ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(
      e.issues.map((i) => i.path),
      ['sip.transactions.maxCompletedTransactions'],
    );
  }
});

test('unknown fields are refused, not silently ignored', () => {
  try {
    validateConfig({ sip: { tranports: {} } });
    assert.fail('expected a ConfigError');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.issues[0]?.path, 'sip');
    assert.match(e.issues[0]?.message ?? '', /tranports/);
  }
});

test('YAML files load; broken YAML is refused with the file named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-cfg-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'role: edge\nsize: large\nnetwork:\n  address: 192.0.2.10\n  externalAddress: 198.51.100.7\n');
  const cfg = loadConfigFile(good);
  assert.equal(cfg.role, 'edge');
  assert.equal(cfg.size, 'large');
  assert.equal(cfg.network.externalAddress, '198.51.100.7');
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'role: [edge\n');
  assert.throws(
    () => loadConfigFile(bad),
    (e: unknown) => e instanceof ConfigError && e.message.includes(bad),
  );
});

test('command-line overrides replace the file value and are validated like it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-cfg-'));
  const file = join(dir, 'offset.yaml');
  writeFileSync(file, 'portOffset: 10\ndataDir: /tmp/from-file\n');
  assert.equal(loadConfigFile(file).portOffset, 10);
  const over = loadConfigFile(file, { portOffset: 300 });
  assert.equal(over.portOffset, 300);
  assert.equal(over.dataDir, '/tmp/from-file', 'fields not overridden keep the file value');
  const empty = join(dir, 'empty.yaml');
  writeFileSync(empty, '');
  assert.equal(loadConfigFile(empty, { portOffset: 7 }).portOffset, 7, 'an empty file takes overrides too');
  assert.throws(
    () => loadConfigFile(file, { portOffset: 1e9 }),
    (e: unknown) => e instanceof ConfigError && e.issues.some((i) => i.path === 'portOffset'),
  );
  assert.equal(defaultConfig({ portOffset: 40 }).portOffset, 40);
});
