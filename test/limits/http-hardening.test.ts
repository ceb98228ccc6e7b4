import Fastify from 'fastify';
import { installErrorHandler } from '../../src/http/errors';
import { installHttpHardening } from '../../src/limits/http-hardening';
import { startRelay, type RelayInstance } from '../support/relay-instance';

describe('HTTP hardening', () => {
  const relays: RelayInstance[] = [];
  afterEach(async () => {
    for (const r of relays.splice(0)) await r.close();
  });
  async function relay(env: Record<string, string> = {}): Promise<RelayInstance> {
    const r = await startRelay(env);
    relays.push(r);
    return r;
  }

  it('sends security headers with a locked-down CSP on API answers, errors included', async () => {
    const r = await relay();
    for (const url of ['/healthz', '/v1/usage', '/no-such-route']) {
      const res = await fetch(`${r.baseUrl}${url}`);
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('strict-transport-security')).toMatch(/max-age=/);
      expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
      expect(res.headers.get('x-powered-by')).toBeNull();
    }
  });

  it('leaves CORS off unless CORS_ORIGINS is set', async () => {
    const r = await relay();
    const res = await fetch(`${r.baseUrl}/healthz`, { headers: { origin: 'https://app.example' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${r.baseUrl}/v1/realtime/client_secrets`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('allows exactly the configured origins when CORS_ORIGINS is set', async () => {
    const r = await relay({ CORS_ORIGINS: 'https://app.example, https://other.example' });
    const ok = await fetch(`${r.baseUrl}/healthz`, { headers: { origin: 'https://app.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const stranger = await fetch(`${r.baseUrl}/healthz`, { headers: { origin: 'https://evil.example' } });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${r.baseUrl}/v1/realtime/client_secrets`, {
      method: 'OPTIONS',
      headers: { origin: 'https://other.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://other.example');
    expect(preflight.headers.get('access-control-allow-methods')).toContain('POST');
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('answers a body over HTTP_BODY_LIMIT_BYTES with 413 in the OpenAI error shape', async () => {
    const r = await relay({ HTTP_BODY_LIMIT_BYTES: '2048' });
    const res = await fetch(`${r.baseUrl}/admin/keys`, {
      method: 'POST',
      headers: { authorization: `Bearer ${r.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'x'.repeat(4096), scopes: ['realtime'] }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    const body = (await res.json()) as { error: Record<string, unknown> };
    expect(body.error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large', param: null });
    expect(typeof body.error.message).toBe('string');
  });

  it('gives /demo pages a CSP that lets them load their own files and reach the relay', async () => {
    const app = Fastify();
    installErrorHandler(app);
    await installHttpHardening(app, { corsOrigins: [] });
    app.get('/demo', async () => 'page');
    app.get('/demo/:file', async () => 'file');
    app.get('/api', async () => ({ ok: true }));
    try {
      for (const url of ['/demo', '/demo/demo.js']) {
        const res = await app.inject({ url, headers: { host: 'relay.example:8443' } });
        const csp = String(res.headers['content-security-policy']);
        expect(csp).toContain("script-src 'self'");
        expect(csp).toContain("style-src 'self'");
        expect(csp).toContain("connect-src 'self' ws://relay.example:8443 wss://relay.example:8443");
        expect(csp).not.toContain("default-src 'none'");
      }
      // A Host header cannot smuggle directives into the policy.
      const evil = await app.inject({ url: '/demo', headers: { host: "x; script-src 'unsafe-inline'" } });
      expect(String(evil.headers['content-security-policy'])).not.toContain('unsafe-inline');
      const api = await app.inject({ url: '/api' });
      expect(String(api.headers['content-security-policy'])).toContain("default-src 'none'");
    } finally {
      await app.close();
    }
  });
});
