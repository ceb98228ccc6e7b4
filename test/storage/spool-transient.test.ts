import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { migrate, openDatabase, type SqlDatabase } from '../../src/storage/database';
import { isDataError } from '../../src/storage/db-errors';
import { ledgerMigrations, type LedgerEntry } from '../../src/storage/ledger';
import { DurableLedger } from '../../src/storage/ledger-durable';
import { BACKENDS, freshPostgresUrl, openTestDatabase } from '../support/databases';
import { holdSqliteLock } from '../support/sqlite-lock';
import { entry, SwitchableDatabase, until } from './ledger-fixtures';

const FAST = { initialMs: 20, maxMs: 200 };

function spoolLine(e: LedgerEntry, over: Record<string, unknown> = {}): string {
  return JSON.stringify({ v: 1, entry: { ...e, costNanos: e.costNanos.toString(), ...over } });
}

async function rowsFor(db: SqlDatabase, responseId: string): Promise<number> {
  return (await db.query('SELECT id FROM usage_ledger WHERE response_id = $1', [responseId])).length;
}

describe('the spool keeps a row through transient database errors', () => {
  let dir: string;
  const warnings: string[] = [];
  const logger = { warn: (_o: object, m: string) => void warnings.push(m) };

  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-spool-transient-'));
    warnings.length = 0;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('SQLite locked by another process for 12 s: the row waits, then lands exactly once; nothing is rejected', async () => {
    const file = path.join(dir, 'relay.db');
    const db = await openDatabase(`sqlite:${file}`, { queryTimeoutMs: 300 });
    try {
      await migrate(db, ledgerMigrations);
      const d = await DurableLedger.open({ db, spoolDir: path.join(dir, 'spool'), retry: FAST, logger });
      // Longer than two of the old 5 s busy waits: the write and the first replay both fail.
      const lock = await holdSqliteLock(file, 12_000);
      const e = entry({ costNanos: 77n });
      expect(await d.record(e)).toBe('spooled');
      expect(d.spoolDepth()).toBe(1);

      // While locked, replays fail with SQLITE_BUSY again and again (a `SELECT 1` succeeds all along).
      await new Promise((r) => setTimeout(r, 1_500));
      expect(existsSync(path.join(dir, 'spool', 'ledger.rejected.jsonl'))).toBe(false);
      expect(d.spoolDepth()).toBe(1);
      await db.ping();

      await lock.released;
      await until(() => d.spoolDepth() === 0, 10_000);
      expect(await rowsFor(db, e.responseId)).toBe(1);
      expect(await d.spend({})).toBe(77n);
      expect(existsSync(path.join(dir, 'spool', 'ledger.rejected.jsonl'))).toBe(false);
      // Rate-limited: one warning for the whole episode, not one per attempt.
      expect(warnings.filter((w) => w.startsWith('ledger')).length).toBeLessThanOrEqual(2);
      expect(warnings).not.toContain('ledger refused a spooled row; moved to the rejected file');
      await d.flush(0);
    } finally {
      await db.close();
    }
  }, 40_000);

  it('PostgreSQL statement_timeout while another connection locks the ledger: the row waits, then lands exactly once', async () => {
    const pg = await freshPostgresUrl();
    // statement_timeout as a server setting too, so the old code meets the same 57014 errors.
    const url = new URL(pg.url);
    url.searchParams.set('options', '-c statement_timeout=300');
    const db = await openDatabase(url.toString(), { queryTimeoutMs: 300 });
    const locker = new Client({ connectionString: pg.url });
    try {
      await migrate(db, ledgerMigrations);
      const d = await DurableLedger.open({ db, spoolDir: path.join(dir, 'spool'), retry: FAST, logger });
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE usage_ledger IN ACCESS EXCLUSIVE MODE');

      const e = entry({ costNanos: 55n });
      expect(await d.record(e)).toBe('spooled');
      // Several replays meet the lock and time out (SQLSTATE 57014) while `SELECT 1` answers.
      await new Promise((r) => setTimeout(r, 2_000));
      await db.ping();
      expect(existsSync(path.join(dir, 'spool', 'ledger.rejected.jsonl'))).toBe(false);
      expect(d.spoolDepth()).toBe(1);

      await locker.query('COMMIT');
      await until(() => d.spoolDepth() === 0, 10_000);
      expect(await rowsFor(db, e.responseId)).toBe(1);
      expect(existsSync(path.join(dir, 'spool', 'ledger.rejected.jsonl'))).toBe(false);
      expect(warnings).not.toContain('ledger refused a spooled row; moved to the rejected file');
      await d.flush(0);
    } finally {
      await locker.end().catch(() => undefined);
      await db.close();
      await pg.drop();
    }
  }, 30_000);
});

