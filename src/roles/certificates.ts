import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface NodeCertificate {
  cert: string;
  key: string;
  /** Where they were read from or written to. */
  certPath: string;
  keyPath: string;
  generated: boolean;
}

/**
 * The node's TLS identity for `lab`: a self-signed certificate generated on first start and kept in the data
 * directory (key file mode 0600), reused on later starts.
 */
export async function ensureSelfSignedCertificate(dataDir: string, hosts: readonly string[]): Promise<NodeCertificate> {
  const dir = join(dataDir, 'tls');
  const certPath = join(dir, 'node-cert.pem');
  const keyPath = join(dir, 'node-key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return {
      cert: readFileSync(certPath, 'utf8'),
      key: readFileSync(keyPath, 'utf8'),
      certPath,
      keyPath,
      generated: false,
    };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const notBefore = new Date();
  const notAfter = new Date(notBefore);
  notAfter.setFullYear(notAfter.getFullYear() + 2);
  const altNames = hosts.map((h) =>
    /^[\d.]+$|:/.test(h) ? { type: 7 as const, ip: h } : { type: 2 as const, value: h },
  );
  const pems = await generate([{ name: 'commonName', value: hosts[0] ?? 'crossway-lab' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  writeFileSync(keyPath, pems.private, { mode: 0o600 });
  writeFileSync(certPath, pems.cert, { mode: 0o644 });
  return { cert: pems.cert, key: pems.private, certPath, keyPath, generated: true };
}
