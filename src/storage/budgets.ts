import type { Migration, SqlDatabase } from './database';

/**
 * Budget limits set through the admin API, per user or per tenant, in nano-dollars. A NULL
 * period means "no override": the configured default applies (users only) or, without one,
 * no limit.
 */
export const budgetMigrations: readonly Migration[] = [
  {
    id: 'budgets_001_create',
    sqlite: `
      CREATE TABLE budgets (
        scope TEXT NOT NULL CHECK (scope IN ('user', 'tenant')),
        subject TEXT NOT NULL,
        daily_nanos INTEGER,
        monthly_nanos INTEGER,
        total_nanos INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (scope, subject)
      )`,
    postgres: `
      CREATE TABLE budgets (
        scope TEXT NOT NULL CHECK (scope IN ('user', 'tenant')),
        subject TEXT NOT NULL,
        daily_nanos BIGINT,
        monthly_nanos BIGINT,
        total_nanos BIGINT,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (scope, subject)
      )`,
  },
  {
    // Per-key budgets: a key handed to one partner app must not spend its tenant's whole budget.
    // SQLite cannot alter a CHECK constraint, so the table is rebuilt (inside the migration's transaction).
    id: 'budgets_002_key_scope',
    sqlite: `
      CREATE TABLE budgets_new (
        scope TEXT NOT NULL CHECK (scope IN ('user', 'tenant', 'key')),
        subject TEXT NOT NULL,
        daily_nanos INTEGER,
        monthly_nanos INTEGER,
        total_nanos INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (scope, subject)
      );
      INSERT INTO budgets_new (scope, subject, daily_nanos, monthly_nanos, total_nanos, updated_at)
        SELECT scope, subject, daily_nanos, monthly_nanos, total_nanos, updated_at FROM budgets;
      DROP TABLE budgets;
      ALTER TABLE budgets_new RENAME TO budgets;
      CREATE INDEX usage_ledger_key_time ON usage_ledger (key_id, created_at)`,
    postgres: `
      ALTER TABLE budgets DROP CONSTRAINT budgets_scope_check;
      ALTER TABLE budgets ADD CONSTRAINT budgets_scope_check CHECK (scope IN ('user', 'tenant', 'key'));
      CREATE INDEX usage_ledger_key_time ON usage_ledger (key_id, created_at)`,
  },
  {
    // Users are named within their tenant: alice of tenant A and alice of tenant B have their
    // own budgets. `tenant` is '' for a user without a tenant (its own namespace) and for tenant
    // and key rows. Rows stored before this migration had no tenant and keep applying to the user
    // without one; a per-tenant user budget is set again with `?tenant=`.
    id: 'budgets_003_tenant',
    sqlite: `
      CREATE TABLE budgets_by_tenant (
        scope TEXT NOT NULL CHECK (scope IN ('user', 'tenant', 'key')),
        tenant TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        daily_nanos INTEGER,
        monthly_nanos INTEGER,
        total_nanos INTEGER,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (scope, tenant, subject)
      );
      INSERT INTO budgets_by_tenant (scope, tenant, subject, daily_nanos, monthly_nanos, total_nanos, updated_at)
        SELECT scope, '', subject, daily_nanos, monthly_nanos, total_nanos, updated_at FROM budgets;
      DROP TABLE budgets;
      ALTER TABLE budgets_by_tenant RENAME TO budgets`,
    postgres: `
      ALTER TABLE budgets ADD COLUMN tenant TEXT NOT NULL DEFAULT '';
      ALTER TABLE budgets DROP CONSTRAINT budgets_pkey;
      ALTER TABLE budgets ADD PRIMARY KEY (scope, tenant, subject)`,
  },
];

/** The tenant column's value: a user's tenant ('' for no tenant, a namespace of its own); '' for tenant and key rows. */
function tenantKey(scope: BudgetScope, tenant: string | null | undefined): string {
  return scope === 'user' ? (tenant ?? '') : '';
}

