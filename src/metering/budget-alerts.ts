/**
 * Budget alerts: a signed webhook when a user, key or tenant crosses a threshold (a percentage
 * of one of its limits), sent once per (subject, period, period start, threshold).
 *
 * "Once" holds across restarts and instances: the first instance to insert the alert's row in
 * `budget_alerts` sends it; everyone else's insert is a no-op. The row is claimed before the
 * POST, so an instance that dies mid-delivery loses that alert rather than sending it twice
 * (at most once; `delivered_at` stays NULL and says so).
 *
 * Nothing here is awaited by a session: `notify` evaluates and delivers in the background,
 * after the response has been billed.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { Migration, SqlDatabase } from '../storage/database';
import { BUDGET_PERIODS, type BudgetPeriod, type BudgetScope } from '../storage/budgets';
import type { BudgetGuard } from './budget-guard';
import { formatUsd } from './money';

export const budgetAlertMigrations: readonly Migration[] = [
  {
    id: 'budget_alerts_001_create',
    sqlite: `
      CREATE TABLE budget_alerts (
        scope TEXT NOT NULL,
        tenant TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        period TEXT NOT NULL,
        period_start TEXT NOT NULL,
        threshold INTEGER NOT NULL,
        alert_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        delivered_at INTEGER,
        PRIMARY KEY (scope, tenant, subject, period, period_start, threshold)
      )`,
    postgres: `
      CREATE TABLE budget_alerts (
        scope TEXT NOT NULL,
        tenant TEXT NOT NULL DEFAULT '',
        subject TEXT NOT NULL,
        period TEXT NOT NULL,
        period_start TEXT NOT NULL,
        threshold INTEGER NOT NULL,
        alert_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        delivered_at BIGINT,
        PRIMARY KEY (scope, tenant, subject, period, period_start, threshold)
      )`,
  },
];

export interface AlertLogger {
  warn(o: object, m: string): void;
  error(o: object, m: string): void;
}

export interface BudgetAlerterOptions {
  db: SqlDatabase;
  guard: Pick<BudgetGuard, 'status'>;
  webhookUrl: string;
  secret: string;
  /** Percentages, e.g. [80, 100]. */
  thresholds: readonly number[];
  logger?: AlertLogger;
  registry?: Registry;
  now?: () => Date;
  /** Delivery attempts in all (default 6) and the first retry's delay, doubled each time (default 1000 ms). */
  attempts?: number;
  retryBaseMs?: number;
  /** Per attempt (default 5000 ms). */
  timeoutMs?: number;
}

