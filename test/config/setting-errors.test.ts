import { ConfigError, loadConfig } from '../../src/config/config';
import { misspelledSettings } from '../../src/config/setting-errors';

const base = { NODE_ENV: 'test' };

function messageOf(env: Record<string, string>): string {
  try {
    loadConfig({ ...base, ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the configuration was accepted');
}

describe('setting errors that say what to do', () => {
  it('warns about a misspelled setting with the closest known name, and starts', () => {
    const config = loadConfig({ ...base, RELAY_ADMIN_TOKN: 'dev-admin-token-please-change' });
    expect(config.warnings).toEqual(['Unknown setting RELAY_ADMIN_TOKN is ignored: did you mean RELAY_ADMIN_TOKEN?']);
    expect(config.auth.adminToken).toBeUndefined();
  });

  it('leaves unrelated environment variables alone', () => {
    expect(misspelledSettings({ HOME: '/root', PATH: '/bin', TERM: 'xterm', TEST_DATABASE_URL: 'postgres://x', HOSTNAME: 'box', LANG: 'C' })).toEqual([]);
    expect(misspelledSettings({ DATABSE_URL: 'sqlite:x', PORTT: '1' })).toEqual([
      'Unknown setting DATABSE_URL is ignored: did you mean DATABASE_URL?',
      'Unknown setting PORTT is ignored: did you mean PORT?',
    ]);
  });

  it('lists the allowed values of an enum', () => {
    expect(messageOf({ UPSTREAM_PROVIDER: 'acme' })).toBe('Invalid setting UPSTREAM_PROVIDER: must be one of: openai, cometapi, azure, compatible, simulator (got "acme")');
    expect(messageOf({ LOG_LEVEL: 'verbose' })).toMatch(/^Invalid setting LOG_LEVEL: must be one of: fatal, error, warn, info, debug, trace, silent /);
  });

  it('says the expected form of a pattern in words, without echoing a password', () => {
    expect(messageOf({ DATABASE_URL: 'mysql://root:hunter2@db/relay' })).toBe(
      'Invalid setting DATABASE_URL: must be sqlite:<file> (e.g. sqlite:./data/relay.db) or postgres://user:password@host:5432/database (got "mysql://***@db/relay")',
    );
    expect(messageOf({ UPSTREAM_BASE_URL: 'api.example.com/v1' })).toMatch(/UPSTREAM_BASE_URL: must be an http:\/\/ or https:\/\/ URL/);
    expect(messageOf({ DEFAULT_BUDGET_DAILY_USD: '$5' })).toMatch(/DEFAULT_BUDGET_DAILY_USD: must be a USD amount with at most 6 decimals, e.g. 25 or 12.50/);
    expect(messageOf({ REDIS_URL: '127.0.0.1:6379' })).toMatch(/REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
  });

  it('never echoes a secret-looking setting, and says how long it must be', () => {
    const m = messageOf({ RELAY_TOKEN_SECRET: 'short-but-secret' });
    expect(m).toBe('Invalid setting RELAY_TOKEN_SECRET: must be at least 32 characters long (value not shown: it may be a secret)');
    expect(m).not.toContain('short-but-secret');
  });

  it('says whole numbers and booleans in words', () => {
    expect(messageOf({ PORT: 'eighty' })).toBe('Invalid setting PORT: must be a whole number (got "eighty")');
    expect(messageOf({ WS_COMPRESSION: 'maybe' })).toMatch(/WS_COMPRESSION: must be true or false/);
  });

  it('names UPSTREAM_API_KEY when production has no provider key', () => {
    const m = messageOf({ NODE_ENV: 'production' });
    expect(m).toMatch(/^Missing setting UPSTREAM_API_KEY: /);
  });

  it('refuses TLS_SELF_SIGNED in production and puts the files under TLS_SELF_SIGNED_DIR', () => {
    expect(messageOf({ NODE_ENV: 'production', OPENAI_API_KEY: 'sk-x', RELAY_TOKEN_SECRET: 'x'.repeat(32), TLS_SELF_SIGNED: 'true' })).toMatch(
      /^Invalid setting TLS_SELF_SIGNED: .*TLS_CERT_FILE and TLS_KEY_FILE/,
    );
    const c = loadConfig({ ...base, TLS_SELF_SIGNED: 'true', TLS_SELF_SIGNED_DIR: '/tmp/x' });
    expect(c.tls).toEqual({ certFile: '/tmp/x/localhost-cert.pem', keyFile: '/tmp/x/localhost-key.pem', selfSigned: true });
  });
});
