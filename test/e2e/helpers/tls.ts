import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface SelfSignedCert {
  certFile: string;
  keyFile: string;
  /** PEM of the certificate, to hand to a client as its only trusted CA. */
  certPem: string;
  cleanup(): void;
}

/**
 * A throwaway self-signed certificate for 127.0.0.1 and localhost, made with the openssl CLI at
 * test time so no key material is ever committed. The SAN carries the IP because clients
 * verify the address they dial, and tests dial 127.0.0.1.
 */
export function selfSignedCert(): SelfSignedCert {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-tls-'));
  const certFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'pipe' },
  );
  return { certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
