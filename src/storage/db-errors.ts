/**
 * Which database failures are about the row itself and which are about the database's state.
 *
 * The spool may throw a row away only when the database refuses that row for its DATA: retrying
 * it can never succeed, and would block every row behind it. Everything else (busy, locked,
 * a statement or connection timeout, read-only, disk full, a lost connection, even a missing
 * table while a migration is pending) is the database's condition, which passes: such rows are
 * retried until they land. When in doubt an error is transient, because a row kept too long
 * costs a retry and a row thrown away costs money.
 */

/**
 * SQLite result codes that mean "this row cannot be stored": a NOT NULL / CHECK / foreign-key
 * constraint (uniqueness never reaches here: the ledger inserts with ON CONFLICT DO NOTHING),
 * a datatype mismatch, a value too big, a bind parameter out of range.
 */
const SQLITE_DATA_CODES = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)(_|$)/;

/** SQLSTATE classes 22 (data exception, e.g. 22003 numeric out of range) and 23 (integrity constraint violation). */
const PG_DATA_SQLSTATE = /^2[23][0-9A-Z]{3}$/;

/** SQLite codes of a database that is busy or locked by another connection or process. */
const SQLITE_BUSY_CODES = /^SQLITE_(BUSY|LOCKED)(_|$)/;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True when the database refused the row for its content; false for every transient condition. */
export function isDataError(err: unknown): boolean {
  const code = codeOf(err);
  if (code !== undefined) return SQLITE_DATA_CODES.test(code) || PG_DATA_SQLSTATE.test(code);
  // No code: the driver refused to bind a value before the database saw it (better-sqlite3
  // throws RangeError for a BigInt past 64 bits, TypeError for a value of no SQL type). That is
  // deterministic in the row, so it is a data error too. Other code-less errors (our own
  // timeouts, socket errors) are transient.
  const name = (err as { name?: unknown } | null)?.name;
  return name === 'RangeError' || name === 'TypeError';
}

/** True when SQLite answered "busy" or "locked": another connection holds the lock. */
export function isSqliteBusy(err: unknown): boolean {
  const code = codeOf(err);
  return code !== undefined && SQLITE_BUSY_CODES.test(code);
}

/** A statement given up on after the configured DATABASE_QUERY_TIMEOUT_MS (transient). */
export class QueryTimeoutError extends Error {
  readonly code = 'QUERY_TIMEOUT';
  constructor(ms: number) {
    super(`database did not answer within ${ms} ms`);
    this.name = 'QueryTimeoutError';
  }
}
