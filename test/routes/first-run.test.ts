import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRelay } from '../../src/app';
import { NO_ADMIN_TOKEN_HINT } from '../../src/auth/admin-token-hint';
import { loadConfig } from '../../src/config/config';
import { captureLogs } from '../auth/support';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { TestClient } from '../support/ws-client';

describe('what a first run sees', () => {
  const relays: RelayInstance[] = [];
  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.close()));
  });

  it('GET / points to the docs, the demo and the health checks', async () => {
    const r = await startRelay();
    relays.push(r);
    const res = await fetch(`${r.baseUrl}/`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ name: 'realtime-relay', docs: '/docs/json', demo: '/demo', healthz: '/healthz', readyz: '/readyz', realtime: '/v1/realtime' });
    const off = await startRelay({ DEMO_ENABLED: 'false' });
    relays.push(off);
    expect(((await (await fetch(`${off.baseUrl}/`)).json()) as { demo: unknown }).demo).toBeNull();
  });

  it('a 401 on /admin says when the relay has no admin token configured', async () => {
    const r = await startRelay({ RELAY_ADMIN_TOKEN: '' });
    relays.push(r);
    const res = await r.request<{ error: { message: string; code: string } }>('POST', '/admin/keys', {
      headers: { authorization: 'Bearer dev-admin-token-please-change' },
      body: { user: 'alice', scopes: ['realtime'] },
    });
    expect(res.status).toBe(401);
    expect(res.body.error.code).toBe('invalid_api_key');
    expect(res.body.error.message).toBe(`Unrecognised credential.${NO_ADMIN_TOKEN_HINT}`);
    expect(res.body.error.message).toContain('RELAY_ADMIN_TOKEN was not set');
    // Content-Length follows the longer body (a truncated JSON would not parse above).
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(JSON.stringify(res.body)));
    // Only on /admin, and only when no token is configured.
    const usage = await r.request<{ error: { message: string } }>('GET', '/v1/usage', { headers: { authorization: 'Bearer nope' } });
    expect(usage.body.error.message).not.toContain('RELAY_ADMIN_TOKEN');
    const withToken = await startRelay();
    relays.push(withToken);
    const wrong = await withToken.request<{ error: { message: string } }>('GET', '/admin/keys', { headers: { authorization: 'Bearer wrong-token' } });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.message).not.toContain('RELAY_ADMIN_TOKEN');
  });

  it('logs an upstream handshake failure with its host and cause, never the key', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));

    const dir = mkdtempSync(path.join(tmpdir(), 'relay-hs-'));
    const logs = captureLogs();
    const config = loadConfig({
      NODE_ENV: 'test',
      UPSTREAM_PROVIDER: 'compatible',
      UPSTREAM_BASE_URL: `http://127.0.0.1:${port}/v1`,
      UPSTREAM_API_KEY: 'sk-handshake-test-secret-123456',
      DEFAULT_MODEL: 'gpt-realtime',
      DATABASE_URL: `sqlite:${path.join(dir, 'relay.db')}`,
      SPOOL_DIR: path.join(dir, 'spool'),
      PRICES_FILE: path.resolve(__dirname, '..', '..', 'config', 'prices.json'),
      RELAY_ADMIN_TOKEN: 'hs-admin-token-0123456789',
      PORT: '0',
      HOST: '127.0.0.1',
    });
    const relay = await createRelay(config, { logger: logs.logger as never });
    try {
      const base = await relay.listen();
      const created = await relay.app.inject({ method: 'POST', url: '/admin/keys', headers: { authorization: 'Bearer hs-admin-token-0123456789' }, payload: { user: 'hs', scopes: ['realtime'] } });
      const { key } = created.json<{ key: string }>();
      const c = await TestClient.connect(`${base.replace(/^http/, 'ws')}/v1/realtime`, { headers: { authorization: `Bearer ${key}` } });
      expect((await c.closed).code).toBe(4503);
      const line = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'upstream handshake failed');
      expect(line).toMatchObject({ upstream_host: `127.0.0.1:${port}`, status: 'network', cause: expect.stringContaining('ECONNREFUSED') });
      expect(logs.lines.join('\n')).not.toContain('sk-handshake-test-secret-123456');
    } finally {
      await relay.shutdown();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