describe('spool age and warnings', () => {
  it('reports how long the oldest row has waited, across a restart, and warns once per interval', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-spool-age-'));
    const t = await openTestDatabase('sqlite');
    try {
      await migrate(t.db, ledgerMigrations);
      const db = new SwitchableDatabase(t.db);
      const warnings: string[] = [];
      const logger = { warn: (_o: object, m: string) => void warnings.push(m) };
      const opts = { db, spoolDir: dir, retry: FAST, logger, warnIntervalMs: 60_000 };
      const d = await DurableLedger.open(opts);
      expect(d.spoolOldestAgeSeconds()).toBe(0);
      db.down = true;
      const first = Date.now();
      for (let i = 0; i < 5; i++) expect(await d.record(entry())).toBe('spooled');
      await new Promise((r) => setTimeout(r, 400));
      // The first row's age, not the last's; many failed replays, one warning.
      expect(d.spoolOldestAgeSeconds()).toBeGreaterThanOrEqual((Date.now() - first - 50) / 1000);
      expect(warnings).toEqual(['ledger write failed; row spooled for replay']);
      await d.flush(0);

      // Another process start finds the rows and their age on disk.
      const again = await DurableLedger.open({ ...opts, retry: { initialMs: 60_000, maxMs: 60_000 } });
      expect(again.spoolDepth()).toBe(5);
      expect(again.spoolOldestAgeSeconds()).toBeGreaterThanOrEqual(0.4);
      db.down = false;
      expect(await again.flush(5_000)).toBe(0);
      expect(again.spoolOldestAgeSeconds()).toBe(0);
    } finally {
      await t.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(BACKENDS)('a row the database refuses for its data still goes to the rejected file (%s)', (backend) => {
  it('sets aside a NOT NULL violation and replays the good rows around it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-spool-data-'));
    const t = await openTestDatabase(backend);
    try {
      await migrate(t.db, ledgerMigrations);
      const bad = entry({ costNanos: 5n });
      const good = [entry({ costNanos: 7n }), entry({ costNanos: 11n })];
      // A spool left by an earlier run, with a row no database will take (model is NOT NULL).
      writeFileSync(path.join(dir, 'ledger.spool.jsonl'), [spoolLine(good[0]), spoolLine(bad, { model: null }), spoolLine(good[1])].join('\n') + '\n');
      const warnings: string[] = [];
      const d = await DurableLedger.open({ db: t.db, spoolDir: dir, retry: FAST, logger: { warn: (_o, m) => void warnings.push(m) } });
      await until(() => d.spoolDepth() === 0);
      expect(await d.spend({})).toBe(18n);
      const rejected = readFileSync(path.join(dir, 'ledger.rejected.jsonl'), 'utf8').trim().split('\n');
      expect(rejected).toHaveLength(1);
      expect(rejected[0]).toContain(bad.responseId);
      expect(warnings).toContain('ledger refused a spooled row; moved to the rejected file');
      await d.flush(0);
    } finally {
      await t.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('isDataError', () => {
  const coded = (code: string): Error => Object.assign(new Error(code), { code });

  it.each(['SQLITE_CONSTRAINT_NOTNULL', 'SQLITE_CONSTRAINT_CHECK', 'SQLITE_MISMATCH', 'SQLITE_TOOBIG', '23502', '23514', '22003', '22P02'])('%s is a data error', (code) => {
    expect(isDataError(coded(code))).toBe(true);
  });

  it.each(['SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT', 'SQLITE_LOCKED', 'SQLITE_READONLY', 'SQLITE_FULL', 'SQLITE_IOERR_WRITE', 'SQLITE_CANTOPEN', '57014', '55P03', '40001', '40P01', '53100', '25006', '08006', '57P01', 'ECONNREFUSED', 'QUERY_TIMEOUT'])(
    '%s is transient',
    (code) => {
      expect(isDataError(coded(code))).toBe(false);
    },
  );

  it('a value the driver cannot bind is a data error; a code-less plain error is not', () => {
    expect(isDataError(new RangeError('BigInt too large'))).toBe(true);
    expect(isDataError(new Error('Connection terminated unexpectedly'))).toBe(false);
  });
});
