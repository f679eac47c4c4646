import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createLogger, type Logger, silentLogger } from '../../../src/common/log.ts';
import { systemClock } from '../../../src/common/timers.ts';
import { DigestAuthenticator } from '../../../src/sip/auth/authenticator.ts';
import { answerChallenge, pickChallenge } from '../../../src/sip/auth/client.ts';
import { ldapCredentialsSchema } from '../../../src/sip/auth/config.ts';
import { computeHa1 } from '../../../src/sip/auth/digest.ts';
import { escapeFilterValue, LdapDirectory } from '../../../src/sip/auth/ldap/directory.ts';
import { LdapCredentialSource } from '../../../src/sip/auth/ldap/ldap-credentials.ts';
import { NonceCountTracker } from '../../../src/sip/auth/nc-tracker.ts';
import { NonceIssuer } from '../../../src/sip/auth/nonce.ts';
import type { AuthResult } from '../../../src/sip/auth/types.ts';
import { createRequest, getHeaders, type SipResponse } from '../../../src/sip/message/index.ts';
import { startTestNode } from '../../helpers/lab-node.ts';
import { type Slapd, startSlapd } from '../../helpers/slapd.ts';
import { Phone } from '../../security/phone.ts';

const REALM = 'example.com';
const H350 = fileURLToPath(new URL('../../vectors/auth/h350-sipidentity.schema', import.meta.url));
/** A 100-port window of the seed's LDAP outbound range (30000–35999), different per run. */
const RANGE_FROM = 30000 + Math.floor(Math.random() * 58) * 100;
const RANGE = { from: RANGE_FROM, to: RANGE_FROM + 99 };

let slapd: Slapd;

before(async () => {
  slapd = await startSlapd({
    schemas: [H350],
    acl: [
      'access to attrs=userPassword,SIPIdentityPassword by dn.exact="cn=sip-reader,dc=example,dc=com" read by anonymous auth by * none',
      'access to * by * read',
    ],
    ldif: [
      'dn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n',
      'dn: cn=sip-reader,dc=example,dc=com\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: sip-reader\nuserPassword: reader-pw\n',
      'dn: uid=alice,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: SIPIdentity\nuid: alice\ncn: Alice\nsn: A\nuserPassword: alice-pw\nSIPIdentityUserName: alice.sip\nSIPIdentityPassword: alice-sip-pw\n',
      `dn: uid=bob,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nobjectClass: SIPIdentity\nuid: bob\ncn: Bob\nsn: B\nuserPassword: {SSHA}notusable\nSIPIdentityUserName: bob.sip\nSIPIdentityPassword: ${computeHa1('MD5', 'bob.sip', REALM, 'bob-pw')}\n`,
    ].join('\n'),
  });
});

after(async () => {
  await slapd?.cleanup();
});

function directory(o: { url?: string; startTls?: boolean; ca?: string | null; bindPassword?: string } = {}) {
  return new LdapDirectory({
    servers: [{ url: o.url ?? slapd.url, startTls: o.startTls ?? true }],
    bindDn: 'cn=sip-reader,dc=example,dc=com',
    bindPassword: o.bindPassword ?? 'reader-pw',
    ...(o.ca === null ? {} : { ca: o.ca ?? slapd.tls.ca.cert }),
    verifyCertificate: true,
    timeoutMs: 2000,
    sourcePorts: RANGE,
    clock: systemClock,
  });
}

function mapping(over: Record<string, unknown> = {}) {
  return ldapCredentialsSchema.parse({ baseDn: 'ou=people,dc=example,dc=com', cacheSeconds: 0, ...over });
}

function authenticator(source: LdapCredentialSource, log: Logger = silentLogger) {
  return new DigestAuthenticator({
    credentials: source,
    nonces: new NonceIssuer({ secret: randomBytes(32), clock: systemClock, lifetimeMs: 60_000 }),
    tracker: new NonceCountTracker(100, 0),
    opaque: 'o',
    algorithms: ['SHA-256', 'MD5'],
    userhash: false,
    dummyKey: randomBytes(32),
    retryAfterSeconds: 5,
    log,
  });
}

let seq = 0;
async function login(auth: DigestAuthenticator, user: string, password: string): Promise<AuthResult> {
  const mk = () =>
    createRequest({
      method: 'REGISTER',
      uri: `sip:${REALM}`,
      headers: [
        ['Via', `SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK${++seq}`],
        ['From', `<sip:${user}@${REALM}>;tag=${seq}`],
        ['To', `<sip:${user}@${REALM}>`],
        ['Call-ID', `l${seq}`],
        ['CSeq', `${seq} REGISTER`],
      ],
    });
  const ctx = { realm: REALM, mode: 'registrar' as const, source: { address: '192.0.2.1', port: 5060 } };
  const first = await auth.authenticate(mk(), ctx);
  assert.equal(first.kind, 'challenge');
  const ch = pickChallenge(getHeaders((first as { response: SipResponse }).response, 'WWW-Authenticate'))!;
  const req = mk();
  req.headers.push({
    name: 'Authorization',
    value: answerChallenge(ch, { username: user, password, method: 'REGISTER', uri: req.uri }),
  });
  return auth.authenticate(req, ctx);
}