/** The JSON body POSTed to BUDGET_ALERT_WEBHOOK_URL. */
export interface BudgetAlertPayload {
  id: string;
  type: 'budget.threshold_crossed';
  created_at: string;
  scope: BudgetScope;
  subject: string;
  /** A user's tenant (a user is named within it); null for a user of no tenant and for tenant and key alerts. */
  tenant: string | null;
  period: BudgetPeriod;
  /** UTC day (YYYY-MM-DD), month (YYYY-MM) or "all" for the total budget. */
  period_start: string;
  threshold_percent: number;
  limit_usd: string;
  spent_usd: string;
}

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as receivers verify it. */
export function signAlert(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

function periodStart(period: BudgetPeriod, now: Date): string {
  const iso = now.toISOString();
  if (period === 'daily') return iso.slice(0, 10);
  if (period === 'monthly') return iso.slice(0, 7);
  return 'all';
}

export class BudgetAlerter {
  private readonly thresholds: number[];
  private readonly now: () => Date;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly sent?: Counter<'scope' | 'threshold' | 'outcome'>;
  private stopped = false;

  constructor(private readonly o: BudgetAlerterOptions) {
    this.thresholds = [...o.thresholds].sort((a, b) => a - b);
    this.now = o.now ?? (() => new Date());
    if (o.registry) {
      this.sent = new Counter({
        name: 'relay_budget_alerts_total',
        help: 'Budget threshold alerts, by subject scope, threshold percent and outcome (delivered, failed).',
        labelNames: ['scope', 'threshold', 'outcome'],
        registers: [o.registry],
      });
    }
  }

  /** Fire and forget: checks the session's subjects after a billed response. Never throws. */
  notify(who: { user: string; tenant?: string; keyId?: string }): void {
    if (this.stopped) return;
    this.track(this.evaluate(who).catch((err: unknown) => this.o.logger?.warn({ err }, 'budget alert check failed')));
  }

  /** Claims and sends every threshold now crossed and not yet alerted. Resolves once claimed (delivery runs on). */
  async evaluate(who: { user: string; tenant?: string; keyId?: string }): Promise<void> {
    const subjects: [BudgetScope, string][] = [['user', who.user]];
    if (who.tenant !== undefined) subjects.push(['tenant', who.tenant]);
    if (who.keyId !== undefined) subjects.push(['key', who.keyId]);
    const now = this.now();
    const userTenant = who.tenant === undefined || who.tenant === '' ? null : who.tenant;
    for (const [scope, subject] of subjects) {
      const tenant = scope === 'user' ? userTenant : null;
      const status = await this.o.guard.status(scope, subject, tenant);
      for (const period of BUDGET_PERIODS) {
        const limit = status.limits[period];
        if (limit === null || limit <= 0n) continue;
        const spent = status.spent[period];
        for (const threshold of this.thresholds) {
          // Integer comparison: spent/limit ≥ threshold/100 without rounding.
          if (spent * 100n < limit * BigInt(threshold)) break;
          const payload: BudgetAlertPayload = {
            id: `balert_${randomUUID().replace(/-/g, '')}`,
            type: 'budget.threshold_crossed',
            created_at: now.toISOString(),
            scope,
            subject,
            tenant,
            period,
            period_start: periodStart(period, now),
            threshold_percent: threshold,
            limit_usd: formatUsd(limit),
            spent_usd: formatUsd(spent),
          };
          if (await this.claim(payload, now.getTime())) this.track(this.deliver(payload));
        }
      }
    }
  }

  /** Resolves when nothing is being evaluated or delivered (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Stops taking new alerts; deliveries under way finish or give up on their own. */
  close(): void {
    this.stopped = true;
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async claim(a: BudgetAlertPayload, at: number): Promise<boolean> {
    const inserted = await this.o.db.run(
      `INSERT INTO budget_alerts (scope, tenant, subject, period, period_start, threshold, alert_id, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [a.scope, a.tenant ?? '', a.subject, a.period, a.period_start, a.threshold_percent, a.id, at],
    );
    return inserted > 0;
  }

  private async deliver(a: BudgetAlertPayload): Promise<void> {
    const body = JSON.stringify(a);
    const attempts = Math.max(1, this.o.attempts ?? 6);
    const base = this.o.retryBaseMs ?? 1000;
    let lastError = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      try {
        const res = await fetch(this.o.webhookUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'realtime-relay-budget-alerts',
            'relay-signature': signAlert(this.o.secret, body, Math.floor(Date.now() / 1000)),
          },
          body,
          signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
          redirect: 'manual',
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.status >= 200 && res.status < 300) {
          await this.o.db
            .run('UPDATE budget_alerts SET delivered_at = $2 WHERE alert_id = $1', [a.id, Date.now()])
            .catch((err: unknown) => this.o.logger?.warn({ err, alert_id: a.id }, 'could not record a delivered budget alert'));
          this.sent?.inc({ scope: a.scope, threshold: String(a.threshold_percent), outcome: 'delivered' });
          return;
        }
        lastError = `HTTP ${res.status}`;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
      }
      if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, base * 2 ** (attempt - 1)).unref());
    }
    this.sent?.inc({ scope: a.scope, threshold: String(a.threshold_percent), outcome: 'failed' });
    this.o.logger?.error({ alert_id: a.id, scope: a.scope, threshold: a.threshold_percent, attempts, last_error: lastError }, 'budget alert not delivered');
  }
}
