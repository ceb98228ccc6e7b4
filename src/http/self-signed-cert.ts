/**
 * TLS_SELF_SIGNED=true (development only): a localhost certificate made at the first start and
 * kept next to the data, so official clients that always dial wss:// (openai's
 * OpenAIRealtimeWS) work locally once told to trust it with NODE_EXTRA_CA_CERTS. Made with the
 * `selfsigned` package rather than the openssl CLI so it works wherever Node does.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { generate } from 'selfsigned';

export interface SelfSignedFiles {
  certFile: string;
  keyFile: string;
}

/** Makes the certificate unless both files exist; true when it made one. */
export async function ensureSelfSignedCert(files: SelfSignedFiles, now: Date = new Date()): Promise<boolean> {
  if (existsSync(files.certFile) && existsSync(files.keyFile)) return false;
  const notAfterDate = new Date(now.getTime() + 365 * 86_400_000);
  const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate,
    extensions: [
      // Its own trust anchor: clients list this very file as a CA (NODE_EXTRA_CA_CERTS).
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      // Clients check the name they dial: localhost, and the loopback addresses by IP.
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
        ],
      },
    ],
  });
  mkdirSync(path.dirname(files.keyFile), { recursive: true });
  mkdirSync(path.dirname(files.certFile), { recursive: true });
  writeFileSync(files.keyFile, pems.private, { mode: 0o600 });
  writeFileSync(files.certFile, pems.cert, { mode: 0o644 });
  return true;
}