const statusOf = (r: AuthResult) => (r.kind === 'authenticated' ? 200 : r.response.status);

describe('LDAP credential source against a real slapd', () => {
  it('plain mapping (uid / userPassword) over StartTLS, from the ldap-outbound source range', async () => {
    const dir = directory();
    const auth = authenticator(new LdapCredentialSource(dir, mapping(), systemClock));
    try {
      assert.deepEqual(await login(auth, 'alice', 'alice-pw'), {
        kind: 'authenticated',
        username: 'alice',
        realm: REALM,
      });
      assert.equal(statusOf(await login(auth, 'alice', 'wrong')), 403);
      assert.equal(statusOf(await login(auth, 'nobody', 'alice-pw')), 403, 'unknown user: same answer');
      assert.equal(statusOf(await login(auth, 'bob', 'bob-pw')), 403, 'a hashed userPassword cannot serve digest');
      const c = dir.connection;
      assert.ok(c, 'connection kept');
      assert.equal(c.tls, 'starttls');
      assert.ok(
        c.localPort >= RANGE.from && c.localPort <= RANGE.to,
        `source port ${c.localPort} in ${RANGE.from}-${RANGE.to}`,
      );
    } finally {
      await dir.close();
    }
  });

  it('H.350.4 mapping (SIPIdentityUserName / SIPIdentityPassword) over LDAPS', async () => {
    const dir = directory({ url: slapd.ldapsUrl, startTls: false });
    const m = mapping({ usernameAttribute: 'SIPIdentityUserName', secretAttribute: 'SIPIdentityPassword' });
    const auth = authenticator(new LdapCredentialSource(dir, m, systemClock));
    try {
      assert.equal(statusOf(await login(auth, 'alice.sip', 'alice-sip-pw')), 200);
      assert.equal(statusOf(await login(auth, 'alice.sip', 'alice-pw')), 403);
      assert.equal(dir.connection?.tls, 'ldaps');
    } finally {
      await dir.close();
    }
  });

  it('HA1 mapping (an MD5 HA1 in the directory): only MD5 is offered, and it authenticates', async () => {
    const dir = directory();
    const m = mapping({
      usernameAttribute: 'SIPIdentityUserName',
      secretAttribute: 'SIPIdentityPassword',
      secretFormat: 'ha1-md5',
    });
    const auth = authenticator(new LdapCredentialSource(dir, m, systemClock));
    try {
      assert.deepEqual(auth.algorithms, ['MD5']);
      assert.equal(statusOf(await login(auth, 'bob.sip', 'bob-pw')), 200);
      assert.equal(statusOf(await login(auth, 'bob.sip', 'nope')), 403);
    } finally {
      await dir.close();
    }
  });

  it('filter values are escaped (RFC 4515): a wildcard user name matches nobody', async () => {
    assert.equal(escapeFilterValue('a*)(uid=*'), 'a\\2a\\29\\28uid=\\2a');
    const dir = directory();
    const src = new LdapCredentialSource(dir, mapping(), systemClock);
    try {
      assert.deepEqual(await src.lookup({ realm: REALM, username: '*' }), { kind: 'unknown' });
      assert.deepEqual(await src.lookup({ realm: REALM, username: 'al*' }), { kind: 'unknown' });
    } finally {
      await dir.close();
    }
  });

  it('certificate verification is on: a directory certificate from an unknown CA is refused (503)', async () => {
    const dir = directory({ ca: slapd.tls.otherCa.cert });
    const auth = authenticator(new LdapCredentialSource(dir, mapping(), systemClock));
    try {
      const r = await login(auth, 'alice', 'alice-pw');
      assert.equal(statusOf(r), 503);
    } finally {
      await dir.close();
    }
  });

  it('a wrong service-account password makes the directory unavailable (503), never an accept', async () => {
    const dir = directory({ bindPassword: 'wrong' });
    const auth = authenticator(new LdapCredentialSource(dir, mapping(), systemClock));
    try {
      assert.equal(statusOf(await login(auth, 'alice', 'alice-pw')), 503);
    } finally {
      await dir.close();
    }
  });

  it('directory outage: slapd killed → 503 with Retry-After and a clear error log, never an accept; back → 200', async () => {
    const dir = directory();
    const src = new LdapCredentialSource(dir, mapping({ cacheSeconds: 0 }), systemClock);
    const lines: string[] = [];
    const auth = authenticator(
      src,
      createLogger({ level: 'info', destination: { write: (l: string) => void lines.push(l) } }),
    );
    try {
      assert.equal(statusOf(await login(auth, 'alice', 'alice-pw')), 200);
      await slapd.stop();
      for (const [u, p] of [
        ['alice', 'alice-pw'],
        ['alice', 'wrong'],
        ['nobody', 'x'],
      ] as const) {
        const r = await login(auth, u, p);
        assert.equal(r.kind, 'rejected');
        assert.equal(statusOf(r), 503);
        assert.deepEqual(getHeaders((r as { response: SipResponse }).response, 'Retry-After'), ['5']);
      }
      const errors = lines.map(
        (l) => JSON.parse(l) as { level: number; msg: string; source?: string; reason?: string },
      );
      const unavailable = errors.filter((e) => e.msg === 'credential source unavailable => 503');
      assert.equal(unavailable.length, 3, 'one error line per request refused for the outage');
      for (const e of unavailable) {
        assert.equal(e.level, 50, 'logged as an error');
        assert.equal(e.source, src.name);
        assert.ok(e.reason && e.reason.length > 0, 'the line says why the directory is unavailable');
      }
      await slapd.start();
      assert.equal(statusOf(await login(auth, 'alice', 'alice-pw')), 200, 'reconnects after the outage');
    } finally {
      if (!slapd.running) await slapd.start();
      await dir.close();
    }
  });

  it('positive lookups are cached for cacheSeconds (served while the directory is down)', async () => {
    const dir = directory();
    const src = new LdapCredentialSource(dir, mapping({ cacheSeconds: 60 }), systemClock);
    try {
      assert.equal((await src.lookup({ realm: REALM, username: 'alice' })).kind, 'found');
      await slapd.stop();
      assert.equal((await src.lookup({ realm: REALM, username: 'alice' })).kind, 'found');
      assert.equal(src.counters.cacheHits, 1);
      assert.equal(
        (await src.lookup({ realm: REALM, username: 'nobody' })).kind,
        'unavailable',
        'negatives are not cached',
      );
    } finally {
      if (!slapd.running) await slapd.start();
      await dir.close();
    }
  });

  it('verifyPassword binds as the user (administrator login reuse)', async () => {
    const dir = directory();
    try {
      assert.equal(await dir.verifyPassword('uid=alice,ou=people,dc=example,dc=com', 'alice-pw'), true);
      assert.equal(await dir.verifyPassword('uid=alice,ou=people,dc=example,dc=com', 'nope'), false);
      assert.equal(await dir.verifyPassword('uid=alice,ou=people,dc=example,dc=com', ''), false);
    } finally {
      await dir.close();
    }
  });
});

