import Fastify, { type FastifyInstance } from 'fastify';
import { hashSecret, parseApiKey } from '../../src/auth/api-keys';
import { Authenticator } from '../../src/auth/authenticator';
import { installErrorHandler } from '../../src/http/errors';
import { adminKeyRoutes } from '../../src/routes/admin-keys';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { ADMIN_TOKEN, bearer, captureLogs, listen, testConfig, type HttpResult } from '../auth/support';

describe.each(BACKENDS)('admin key routes on %s', (backend) => {
  let t: TestDatabase;
  let app: FastifyInstance;
  let auth: Authenticator;
  let http: Awaited<ReturnType<typeof listen>>;
  const logs = captureLogs();
  const responses: HttpResult[] = [];
  const admin = bearer(ADMIN_TOKEN);

  const call = async (method: string, path: string, headers: Record<string, string> = admin, payload?: object): Promise<HttpResult> => {
    const r = await http(method, path, headers, payload);
    responses.push(r);
    return r;
  };

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    auth = new Authenticator({ config: testConfig(), db: t.db, logger: logs.logger });
    await auth.init();
    app = Fastify({ loggerInstance: logs.logger });
    installErrorHandler(app);
    await app.register(adminKeyRoutes, { authenticator: auth, keyStore: auth.keyStore, ephemeralKeys: auth.ephemeralKeys });
    http = await listen(app);
  });
  afterAll(async () => {
    await app.close();
    await t.cleanup();
  });

  let created: HttpResult;

  it('creates a key and shows its secret once', async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    created = await call('POST', '/admin/keys', admin, { user: 'ann', tenant: 'acme', scopes: ['realtime', 'mint'], name: 'web', expires_at: expiresAt });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{16}$/),
      object: 'relay.api_key',
      key: expect.stringMatching(/^rk_[0-9a-f]{16}_/),
      user: 'ann',
      tenant: 'acme',
      scopes: ['realtime', 'mint'],
      name: 'web',
      created_at: expect.any(Number),
      expires_at: expiresAt,
      revoked_at: null,
    });
    expect(await auth.authenticate(bearer(created.body.key))).toMatchObject({ user: 'ann', tenant: 'acme', keyId: created.body.id });
  });

  it('lists, filters and gets keys without secrets or hashes', async () => {
    await call('POST', '/admin/keys', admin, { user: 'ann', tenant: 'other', scopes: ['usage'] });
    await call('POST', '/admin/keys', admin, { user: 'bob', scopes: ['realtime'] });
    const all = await call('GET', '/admin/keys?user=ann');
    expect(all.status).toBe(200);
    expect(all.body.object).toBe('list');
    expect(all.body.data).toHaveLength(2);
    const filtered = await call('GET', '/admin/keys?user=ann&tenant=acme');
    expect(filtered.body.data.map((k) => k.id)).toEqual([created.body.id]);
    const one = await call('GET', `/admin/keys/${created.body.id}`);
    const { key: _key, ...withoutSecret } = created.body;
    expect(one.body).toEqual(withoutSecret);
    expect((await call('GET', '/admin/keys/0000000000000000')).body.error.code).toBe('key_not_found');
    expect((await call('GET', '/admin/keys/not-an-id')).status).toBe(400);
  });

  it('shows a principal with its keys and tenant', async () => {
    const bob = await call('GET', '/admin/principals/bob');
    expect(bob.body).toMatchObject({ object: 'relay.principal', user: 'bob', tenant: null, tenants: [] });
    expect(bob.body.keys).toHaveLength(1);
    const ann = await call('GET', '/admin/principals/ann');
    expect(ann.body).toMatchObject({ tenant: null, tenants: ['acme', 'other'] });
    await call('POST', '/admin/keys', admin, { user: 'cy', tenant: 'acme', scopes: ['realtime'] });
    expect((await call('GET', '/admin/principals/cy')).body.tenant).toBe('acme');
    expect((await call('GET', '/admin/principals/nobody')).body.keys).toEqual([]);
  });

  it('revokes a key at once', async () => {
    const del = await call('DELETE', `/admin/keys/${created.body.id}`);
    expect(del.status).toBe(200);
    expect(del.body.revoked_at).toEqual(expect.any(Number));
    await expect(auth.authenticate(bearer(created.body.key))).rejects.toMatchObject({ statusCode: 401, code: 'credential_revoked' });
    expect((await call('DELETE', '/admin/keys/0000000000000000')).status).toBe(404);
  });

  it('validates creation with stable codes', async () => {
    expect((await call('POST', '/admin/keys', admin, { scopes: [] })).body.error.code).toBe('invalid_request');
    expect((await call('POST', '/admin/keys', admin, { scopes: ['root'] })).body.error.code).toBe('invalid_request');
    const typo = await call('POST', '/admin/keys', admin, { scopes: ['realtime'], expire_at: 1 });
    expect([typo.status, typo.body.error.code, typo.body.error.param]).toEqual([400, 'unknown_parameter', 'expire_at']);
    const past = await call('POST', '/admin/keys', admin, { scopes: ['realtime'], expires_at: 1000 });
    expect([past.status, past.body.error.code]).toEqual([400, 'invalid_expires_at']);
  });

  it('admits the admin token and admin-scoped keys only', async () => {
    expect((await call('GET', '/admin/keys', {})).body.error.code).toBe('missing_credential');
    const plain = await call('POST', '/admin/keys', admin, { user: 'dee', scopes: ['realtime', 'mint', 'usage', 'provider_mint'] });
    const refused = await call('GET', '/admin/keys', bearer(plain.body.key));
    expect([refused.status, refused.body.error.code]).toEqual([403, 'insufficient_scope']);
    const adminKey = await call('POST', '/admin/keys', admin, { name: 'ops', scopes: ['admin'] });
    const ok = await call('GET', '/admin/keys', bearer(adminKey.body.key));
    expect(ok.status).toBe(200);
    await call('DELETE', `/admin/keys/${adminKey.body.id}`);
    expect((await call('GET', '/admin/keys', bearer(adminKey.body.key))).body.error.code).toBe('credential_revoked');
  });

  it('revokes an ephemeral key by id', async () => {
    const ek = await auth.ephemeralKeys.mint({ user: 'ann', model: 'gpt-realtime', session: {}, ttlS: 600 });
    await auth.authenticate(bearer(ek.value));
    const r = await call('POST', `/admin/ephemeral-keys/${ek.id}/revoke`);
    expect(r.body).toEqual({ id: ek.id, object: 'relay.ephemeral_key', revoked: true, revoked_at: expect.any(Number) });
    await expect(auth.authenticate(bearer(ek.value))).rejects.toMatchObject({ statusCode: 401, code: 'credential_revoked' });
    expect((await call('POST', '/admin/ephemeral-keys/bogus/revoke')).status).toBe(400);
  });

  it('never shows a secret or its hash except in the creation response, and never logs one', async () => {
    const creations = responses.filter((r) => r.status === 201);
    const keys = creations.map((r) => r.body.key);
    expect(keys.length).toBeGreaterThanOrEqual(5);
    const secrets = keys.map((k) => parseApiKey(k)!.secret);
    const hashes = secrets.map((s) => hashSecret(s).toString('hex'));
    for (const r of responses) {
      const own = r.status === 201 ? r.body.key : undefined;
      for (const [i, s] of secrets.entries()) {
        if (own && own.endsWith(s)) continue;
        expect(r.text).not.toContain(s);
        expect(r.text).not.toContain(hashes[i]);
      }
    }
    const logText = logs.lines.join('\n');
    expect(logText).toContain('admin action');
    for (const s of [...secrets, ...hashes, ADMIN_TOKEN]) expect(logText).not.toContain(s);
  });
});
