import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describeDatabaseUrl, openDatabaseChecked } from '../../src/storage/open-checked';

/** A port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('opening DATABASE_URL', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-open-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fails at once, naming DATABASE_URL and the file, when sqlite: points under a path that cannot hold a directory', async () => {
    const notADir = path.join(dir, 'a-file');
    writeFileSync(notADir, 'x');
    const url = `sqlite:${path.join(notADir, 'relay.db')}`;
    await expect(openDatabaseChecked(url)).rejects.toThrow(`Cannot open the database in DATABASE_URL (SQLite file ${path.join(notADir, 'relay.db')}): `);
    await expect(openDatabaseChecked(url)).rejects.toThrow(/writable directory/);
  });

  it('fails at once on a read-only file system', async () => {
    // /proc refuses new files even to root, the user CI runs as.
    await expect(openDatabaseChecked('sqlite:/proc/relay-test.db')).rejects.toThrow(/DATABASE_URL \(SQLite file \/proc\/relay-test.db\)/);
  });

  it('names the host and database, never the password, when PostgreSQL is unreachable', async () => {
    const port = await closedPort();
    const err = await openDatabaseChecked(`postgres://relay:s3cret-pw@127.0.0.1:${port}/ledger`).then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(new RegExp(`^Cannot open the database in DATABASE_URL \\(PostgreSQL at 127\\.0\\.0\\.1:${port}, database ledger\\): .*ECONNREFUSED`));
    expect(err?.message).not.toContain('s3cret-pw');
  });

  it('describes each kind of URL', () => {
    expect(describeDatabaseUrl('sqlite::memory:')).toBe('SQLite in memory');
    expect(describeDatabaseUrl('postgresql://u:p@db.internal/relay')).toBe('PostgreSQL at db.internal:5432, database relay');
  });
});
