import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BudgetGuard } from '../../src/metering/budget-guard';
import { migrate, openDatabase, type SqlDatabase } from '../../src/storage/database';
import { BudgetStore, budgetMigrations } from '../../src/storage/budgets';
import { Ledger, ledgerMigrations } from '../../src/storage/ledger';
import { DurableLedger } from '../../src/storage/ledger-durable';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { entry } from './ledger-fixtures';

const USD = 1_000_000_000n;
// 2025-03-15 12:00 UTC: the day began at 2025-03-15 00:00, the month at 2025-03-01 00:00.
const NOW = new Date(Date.UTC(2025, 2, 15, 12));
const DAY_START = Date.UTC(2025, 2, 15);
const MONTH_START = Date.UTC(2025, 2, 1);

describe.each(BACKENDS)('budgets on %s', (backend) => {
  let t: TestDatabase;
  let ledger: Ledger;
  let store: BudgetStore;

  beforeEach(async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, [...ledgerMigrations, ...budgetMigrations]);
    ledger = new Ledger(t.db);
    store = new BudgetStore(t.db, () => NOW);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  const guard = (defaults = {}): BudgetGuard => new BudgetGuard({ budgets: store, ledger, defaults, now: () => NOW });

  describe('BudgetStore', () => {
    it('patches periods independently, clears with null and deletes', async () => {
      expect(await store.get('user', 'alice')).toBeNull();
      expect(await store.update('user', 'alice', { daily: 2n * USD })).toEqual({ daily: 2n * USD, monthly: null, total: null });
      expect(await store.update('user', 'alice', { total: 9_007_199_254_740_993n })).toEqual({ daily: 2n * USD, monthly: null, total: 9_007_199_254_740_993n });
      expect(await store.update('user', 'alice', { daily: null })).toEqual({ daily: null, monthly: null, total: 9_007_199_254_740_993n });
      // A user and a tenant may share a name.
      await store.update('tenant', 'alice', { monthly: USD });
      expect(await store.get('tenant', 'alice')).toEqual({ daily: null, monthly: USD, total: null });
      expect(await store.remove('user', 'alice')).toBe(true);
      expect(await store.remove('user', 'alice')).toBe(false);
      expect(await store.get('tenant', 'alice')).not.toBeNull();
    });

    it('forgets a subject once every period is cleared', async () => {
      await store.update('user', 'bob', { daily: USD });
      await store.update('user', 'bob', { daily: null });
      expect(await store.get('user', 'bob')).toBeNull();
    });
  });

  describe('BudgetGuard', () => {
    it('admits anyone when no limit applies', async () => {
      await ledger.insert(entry({ costNanos: 100n * USD, createdAt: NOW.getTime() }));
      expect(await guard().check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: true, remainingNanos: null });
    });

    it('enforces UTC daily, monthly and total periods', async () => {
      await ledger.insert(entry({ costNanos: 3n * USD, createdAt: DAY_START - 1 })); // yesterday, this month
      await ledger.insert(entry({ costNanos: 1n * USD, createdAt: DAY_START })); // today
      await ledger.insert(entry({ costNanos: 5n * USD, createdAt: MONTH_START - 1 })); // last month
      // spent: daily 1, monthly 4, total 9

      await store.update('user', 'alice', { daily: 2n * USD }, 'acme');
      expect(await guard().check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: true, remainingNanos: USD });

      await store.update('user', 'alice', { monthly: 4n * USD }, 'acme');
      // Reaching the limit exactly is enough to refuse: nothing is left to spend.
      expect(await guard().check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: false, scope: 'user', period: 'monthly', limitNanos: 4n * USD, spentNanos: 4n * USD });

      await store.update('user', 'alice', { monthly: null, total: 8n * USD }, 'acme');
      expect(await guard().check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: false, scope: 'user', period: 'total', limitNanos: 8n * USD, spentNanos: 9n * USD });

      await store.update('user', 'alice', { total: 100n * USD }, 'acme');
      // daily leaves 1, total 91: the smallest remaining wins.
      expect(await guard().check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: true, remainingNanos: USD });
    });

    it('applies configured defaults to users (not tenants), overridable per user', async () => {
      await ledger.insert(entry({ costNanos: 600_000_000n, createdAt: NOW.getTime() })); // $0.60 today
      const g = guard({ daily: '0.5', monthly: '10.000001' });
      expect(await g.check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: false, scope: 'user', period: 'daily', limitNanos: 500_000_000n, spentNanos: 600_000_000n });
      expect(await g.check({ user: 'bob' })).toEqual({ ok: true, remainingNanos: 500_000_000n });
      await store.update('user', 'alice', { daily: USD }, 'acme');
      expect(await g.check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: true, remainingNanos: 400_000_000n });
      const status = await g.status('tenant', 'acme');
      expect(status.limits).toEqual({ daily: null, monthly: null, total: null });
      expect(status.spent).toEqual({ daily: 600_000_000n, monthly: 600_000_000n, total: 600_000_000n });
    });

    it('refuses a user whose tenant is over its budget', async () => {
      await ledger.insert(entry({ user: 'bob', tenant: 'acme', costNanos: 2n * USD, createdAt: NOW.getTime() }));
      await store.update('tenant', 'acme', { daily: 2n * USD });
      expect(await guard().check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: false, scope: 'tenant', period: 'daily', limitNanos: 2n * USD, spentNanos: 2n * USD });
      expect(await guard().check({ user: 'alice', tenant: 'other' })).toEqual({ ok: true, remainingNanos: null });
    });

    it('refuses a malformed default at construction', () => {
      expect(() => guard({ daily: '1e3' })).toThrow(/decimal/);
    });
  });
});

