import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';

/** PostgreSQL for tests: the machine's server, found through TEST_DATABASE_URL (CI starts it). */
export const TEST_POSTGRES_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A fresh, empty PostgreSQL database per call, so suites running in parallel never see each
 * other's rows. Fails loudly when the server is down: a Postgres test must not silently skip.
 */
export async function freshPostgresUrl(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `relay_test_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_POSTGRES_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new Client({ connectionString: TEST_POSTGRES_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestDatabase {
  db: SqlDatabase;
  url: string;
  cleanup: () => Promise<void>;
}

/** Both backends, for suites that must pass on each: `describe.each(BACKENDS)`. */
export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

export async function openTestDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const url = 'sqlite::memory:';
    const db = await openDatabase(url);
    return { db, url, cleanup: () => db.close() };
  }
  const pg = await freshPostgresUrl();
  const db = await openDatabase(pg.url);
  return {
    db,
    url: pg.url,
    cleanup: async () => {
      await db.close();
      await pg.drop();
    },
  };
}
