/**
 * Administrator login against a real OpenLDAP slapd (test/helpers/slapd.ts): StartTLS and ldaps with a test CA,
 * service-account bind, user search, group → access level, wrong password, a user outside the admin groups, an
 * untrusted directory certificate, the directory being down (fallback only where configured), and the outbound source
 * port range.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/common/log.ts';
import { managementLdapSchema } from '../../src/config/schema.ts';
import { AdminStore } from '../../src/management/admin-store.ts';
import { Authenticator } from '../../src/management/authenticator.ts';
import { AdminDirectory } from '../../src/management/ldap/directory.ts';
import { NodeStore } from '../../src/store/database.ts';
import { skipUnlessTool } from '../helpers/required-tool.ts';
import { type Slapd, startSlapd } from '../helpers/slapd.ts';
import { apiLogin, type MgmtNode, req, setupAdmin, startMgmtNode } from './helpers.ts';

function hasSlapd(): boolean {
  try {
    execFileSync('/usr/sbin/slapd', ['-VV'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    return (err as { code?: unknown }).code !== 'ENOENT';
  }
}

const S = 'dc=example,dc=com';
const SEED = `dn: ou=people,${S}
objectClass: organizationalUnit
ou: people

dn: ou=groups,${S}
objectClass: organizationalUnit
ou: groups

dn: ou=services,${S}
objectClass: organizationalUnit
ou: services

dn: cn=crossway,ou=services,${S}
objectClass: person
cn: crossway
sn: service
userPassword: service-secret

dn: uid=alice,ou=people,${S}
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Admin
userPassword: alice-password

dn: uid=bob,ou=people,${S}
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Viewer
userPassword: bob-password

dn: uid=carol,ou=people,${S}
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Nobody
userPassword: carol-password

dn: uid=dave,ou=people,${S}
objectClass: inetOrgPerson
uid: dave
cn: Dave
sn: Auditor
userPassword: dave-password

dn: cn=crossway-auditors,ou=groups,${S}
objectClass: groupOfNames
cn: crossway-auditors
member: uid=dave,ou=people,${S}

dn: cn=crossway-admins,ou=groups,${S}
objectClass: groupOfNames
cn: crossway-admins
member: uid=alice,ou=people,${S}

dn: cn=crossway-viewers,ou=groups,${S}
objectClass: groupOfNames
cn: crossway-viewers
member: uid=bob,ou=people,${S}
`;

const ldapCfg = (caPath?: string) =>
  managementLdapSchema.parse({
    bindDn: `cn=crossway,ou=services,${S}`,
    bindPassword: 'service-secret',
    baseDn: `ou=people,${S}`,
    groups: {
      readWrite: [`cn=crossway-admins,ou=groups,${S}`],
      readOnly: [`cn=crossway-viewers,ou=groups,${S}`],
      auditor: [`cn=crossway-auditors,ou=groups,${S}`],
    },
    ...(caPath ? { caCertificates: caPath } : {}),
    timeoutMs: 2000,
  });

const skip = skipUnlessTool(hasSlapd(), 'slapd (Debian slapd + ldap-utils) is not installed');

describe('administrator login against slapd', { skip }, () => {
  let slapd: Slapd;
  let ca: string;
  before(async () => {
    slapd = await startSlapd({ ldif: SEED });
    ca = readFileSync(slapd.tls.ca.certPath, 'utf8');
  });
  after(async () => {
    await slapd?.cleanup();
  });

  it('StartTLS: group membership gives the access level; wrong password and users outside the groups are refused', async () => {
    const dir = new AdminDirectory({ servers: [{ url: slapd.url, startTls: true }], config: ldapCfg(), ca });
    assert.deepEqual(await dir.login('alice', 'alice-password'), {
      ok: true,
      level: 'read-write',
      dn: `uid=alice,ou=people,${S}`,
    });
    const bob = await dir.login('bob', 'bob-password');
    assert.ok(bob.ok && bob.level === 'read-only');
    const dave = await dir.login('dave', 'dave-password');
    assert.ok(dave.ok && dave.level === 'auditor', JSON.stringify(dave));
    assert.deepEqual(await dir.login('alice', 'wrong'), { ok: false, kind: 'rejected', reason: 'wrong password' });
    assert.deepEqual(await dir.login('carol', 'carol-password'), {
      ok: false,
      kind: 'rejected',
      reason: 'not in an administrator group',
    });
    assert.deepEqual(await dir.login('mallory', 'x'), { ok: false, kind: 'rejected', reason: 'unknown user' });
    assert.deepEqual(await dir.login('alice', ''), { ok: false, kind: 'rejected', reason: 'empty password' });
    // Filter metacharacters in the login name are escaped, not interpreted.
    assert.equal((await dir.login('*', 'alice-password')).ok, false);
    assert.equal((await dir.login('alice)(uid=*', 'alice-password')).ok, false);
  });

  it('ldaps:// works with the CA, and a directory certificate the node does not trust is an outage', async () => {
    const good = new AdminDirectory({ servers: [{ url: slapd.ldapsUrl, startTls: false }], config: ldapCfg(), ca });
    assert.equal((await good.login('alice', 'alice-password')).ok, true);
    const untrusted = new AdminDirectory({
      servers: [{ url: slapd.url, startTls: true }],
      config: ldapCfg(),
      ca: slapd.tls.otherCa.cert,
    });
    const r = await untrusted.login('alice', 'alice-password');
    assert.equal(r.ok, false);
    assert.equal(!r.ok && r.kind, 'outage');
    assert.match(!r.ok ? r.reason : '', /certificate|self.signed|verify/i);
  });

  it('directory down: remote-only refuses unless fallback to local is configured', async () => {
    const store = NodeStore.open(':memory:');
    const admin = new AdminStore(store);
    await admin.setAccount('local-admin', 'read-write', 'local-password-1');
    const dir = new AdminDirectory({ servers: [{ url: slapd.url, startTls: true }], config: ldapCfg(), ca });
    const seen: boolean[] = [];
    // The outage is logged (warn) with the user and the reason, never the password.
    const lines: string[] = [];
    const log = createLogger({ level: 'warn', destination: { write: (l: string) => void lines.push(l) } });
    const strict = new Authenticator({
      store: admin,
      source: 'remote',
      fallbackToLocal: false,
      directory: dir,
      log,
      onDirectory: (up) => seen.push(up),
    });
    const lenient = new Authenticator({
      store: admin,
      source: 'remote',
      fallbackToLocal: true,
      directory: dir,
      log,
    });
    // Directory up: remote-only ignores local accounts.
    assert.equal((await strict.login('local-admin', 'local-password-1')).ok, false);
    assert.equal(
      (await lenient.login('local-admin', 'local-password-1')).ok,
      false,
      'no fallback while the directory answers',
    );
    await slapd.stop();
    try {
      const s = await strict.login('local-admin', 'local-password-1');
      assert.equal(s.ok, false);
      assert.equal(!s.ok && s.outage, true);
      const l = await lenient.login('local-admin', 'local-password-1');
      assert.deepEqual(l, { ok: true, user: 'local-admin', level: 'read-write', via: 'local' });
      assert.equal((await lenient.login('local-admin', 'wrong')).ok, false);
      const warned = lines.map((l) => JSON.parse(l) as { level: number; msg: string; user?: string });
      assert.ok(
        warned.some((w) => w.level === 40 && w.user === 'local-admin' && /unreachable => login refused/.test(w.msg)),
        lines.join(''),
      );
      assert.ok(warned.some((w) => w.level === 40 && /unreachable => falling back to local accounts/.test(w.msg)));
      assert.doesNotMatch(lines.join(''), /local-password-1/);
    } finally {
      await slapd.start();
      store.close();
    }
    assert.equal((await strict.login('alice', 'alice-password')).ok, true, 'back up');
    // The directory's reachability as the alarm sees it: up, down, up.
    assert.deepEqual(seen, [true, false, true]);
  });

  it('connections leave from the configured source port range', async () => {
    const seen: number[] = [];
    const fake = createServer((s) => {
      seen.push(s.remotePort ?? 0);
      s.destroy();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    const port = (fake.address() as { port: number }).port;
    try {
      const dir = new AdminDirectory({
        servers: [{ url: `ldap://127.0.0.1:${port}`, startTls: false }],
        config: ldapCfg(),
        sourcePorts: { from: 34000, to: 34009, step: 1 },
      });
      for (let i = 0; i < 3; i++) assert.equal((await dir.login('alice', 'x')).ok, false);
      assert.ok(seen.length >= 3);
      assert.ok(
        seen.every((p) => p >= 34000 && p <= 34009),
        `source ports ${seen}`,
      );
    } finally {
      fake.close();
    }
  });

  it('source ports held by other sockets are skipped for the next one of the range', async () => {
    // Three of four ports held: from wherever the cursor starts, the login walks on to 34103 (one login only: a
    // port just used may sit in TIME_WAIT).
    const holders = [34100, 34101, 34102].map(() => createServer());
    await Promise.all(holders.map((h, i) => new Promise<void>((r) => h.listen(34100 + i, '127.0.0.1', () => r()))));
    try {
      const dir = new AdminDirectory({
        servers: [{ url: slapd.url, startTls: true }],
        config: ldapCfg(),
        ca,
        localAddress: '127.0.0.1',
        sourcePorts: { from: 34100, to: 34103, step: 1 },
      });
      assert.equal((await dir.login('alice', 'alice-password')).ok, true);
    } finally {
      for (const h of holders) h.close();
    }
  });

  describe('through the node: a lab node with authSource both', () => {
    let m: MgmtNode;
    before(async () => {
      m = await startMgmtNode({
        ldap: { servers: [{ url: slapd.url, startTls: true }] },
        management: { authSource: 'both', ldap: { ...ldapCfg(slapd.tls.ca.certPath) } },
      });
    });
    after(async () => {
      await m?.node.close();
    });

    it('alice logs in over HTTPS with her directory password; the audit log says ldap', async () => {
      const r = await req(`${m.base()}/api/v1/login`, {
        ca: m.ca,
        body: { user: 'alice', password: 'alice-password' },
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json<{ level: string }>().level, 'read-write');
      const carol = await req(`${m.base()}/api/v1/login`, {
        ca: m.ca,
        body: { user: 'carol', password: 'carol-password' },
      });
      assert.equal(carol.status, 401);
      const cookie = String(r.headers['set-cookie']).split(';')[0]!;
      const audit = await req(`${m.base()}/api/v1/audit`, { ca: m.ca, headers: { cookie } });
      const recs = audit.json<{ who: string; action: string; detail: string }[]>();
      assert.ok(recs.some((x) => x.who === 'alice' && x.action === 'login' && x.detail === 'ldap, read-write'));
      assert.ok(
        recs.some((x) => x.who === 'carol' && x.action === 'login-failed' && /administrator group/.test(x.detail)),
      );
      assert.ok(
        m.node.plan.pools.some((p) => p.id === 'ldap-outbound'),
        'the plan lists the LDAP source ports',
      );
    });
  });
});

describe('through the node, without a directory program', () => {
  it("a login reaches the directory from the node's private address and the plan's ldap-outbound ports; an outage raises ldap-directory", async () => {
    const seen: { address: string; port: number }[] = [];
    const fake = createServer((s) => {
      seen.push({ address: s.remoteAddress ?? '', port: s.remotePort ?? 0 });
      s.destroy();
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', () => r()));
    let m: MgmtNode | undefined;
    try {
      const port = (fake.address() as { port: number }).port;
      m = await startMgmtNode({
        ldap: { servers: [{ url: `ldap://127.0.0.1:${port}`, startTls: false }] },
        management: { authSource: 'both', ldap: { baseDn: `ou=people,${S}`, timeoutMs: 2000 } },
      });
      await setupAdmin(m, 'local-admin', 'local admin password');
      // Three logins: an ephemeral source port could fall in 30000-35999 once by chance, hardly three times.
      for (const user of ['alice', 'bob', 'carol']) {
        const r = await req(`${m.base()}/api/v1/login`, { ca: m.ca, body: { user, password: 'a password' } });
        assert.equal(r.status, 401, r.text);
      }
      const range = m.node.plan.range('ldap-outbound', 'edge');
      assert.ok(seen.length >= 3, 'the directory was tried for each login');
      for (const s of seen) {
        assert.equal(s.address, m.node.addresses.get('edge')!.private);
        assert.ok(s.port >= range.from && s.port <= range.to, `source port ${s.port} in ${range.from}-${range.to}`);
      }
      const { cookie } = await apiLogin(m, 'local-admin', 'local admin password');
      const alarms = await req(`${m.base()}/api/v1/alarms`, { ca: m.ca, headers: { cookie } });
      const list = alarms.json<{ id: string; severity: string }[]>();
      assert.ok(
        list.some((a) => a.id === 'ldap-directory' && a.severity === 'major'),
        alarms.text,
      );
    } finally {
      await m?.node.close();
      fake.close();
    }
  });
});
