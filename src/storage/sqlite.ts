import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import type { OpenDatabaseOptions, SqlDatabase, SqlValue } from './database';
import { isSqliteBusy } from './db-errors';

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
 * that keeps the SQLite code (e.g. SQLITE_CONSTRAINT_UNIQUE) and the name (a RangeError from
 * binding stays one: db-errors.ts classifies it as a data error).
 */
function normalised(err: unknown): Error {
  if (err instanceof Error) return err;
  const e = err as { message?: unknown; code?: unknown; name?: unknown };
  const out = Object.assign(new Error(typeof e?.message === 'string' ? e.message : String(err)), { code: e?.code });
  if (typeof e?.name === 'string') out.name = e.name;
  return out;
}

function guarded<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw normalised(err);
  }
}

/**
 * How the relay keeps better-sqlite3 (synchronous: a statement runs on the event loop) from
 * stalling every session while another process holds the write lock.
 *
 * Chosen: no busy wait inside SQLite at all (busy_timeout 0) and asynchronous retries, not a
 * worker thread. SQLite's own busy handler sleeps on the calling thread, so the old 5 s
 * busy_timeout froze the whole relay for 5 s per write. Here a statement that meets a held lock
 * fails at once with SQLITE_BUSY, waits on a timer (the loop goes on relaying frames) and
 * tries again, up to the query timeout; then a ledger row goes to the spool, whose replay keeps
 * retrying with backoff. Not even a short busy timeout (say 20 ms): with several writes waiting
 * at once, each retry would block the loop that long, and a frame crossing the relay needs a few
 * loop turns, so 20 ms slices added up to 300 ms gaps in a bystander's stream. Reads need no
 * retry in practice (in WAL mode readers never wait for a writer) but get the same policy.
 *
 * A worker thread would also keep the loop free, but it adds a message hop and a copy of every
 * parameter and row to each query, serialises reads behind a waiting write (so reads would need
 * a second connection or their own timeout anyway), and moves transaction state to another
 * thread; for the embedded single-instance backend that is more machinery than the problem
 * needs. What still runs on the loop is a statement's own work (a WAL append; a passive
 * checkpoint every ~1000 pages), which is short.
 */
const BUSY_SLICE_MS = 0;
/** Busy retries when the opener gives no query timeout (command-line tools): the old 5 s. */
const DEFAULT_BUSY_BUDGET_MS = 5_000;
/** Pauses between attempts: short at first (most locks are brief), then at most 10 tries a second. */
const RETRY_PAUSE_MS = { first: 5, max: 100 };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The executor whose transaction the current async call chain runs inside, if any. */
const transactionScope = new AsyncLocalStorage<Executor>();

/** One statement at a time against the one connection, with the busy policy above. */
class Executor {
  /** Resolves when the open transaction ends; null when none is open. */
  transactionDone: Promise<void> | null = null;

  constructor(
    readonly driver: Driver,
    private readonly busyBudgetMs: number,
  ) {}

  /** True when the current async call chain runs inside this connection's open transaction. */
  insideTransaction(): boolean {
    return this.transactionDone !== null && transactionScope.getStore() === this;
  }

  /**
   * Runs `fn` (synchronous driver work), retrying on SQLITE_BUSY / SQLITE_LOCKED after a timer
   * until the busy budget is spent.
   *
   * Statements from outside a transaction first wait for an open one to end, so they never join
   * it (and its rollback). The check and the statement run in one synchronous step (no await in
   * between), or a transaction could open in the gap. Code running inside the transaction's
   * callback is let through even when it uses the outer handle, which would otherwise wait for
   * itself. Inside a transaction there is no retry: it already holds the write lock (BEGIN
   * IMMEDIATE), and a busy statement there is the caller's to roll back.
   */
  async attempt<T>(fn: () => T, txHandle: boolean, begin = false): Promise<T> {
    // `begin`: the transaction's own BEGIN, which holds the gate already and may retry.
    const inside = !begin && (txHandle || this.insideTransaction());
    const deadline = Date.now() + this.busyBudgetMs;
    let pause = RETRY_PAUSE_MS.first;
    for (;;) {
      while (!inside && !begin && this.transactionDone) await this.transactionDone;
      try {
        return guarded(fn);
      } catch (err) {
        if (inside || !isSqliteBusy(err) || Date.now() + pause > deadline) throw err;
      }
      await sleep(pause);
      pause = Math.min(pause * 2, RETRY_PAUSE_MS.max);
    }
  }
}

