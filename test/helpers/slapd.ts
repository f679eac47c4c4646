/**
 * A real OpenLDAP `slapd` for tests (Debian packages slapd + ldap-utils): its own process with a generated slapd.conf
 * and an mdb database in a temp dir, listening on `ldap://127.0.0.1:PORT` (StartTLS) and `ldaps://127.0.0.1:PORT2`
 * with a certificate from `createTlsFixtures`, seeded with `ldapadd`. `stop()` kills it (a directory outage), `start()`
 * brings it back on the same ports and data. Reusable: pass extra schemas, ACL lines and LDIF.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTlsFixtures, type TlsFixtures } from './tls-fixtures.ts';

const run = promisify(execFile);

export interface SlapdOptions {
  /** Default `dc=example,dc=com`. */
  suffix?: string;
  /** Extra schema files (`include` lines) after core, cosine, inetorgperson and nis. */
  schemas?: string[];
  /** ACL lines; default: passwords readable by bound users, auth for anonymous; everything else readable. */
  acl?: string[];
  /** LDIF added after the base entry. */
  ldif?: string;
  /** TLS fixtures to use (default: new ones, cleaned up with the server). */
  tls?: TlsFixtures;
}

export interface Slapd {
  /** `ldap://127.0.0.1:PORT` (StartTLS available). */
  url: string;
  /** `ldaps://127.0.0.1:PORT`. */
  ldapsUrl: string;
  suffix: string;
  rootDn: string;
  rootPassword: string;
  tls: TlsFixtures;
  dir: string;
  /** Adds LDIF with ldapadd as the root DN. */
  add(ldif: string): Promise<void>;
  /** Kills the server (outage). */
  stop(): Promise<void>;
  /** Starts it again on the same ports and data. */
  start(): Promise<void>;
  readonly running: boolean;
  /** Stops and removes everything. */
  cleanup(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`slapd did not listen on ${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Starts a seeded slapd; throws a clear error when the slapd binary is missing. */
export async function startSlapd(o: SlapdOptions = {}): Promise<Slapd> {
  const suffix = o.suffix ?? 'dc=example,dc=com';
  const dc = /^dc=([^,]+)/.exec(suffix)?.[1] ?? 'example';
  const rootDn = `cn=admin,${suffix}`;
  const rootPassword = 'root-secret';
  const dir = mkdtempSync(join(tmpdir(), 'crossway-slapd-'));
  const ownTls = !o.tls;
  const tls = o.tls ?? createTlsFixtures();
  mkdirSync(join(dir, 'db'));
  const port = await freePort();
  const ldapsPort = await freePort();
  const acl = o.acl ?? [
    'access to attrs=userPassword by anonymous auth by users read by * none',
    'access to * by * read',
  ];
  const conf = [
    'include /etc/ldap/schema/core.schema',
    'include /etc/ldap/schema/cosine.schema',
    'include /etc/ldap/schema/inetorgperson.schema',
    'include /etc/ldap/schema/nis.schema',
    ...(o.schemas ?? []).map((s) => `include ${s}`),
    `pidfile ${join(dir, 'slapd.pid')}`,
    `argsfile ${join(dir, 'slapd.args')}`,
    'modulepath /usr/lib/ldap',
    'moduleload back_mdb',
    `TLSCACertificateFile ${tls.ca.certPath}`,
    `TLSCertificateFile ${tls.server.certPath}`,
    `TLSCertificateKeyFile ${tls.server.keyPath}`,
    'database mdb',
    'maxsize 67108864',
    `suffix "${suffix}"`,
    `rootdn "${rootDn}"`,
    `rootpw ${rootPassword}`,
    `directory ${join(dir, 'db')}`,
    ...acl,
    '',
  ].join('\n');
  const confPath = join(dir, 'slapd.conf');
  writeFileSync(confPath, conf);
  const url = `ldap://127.0.0.1:${port}`;
  const ldapsUrl = `ldaps://127.0.0.1:${ldapsPort}`;
  let child: ChildProcess | undefined;
  let stderr = '';

  const start = async () => {
    stderr = '';
    // -d 0: stay in the foreground (no fork) so the test owns the process; logs go to stderr.
    child = spawn('/usr/sbin/slapd', ['-d', '0', '-f', confPath, '-h', `${url}/ ${ldapsUrl}/`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    const exited = new Promise<never>((_, reject) =>
      child!.once('exit', (code) => reject(new Error(`slapd exited with ${code}: ${stderr}`))),
    );
    exited.catch(() => {});
    await Promise.race([waitForPort(port, 10_000), exited]);
    await waitForPort(ldapsPort, 5000);
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  const add = async (ldif: string) => {
    const f = join(dir, `add-${Date.now()}-${Math.random().toString(36).slice(2)}.ldif`);
    writeFileSync(f, ldif);
    await run('ldapadd', ['-x', '-H', url, '-D', rootDn, '-w', rootPassword, '-f', f]);
  };

  await start();
  try {
    await add(`dn: ${suffix}\nobjectClass: dcObject\nobjectClass: organization\no: ${dc}\ndc: ${dc}\n`);
    if (o.ldif) await add(o.ldif);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url,
    ldapsUrl,
    suffix,
    rootDn,
    rootPassword,
    tls,
    dir,
    add,
    stop,
    start,
    get running() {
      return child !== undefined && child.exitCode === null;
    },
    cleanup: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
      if (ownTls) tls.cleanup();
    },
  };
}
