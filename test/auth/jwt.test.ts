import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload, type KeyLike } from 'jose';
import { Authenticator } from '../../src/auth/authenticator';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { bearer, captureLogs, JWT_SECRET, testConfig, refusal } from './support';

const nowS = () => Math.floor(Date.now() / 1000);

function sign(claims: JWTPayload, key: KeyLike | Uint8Array, alg: string, kid?: string, exp = nowS() + 300): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, kid }).setIssuedAt().setExpirationTime(exp).sign(key);
}

const hsKey = new TextEncoder().encode(JWT_SECRET);

describe('app JWTs', () => {
  let db: SqlDatabase;
  let server: Server;
  let jwksUrl: string;
  let rsa: { privateKey: KeyLike; publicKey: KeyLike };
  let ec: { privateKey: KeyLike; publicKey: KeyLike };
  let strangerRsa: { privateKey: KeyLike; publicKey: KeyLike };
  const logs = captureLogs();

  beforeAll(async () => {
    db = await openDatabase('sqlite::memory:');
    [rsa, ec, strangerRsa] = await Promise.all([generateKeyPair('RS256'), generateKeyPair('ES256'), generateKeyPair('RS256')]);
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ];
    server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await db.close();
    await new Promise((resolve) => server.close(resolve));
  });

  describe('HS256 with JWT_SECRET, issuer and audience configured', () => {
    let auth: Authenticator;
    beforeAll(async () => {
      auth = new Authenticator({ config: testConfig({ JWT_ISSUER: 'https://app.example', JWT_AUDIENCE: 'relay' }), db, logger: logs.logger });
      await auth.init();
    });
    const good = { iss: 'https://app.example', aud: 'relay', sub: 'alice', tenant: 'acme', jti: 'j1' };

    it('accepts a valid token: user from sub, tenant from tenant, realtime/mint/usage scopes', async () => {
      const p = await auth.authenticate(bearer(await sign(good, hsKey, 'HS256')));
      expect(p).toMatchObject({ user: 'alice', tenant: 'acme', keyId: 'j1', kind: 'jwt', scopes: ['realtime', 'mint', 'usage'] });
      expect(p.expiresAt).toBeGreaterThan(Date.now());
    });

    it('refuses wrong issuer, wrong audience, forged signature, expired, no exp, no user', async () => {
      expect(await refusal(auth.authenticate(bearer(await sign({ ...good, iss: 'https://evil' }, hsKey, 'HS256'))))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await refusal(auth.authenticate(bearer(await sign({ ...good, aud: 'other' }, hsKey, 'HS256'))))).toEqual({ status: 401, code: 'invalid_token' });
      const forged = await sign(good, new TextEncoder().encode('x'.repeat(40)), 'HS256');
      expect(await refusal(auth.authenticate(bearer(forged)))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await refusal(auth.authenticate(bearer(await sign(good, hsKey, 'HS256', undefined, nowS() - 120))))).toEqual({ status: 401, code: 'credential_expired' });
      const noExp = await new SignJWT(good).setProtectedHeader({ alg: 'HS256' }).sign(hsKey);
      expect(await refusal(auth.authenticate(bearer(noExp)))).toEqual({ status: 401, code: 'invalid_token' });
      const { sub: _sub, ...noUser } = good;
      expect(await refusal(auth.authenticate(bearer(await sign(noUser, hsKey, 'HS256'))))).toEqual({ status: 401, code: 'invalid_token' });
    });

    it("refuses alg none, and an RS256 token when no JWKS is configured", async () => {
      const none = new UnsecuredJWT(good).setIssuedAt().setExpirationTime('5m').encode();
      expect(await refusal(auth.authenticate(bearer(none)))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await refusal(auth.authenticate(bearer(await sign(good, rsa.privateKey, 'RS256', 'rsa-1'))))).toEqual({ status: 401, code: 'invalid_token' });
    });

    it('refuses garbage as an unrecognised credential', async () => {
      expect(await refusal(auth.authenticate(bearer('sk-live-something')))).toEqual({ status: 401, code: 'invalid_api_key' });
    });
  });

  describe('RS256/ES256 from a JWKS URL, custom user claim', () => {
    let auth: Authenticator;
    beforeAll(async () => {
      auth = new Authenticator({
        config: testConfig({ JWT_SECRET: '', JWT_JWKS_URL: jwksUrl, JWT_USER_CLAIM: 'email', JWT_TENANT_CLAIM: 'org' }),
        db,
        logger: logs.logger,
      });
      await auth.init();
    });

    it('accepts RS256 and ES256 tokens signed by keys in the set', async () => {
      const r = await auth.authenticate(bearer(await sign({ email: 'bob@x', org: 'o1' }, rsa.privateKey, 'RS256', 'rsa-1')));
      expect(r).toMatchObject({ user: 'bob@x', tenant: 'o1', kind: 'jwt' });
      const e = await auth.authenticate(bearer(await sign({ email: 'carol@x' }, ec.privateKey, 'ES256', 'ec-1')));
      expect(e).toMatchObject({ user: 'carol@x', tenant: undefined });
    });

    it('refuses a key not in the set, and an HS256 token (no shared secret configured)', async () => {
      expect(await refusal(auth.authenticate(bearer(await sign({ email: 'x' }, strangerRsa.privateKey, 'RS256', 'rsa-1'))))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await refusal(auth.authenticate(bearer(await sign({ email: 'x' }, strangerRsa.privateKey, 'RS256', 'unknown-kid'))))).toEqual({ status: 401, code: 'invalid_token' });
      expect(await refusal(auth.authenticate(bearer(await sign({ email: 'x' }, hsKey, 'HS256'))))).toEqual({ status: 401, code: 'invalid_token' });
    });
  });

  it('answers 503 when the JWKS cannot be fetched', async () => {
    const auth = new Authenticator({ config: testConfig({ JWT_SECRET: '', JWT_JWKS_URL: 'http://127.0.0.1:1/jwks.json' }), db });
    await expect(auth.authenticate(bearer(await sign({ sub: 'x' }, rsa.privateKey, 'RS256', 'rsa-1')))).rejects.toMatchObject({
      statusCode: 503,
      code: 'auth_unavailable',
    });
  });

  it('never logs a token', () => {
    expect(logs.lines.some((l) => l.includes('authentication refused'))).toBe(true);
    for (const l of logs.lines) expect(l).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });
});
