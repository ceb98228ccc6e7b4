import { Authenticator, AuthError, requireScope } from '../../src/auth/authenticator';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { ADMIN_TOKEN, bearer, captureLogs, testConfig } from './support';

describe('Authenticator', () => {
  let db: SqlDatabase;
  let auth: Authenticator;
  const logs = captureLogs();

  beforeAll(async () => {
    db = await openDatabase('sqlite::memory:');
    auth = new Authenticator({ config: testConfig(), db, logger: logs.logger });
    await auth.init();
    await auth.init();
  });
  afterAll(async () => {
    await db.close();
  });

  it('accepts the admin token as the admin principal, by header or subprotocol', async () => {
    const admin = { user: 'admin', scopes: ['admin'], kind: 'admin_token' };
    expect(await auth.authenticate(bearer(ADMIN_TOKEN))).toEqual(admin);
    expect(await auth.authenticate({ 'sec-websocket-protocol': `realtime, openai-insecure-api-key.${ADMIN_TOKEN}` })).toEqual(admin);
    const p = await auth.authenticate(bearer(ADMIN_TOKEN));
    expect(() => requireScope(p, 'provider_mint')).not.toThrow();
  });

  it('refuses a missing credential with 401 missing_credential', async () => {
    await expect(auth.authenticate({})).rejects.toMatchObject({ statusCode: 401, code: 'missing_credential' });
    await expect(auth.authenticate({ 'sec-websocket-protocol': 'realtime' })).rejects.toBeInstanceOf(AuthError);
  });

  it('refuses a query-string credential even alongside a valid header', async () => {
    await expect(auth.authenticate(bearer(ADMIN_TOKEN), { url: `/v1/realtime?model=m&api_key=${ADMIN_TOKEN}` })).rejects.toMatchObject({
      statusCode: 401,
      code: 'credential_in_query',
    });
  });

  it('authenticateRequest reads headers and url from a request', async () => {
    expect((await auth.authenticateRequest({ headers: bearer(ADMIN_TOKEN), url: '/v1/realtime?model=m' })).kind).toBe('admin_token');
  });

  it('never logs the credential', async () => {
    await auth.authenticate(bearer(ADMIN_TOKEN.slice(0, -1) + 'X')).catch(() => undefined);
    expect(logs.lines.length).toBeGreaterThan(0);
    for (const l of logs.lines) expect(l).not.toContain(ADMIN_TOKEN.slice(0, 20));
  });
});
