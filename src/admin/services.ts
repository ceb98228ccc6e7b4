/**
 * What the admin console and the spend log need beyond metering: the `sessions` table, the
 * live-session directory (across instances through Redis when REDIS_URL is set) and the budget
 * alert webhook. Built once at start, after metering's migrations (the spend log indexes the ledger).
 */
import Redis from 'ioredis';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { RelayConfig } from '../config/config';
import { BudgetAlerter, budgetAlertMigrations } from '../metering/budget-alerts';
import type { BudgetGuard } from '../metering/budget-guard';
import { MemoryLiveSessions, RedisLiveSessions, type LiveSessionDirectory } from '../relay/live-sessions';
import { migrate, type SqlDatabase } from '../storage/database';
import { SessionLogStore, sessionLogMigrations } from '../storage/sessions';

export interface AdminServices {
  sessionLog: SessionLogStore;
  live: LiveSessionDirectory;
  alerts?: BudgetAlerter;
  close(): Promise<void>;
}

export async function openAdminServices(opts: {
  config: Pick<RelayConfig, 'budgets' | 'limits'>;
  db: SqlDatabase;
  guard: BudgetGuard;
  logger: Logger;
  registry?: Registry;
}): Promise<AdminServices> {
  const { config, db, logger } = opts;
  await migrate(db, [...sessionLogMigrations, ...budgetAlertMigrations]);
  const sessionLog = new SessionLogStore(db);

  let live: LiveSessionDirectory;
  const connections: Redis[] = [];
  if (config.limits.redisUrl) {
    const make = (): Redis => {
      const r = new Redis(config.limits.redisUrl as string, { lazyConnect: true, connectTimeout: 5_000, maxRetriesPerRequest: 1 });
      // The directory reports outages itself, at most every 10 s.
      r.on('error', () => undefined);
      connections.push(r);
      return r;
    };
    const redis = make();
    const subscriber = make();
    await Promise.all([redis.connect(), subscriber.connect()]);
    live = new RedisLiveSessions({ redis, subscriber, keyPrefix: config.limits.redisKeyPrefix, logger });
  } else {
    live = new MemoryLiveSessions();
  }

  const a = config.budgets.alerts;
  const alerts = a
    ? new BudgetAlerter({ db, guard: opts.guard, webhookUrl: a.webhookUrl, secret: a.secret, thresholds: a.thresholds, logger, registry: opts.registry })
    : undefined;

  return {
    sessionLog,
    live,
    alerts,
    async close() {
      alerts?.close();
      await live.shutdown();
      for (const r of connections) await r.quit().catch(() => r.disconnect());
    },
  };
}
