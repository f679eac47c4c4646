import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM pair on disk and in memory. */
export interface PemPair {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
}

/**
 * Test PKI made with the real `openssl` program: a CA, a server certificate (SAN: localhost, 127.0.0.1, ::1 and any
 * extra names) and a client certificate signed by it, and a second, unrelated CA with its own client certificate
 * (for "signed by another CA is refused"). Everything lives in one temp dir; `cleanup()` removes it.
 */
export interface TlsFixtures {
  dir: string;
  ca: PemPair;
  server: PemPair;
  client: PemPair;
  otherCa: PemPair;
  /** A client certificate signed by `otherCa`, not by `ca`. */
  foreignClient: PemPair;
  cleanup(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
}

function pair(dir: string, name: string): PemPair {
  const certPath = join(dir, `${name}.crt`);
  const keyPath = join(dir, `${name}.key`);
  return { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8'), certPath, keyPath };
}

function makeCa(dir: string, name: string, subject: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, [
    'req',
    '-x509',
    '-new',
    '-key',
    `${name}.key`,
    '-sha256',
    '-days',
    '30',
    '-subj',
    subject,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    `${name}.crt`,
  ]);
}

function makeLeaf(dir: string, name: string, ca: string, subject: string, ext: string): void {
  openssl(dir, ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  openssl(dir, ['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${ca}.crt`,
    '-CAkey',
    `${ca}.key`,
    '-CAcreateserial',
    '-days',
    '30',
    '-sha256',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.crt`,
  ]);
}

/** Creates the test PKI in a fresh temp dir (about 100 ms of openssl runs). */
export function createTlsFixtures(options: { extraDnsNames?: string[]; extraIps?: string[] } = {}): TlsFixtures {
  const dir = mkdtempSync(join(tmpdir(), 'crossway-tls-'));
  try {
    const dns = ['localhost', ...(options.extraDnsNames ?? [])].map((d) => `DNS:${d}`);
    const ips = ['127.0.0.1', '::1', ...(options.extraIps ?? [])].map((i) => `IP:${i}`);
    makeCa(dir, 'ca', '/O=Crossway Test/CN=Crossway Test CA');
    makeLeaf(
      dir,
      'server',
      'ca',
      '/O=Crossway Test/CN=localhost',
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n` +
        `subjectAltName=${[...dns, ...ips].join(',')}\n`,
    );
    makeLeaf(
      dir,
      'client',
      'ca',
      '/O=Crossway Test/CN=client.test',
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' +
        'subjectAltName=DNS:client.test\n',
    );
    makeCa(dir, 'other-ca', '/O=Somebody Else/CN=Other CA');
    makeLeaf(
      dir,
      'foreign-client',
      'other-ca',
      '/O=Somebody Else/CN=intruder.test',
      'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n',
    );
    return {
      dir,
      ca: pair(dir, 'ca'),
      server: pair(dir, 'server'),
      client: pair(dir, 'client'),
      otherCa: pair(dir, 'other-ca'),
      foreignClient: pair(dir, 'foreign-client'),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
