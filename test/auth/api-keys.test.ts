import { hashSecret, parseApiKey } from '../../src/auth/api-keys';
import { Authenticator, requireScope } from '../../src/auth/authenticator';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { bearer, captureLogs, testConfig, refusal } from './support';

describe.each(BACKENDS)('relay API keys on %s', (backend) => {
  let t: TestDatabase;
  let now = Date.parse('2030-01-01T00:00:00Z');
  const logs = captureLogs();
  let auth: Authenticator;
  /** A second relay instance on the same database. */
  let other: Authenticator;

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    auth = new Authenticator({ config: testConfig(), db: t.db, logger: logs.logger, now: () => now });
    other = new Authenticator({ config: testConfig(), db: t.db, now: () => now });
    await auth.init();
    await other.init();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('creates a key that authenticates as its user, tenant and scopes; stores only a hash', async () => {
    const { key, record } = await auth.keyStore.create({ user: 'u1', tenant: 't1', scopes: ['realtime', 'usage'], name: 'laptop' });
    expect(key).toMatch(/^rk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const p = await other.authenticate(bearer(key));
    expect(p).toEqual({ user: 'u1', tenant: 't1', keyId: record.id, scopes: ['realtime', 'usage'], kind: 'api_key', expiresAt: undefined });
    const rows = await t.db.query<{ secret_hash: string }>('SELECT secret_hash FROM relay_api_keys WHERE id = $1', [record.id]);
    const secret = parseApiKey(key)!.secret;
    expect(rows[0].secret_hash).toBe(hashSecret(secret).toString('hex'));
    expect(JSON.stringify(rows)).not.toContain(secret);
    expect(() => requireScope(p, 'mint')).toThrow(expect.objectContaining({ statusCode: 403, code: 'insufficient_scope' }));
    expect(() => requireScope(p, 'usage')).not.toThrow();
  });

  it('refuses a wrong secret, an unknown id and a malformed key with 401 invalid_api_key', async () => {
    const { key } = await auth.keyStore.create({ user: 'u2', scopes: ['realtime'] });
    const tampered = key.slice(0, -2) + (key.endsWith('AA') ? 'BB' : 'AA');
    expect(await refusal(auth.authenticate(bearer(tampered)))).toEqual({ status: 401, code: 'invalid_api_key' });
    expect(await refusal(auth.authenticate(bearer(`rk_0123456789abcdef_${'x'.repeat(43)}`)))).toEqual({ status: 401, code: 'invalid_api_key' });
    expect(await refusal(auth.authenticate(bearer('rk_nope')))).toEqual({ status: 401, code: 'invalid_api_key' });
  });

  it('revocation takes effect at once on every instance', async () => {
    const { key, record } = await auth.keyStore.create({ user: 'u3', scopes: ['realtime'] });
    await other.authenticate(bearer(key));
    const revoked = await auth.keyStore.revoke(record.id);
    expect(revoked?.revokedAt).toBe(now);
    expect(await refusal(other.authenticate(bearer(key)))).toEqual({ status: 401, code: 'credential_revoked' });
    now += 1000;
    expect((await auth.keyStore.revoke(record.id))?.revokedAt).toBe(now - 1000);
    expect(await auth.keyStore.revoke('0123456789abcdef')).toBeNull();
  });

  it('refuses an expired key', async () => {
    const { key } = await auth.keyStore.create({ tenant: 't9', scopes: ['mint'], expiresAt: now + 60_000 });
    const p = await auth.authenticate(bearer(key));
    expect(p.user).toBe(`key:${p.keyId}`);
    expect(p.expiresAt).toBe(now + 60_000);
    now += 60_000;
    expect(await refusal(auth.authenticate(bearer(key)))).toEqual({ status: 401, code: 'credential_expired' });
  });

  it('lists by user and tenant, and gets by id', async () => {
    const a = await auth.keyStore.create({ user: 'lister', tenant: 'ta', scopes: ['realtime'] });
    await auth.keyStore.create({ user: 'lister', tenant: 'tb', scopes: ['usage'] });
    expect((await auth.keyStore.list({ user: 'lister' })).length).toBe(2);
    expect((await auth.keyStore.list({ user: 'lister', tenant: 'ta' })).map((k) => k.id)).toEqual([a.record.id]);
    expect(await auth.keyStore.get(a.record.id)).toEqual(a.record);
    expect(await auth.keyStore.get('ffffffffffffffff')).toBeNull();
    expect(await auth.keyStore.get("' OR 1=1 --")).toBeNull();
  });

  it('never logs a key secret', () => {
    expect(logs.lines.length).toBeGreaterThan(0);
    for (const line of logs.lines) expect(line).not.toMatch(/rk_[0-9a-f]{16}_/);
  });
});
