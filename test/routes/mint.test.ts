import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT } from 'jose';
import { Authenticator } from '../../src/auth/authenticator';
import { FixedWindowRateLimiter } from '../../src/auth/rate-limit';
import type { RelayConfig } from '../../src/config/config';
import { installErrorHandler } from '../../src/http/errors';
import { mintRoutes, type ProviderMint } from '../../src/routes/mint';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { ADMIN_TOKEN, bearer, captureLogs, JWT_SECRET, listen, testConfig, type HttpResult } from '../auth/support';

describe('mint routes', () => {
  let db: SqlDatabase;
  let otherDb: SqlDatabase;
  let app: FastifyInstance;
  let auth: Authenticator;
  let other: Authenticator;
  let config: RelayConfig;
  const logs = captureLogs();
  const providerCalls: { path: string; body: unknown }[] = [];
  let providerAnswer: { status: number; body: unknown } = { status: 200, body: {} };
  const providerMint: ProviderMint = {
    fetch: async (path, body) => {
      providerCalls.push({ path, body });
      return providerAnswer;
    },
  };
  /** Secrets the relay handed out; only their own mint responses may contain them. */
  const secrets: string[] = [];

  let http: Awaited<ReturnType<typeof listen>>;
  const post = (url: string, headers: Record<string, string>, payload: object): Promise<HttpResult> => http('POST', url, headers, payload);
  const keyWith = async (scopes: ('realtime' | 'mint' | 'usage' | 'admin' | 'provider_mint')[], user = 'u-key', tenant?: string) => {
    const { key } = await auth.keyStore.create({ user, tenant, scopes });
    secrets.push(key);
    return bearer(key);
  };

  beforeAll(async () => {
    db = await openDatabase('sqlite::memory:');
    otherDb = await openDatabase('sqlite::memory:');
    config = testConfig({ ALLOWED_MODELS: 'gpt-realtime,gpt-realtime-mini', DEFAULT_MODEL: 'gpt-realtime', EPHEMERAL_KEY_MAX_TTL_S: '3600' });
    auth = new Authenticator({ config, db });
    other = new Authenticator({ config: testConfig({ RELAY_ADMIN_TOKEN: 'unrelated-admin-token-0000000' }), db: otherDb });
    await auth.init();
    await other.init();
    app = Fastify({ loggerInstance: logs.logger });
    installErrorHandler(app);
    await app.register(mintRoutes, {
      authenticator: auth,
      config,
      ephemeralKeys: auth.ephemeralKeys,
      providerMint,
      rateLimiter: new FixedWindowRateLimiter({ limit: 5, now: () => 0 }),
    });
    http = await listen(app);
  });
  afterAll(async () => {
    await app.close();
    await db.close();
    await otherDb.close();
  });

  it('beta /v1/realtime/sessions returns the session object with client_secret', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { status, body } = await post('/v1/realtime/sessions', await keyWith(['mint'], 'u1', 't1'), {
      model: 'gpt-realtime-mini',
      voice: 'verse',
      instructions: 'Be brief.',
      modalities: ['text', 'audio'],
      turn_detection: null,
    });
    expect(status).toBe(200);
    expect(body).toEqual({
      id: expect.stringMatching(/^eph_/),
      object: 'realtime.session',
      model: 'gpt-realtime-mini',
      voice: 'verse',
      instructions: 'Be brief.',
      modalities: ['text', 'audio'],
      turn_detection: null,
      client_secret: { value: expect.stringMatching(/^ek_/), expires_at: expect.any(Number) },
    });
    secrets.push(body.client_secret.value);
    expect(body.client_secret.expires_at - before).toBeGreaterThanOrEqual(config.auth.ephemeralTtlS);
    expect(body.client_secret.expires_at - before).toBeLessThanOrEqual(config.auth.ephemeralTtlS + 1);
    const p = await other.authenticate(bearer(body.client_secret.value));
    expect(p).toMatchObject({ user: 'u1', tenant: 't1', kind: 'ephemeral', keyId: body.id, model: 'gpt-realtime-mini', scopes: ['realtime'] });
    expect(p.lockedSession).toEqual({ model: 'gpt-realtime-mini', voice: 'verse', instructions: 'Be brief.', output_modalities: ['audio'], turn_detection: null });
  });

  it('GA /v1/realtime/client_secrets honours expires_after and returns {value, expires_at, session}', async () => {
    const jwt = await new SignJWT({ sub: 'alice', tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
    const before = Math.floor(Date.now() / 1000);
    const { status, body } = await post('/v1/realtime/client_secrets', bearer(jwt), {
      expires_after: { anchor: 'created_at', seconds: 600 },
      session: { type: 'realtime', instructions: 'Hi', audio: { output: { voice: 'marin' } } },
    });
    expect(status).toBe(200);
    secrets.push(body.value);
    expect(body.value).toMatch(/^ek_/);
    expect(body.expires_at - before).toBeGreaterThanOrEqual(600);
    expect(body.expires_at - before).toBeLessThanOrEqual(601);
    expect(body.session).toEqual({
      type: 'realtime',
      object: 'realtime.session',
      id: expect.stringMatching(/^eph_/),
      model: 'gpt-realtime',
      instructions: 'Hi',
      audio: { output: { voice: 'marin' } },
    });
    expect(await other.authenticate(bearer(body.value))).toMatchObject({ user: 'alice', tenant: 'acme', model: 'gpt-realtime' });
  });

  it('bounds expires_after to 10..7200 and clamps to EPHEMERAL_KEY_MAX_TTL_S', async () => {
    const h = await keyWith(['mint'], 'u-ttl');
    for (const seconds of [9, 7201]) {
      const r = await post('/v1/realtime/client_secrets', h, { expires_after: { anchor: 'created_at', seconds } });
      expect(r.status).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_expires_after', param: 'expires_after.seconds' });
    }
    const before = Math.floor(Date.now() / 1000);
    const r = await post('/v1/realtime/client_secrets', h, { expires_after: { anchor: 'created_at', seconds: 7200 } });
    secrets.push(r.body.value);
    expect(r.body.expires_at - before).toBeLessThanOrEqual(3601);
    expect(r.body.expires_at - before).toBeGreaterThanOrEqual(3600);
    const beta = await post('/v1/realtime/sessions', h, { client_secret: { expires_after: { anchor: 'created_at', seconds: 5 } } });
    expect(beta.body.error.code).toBe('invalid_expires_after');
  });

  it('refuses models not allowed, unknown parameters and non-realtime sessions with 400', async () => {
    const h = await keyWith(['mint'], 'u-bad');
    const m = await post('/v1/realtime/client_secrets', h, { session: { model: 'gpt-4o-realtime-preview' } });
    expect([m.status, m.body.error.code, m.body.error.param]).toEqual([400, 'model_not_allowed', 'session.model']);
    const u = await post('/v1/realtime/sessions', h, { voice: 'x', pitch: 3 });
    expect([u.status, u.body.error.code, u.body.error.param]).toEqual([400, 'unknown_parameter', 'pitch']);
    const g = await post('/v1/realtime/client_secrets', h, { session: { audio: { output: { pitch: 3 } } } });
    expect(g.body.error).toMatchObject({ code: 'unknown_parameter', param: 'session.audio.output.pitch' });
    const t = await post('/v1/realtime/client_secrets', h, { session: { type: 'transcription' } });
    expect(t.body.error.code).toBe('unsupported_session_type');
  });

  it('refuses callers without a credential or the mint scope', async () => {
    expect((await post('/v1/realtime/sessions', {}, {})).body.error.code).toBe('missing_credential');
    const noMint = await post('/v1/realtime/sessions', await keyWith(['realtime', 'usage']), {});
    expect([noMint.status, noMint.body.error.code]).toEqual([403, 'insufficient_scope']);
    const ek = await auth.ephemeralKeys.mint({ user: 'u', model: 'gpt-realtime', session: {}, ttlS: 60 });
    secrets.push(ek.value);
    expect((await post('/v1/realtime/sessions', bearer(ek.value), {})).status).toBe(403);
    const bad = await post('/v1/realtime/sessions', bearer('rk_0123456789abcdef_' + 'x'.repeat(43)), {});
    expect([bad.status, bad.body.error.code, bad.body.error.type]).toEqual([401, 'invalid_api_key', 'authentication_error']);
  });

  it('only admins mint for another user', async () => {
    const r = await post('/v1/realtime/sessions', await keyWith(['mint'], 'mallory'), { user: 'victim' });
    expect([r.status, r.body.error.code]).toEqual([403, 'cannot_mint_for_other_user']);
    const self = await post('/v1/realtime/sessions', await keyWith(['mint'], 'self'), { user: 'self' });
    expect(self.status).toBe(200);
    secrets.push(self.body.client_secret.value);
    const a = await post('/v1/realtime/client_secrets', bearer(ADMIN_TOKEN), { user: 'zed', tenant: 'tz' });
    expect(a.status).toBe(200);
    secrets.push(a.body.value);
    expect(await auth.authenticate(bearer(a.body.value))).toMatchObject({ user: 'zed', tenant: 'tz' });
    const k = await post('/v1/realtime/client_secrets', await keyWith(['admin']), { user: 'yan' });
    secrets.push(k.body.value);
    expect(await auth.authenticate(bearer(k.body.value))).toMatchObject({ user: 'yan', tenant: undefined });
  });

  it('rate-limits minting per principal with 429 and retry-after', async () => {
    const h = await keyWith(['mint'], 'busy');
    for (let i = 0; i < 5; i++) {
      const r = await post('/v1/realtime/client_secrets', h, {});
      expect(r.status).toBe(200);
      secrets.push(r.body.value);
    }
    const r = await post('/v1/realtime/client_secrets', h, {});
    expect(r.status).toBe(429);
    expect(r.body.error).toMatchObject({ code: 'rate_limit_exceeded', type: 'rate_limit_error' });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await post('/v1/realtime/client_secrets', await keyWith(['mint'], 'calm'), {})).status).toBe(200);
  });

  describe('provider mode', () => {
    afterEach(() => {
      config.auth.providerMintEnabled = false;
      providerCalls.length = 0;
    });

    it('is refused with 400 provider_mint_disabled when disabled', async () => {
      const r = await post('/v1/realtime/client_secrets', await keyWith(['mint', 'provider_mint']), { mode: 'provider' });
      expect([r.status, r.body.error.code]).toEqual([400, 'provider_mint_disabled']);
      expect(providerCalls).toHaveLength(0);
    });

    it('needs the provider_mint scope', async () => {
      config.auth.providerMintEnabled = true;
      const r = await post('/v1/realtime/client_secrets', await keyWith(['mint']), { mode: 'provider' });
      expect([r.status, r.body.error.code]).toEqual([403, 'insufficient_scope']);
      expect(providerCalls).toHaveLength(0);
    });

    it("calls the upstream's GA endpoint and returns its answer, logging the session id but not the secret", async () => {
      config.auth.providerMintEnabled = true;
      const upstream = { value: 'ek_PROVIDER_SECRET_1', expires_at: 1900000000, session: { type: 'realtime', id: 'sess_upstream_1', model: 'gpt-realtime' } };
      providerAnswer = { status: 200, body: upstream };
      const r = await post('/v1/realtime/client_secrets', await keyWith(['mint', 'provider_mint'], 'pm'), {
        mode: 'provider',
        expires_after: { anchor: 'created_at', seconds: 120 },
        session: { voice: 'x' },
      });
      expect(r.status).toBe(200);
      expect(r.body).toEqual(upstream);
      expect(providerCalls).toEqual([
        { path: '/realtime/client_secrets', body: { expires_after: { anchor: 'created_at', seconds: 120 }, session: { voice: 'x', type: 'realtime', model: 'gpt-realtime' } } },
      ]);
      const line = logs.lines.find((l) => l.includes('sess_upstream_1'));
      expect(line).toBeDefined();
      expect(line).toContain('"user":"pm"');
    });

    it("calls the beta endpoint for /v1/realtime/sessions and maps provider errors", async () => {
      config.auth.providerMintEnabled = true;
      const h = await keyWith(['mint', 'provider_mint'], 'pm2');
      providerAnswer = { status: 200, body: { id: 'sess_b', object: 'realtime.session', model: 'gpt-realtime', client_secret: { value: 'ek_PROVIDER_SECRET_2', expires_at: 1 } } };
      const ok = await post('/v1/realtime/sessions', h, { mode: 'provider', voice: 'ash' });
      expect(ok.body.client_secret.value).toBe('ek_PROVIDER_SECRET_2');
      expect(providerCalls[0]).toEqual({ path: '/realtime/sessions', body: { voice: 'ash', model: 'gpt-realtime' } });
      providerAnswer = { status: 400, body: { error: { code: 'invalid_value', message: 'bad voice', type: 'invalid_request_error' } } };
      const bad = await post('/v1/realtime/sessions', h, { mode: 'provider' });
      expect([bad.status, bad.body.error.code]).toEqual([400, 'invalid_value']);
      providerAnswer = { status: 401, body: { error: { code: 'invalid_api_key', message: 'bad key' } } };
      const ours = await post('/v1/realtime/sessions', h, { mode: 'provider' });
      expect([ours.status, ours.body.error.code]).toEqual([502, 'upstream_error']);
    });
  });

  it('never logs a secret', () => {
    expect(secrets.length).toBeGreaterThan(10);
    const all = logs.lines.join('\n');
    expect(all).toContain('ephemeral key minted');
    for (const s of [...secrets, 'ek_PROVIDER_SECRET', ADMIN_TOKEN]) expect(all).not.toContain(s);
    expect(all).not.toMatch(/ek_ey/);
  });
});
