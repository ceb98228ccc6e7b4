import { parseUsd } from './money';
import type { LedgerReader, SpendSummary } from '../storage/ledger';
import { BUDGET_PERIODS, type BudgetLimits, type BudgetPeriod, type BudgetScope, type BudgetStore } from '../storage/budgets';

export type BudgetCheck =
  | { ok: true; remainingNanos: bigint | null }
  | { ok: false; scope: BudgetScope; period: BudgetPeriod; limitNanos: bigint; spentNanos: bigint };

export interface BudgetStatus {
  scope: BudgetScope;
  subject: string;
  /** Limits in force: the stored override, else (users only) the configured default, else null. */
  limits: BudgetLimits;
  /** Which of the limits come from an override stored through the admin API. */
  overrides: BudgetLimits;
  spent: Record<BudgetPeriod, bigint>;
}

export interface BudgetGuardOptions {
  budgets: BudgetStore;
  ledger: LedgerReader;
  /** config.budgets.defaults: decimal USD strings, applied to every user without an override. */
  defaults?: { daily?: string; monthly?: string; total?: string };
  now?: () => Date;
  /**
   * How long a subject's spend may be reused, in ms: 0 (the default) reads the ledger on every
   * check. Capped at 1000 so that another relay instance's spend is seen within a second.
   */
  cacheMs?: number;
}

/**
 * Decides whether a user (and their tenant) may spend more, from the shared ledger and the
 * budgets table, so every relay instance on one database enforces one budget. Periods are UTC:
 * the day from 00:00 UTC, the month from the 1st 00:00 UTC, and total since the first row. A
 * subject is refused once its spend reaches the limit (spent ≥ limit). A database failure
 * rejects the check: whether to refuse or admit is the caller's policy.
 */
export class BudgetGuard {
  private readonly defaults: BudgetLimits;
  private readonly now: () => Date;
  private readonly cacheMs: number;
  private readonly cache = new Map<string, { at: number; summary: SpendSummary }>();

  constructor(private readonly opts: BudgetGuardOptions) {
    const d = opts.defaults ?? {};
    this.defaults = {
      daily: d.daily === undefined ? null : parseUsd(d.daily),
      monthly: d.monthly === undefined ? null : parseUsd(d.monthly),
      total: d.total === undefined ? null : parseUsd(d.total),
    };
    this.now = opts.now ?? (() => new Date());
    this.cacheMs = Math.max(0, Math.min(opts.cacheMs ?? 0, 1000));
  }

  /**
   * A user is named within its tenant: alice of tenant A and alice of tenant B have separate
   * budgets and spend, and a user of no tenant (undefined or '') is a namespace of its own.
   */
  async check(who: { user: string; tenant?: string; keyId?: string }): Promise<BudgetCheck> {
    const verdict = await this.checkByScope(who);
    return verdict.ok ? { ok: true, remainingNanos: verdict.remainingNanos } : verdict;
  }

  /**
   * check(), with what each scope's own limits leave (null: no limit): budget reservations
   * compare a user's holds with the user's limits and a tenant's with the tenant's.
   */
  async checkByScope(who: { user: string; tenant?: string; keyId?: string }): Promise<BudgetCheck & { remainingByScope?: Record<BudgetScope, bigint | null> }> {
    const tenant = who.tenant === undefined || who.tenant === '' ? null : who.tenant;
    const subjects: [BudgetScope, string][] = [['user', who.user]];
    if (tenant !== null) subjects.push(['tenant', tenant]);
    if (who.keyId !== undefined) subjects.push(['key', who.keyId]);
    let remaining: bigint | null = null;
    const byScope: Record<BudgetScope, bigint | null> = { user: null, tenant: null, key: null };
    for (const [scope, subject] of subjects) {
      const limits = await this.limitsFor(scope, subject, tenant);
      if (BUDGET_PERIODS.every((p) => limits[p] === null)) continue;
      const spent = await this.spendOf(scope, subject, tenant);
      for (const period of BUDGET_PERIODS) {
        const limit = limits[period];
        if (limit === null) continue;
        if (spent[period] >= limit) return { ok: false, scope, period, limitNanos: limit, spentNanos: spent[period] };
        const left = limit - spent[period];
        if (remaining === null || left < remaining) remaining = left;
        const own = byScope[scope];
        if (own === null || left < own) byScope[scope] = left;
      }
    }
    return { ok: true, remainingNanos: remaining, remainingByScope: byScope };
  }

  /** `tenant` names the tenant of a user subject (null or absent: the user of no tenant). */
  async status(scope: BudgetScope, subject: string, tenant: string | null = null): Promise<BudgetStatus> {
    const overrides = (await this.opts.budgets.get(scope, subject, tenant)) ?? { daily: null, monthly: null, total: null };
    return { scope, subject, limits: this.merge(scope, overrides), overrides, spent: await this.spendOf(scope, subject, tenant, true) };
  }

  private async limitsFor(scope: BudgetScope, subject: string, tenant: string | null): Promise<BudgetLimits> {
    const overrides = await this.opts.budgets.get(scope, subject, tenant);
    return this.merge(scope, overrides ?? { daily: null, monthly: null, total: null });
  }

  private merge(scope: BudgetScope, overrides: BudgetLimits): BudgetLimits {
    // Defaults are per user: a tenant or a key spans many users, so a per-user figure means nothing there.
    if (scope !== 'user') return overrides;
    return {
      daily: overrides.daily ?? this.defaults.daily,
      monthly: overrides.monthly ?? this.defaults.monthly,
      total: overrides.total ?? this.defaults.total,
    };
  }

  private async spendOf(scope: BudgetScope, subject: string, tenant: string | null, fresh = false): Promise<Record<BudgetPeriod, bigint>> {
    const now = this.now();
    const key = JSON.stringify(scope === 'user' ? [scope, tenant ?? '', subject] : [scope, subject]);
    const hit = this.cache.get(key);
    if (!fresh && hit && now.getTime() - hit.at < this.cacheMs) return hit.summary;
    const starts = {
      daily: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate())),
      monthly: new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)),
    };
    const summary = await this.opts.ledger.spendSummary(scope === 'user' ? { user: subject, tenant } : scope === 'tenant' ? { tenant: subject } : { key: subject }, starts);
    if (this.cacheMs > 0) {
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { at: now.getTime(), summary });
    }
    return summary;
  }
}
