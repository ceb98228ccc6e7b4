import { ApiKeyStore } from '../../src/auth/api-keys';
import { AUTH_MIGRATIONS } from '../../src/auth/authenticator';
import { DEV_ADMIN_USER, ensureDevAdminKey } from '../../src/auth/dev-admin-key';
import { loadConfig } from '../../src/config/config';
import { migrate, openDatabase, type SqlDatabase } from '../../src/storage/database';

describe('development admin key', () => {
  let db: SqlDatabase;
  let store: ApiKeyStore;
  beforeEach(async () => {
    db = await openDatabase('sqlite::memory:');
    await migrate(db, AUTH_MIGRATIONS);
    store = new ApiKeyStore(db);
  });
  afterEach(() => db.close());

  it('is made once, on the first development start without an admin token, with the admin scope', async () => {
    const config = loadConfig({ NODE_ENV: 'development' });
    const first = await ensureDevAdminKey(config, store);
    expect(first.state).toBe('created');
    if (first.state !== 'created') return;
    expect(first.key).toMatch(/^rk_[0-9a-f]{16}_/);
    const verified = await store.verify(first.key);
    expect(verified).toMatchObject({ user: DEV_ADMIN_USER, scopes: ['admin'] });

    // Later starts find it (secret not shown again), even once revoked; no second key appears.
    expect(await ensureDevAdminKey(config, store)).toEqual({ state: 'exists', record: expect.objectContaining({ id: first.record.id }) });
    await store.revoke(first.record.id);
    expect((await ensureDevAdminKey(config, store)).state).toBe('exists');
    expect(await store.list({ user: DEV_ADMIN_USER })).toHaveLength(1);
  });

  it('is never made in production, in tests, or when RELAY_ADMIN_TOKEN is set', async () => {
    const production = loadConfig({ NODE_ENV: 'production', OPENAI_API_KEY: 'sk-x', RELAY_TOKEN_SECRET: 'x'.repeat(32) });
    expect((await ensureDevAdminKey(production, store)).state).toBe('not_applicable');
    expect((await ensureDevAdminKey(loadConfig({ NODE_ENV: 'test' }), store)).state).toBe('not_applicable');
    expect((await ensureDevAdminKey(loadConfig({ NODE_ENV: 'development', RELAY_ADMIN_TOKEN: 'a-token-of-16-chars+' }), store)).state).toBe('not_applicable');
    expect(await store.list({})).toEqual([]);
  });
});
