import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config';
import { envSchema } from '../../src/config/env-schema';

const base = { NODE_ENV: 'test' };

describe('loadConfig', () => {
  it('starts on embedded defaults with the simulator outside production', () => {
    const c = loadConfig(base);
    expect(c.upstream.provider).toBe('simulator');
    expect(c.storage.databaseUrl).toBe('sqlite:./data/relay.db');
    expect(c.port).toBe(8080);
    expect(c.relay.compression).toBe(false);
    expect(c.relay.upstreamMasking).toBe('auto');
  });

  it('picks per-provider defaults: openai is GA on gpt-realtime, cometapi is beta on the preview snapshot', () => {
    const openai = loadConfig({ ...base, OPENAI_API_KEY: 'sk-x' });
    expect(openai.upstream).toMatchObject({ provider: 'openai', dialect: 'ga', baseUrl: 'https://api.openai.com/v1', apiKey: 'sk-x' });
    expect(openai.models.default).toBe('gpt-realtime');
    const comet = loadConfig({ ...base, UPSTREAM_PROVIDER: 'cometapi', COMETAPI_KEY: 'sk-c' });
    expect(comet.upstream).toMatchObject({ dialect: 'beta', baseUrl: 'https://api.cometapi.com/v1', apiKey: 'sk-c' });
    expect(comet.models.default).toBe('gpt-4o-realtime-preview-2025-06-03');
    const azure = loadConfig({ ...base, UPSTREAM_PROVIDER: 'azure', AZURE_OPENAI_API_KEY: 'k', AZURE_OPENAI_RESOURCE: 'res', AZURE_OPENAI_DEPLOYMENT: 'dep' });
    expect(azure.upstream.azure).toEqual({ endpoint: 'https://res.openai.azure.com', apiVersion: '2024-10-01-preview', deployment: 'dep' });
    expect(azure.models.default).toBe('dep');
  });

  it.each([
    [{ PORT: 'eighty' }, /PORT/],
    [{ UPSTREAM_PROVIDER: 'acme' }, /UPSTREAM_PROVIDER/],
    [{ UPSTREAM_PROVIDER: 'openai' }, /UPSTREAM_API_KEY \(or OPENAI_API_KEY\)/],
    [{ UPSTREAM_PROVIDER: 'compatible', UPSTREAM_API_KEY: 'k' }, /UPSTREAM_BASE_URL/],
    [{ UPSTREAM_PROVIDER: 'azure', UPSTREAM_API_KEY: 'k' }, /AZURE_OPENAI_RESOURCE/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL/],
    [{ TLS_CERT_FILE: '/x.crt' }, /TLS_KEY_FILE/],
    [{ ALLOWED_MODELS: 'gpt-realtime-mini' }, /DEFAULT_MODEL/],
    [{ RELAY_TOKEN_SECRET: 'short' }, /RELAY_TOKEN_SECRET/],
    [{ UNPRICED_MODEL_POLICY: 'fallback' }, /FALLBACK_PRICE_MODEL/],
    [{ UPSTREAM_MASKING: 'off' }, /UPSTREAM_MASKING/],
  ])('refuses %o with one message naming the setting', (env, pattern) => {
    expect(() => loadConfig({ ...base, ...env })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, ...env })).toThrow(pattern);
  });

  it('refuses the simulator, a missing provider and a missing token secret in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/UPSTREAM_PROVIDER/);
    expect(() => loadConfig({ NODE_ENV: 'production', UPSTREAM_PROVIDER: 'simulator' })).toThrow(/simulator/);
    expect(() => loadConfig({ NODE_ENV: 'production', OPENAI_API_KEY: 'sk' })).toThrow(/RELAY_TOKEN_SECRET/);
  });

  it('documents every setting in .env.example', () => {
    const example = readFileSync(path.resolve(__dirname, '..', '..', '.env.example'), 'utf8');
    const missing = Object.keys(envSchema.properties).filter((k) => !new RegExp(`^#? ?${k}=`, 'm').test(example));
    expect(missing).toEqual([]);
  });
});