describe('one budget across relay instances sharing PostgreSQL', () => {
  let t: TestDatabase;
  let second: SqlDatabase;
  let dirs: string[] = [];

  beforeEach(async () => {
    t = await openTestDatabase('postgres');
    second = await openDatabase(t.url); // another instance: its own pool
    // Sequential: migrate()'s CREATE TABLE IF NOT EXISTS schema_migrations runs before its
    // advisory lock, so two first-ever starts racing on PostgreSQL can collide (reported).
    await migrate(t.db, [...ledgerMigrations, ...budgetMigrations]);
    expect(await migrate(second, [...ledgerMigrations, ...budgetMigrations])).toEqual([]);
    dirs = [mkdtempSync(path.join(tmpdir(), 'relay-a-')), mkdtempSync(path.join(tmpdir(), 'relay-b-'))];
  });
  afterEach(async () => {
    await second.close();
    await t.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("one instance's spend makes the other's guard refuse", async () => {
    const a = await DurableLedger.open({ db: t.db, spoolDir: dirs[0] });
    const b = await DurableLedger.open({ db: second, spoolDir: dirs[1] });
    const now = (): Date => new Date();
    const guardA = new BudgetGuard({ budgets: new BudgetStore(t.db), ledger: a, now });
    const guardB = new BudgetGuard({ budgets: new BudgetStore(second), ledger: b, now, cacheMs: 1000 });

    // The admin sets the limit through instance A.
    await new BudgetStore(t.db).update('user', 'alice', { daily: USD }, 'acme');
    expect(await guardB.check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: true, remainingNanos: USD });

    // Alice's session runs on instance A and spends the whole dollar.
    expect(await a.record(entry({ costNanos: 600_000_000n, createdAt: Date.now() }))).toBe('inserted');
    expect(await a.record(entry({ costNanos: 400_000_000n, createdAt: Date.now() }))).toBe('inserted');
    expect(await guardA.check({ user: 'alice', tenant: 'acme' })).toMatchObject({ ok: false, period: 'daily', spentNanos: USD });

    // Instance B's guard caches for at most 1 s, then sees A's spend.
    await new Promise((r) => setTimeout(r, 1050));
    expect(await guardB.check({ user: 'alice', tenant: 'acme' })).toEqual({ ok: false, scope: 'user', period: 'daily', limitNanos: USD, spentNanos: USD });
    await a.flush(0);
    await b.flush(0);
  });
});

describe.each(BACKENDS)('budgets per (tenant, user) on %s', (backend) => {
  let t: TestDatabase;
  afterEach(async () => {
    await t.cleanup();
  });

  it('keeps rows stored before the tenant column (as the user of no tenant) and separates tenants after it', async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, [...ledgerMigrations, budgetMigrations[0]]);
    await t.db.run("INSERT INTO budgets (scope, subject, daily_nanos, updated_at) VALUES ('user', 'alice', 7, 1), ('tenant', 'acme', 9, 1)");
    expect(await migrate(t.db, budgetMigrations)).toEqual(['budgets_002_key_scope', 'budgets_003_tenant']);
    const store = new BudgetStore(t.db, () => NOW);
    expect(await store.get('user', 'alice')).toEqual({ daily: 7n, monthly: null, total: null });
    expect(await store.get('tenant', 'acme')).toEqual({ daily: 9n, monthly: null, total: null });
    expect(await store.get('user', 'alice', 'acme')).toBeNull();

    await store.update('user', 'alice', { daily: 1n }, 'acme');
    await store.update('user', 'alice', { daily: 2n }, 'globex');
    expect(await store.get('user', 'alice', 'acme')).toEqual({ daily: 1n, monthly: null, total: null });
    expect(await store.get('user', 'alice', 'globex')).toEqual({ daily: 2n, monthly: null, total: null });
    expect(await store.get('user', 'alice')).toEqual({ daily: 7n, monthly: null, total: null });
    expect(await store.remove('user', 'alice', 'acme')).toBe(true);
    expect(await store.get('user', 'alice', 'globex')).not.toBeNull();

    // Spend follows the same namespaces: acme's alice spent, the alice of no tenant did not.
    const ledger = new Ledger(t.db);
    await ledger.insert(entry({ user: 'alice', tenant: 'acme', costNanos: 5n, createdAt: NOW.getTime() }));
    const g = new BudgetGuard({ budgets: store, ledger, now: () => NOW });
    expect(await g.check({ user: 'alice', tenant: 'globex' })).toEqual({ ok: true, remainingNanos: 2n });
    expect(await g.check({ user: 'alice' })).toEqual({ ok: true, remainingNanos: 7n });
    await store.update('user', 'alice', { daily: 5n }, 'acme');
    expect(await g.check({ user: 'alice', tenant: 'acme' })).toMatchObject({ ok: false, scope: 'user', spentNanos: 5n });
  });
});