export type BudgetScope = 'user' | 'tenant' | 'key';
export type BudgetPeriod = 'daily' | 'monthly' | 'total';
export const BUDGET_PERIODS: readonly BudgetPeriod[] = ['daily', 'monthly', 'total'];

export type BudgetLimits = Record<BudgetPeriod, bigint | null>;

/** A change: a bigint sets the period, null clears its override, absent leaves it as is. */
export type BudgetPatch = Partial<Record<BudgetPeriod, bigint | null>>;

const toBig = (v: unknown): bigint | null => (v === null || v === undefined ? null : BigInt(String(v)));

export class BudgetStore {
  constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /**
   * The overrides stored for one subject; null when it has none. A user subject is named within
   * `tenant` (absent, null or '': the user without a tenant); a tenant subject ignores it.
   */
  async get(scope: BudgetScope, subject: string, tenant?: string | null): Promise<BudgetLimits | null> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT CAST(daily_nanos AS TEXT) AS daily, CAST(monthly_nanos AS TEXT) AS monthly, CAST(total_nanos AS TEXT) AS total
       FROM budgets WHERE scope = $1 AND subject = $2 AND tenant = $3`,
      [scope, subject, tenantKey(scope, tenant)],
    );
    const r = rows[0];
    return r ? { daily: toBig(r.daily), monthly: toBig(r.monthly), total: toBig(r.total) } : null;
  }

  /** Applies a patch in one statement, so concurrent admins never lose each other's periods. */
  async update(scope: BudgetScope, subject: string, patch: BudgetPatch, tenant?: string | null): Promise<BudgetLimits> {
    const sets: string[] = [];
    const params: (string | bigint | number | null)[] = [scope, subject, this.now().getTime(), tenantKey(scope, tenant)];
    const insertValues: (bigint | null)[] = [];
    for (const period of BUDGET_PERIODS) {
      const v = patch[period];
      insertValues.push(v === undefined ? null : v);
      if (v !== undefined) sets.push(`${period}_nanos = EXCLUDED.${period}_nanos`);
    }
    params.push(...insertValues);
    sets.push('updated_at = EXCLUDED.updated_at');
    for (const v of insertValues) if (v !== null && v < 0n) throw new RangeError('a budget cannot be negative');
    await this.db.run(
      `INSERT INTO budgets (scope, subject, updated_at, tenant, daily_nanos, monthly_nanos, total_nanos)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (scope, tenant, subject) DO UPDATE SET ${sets.join(', ')}`,
      params,
    );
    const stored = await this.get(scope, subject, tenant);
    if (!stored) throw new Error('budget row vanished after update');
    if (stored.daily === null && stored.monthly === null && stored.total === null) await this.remove(scope, subject, tenant);
    return stored;
  }

  /** Every stored override, optionally of one scope (bounded: one row per subject with an override). */
  async list(scope?: BudgetScope, limit = 1000): Promise<Array<{ scope: BudgetScope; subject: string; tenant: string | null; limits: BudgetLimits }>> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT scope, tenant, subject, CAST(daily_nanos AS TEXT) AS daily, CAST(monthly_nanos AS TEXT) AS monthly, CAST(total_nanos AS TEXT) AS total
       FROM budgets${scope ? ' WHERE scope = $1' : ''} ORDER BY scope, tenant, subject LIMIT ${Math.max(1, Math.min(limit, 10000))}`,
      scope ? [scope] : [],
    );
    return rows.map((r) => ({
      scope: String(r.scope) as BudgetScope,
      subject: String(r.subject),
      tenant: r.tenant === '' || r.tenant === null || r.tenant === undefined ? null : String(r.tenant),
      limits: { daily: toBig(r.daily), monthly: toBig(r.monthly), total: toBig(r.total) },
    }));
  }

  /** Deletes every override of the subject; true when there was one. */
  async remove(scope: BudgetScope, subject: string, tenant?: string | null): Promise<boolean> {
    return (await this.db.run('DELETE FROM budgets WHERE scope = $1 AND subject = $2 AND tenant = $3', [scope, subject, tenantKey(scope, tenant)])) > 0;
  }
}
