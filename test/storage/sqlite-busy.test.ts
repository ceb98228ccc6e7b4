import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { holdSqliteLock } from '../support/sqlite-lock';

describe('SQLite adapter: busy database and transactions', () => {
  let dir: string;
  let db: SqlDatabase;
  beforeEach(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-sqlite-busy-'));
    db = await openDatabase(`sqlite:${path.join(dir, 'relay.db')}`, { queryTimeoutMs: 600 });
    await db.run('CREATE TABLE t (v INTEGER NOT NULL)');
  });
  afterEach(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a write under another process\'s lock fails with SQLITE_BUSY at the query timeout, and the loop keeps turning meanwhile', async () => {
    const lock = await holdSqliteLock(path.join(dir, 'relay.db'), 3_000);
    let maxLag = 0;
    let last = performance.now();
    const tick = setInterval(() => {
      const now = performance.now();
      maxLag = Math.max(maxLag, now - last);
      last = now;
    }, 5);
    const started = Date.now();
    await expect(db.run('INSERT INTO t (v) VALUES (1)')).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    const waited = Date.now() - started;
    clearInterval(tick);
    // It waited (asynchronously) for most of its budget before giving up …
    expect(waited).toBeGreaterThanOrEqual(400);
    // … and reads were never blocked (WAL): the lock holder is a writer.
    expect(await db.query('SELECT COUNT(*) AS n FROM t')).toEqual([{ n: 0 }]);
    // A correctness bound, not a benchmark: the old synchronous busy wait blocked the loop for all of it.
    expect(maxLag).toBeLessThan(300);
    await lock.released;
    expect(await db.run('INSERT INTO t (v) VALUES (1)')).toBe(1);
  }, 20_000);

  it('a write that meets a brief lock lands once the lock is gone, within its budget', async () => {
    const lock = await holdSqliteLock(path.join(dir, 'relay.db'), 200);
    expect(await db.run('INSERT INTO t (v) VALUES (2)')).toBe(1);
    await lock.released;
  });

  it('a transaction whose BEGIN meets a brief lock starts once the lock is gone', async () => {
    const lock = await holdSqliteLock(path.join(dir, 'relay.db'), 200);
    await db.transaction(async (t) => void (await t.run('INSERT INTO t (v) VALUES (3)')));
    await lock.released;
    expect(await db.query('SELECT v FROM t')).toEqual([{ v: 3 }]);
  });

  it('statements from outside wait for an open transaction and do not roll back with it', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const tx = db.transaction(async (t) => {
      await t.run('INSERT INTO t (v) VALUES (10)');
      await gate;
      throw new Error('abort the transaction');
    });
    tx.catch(() => undefined);
    // Issued while the transaction is open: it must not become part of it.
    const outside = db.run('INSERT INTO t (v) VALUES (20)');
    await new Promise((r) => setTimeout(r, 20));
    release();
    await expect(tx).rejects.toThrow('abort the transaction');
    expect(await outside).toBe(1);
    expect(await db.query('SELECT v FROM t ORDER BY v')).toEqual([{ v: 20 }]);
  });

  it('code inside a transaction may use the outer handle without waiting for itself', async () => {
    await db.transaction(async (t) => {
      await t.run('INSERT INTO t (v) VALUES (1)');
      await db.run('INSERT INTO t (v) VALUES (2)');
      await db.transaction(async (inner) => inner.run('INSERT INTO t (v) VALUES (3)'));
    });
    expect(await db.query('SELECT COUNT(*) AS n FROM t')).toEqual([{ n: 3 }]);
  });
});