class SqliteDatabase implements SqlDatabase {
  readonly dialect = 'sqlite' as const;

  /** `inTransaction`: this handle is the one given to a transaction's callback. */
  constructor(
    private readonly exec: Executor,
    private readonly inTransaction = false,
  ) {}

  async query<Row extends object>(sql: string, params: readonly SqlValue[] = []): Promise<Row[]> {
    const q = toSqlitePlaceholders(sql, params);
    return this.exec.attempt(() => {
      const stmt = this.exec.driver.prepare(q.sql);
      if (!stmt.reader) {
        stmt.run(...q.params);
        return [];
      }
      return stmt.all(...q.params) as Row[];
    }, this.inTransaction);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const q = toSqlitePlaceholders(sql, params);
    return this.exec.attempt(() => {
      const stmt = this.exec.driver.prepare(q.sql);
      if (stmt.reader) {
        stmt.all(...q.params);
        return 0;
      }
      return stmt.run(...q.params).changes;
    }, this.inTransaction);
  }

  async transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    // A nested call (through either handle) runs inside the outer transaction.
    if (this.inTransaction) return fn(this);
    if (this.exec.insideTransaction()) return fn(new SqliteDatabase(this.exec, true));
    // One transaction at a time on the one connection: the callback is async, so without this
    // gate a second caller's statements would run inside (and roll back with) the first's.
    // No await between the last check and taking the gate.
    while (this.exec.transactionDone) await this.exec.transactionDone;
    let end: () => void = () => undefined;
    this.exec.transactionDone = new Promise<void>((r) => (end = r));
    try {
      // With busy retries like any statement, but without waiting for the gate it holds itself.
      await this.exec.attempt(() => this.exec.driver.exec('BEGIN IMMEDIATE'), false, true);
      try {
        const result = await transactionScope.run(this.exec, () => fn(new SqliteDatabase(this.exec, true)));
        guarded(() => this.exec.driver.exec('COMMIT'));
        return result;
      } catch (err) {
        if (this.exec.driver.inTransaction) this.exec.driver.exec('ROLLBACK');
        throw err;
      }
    } finally {
      this.exec.transactionDone = null;
      end();
    }
  }

  async ping(): Promise<void> {
    await this.exec.attempt(() => this.exec.driver.prepare('SELECT 1').get(), this.inTransaction);
  }

  async close(): Promise<void> {
    if (this.inTransaction) return;
    if (this.exec.driver.open) this.exec.driver.close();
  }
}

export function openSqlite(file: string, opts: OpenDatabaseOptions = {}): SqlDatabase {
  const memory = file === ':memory:' || file === '';
  if (!memory) mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const driver = new BetterSqlite3(memory ? ':memory:' : file);
  // WAL lets readers (usage API, budget checks) run beside the writer; NORMAL sync is durable
  // across process crashes, which is the failure a relay sees, at a fraction of FULL's cost.
  driver.pragma('journal_mode = WAL');
  driver.pragma('synchronous = NORMAL');
  // None on purpose: see BUSY_SLICE_MS. Waits happen off the loop, in Executor.attempt.
  driver.pragma(`busy_timeout = ${BUSY_SLICE_MS}`);
  driver.pragma('foreign_keys = ON');
  return new SqliteDatabase(new Executor(driver, opts.queryTimeoutMs ?? DEFAULT_BUSY_BUDGET_MS));
}
