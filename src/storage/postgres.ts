import { Pool, type PoolClient, type QueryConfig, type QueryResult } from 'pg';
import type { OpenDatabaseOptions, SqlDatabase, SqlValue, TransactionOptions } from './database';
import { QueryTimeoutError } from './db-errors';

type Queryable = Pool | PoolClient;

/**
 * pg's client-side read timeout, past the server's statement_timeout: normally the server
 * cancels a slow statement first (SQLSTATE 57014, the connection stays usable); this one only
 * fires for a server that stopped answering at all, and pg then drops that connection.
 */
const READ_TIMEOUT_GRACE_MS = 1_000;

class PostgresDatabase implements SqlDatabase {
  readonly dialect = 'postgres' as const;

  /** `timeoutMs`: the deadline of each statement through this handle; null for none. */
  constructor(
    private readonly target: Queryable,
    private readonly pool: Pool,
    private readonly timeoutMs: number | null,
  ) {}

  async query<Row extends object>(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const result = await this.send(sql, params);
    return result.rows as Row[];
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const result = await this.send(sql, params);
    return result.rowCount ?? 0;
  }

  async transaction<T>(fn: (tx: SqlDatabase) => Promise<T>, opts: TransactionOptions = {}): Promise<T> {
    if (this.target !== this.pool) return fn(this);
    const connecting = this.pool.connect();
    const client = await this.bounded(connecting).catch((err: unknown) => {
      // Given up on: a connection that still arrives goes straight back to the pool.
      connecting.then((c) => c.release(), () => undefined);
      throw err;
    });
    let failure: unknown = null;
    const tx = new PostgresDatabase(client, this.pool, opts.unbounded ? null : this.timeoutMs);
    try {
      await tx.send('BEGIN', []);
      // The pool's statement_timeout is a session setting; LOCAL undoes it for this transaction only.
      if (opts.unbounded && this.timeoutMs !== null) await tx.send('SET LOCAL statement_timeout = 0', []);
      const result = await fn(tx);
      await tx.send('COMMIT', []);
      return result;
    } catch (err) {
      failure = err;
      // After a timeout the connection may never answer again: no ROLLBACK to wait on, it is destroyed below.
      if (!(err instanceof QueryTimeoutError)) {
        await tx.send('ROLLBACK', []).catch((rollbackErr: unknown) => {
          failure = rollbackErr;
        });
      }
      throw err;
    } finally {
      // A connection whose statement timed out client-side may still be busy on the server (or
      // gone): destroy it rather than hand it to the next caller; the server rolls back.
      client.release(failure instanceof QueryTimeoutError ? failure : undefined);
    }
  }

  async ping(): Promise<void> {
    await this.send('SELECT 1', []);
  }

  async close(): Promise<void> {
    if (this.target === this.pool) await this.pool.end();
  }

  private send(sql: string, params: readonly SqlValue[]): Promise<QueryResult> {
    const config: QueryConfig = { text: sql, values: params as unknown[] };
    if (this.timeoutMs !== null) (config as QueryConfig & { query_timeout?: number }).query_timeout = this.timeoutMs + READ_TIMEOUT_GRACE_MS;
    return this.bounded(this.target.query(config));
  }

  /**
   * One deadline over everything a statement waits for: a free pool slot, a new connection's
   * handshake, lock waits and the answer. pg's own timeouts each bound only one of those, so
   * together they could add up; this one is what callers (a budget check on a session) rely on.
   * The abandoned promise settles later through pg's own timeouts and is ignored.
   */
  private bounded<T>(p: Promise<T>): Promise<T> {
    if (this.timeoutMs === null) return p;
    const ms = this.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new QueryTimeoutError(ms)), ms);
    });
    p.catch(() => undefined);
    return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
  }
}

export function openPostgres(connectionString: string, opts: OpenDatabaseOptions = {}): SqlDatabase {
  const timeoutMs = opts.queryTimeoutMs ?? null;
  const pool = new Pool({
    connectionString,
    max: 10,
    // Fail fast when the server is down so the ledger falls back to its spool instead of hanging.
    connectionTimeoutMillis: timeoutMs === null ? 3000 : Math.min(3000, timeoutMs),
    idleTimeoutMillis: 30000,
    // The server gives up on a statement (lock waits included) at the same deadline as the
    // client, so a timed-out budget check or insert frees its connection and its locks.
    ...(timeoutMs === null ? {} : { statement_timeout: timeoutMs }),
  });
  // An idle client losing its server emits 'error' on the pool; without a listener that crashes the process.
  pool.on('error', () => undefined);
  return new PostgresDatabase(pool, pool, timeoutMs);
}
