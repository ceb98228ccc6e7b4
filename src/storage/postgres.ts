import { Pool, type PoolClient } from 'pg';
import type { SqlDatabase, SqlValue } from './database';

type Queryable = Pool | PoolClient;

class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;

  constructor(
    private readonly target: Queryable,
    private readonly pool: Pool,
  ) {}

  async query<Row extends object>(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const result = await this.target.query(sql, params as unknown[]);
    return result.rows as Row[];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const result = await this.target.query(sql, params as unknown[]);
    return result.rowCount ?? 0;
  }

  async transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    if (this.target !== this.pool) return fn(this);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PostgresDatabase(client, this.pool));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async ping(): Promise<void> {
    await this.target.query('SELECT 1');
  }

  async close(): Promise<void> {
    if (this.target === this.pool) await this.pool.end();
  }
}

export function openPostgres(connectionString: string): SqlDatabase {
  const pool = new Pool({
    connectionString,
    max: 10,
    // Fail fast when the server is down so the ledger falls back to its spool instead of hanging.
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30000,
  });
  // An idle client losing its server emits 'error' on the pool; without a listener that crashes the process.
  pool.on('error', () => undefined);
  return new PostgresDatabase(pool, pool);
}
