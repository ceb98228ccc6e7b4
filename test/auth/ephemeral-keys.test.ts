import { SignJWT } from 'jose';
import { Authenticator } from '../../src/auth/authenticator';
import { EphemeralKeys, MAX_EPHEMERAL_KEY_LENGTH } from '../../src/auth/ephemeral-keys';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { bearer, JWT_SECRET, testConfig, TOKEN_SECRET, refusal } from './support';

const session = { instructions: 'Be brief.', voice: 'verse', tools: [{ type: 'function', name: 'f', parameters: { type: 'object' } }] };

describe('ephemeral keys across instances', () => {
  let dbA: SqlDatabase;
  let dbB: SqlDatabase;
  let now = Date.parse('2030-01-01T00:00:00Z');
  let a: Authenticator;
  let b: Authenticator;

  beforeAll(async () => {
    dbA = await openDatabase('sqlite::memory:');
    dbB = await openDatabase('sqlite::memory:');
    a = new Authenticator({ config: testConfig(), db: dbA, now: () => now });
    // Shares only the token secret with `a`: no admin token, no JWT secret, its own database.
    b = new Authenticator({ config: testConfig({ RELAY_ADMIN_TOKEN: 'another-admin-token-xxxxxxxx', JWT_SECRET: 'another-jwt-secret-0123456789abcdef0' }), db: dbB, now: () => now });
    await a.init();
    await b.init();
  });
  afterAll(async () => {
    await dbA.close();
    await dbB.close();
  });

  it('a key minted by one instance authenticates on another sharing only the secret', async () => {
    const m = await a.ephemeralKeys.mint({ user: 'u1', tenant: 't1', model: 'gpt-realtime', session, ttlS: 60 });
    expect(m.value.startsWith('ek_')).toBe(true);
    expect(m.expiresAt).toBe(now / 1000 + 60);
    const p = await b.authenticate({ 'sec-websocket-protocol': `realtime, openai-insecure-api-key.${m.value}` });
    expect(p).toEqual({
      user: 'u1',
      tenant: 't1',
      keyId: m.id,
      scopes: ['realtime'],
      kind: 'ephemeral',
      expiresAt: now + 60_000,
      model: 'gpt-realtime',
      lockedSession: { ...session, model: 'gpt-realtime' },
    });
  });

  it('expiry refuses new sessions; ttl is clamped to the maximum', async () => {
    const m = await a.ephemeralKeys.mint({ user: 'u1', model: 'm', session: {}, ttlS: 10 });
    now += 10_001;
    expect(await refusal(b.authenticate(bearer(m.value)))).toEqual({ status: 401, code: 'credential_expired' });
    const long = await a.ephemeralKeys.mint({ user: 'u1', model: 'm', session: {}, ttlS: 1e9 });
    expect(long.expiresAt - Math.floor(now / 1000)).toBe(testConfig().auth.ephemeralMaxTtlS);
  });

  it('refuses a key signed with another secret, a tampered payload, and foreign tokens', async () => {
    const foreign = new EphemeralKeys({ secret: 'a-different-relay-secret-0123456789abcdef', db: dbA, maxTtlS: 60 });
    const f = await foreign.mint({ user: 'u1', model: 'm', session: {}, ttlS: 60 });
    expect(await refusal(a.authenticate(bearer(f.value)))).toEqual({ status: 401, code: 'invalid_token' });

    const m = await a.ephemeralKeys.mint({ user: 'u1', model: 'm', session: {}, ttlS: 60 });
    const [h, , s] = m.value.slice(3).split('.');
    const forgedPayload = Buffer.from(JSON.stringify({ sub: 'admin', mdl: 'm', scfg: '', jti: 'eph_x', exp: 9e9, iat: 1 })).toString('base64url');
    expect(await refusal(a.authenticate(bearer(`ek_${h}.${forgedPayload}.${s}`)))).toEqual({ status: 401, code: 'invalid_token' });

    // An HS256 JWT signed with the raw relay secret, or an app JWT, dressed up as an ek.
    for (const secret of [TOKEN_SECRET, JWT_SECRET]) {
      const jwt = await new SignJWT({ mdl: 'm', scfg: '' })
        .setProtectedHeader({ alg: 'HS256', typ: 'relay-ek+jwt' })
        .setSubject('u1')
        .setJti('eph_000000000000000000000000')
        .setIssuer('realtime-relay')
        .setAudience('realtime-relay:ephemeral-key')
        .setIssuedAt(Math.floor(now / 1000))
        .setExpirationTime(Math.floor(now / 1000) + 60)
        .sign(new TextEncoder().encode(secret));
      expect(await refusal(a.authenticate(bearer(`ek_${jwt}`)))).toEqual({ status: 401, code: 'invalid_token' });
    }
    // The ek without its prefix is not an app JWT either.
    expect(await refusal(a.authenticate(bearer(m.value.slice(3))))).toMatchObject({ status: 401 });
  });

  it('refuses a configuration too large to travel in a header', async () => {
    const huge = { instructions: Array.from({ length: 4000 }, (_, i) => `${i}-${Math.sin(i)}`).join(' ') };
    await expect(a.ephemeralKeys.mint({ user: 'u', model: 'm', session: huge, ttlS: 60 })).rejects.toMatchObject({
      statusCode: 400,
      code: 'session_config_too_large',
    });
    expect(MAX_EPHEMERAL_KEY_LENGTH).toBeLessThan(16 * 1024);
  });
});

describe.each(BACKENDS)('ephemeral key revocation on %s', (backend) => {
  let t: TestDatabase;
  let now = Date.parse('2030-01-01T00:00:00Z');
  let auth: Authenticator;

  beforeAll(async () => {
    t = await openTestDatabase(backend);
    auth = new Authenticator({ config: testConfig(), db: t.db, now: () => now });
    await auth.init();
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('refuses a revoked key at connect; revoking twice keeps the first time; old revocations are purged', async () => {
    const m = await auth.ephemeralKeys.mint({ user: 'u', model: 'm', session: {}, ttlS: 600 });
    await auth.authenticate(bearer(m.value));
    const r = await auth.ephemeralKeys.revoke(m.id);
    expect(r).toEqual({ id: m.id, revokedAt: now });
    expect(await refusal(auth.authenticate(bearer(m.value)))).toEqual({ status: 401, code: 'credential_revoked' });
    now += 5000;
    expect((await auth.ephemeralKeys.revoke(m.id)).revokedAt).toBe(now - 5000);
    expect(await auth.ephemeralKeys.purgeRevocations()).toBe(0);
    now += (testConfig().auth.ephemeralMaxTtlS + 120) * 1000;
    expect(await auth.ephemeralKeys.purgeRevocations()).toBe(1);
    await expect(auth.ephemeralKeys.revoke('not-an-id')).rejects.toThrow(RangeError);
  });
});