describe('a lab node with LDAP credentials (real slapd, real UDP REGISTER)', () => {
  it('authenticates against the directory from the port plan ldap-outbound range, and answers 503 while it is down', async () => {
    const caPath = join(mkdtempSync(join(tmpdir(), 'crossway-ldap-ca-')), 'ca.pem');
    writeFileSync(caPath, slapd.tls.ca.cert);
    const node = await startTestNode({
      sip: { domains: [REALM] },
      ldap: { servers: [{ url: slapd.url, startTls: true }] },
      auth: {
        credentials: {
          source: 'ldap',
          ldap: {
            baseDn: 'ou=people,dc=example,dc=com',
            bindDn: 'cn=sip-reader,dc=example,dc=com',
            bindPassword: 'reader-pw',
            caCertificates: caPath,
            cacheSeconds: 0,
          },
        },
      },
    });
    const phone = await new Phone(REALM).open();
    try {
      const port = node.sockets().find((x) => x.node === 'core' && x.listener === 'sip-udp')!.port;
      assert.equal((await phone.login(port, 'alice', 'alice-pw'))?.status, 200);
      assert.equal((await phone.login(port, 'alice', 'nope'))?.status, 403);
      const sec = node.security.get('core')!;
      assert.equal(sec.auth.credentials.name, 'ldap');
      const range = node.plan.node('core').range('ldap-outbound');
      const source = sec.auth.credentials as LdapCredentialSource;
      const localPort = source.directory.connection?.localPort ?? 0;
      assert.ok(localPort >= range.from && localPort <= range.to, `${localPort} in ${range.from}-${range.to}`);
      await slapd.stop();
      const down = await phone.login(port, 'alice', 'alice-pw');
      assert.equal(down?.status, 503);
      assert.ok(down?.headers.some((h) => h.name === 'Retry-After'));
    } finally {
      phone.close();
      if (!slapd.running) await slapd.start();
      await node.close();
    }
  });
});
