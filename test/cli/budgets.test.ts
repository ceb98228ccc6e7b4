import { loadConfig } from '../../src/config/config';
import { openMetering } from '../../src/metering';
import { openDatabase } from '../../src/storage/database';
import { cli, scratch } from './support';

describe('realtime-relay budgets', () => {
  const s = scratch();
  afterAll(() => s.cleanup());

  it('sets, shows and lists overrides, and the relay\'s own guard enforces them', async () => {
    const set = await cli(['budgets', 'set', 'user', 'alice', '--daily', '2.50', '--total', '100'], s.env);
    expect(set).toMatchObject({ code: 0, err: '' });
    expect(set.out).toContain('Budget of user alice:');
    expect(set.out).toMatch(/daily\s+limit \$2\.500000000 \(override\), spent \$0\.000000000/);
    expect(set.out).toMatch(/monthly\s+limit none/);

    const shown = await cli(['budgets', 'show', 'user', 'alice', '--json'], s.env);
    expect(JSON.parse(shown.out)).toEqual({
      object: 'relay.budget',
      scope: 'user',
      id: 'alice',
      tenant: null,
      limits: { daily_usd: '2.500000000', monthly_usd: null, total_usd: '100.000000000' },
      overrides: { daily_usd: '2.500000000', monthly_usd: null, total_usd: '100.000000000' },
      spent: { daily_usd: '0.000000000', monthly_usd: '0.000000000', total_usd: '0.000000000' },
    });

    await cli(['budgets', 'set', 'tenant', 'acme', '--monthly', '0'], s.env);
    const listed = await cli(['budgets', 'list'], s.env);
    expect(listed.out.trim().split('\n')).toEqual([
      expect.stringMatching(/^SCOPE\s+ID\s+TENANT\s+DAILY_USD\s+MONTHLY_USD\s+TOTAL_USD$/),
      expect.stringMatching(/^tenant\s+acme\s+-\s+-\s+0\.000000000\s+-$/),
      expect.stringMatching(/^user\s+alice\s+-\s+2\.500000000\s+-\s+100\.000000000$/),
    ]);
    expect(JSON.parse((await cli(['budgets', 'list', '--scope', 'tenant', '--json'], s.env)).out)).toEqual([
      { scope: 'tenant', id: 'acme', tenant: null, daily_usd: null, monthly_usd: '0.000000000', total_usd: null },
    ]);

    // The same rows the relay reads: a zero monthly limit refuses every user of the tenant.
    const config = loadConfig(s.env);
    const db = await openDatabase(config.storage.databaseUrl);
    const metering = await openMetering({ db, config });
    try {
      expect(await metering.guard.check({ user: 'bob', tenant: 'acme' })).toMatchObject({ ok: false, scope: 'tenant', period: 'monthly' });
      expect(await metering.guard.check({ user: 'alice' })).toMatchObject({ ok: true, remainingNanos: 2_500_000_000n });
    } finally {
      await metering.close();
      await db.close();
    }

    // none clears one period; the others stay.
    await cli(['budgets', 'set', 'user', 'alice', '--daily', 'none'], s.env);
    const after = JSON.parse((await cli(['budgets', 'show', 'user', 'alice', '--json'], s.env)).out) as { overrides: Record<string, string | null> };
    expect(after.overrides).toEqual({ daily_usd: null, monthly_usd: null, total_usd: '100.000000000' });
  });

  it.each([
    [['budgets', 'set', 'user', 'alice'], /give at least one of --daily, --monthly, --total/],
    [['budgets', 'set', 'group', 'x', '--daily', '1'], /the scope must be user, tenant or key, got 'group'/],
    [['budgets', 'set', 'user', 'alice', '--daily', '$5'], /--daily must be a USD amount such as 5 or 2.50/],
    [['budgets', 'show', 'user'], /give the scope and the id/],
    [['budgets', 'drop'], /unknown subcommand 'drop'/],
    [['budgets', 'set', 'tenant', 'acme', '--tenant', 'x', '--daily', '1'], /--tenant applies to user budgets only/],
  ])('%j is a usage error (exit 2) saying what to type', async (argv, message) => {
    const r = await cli(argv, s.env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });

  it('names a user within its tenant (--tenant): its own budget, not the no-tenant user\'s', async () => {
    await cli(['budgets', 'set', 'user', 'bea', '--tenant', 'acme', '--daily', '3'], s.env);
    const own = JSON.parse((await cli(['budgets', 'show', 'user', 'bea', '--tenant', 'acme', '--json'], s.env)).out) as { tenant: string | null; overrides: Record<string, string | null> };
    expect(own).toMatchObject({ tenant: 'acme', overrides: { daily_usd: '3.000000000' } });
    const noTenant = JSON.parse((await cli(['budgets', 'show', 'user', 'bea', '--json'], s.env)).out) as { tenant: string | null; overrides: Record<string, string | null> };
    expect(noTenant).toMatchObject({ tenant: null, overrides: { daily_usd: null } });
    expect((await cli(['budgets', 'list', '--scope', 'user'], s.env)).out).toMatch(/^user\s+bea\s+acme\s+3\.000000000/m);
  });

  it('is listed in the main help and has its own', async () => {
    expect((await cli(['--help'], s.env)).out).toMatch(/^ {2}budgets /m);
    expect((await cli(['budgets', 'set', '--help'], s.env)).out).toMatch(/^Usage: realtime-relay budgets set /);
  });
});
