import { AUTH_MIGRATIONS } from '../auth/authenticator';
import { loadConfig, type RelayConfig } from '../config/config';
import { meteringMigrations } from '../metering';
import { migrate, type SqlDatabase } from '../storage/database';
import { openDatabaseChecked } from '../storage/open-checked';
import type { CliIo } from './context';

/**
 * Runs `fn` on the relay's own database (DATABASE_URL, read exactly as `serve` reads it), after
 * the same migrations `serve` applies, so a command run before the first start still finds its
 * tables. The handle is always closed: an open PostgreSQL pool would keep the process alive.
 */
export async function withRelayDatabase<T>(io: CliIo, fn: (db: SqlDatabase, config: RelayConfig) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env);
  for (const warning of config.warnings ?? []) io.stderr(`warning: ${warning}\n`);
  const db = await openDatabaseChecked(config.storage.databaseUrl);
  try {
    await migrate(db, AUTH_MIGRATIONS);
    await migrate(db, meteringMigrations);
    return await fn(db, config);
  } finally {
    await db.close();
  }
}
