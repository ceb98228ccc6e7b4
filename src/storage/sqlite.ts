import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { SqlDatabase, SqlValue } from './database';

type Driver = BetterSqlite3.Database;

/**
 * Rewrites `$n` placeholders to positional `?` and orders the parameters to match,
 * so one SQL text serves both backends (a `$n` used twice is bound twice).
 */
export function toSqlitePlaceholders(sql: string, params: readonly SqlValue[]): { sql: string; params: unknown[] } {
  const ordered: unknown[] = [];
  const rewritten = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    const index = Number(n) - 1;
    if (index < 0 || index >= params.length) throw new RangeError(`placeholder $${n} has no parameter`);
    const v = params[index];
    ordered.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return '?';
  });
  return { sql: rewritten, params: ordered };
}

/**
 * better-sqlite3's error class comes from the realm that first loaded the addon, so under test
 * runners with per-file realms its errors fail `instanceof Error`. Rethrow as a plain Error
 * that keeps the SQLite code (e.g. SQLITE_CONSTRAINT_UNIQUE).
 */
function normalised(err: unknown): Error {
  if (err instanceof Error) return err;
  const e = err as { message?: unknown; code?: unknown };
  return Object.assign(new Error(typeof e?.message === 'string' ? e.message : String(err)), { code: e?.code });
}

function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw normalised(err);
  }
}

class SqliteDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;
  private inTransaction = false;

  constructor(private readonly driver: Driver) {}

  async query<Row extends object>(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const q = toSqlitePlaceholders(sql, params);
    return guarded(() => {
      const stmt = this.driver.prepare(q.sql);
      if (!stmt.reader) {
        stmt.run(...q.params);
        return [];
      }
      return stmt.all(...q.params) as Row[];
    });
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const q = toSqlitePlaceholders(sql, params);
    return guarded(() => {
      const stmt = this.driver.prepare(q.sql);
      if (stmt.reader) {
        stmt.all(...q.params);
        return 0;
      }
      return stmt.run(...q.params).changes;
    });
  }

  async transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    // better-sqlite3 is synchronous and the handle is per process, so an async callback
    // is safe as long as no other transaction interleaves: nested calls reuse the outer one.
    if (this.inTransaction) return fn(this);
    guarded(() => this.driver.exec('BEGIN IMMEDIATE'));
    this.inTransaction = true;
    try {
      const result = await fn(this);
      this.driver.exec('COMMIT');
      return result;
    } catch (err) {
      this.driver.exec('ROLLBACK');
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  async ping(): Promise<void> {
    this.driver.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    if (this.driver.open) this.driver.close();
  }
}

export function openSqlite(file: string): SqlDatabase {
  const memory = file === ':memory:' || file === '';
  if (!memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const driver = new BetterSqlite3(memory ? ':memory:' : file);
  // WAL lets readers (usage API) run beside the writer; NORMAL sync is durable across
  // process crashes, which is the failure a relay sees, at a fraction of FULL's cost.
  driver.pragma('journal_mode = WAL');
  driver.pragma('synchronous = NORMAL');
  driver.pragma('busy_timeout = 5000');
  driver.pragma('foreign_keys = ON');
  return new SqliteDatabase(driver);
}
