import { loadConfig } from '../../src/config/config';
import { prettySummary, startSummary } from '../../src/cli/start-summary';
import type { ApiKeyRecord } from '../../src/auth/api-keys';

const record = { id: '0123456789abcdef' } as ApiKeyRecord;

describe('start summary', () => {
  it('names what is running, with URLs a client on this machine can dial', () => {
    const config = loadConfig({ NODE_ENV: 'development', DATABASE_URL: 'sqlite:/var/relay/relay.db', REDIS_URL: 'redis://cache:6380' });
    const s = startSummary(config, { url: 'http://0.0.0.0:8080', nativeMasking: true, devKey: { state: 'not_applicable' } });
    expect(s).toEqual({
      url: 'http://0.0.0.0:8080',
      provider: 'simulator (built in, no provider key set)',
      dialect: 'ga',
      default_model: 'gpt-realtime',
      database: 'SQLite file /var/relay/relay.db',
      redis: 'cache:6380',
      admin_token: 'not set',
      demo_url: 'http://localhost:8080/demo',
      docs_url: 'http://localhost:8080/docs/json',
      realtime_url: 'ws://localhost:8080/v1/realtime',
      native_masking: true,
      tls: 'off',
    });
  });

  it('prints the development key once with a ready curl, and NODE_EXTRA_CA_CERTS for self-signed TLS', () => {
    const config = loadConfig({ NODE_ENV: 'development', TLS_SELF_SIGNED: 'true', TLS_SELF_SIGNED_DIR: '/tmp/relay-tls' });
    const key = 'rk_0123456789abcdef_secretsecretsecret';
    const devKey = { state: 'created' as const, record, key };
    const s = startSummary(config, { url: 'https://127.0.0.1:8443', nativeMasking: false, devKey });
    expect(s).toMatchObject({ node_extra_ca_certs: '/tmp/relay-tls/localhost-cert.pem', dev_admin_key_id: record.id, realtime_url: 'wss://localhost:8443/v1/realtime' });
    // The JSON line never carries the secret.
    expect(JSON.stringify(s)).not.toContain(key);
    const text = prettySummary(s, devKey);
    expect(text).toContain('export NODE_EXTRA_CA_CERTS=/tmp/relay-tls/localhost-cert.pem');
    expect(text).toContain(`curl -s --cacert /tmp/relay-tls/localhost-cert.pem -X POST https://localhost:8443/admin/keys -H 'authorization: Bearer ${key}'`);
    expect(text).toContain('open https://localhost:8443/demo');
    expect(text).toMatch(/native masking\s+no \(bufferutil did not load\)/);
    const later = prettySummary(s, { state: 'exists', record });
    expect(later).not.toContain(key);
    expect(later).toContain(`Development admin key ${record.id}: made at the first start`);
  });
});
