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
];

export type BudgetScope = 'user' | 'tenant';
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

  /** The overrides stored for one subject; null when it has none. */
  async get(scope: BudgetScope, subject: string): Promise<BudgetLimits | null> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT CAST(daily_nanos AS TEXT) AS daily, CAST(monthly_nanos AS TEXT) AS monthly, CAST(total_nanos AS TEXT) AS total
       FROM budgets WHERE scope = $1 AND subject = $2`,
      [scope, subject],
    );
    const r = rows[0];
    return r ? { daily: toBig(r.daily), monthly: toBig(r.monthly), total: toBig(r.total) } : null;
  }

  /** Applies a patch in one statement, so concurrent admins never lose each other's periods. */
  async update(scope: BudgetScope, subject: string, patch: BudgetPatch): Promise<BudgetLimits> {
    const sets: string[] = [];
    const params: (string | bigint | number | null)[] = [scope, subject, this.now().getTime()];
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
      `INSERT INTO budgets (scope, subject, updated_at, daily_nanos, monthly_nanos, total_nanos)
       VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (scope, subject) DO UPDATE SET ${sets.join(', ')}`,
      params,
    );
    const stored = await this.get(scope, subject);
    if (!stored) throw new Error('budget row vanished after update');
    if (stored.daily === null && stored.monthly === null && stored.total === null) await this.remove(scope, subject);
    return stored;
  }

  /** Every stored override, optionally of one scope, ordered by scope and subject (for the CLI's list). */
  async list(scope?: BudgetScope, limit = 1000): Promise<{ scope: BudgetScope; subject: string; limits: BudgetLimits }[]> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT scope, subject, CAST(daily_nanos AS TEXT) AS daily, CAST(monthly_nanos AS TEXT) AS monthly, CAST(total_nanos AS TEXT) AS total
       FROM budgets${scope ? ' WHERE scope = $1' : ''} ORDER BY scope, subject LIMIT ${Math.max(1, Math.min(limit, 10000))}`,
      scope ? [scope] : [],
    );
    return rows.map((r) => ({ scope: r.scope as BudgetScope, subject: String(r.subject), limits: { daily: toBig(r.daily), monthly: toBig(r.monthly), total: toBig(r.total) } }));
  }

  /** Deletes every override of the subject; true when there was one. */
  async remove(scope: BudgetScope, subject: string): Promise<boolean> {
    return (await this.db.run('DELETE FROM budgets WHERE scope = $1 AND subject = $2', [scope, subject])) > 0;
  }
}
