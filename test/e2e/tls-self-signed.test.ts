/**
 * TLS_SELF_SIGNED=true: the relay makes a localhost certificate under its data directory at the
 * first start and prints the NODE_EXTRA_CA_CERTS a Node client needs; the official `openai`
 * client, given only that variable, mints and talks over wss://. A second start reuses the file.
 */
import { execFile } from 'node:child_process';
import { get } from 'node:https';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';

jest.setTimeout(90_000);

const run = promisify(execFile);
const ADMIN = 'self-signed-admin-token-0123456789';

/** /readyz over https, trusting only the relay's own certificate (read once it exists). */
function readyWith(caFile: string): (baseUrl: string) => Promise<boolean> {
  return (baseUrl) =>
    new Promise((resolve) => {
      let ca: Buffer;
      try {
        ca = readFileSync(caFile);
      } catch {
        resolve(false);
        return;
      }
      get(`${baseUrl}/readyz`, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      }).on('error', () => resolve(false));
    });
}

function listening(logs: string): Record<string, unknown> {
  const line = logs.split('\n').find((l) => l.includes('"relay listening"'));
  if (!line) throw new Error(`no start summary in:\n${logs}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('TLS_SELF_SIGNED=true with the official openai client', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-selfsigned-'));
  let relay: RelayProcess | undefined;
  afterAll(async () => {
    await relay?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('makes a localhost certificate, prints NODE_EXTRA_CA_CERTS, and openai mints and talks over wss with only that', async () => {
    const env = {
      UPSTREAM_PROVIDER: 'simulator',
      TLS_SELF_SIGNED: 'true',
      TLS_SELF_SIGNED_DIR: path.join(dir, 'tls'),
      DATABASE_URL: `sqlite:${path.join(dir, 'relay.db')}`,
      SPOOL_DIR: path.join(dir, 'spool'),
      RELAY_ADMIN_TOKEN: ADMIN,
      RELAY_TOKEN_SECRET: 'self-signed-token-secret-0123456789abcdef',
    };
    const caFile = path.join(dir, 'tls', 'localhost-cert.pem');
    relay = await startRelayProcess(env, readyWith(caFile));
    const summary = listening(relay.logs());
    expect(summary).toMatchObject({ url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/), node_extra_ca_certs: caFile, realtime_url: expect.stringMatching(/^wss:\/\/localhost:\d+\/v1\/realtime$/) });
    expect(readFileSync(caFile, 'utf8')).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(statSync(path.join(dir, 'tls', 'localhost-key.pem')).mode & 0o077).toBe(0);

    // A key with the mint scope, made with the CLI on the same database.
    const cli = await run(process.execPath, ['--import', 'tsx', path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts'), 'keys', 'create', '--user', 'tls-user', '--scopes', 'mint,usage', '--json'], {
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', ...env },
    });
    const { key } = JSON.parse(cli.stdout) as { key: string };

    const client = path.resolve(__dirname, 'helpers', 'openai-trusting-client.ts');
    const base = relay.baseUrl;
    const out = await run(process.execPath, ['--import', 'tsx', client, base, key], { env: { PATH: process.env.PATH ?? '', NODE_EXTRA_CA_CERTS: String(summary.node_extra_ca_certs) } });
    const result = JSON.parse(out.stdout) as { url: string; ephemeral: string; events: string[] };
    expect(result.url).toBe(`${base.replace(/^https:/, 'wss:')}/v1/realtime?model=gpt-realtime`);
    expect(result.ephemeral).toBe('ek_');
    expect(result.events[0]).toBe('session.created');
    expect(result.events).toContain('response.done');

    // Without the variable the same client refuses the certificate: the trust came from it.
    const untrusted = await run(process.execPath, ['--import', 'tsx', client, base, key], { env: { PATH: process.env.PATH ?? '' } }).then(
      () => null,
      (err: { stderr?: string }) => err.stderr ?? 'failed',
    );
    expect(untrusted).toMatch(/certificate|self.signed|fetch failed|Connection error/i);

    // A restart reuses the certificate a client already trusts.
    const before = readFileSync(caFile, 'utf8');
    await relay.stop();
    relay = await startRelayProcess(env, readyWith(caFile));
    expect(readFileSync(caFile, 'utf8')).toBe(before);
  });
});
