/**
 * One small SQL interface over the two backends, so that each store (ledger, keys, budgets)
 * is written once. SQL uses PostgreSQL's `$1` placeholders; the SQLite adapter rewrites them.
 */
export type SqlDialect = 'sqlite' | 'postgres';

export type SqlValue = string | number | bigint | boolean | null | Buffer;

export interface SqlDatabase {
  readonly dialect: SqlDialect;
  /** Rows of a statement. Integers that may exceed 2^53 come back as strings (postgres) or bigint-safe strings (sqlite, via CAST AS TEXT in the query). */
  query<Row extends object = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<Row[]>;
  /** Runs a statement and returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  /** Runs fn in one transaction; fn receives a handle bound to that transaction. */
  transaction<T>(fn: (tx: SqlDatabase) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** Cheap round trip, for readiness checks. Throws when the database is unreachable. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface TransactionOptions {
  /**
   * Exempts the transaction's statements from the query timeout (PostgreSQL). For schema
   * migrations at start, which may rightly wait for another instance's migration or run long
   * DDL; never for anything on a session's path.
   */
  unbounded?: boolean;
}

export interface OpenDatabaseOptions {
  /**
   * The longest one statement may take, connection and lock waits included, before it fails
   * (DATABASE_QUERY_TIMEOUT_MS). PostgreSQL: a client-side deadline plus the server's
   * statement_timeout and the pool's connection timeout. SQLite: the total time a statement
   * keeps retrying a busy database, asynchronously. Absent: no deadline on PostgreSQL, 5 s of
   * busy retries on SQLite (the command-line tools, which may run long reports).
   */
  queryTimeoutMs?: number;
}

export interface Migration {
  /** Unique and ordered within its module, e.g. "ledger_001_create". */
  id: string;
  sqlite: string;
  postgres: string;
}

/** Opens the database named by DATABASE_URL (`sqlite:<file>` or `postgres://…`). */
export async function openDatabase(databaseUrl: string, opts: OpenDatabaseOptions = {}): Promise<SqlDatabase> {
  if (databaseUrl.startsWith('sqlite:')) {
    const { openSqlite } = await import('./sqlite');
    return openSqlite(databaseUrl.slice('sqlite:'.length), opts);
  }
  const { openPostgres } = await import('./postgres');
  return openPostgres(databaseUrl, opts);
}

/**
 * Applies migrations not yet recorded in schema_migrations, in order, each in its own transaction.
 * On PostgreSQL an advisory lock serialises relay instances that start at the same time.
 */
export async function migrate(db: SqlDatabase, migrations: readonly Migration[]): Promise<string[]> {
  const applied: string[] = [];
  const ddl = 'CREATE TABLE IF NOT EXISTS schema_migrations (id TEXT PRIMARY KEY, applied_at TEXT NOT NULL)';
  await db.transaction(
    async (tx) => {
      // The lock comes first: two instances creating schema_migrations at once collide in the catalog.
      if (tx.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(727465)');
      await tx.run(ddl);
      const done = new Set((await tx.query<{ id: string }>('SELECT id FROM schema_migrations')).map((r) => r.id));
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        const sql = tx.dialect === 'postgres' ? m.postgres : m.sqlite;
        for (const statement of splitStatements(sql)) await tx.run(statement);
        await tx.run('INSERT INTO schema_migrations (id, applied_at) VALUES ($1, $2)', [m.id, new Date().toISOString()]);
        applied.push(m.id);
      }
    },
    // Waiting for another instance's migration, or a long DDL, is not a session stalling.
    { unbounded: true },
  );
  return applied;
}

/** Migrations hold plain DDL with no semicolons inside literals, so a split on `;` is safe. */
function splitStatements(sql: string): string[] {
  return sql
    .split(';')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
