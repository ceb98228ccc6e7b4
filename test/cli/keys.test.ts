import { Authenticator, AuthError } from '../../src/auth/authenticator';
import { loadConfig } from '../../src/config/config';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { cli, scratch } from './support';

interface KeyJson {
  id: string;
  object: string;
  user: string | null;
  tenant: string | null;
  scopes: string[];
  name: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  key?: string;
}

describe('realtime-relay keys', () => {
  const s = scratch();
  let db: SqlDatabase;
  let auth: Authenticator;

  beforeAll(async () => {
    // The CLI creates and migrates the database itself: nothing is prepared here on purpose.
    const first = await cli(['keys', 'list'], s.env);
    expect(first).toEqual({ code: 0, out: 'No API keys.\n', err: '' });
    db = await openDatabase(s.env.DATABASE_URL ?? '');
    auth = new Authenticator({ config: loadConfig(s.env), db });
  });
  afterAll(async () => {
    await db.close();
    s.cleanup();
  });

  const authenticate = (key: string) => auth.authenticate({ authorization: `Bearer ${key}` });

  let aliceId = '';
  let aliceKey = '';

  it('creates a key, prints its secret once, and the key authenticates', async () => {
    const r = await cli(['keys', 'create', '--user', 'alice', '--tenant', 'acme', '--scopes', 'realtime,mint,usage', '--name', 'web'], s.env);
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const key = /^(rk_[0-9a-f]{16}_\S+)$/m.exec(r.out)?.[1];
    expect(key).toBeDefined();
    aliceKey = key ?? '';
    aliceId = aliceKey.slice(3, 19);
    expect(r.out).toContain(`Created API key ${aliceId}.`);
    expect(r.out).toMatch(/^ {2}scopes {3}realtime,mint,usage$/m);
    expect(r.out).toMatch(/^ {2}expires {2}never$/m);
    expect(r.out.split(aliceKey)).toHaveLength(2);

    const principal = await authenticate(aliceKey);
    expect(principal).toMatchObject({ user: 'alice', tenant: 'acme', keyId: aliceId, kind: 'api_key', scopes: ['realtime', 'mint', 'usage'] });
  });

  it('creates with --json and an expiry', async () => {
    const before = Math.floor(Date.now() / 1000);
    const r = await cli(['keys', 'create', '--user', 'bob', '--scopes', 'usage, usage', '--expires-in', '2h', '--json'], s.env);
    expect(r.code).toBe(0);
    const body = JSON.parse(r.out) as KeyJson;
    expect(body).toMatchObject({ object: 'relay.api_key', user: 'bob', tenant: null, scopes: ['usage'], name: null, revoked_at: null });
    expect(body.expires_at).toBeGreaterThanOrEqual(before + 7200);
    expect(body.expires_at).toBeLessThanOrEqual(before + 7202);
    expect(await authenticate(body.key ?? '')).toMatchObject({ user: 'bob', scopes: ['usage'], expiresAt: (body.expires_at ?? 0) * 1000 });
  });

  it('lists keys as an aligned table, filtered by user and tenant', async () => {
    const r = await cli(['keys', 'list'], s.env);
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+USER\s+TENANT\s+SCOPES\s+NAME\s+CREATED\s+EXPIRES\s+STATUS$/);
    expect(lines).toHaveLength(3);
    // Aligned: each column starts at the same offset on every line.
    const statusAt = lines[0].indexOf('STATUS');
    for (const line of lines.slice(1)) expect(line.slice(statusAt)).toBe('active');
    const alice = lines.find((l) => l.startsWith(aliceId));
    expect(alice).toMatch(/alice\s+acme\s+realtime,mint,usage\s+web\s+\S+Z\s+never\s+active$/);
    expect(r.out).not.toContain(aliceKey.slice(20));

    const byUser = JSON.parse((await cli(['keys', 'list', '--user', 'bob', '--json'], s.env)).out) as KeyJson[];
    expect(byUser.map((k) => k.user)).toEqual(['bob']);
    expect(byUser[0]).not.toHaveProperty('key');
    const byTenant = JSON.parse((await cli(['keys', 'list', '--tenant', 'acme', '--json'], s.env)).out) as KeyJson[];
    expect(byTenant.map((k) => k.id)).toEqual([aliceId]);
  });

  it('says on stderr when --limit cut the list', async () => {
    const r = await cli(['keys', 'list', '--limit', '1'], s.env);
    expect(r.code).toBe(0);
    expect(r.out.trimEnd().split('\n')).toHaveLength(2);
    expect(r.err).toMatch(/raise --limit/);
  });

  it('revokes a key, which then stops authenticating; revoking again is a no-op', async () => {
    const r = await cli(['keys', 'revoke', aliceId], s.env);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(new RegExp(`^Revoked API key ${aliceId} at \\S+Z\\.\\n$`));
    await expect(authenticate(aliceKey)).rejects.toMatchObject({ code: 'credential_revoked' });
    await expect(authenticate(aliceKey)).rejects.toBeInstanceOf(AuthError);

    const again = await cli(['keys', 'revoke', aliceId, '--json'], s.env);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.out) as KeyJson).revoked_at).toEqual(expect.any(Number));
    expect((await cli(['keys', 'revoke', aliceId], s.env)).out).toMatch(/already revoked/);

    const list = await cli(['keys', 'list', '--user', 'alice'], s.env);
    expect(list.out).toMatch(/revoked$/m);
  });

  it('fails with exit 1 on an unknown key id', async () => {
    const r = await cli(['keys', 'revoke', '0123456789abcdef'], s.env);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toBe('realtime-relay keys revoke: no API key with id 0123456789abcdef\n');
  });

  it.each([
    [['keys', 'create', '--scopes', 'usage'], /--user is required/],
    [['keys', 'create', '--user', 'u'], /--scopes is required/],
    [['keys', 'create', '--user', 'u', '--scopes', 'usage,root'], /unknown scope 'root'/],
    [['keys', 'create', '--user', 'u', '--scopes', 'usage', '--expires-in', '30'], /--expires-in/],
    [['keys', 'create', '--user', 'u', '--scopes', 'usage', '--expires-in', '0d'], /--expires-in/],
    [['keys', 'create', '--user', 'u', '--scopes', 'usage', '--colour'], /Unknown option '--colour'/],
    [['keys', 'create', '--user'], /argument missing/],
    [['keys', 'list', '--limit', '0'], /--limit/],
    [['keys', 'revoke'], /key id is required/],
    [['keys', 'revoke', 'a', 'b'], /exactly one key id/],
    [['keys', 'revoke', 'rk_0123'], /not a key id/],
    [['keys', 'rotate'], /unknown subcommand 'rotate'/],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const r = await cli(argv, s.env);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/Run 'realtime-relay keys( \w+)? --help' for usage\.\n$/);
  });
});
