import { migrate, type Migration } from '../../src/storage/database';
import { toSqlitePlaceholders } from '../../src/storage/sqlite';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';

const migrations: Migration[] = [
  {
    id: 'test_001',
    sqlite: 'CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL); CREATE INDEX t_n ON t (n)',
    postgres: 'CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL); CREATE INDEX t_n ON t (n)',
  },
];

describe('toSqlitePlaceholders', () => {
  it('rewrites $n in order of appearance, binding repeats twice', () => {
    expect(toSqlitePlaceholders('SELECT $2, $1, $2', ['a', 'b'])).toEqual({ sql: 'SELECT ?, ?, ?', params: ['b', 'a', 'b'] });
  });
  it('refuses a placeholder with no parameter', () => {
    expect(() => toSqlitePlaceholders('SELECT $3', ['a'])).toThrow(/\$3/);
  });
});

describe.each(BACKENDS)('SqlDatabase on %s', (backend) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await openTestDatabase(backend);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('applies migrations once', async () => {
    expect(await migrate(t.db, migrations)).toEqual(['test_001']);
    expect(await migrate(t.db, migrations)).toEqual([]);
    expect(await t.db.run('INSERT INTO t (id, n) VALUES ($1, $2)', ['a', 1])).toBe(1);
    expect(await t.db.query('SELECT id FROM t WHERE n = $1', [1])).toEqual([{ id: 'a' }]);
  });

  it('rolls a failed transaction back', async () => {
    await migrate(t.db, migrations);
    await expect(
      t.db.transaction(async (tx) => {
        await tx.run('INSERT INTO t (id, n) VALUES ($1, $2)', ['x', 1]);
        await tx.run('INSERT INTO t (id, n) VALUES ($1, $2)', ['x', 2]);
      }),
    ).rejects.toThrow();
    expect(await t.db.query('SELECT id FROM t')).toEqual([]);
  });
});
