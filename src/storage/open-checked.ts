/**
 * Opens DATABASE_URL and makes one round trip before anything else uses it, so a start that
 * cannot reach its database stops at once with a message naming the setting and the file or
 * host, instead of an opaque driver error (or a wait) deep inside the first migration.
 */
import path from 'node:path';
import { openDatabase, type OpenDatabaseOptions, type SqlDatabase } from './database';

export class DatabaseOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseOpenError';
  }
}

/** Where DATABASE_URL points, in words, without its password. */
export function describeDatabaseUrl(databaseUrl: string): string {
  if (databaseUrl.startsWith('sqlite:')) {
    const file = databaseUrl.slice('sqlite:'.length);
    return file === ':memory:' || file === '' ? 'SQLite in memory' : `SQLite file ${path.resolve(file)}`;
  }
  try {
    const u = new URL(databaseUrl);
    return `PostgreSQL at ${u.hostname}:${u.port || '5432'}, database ${decodeURIComponent(u.pathname.replace(/^\//, '')) || '(default)'}`;
  } catch {
    return 'PostgreSQL (unparsable URL)';
  }
}

function causeOf(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const e = err as { message?: unknown; code?: unknown; errors?: unknown };
  // pg reports "connect ECONNREFUSED" for each address as an AggregateError with an empty message.
  if (Array.isArray(e.errors) && e.errors.length > 0) return causeOf(e.errors[0]);
  const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(e.code ?? 'unknown error');
  return message;
}

export async function openDatabaseChecked(databaseUrl: string, options?: OpenDatabaseOptions): Promise<SqlDatabase> {
  const where = describeDatabaseUrl(databaseUrl);
  let db: SqlDatabase | undefined;
  try {
    db = await openDatabase(databaseUrl, options);
    await db.ping();
    return db;
  } catch (err) {
    await db?.close().catch(() => undefined);
    const hint = databaseUrl.startsWith('sqlite:')
      ? 'point DATABASE_URL at a file in a writable directory (e.g. sqlite:./data/relay.db)'
      : 'check that the server is running and reachable, and the user, password and database in DATABASE_URL';
    throw new DatabaseOpenError(`Cannot open the database in DATABASE_URL (${where}): ${causeOf(err)}; ${hint}`);
  }
}
