/**
 * Wiring for the relay: everything metering needs, built from one SqlDatabase and the config.
 * The relay creates one `Metering` at start, one SessionMeter per session, checks the budget
 * before admitting a session, and calls `close()` on shutdown to drain the spool.
 */
import { migrate, type Migration, type SqlDatabase } from '../storage/database';
import { budgetMigrations, BudgetStore } from '../storage/budgets';
import { ledgerMigrations } from '../storage/ledger';
import { DurableLedger, type MeterLogger } from '../storage/ledger-durable';
import type { RelayConfig } from '../config/config';
import { BudgetGuard } from './budget-guard';
import { PriceBook } from './prices';
import { SessionMeter, type MeterContext } from './session-meter';
import { reservationMigrations } from './reservations';

/** Tables metering owns, for both dialects; `migrate(db, meteringMigrations)` at start. */
export const meteringMigrations: readonly Migration[] = [...ledgerMigrations, ...budgetMigrations, ...reservationMigrations];

/** How a (provider, model) will be billed, decided once at connect. */
export type Pricing =
  | { status: 'priced'; priceModel: string }
  | { status: 'fallback'; priceModel: string }
  /** Neither the model nor a fallback has a price: refuse the session (UNPRICED_MODEL_POLICY=refuse). */
  | { status: 'unpriced' };

export interface Metering {
  prices: PriceBook;
  ledger: DurableLedger;
  budgets: BudgetStore;
  guard: BudgetGuard;
  pricing(provider: string, model: string, at?: Date): Pricing;
  newSessionMeter(context: MeterContext): SessionMeter;
  /** Drains the spool for up to timeoutMs; returns the rows left on disk for the next start. */
  close(timeoutMs?: number): Promise<number>;
}

export async function openMetering(opts: {
  db: SqlDatabase;
  config: Pick<RelayConfig, 'pricing' | 'budgets' | 'storage'>;
  logger?: MeterLogger;
  /** Budget spend reuse in ms (0–1000); see BudgetGuard. */
  budgetCacheMs?: number;
}): Promise<Metering> {
  const { db, config, logger } = opts;
  const prices = PriceBook.load(config.pricing.pricesFile);
  // Only a fallback under the 'fallback' policy: under 'refuse' an unpriced model never connects.
  const fallbackModel = config.pricing.unpricedPolicy === 'fallback' ? config.pricing.fallbackModel : undefined;
  await migrate(db, meteringMigrations);
  const ledger = await DurableLedger.open({ db, spoolDir: config.storage.spoolDir, logger });
  const budgets = new BudgetStore(db);
  const guard = new BudgetGuard({ budgets, ledger, defaults: config.budgets.defaults, cacheMs: opts.budgetCacheMs });

  return {
    prices,
    ledger,
    budgets,
    guard,
    pricing(provider, model, at = new Date()) {
      const own = prices.priceFor(provider, model, at);
      if (own) return { status: 'priced', priceModel: own.model };
      const fb = fallbackModel === undefined ? null : prices.priceFor(provider, fallbackModel, at);
      return fb ? { status: 'fallback', priceModel: fb.model } : { status: 'unpriced' };
    },
    newSessionMeter(context) {
      return new SessionMeter({ ledger, prices, context, fallbackModel, logger });
    },
    close(timeoutMs = 5_000) {
      return ledger.flush(timeoutMs);
    },
  };
}

export { BudgetGuard, type BudgetCheck } from './budget-guard';
export { PriceBook } from './prices';
export { SessionMeter, type MeterContext } from './session-meter';
export { formatUsd, parseUsd } from './money';
export { DurableLedger } from '../storage/ledger-durable';
