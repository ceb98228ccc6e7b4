import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { migrate } from '../../src/storage/database';
import { ledgerMigrations, type LedgerEntry } from '../../src/storage/ledger';
import { DurableLedger } from '../../src/storage/ledger-durable';
import { BACKENDS, openTestDatabase, TEST_POSTGRES_URL, type TestDatabase } from '../support/databases';
import { entry, SwitchableDatabase, until } from './ledger-fixtures';

const FAST = { initialMs: 20, maxMs: 100 };

function spoolLine(e: LedgerEntry): string {
  return JSON.stringify({ v: 1, entry: { ...e, costNanos: e.costNanos.toString() } });
}

describe.each(BACKENDS)('DurableLedger on %s', (backend) => {
  let t: TestDatabase;
  let db: SwitchableDatabase;
  let dir: string;
  const warnings: string[] = [];
  const logger = { warn: (_o: object, m: string) => void warnings.push(m) };

  beforeEach(async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, ledgerMigrations);
    db = new SwitchableDatabase(t.db);
    dir = mkdtempSync(path.join(tmpdir(), 'relay-spool-'));
    warnings.length = 0;
  });
  afterEach(async () => {
    await t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes straight through while the database is up', async () => {
    const d = await DurableLedger.open({ db, spoolDir: dir, retry: FAST });
    const e = entry({ costNanos: 42n });
    expect(await d.record(e)).toBe('inserted');
    expect(await d.record(e)).toBe('duplicate');
    expect(d.spoolDepth()).toBe(0);
    expect(await d.spend({ user: 'alice' })).toBe(42n);
    expect(await d.flush(100)).toBe(0);
  });

  it('spools rows while the database is away and replays each exactly once when it is back', async () => {
    const d = await DurableLedger.open({ db, spoolDir: dir, retry: FAST, logger });
    const before = entry({ costNanos: 1n });
    expect(await d.record(before)).toBe('inserted');

    db.down = true;
    const during = [entry({ costNanos: 10n }), entry({ costNanos: 100n }), entry({ costNanos: 1000n })];
    for (const e of during) expect(await d.record(e)).toBe('spooled');
    // A retry of a row already in the database, made during the outage, is spooled too …
    expect(await d.record(before)).toBe('spooled');
    expect(d.spoolDepth()).toBe(4);
    expect(warnings).toContain('ledger write failed; row spooled for replay');
    // … and the spool is on disk, fsync'd, one JSON line per row.
    // A replay attempt may already have moved the older lines into the replay batch (an atomic
    // rename); the spool is that batch, then the active file.
    const spoolFile = (name: string): string => (existsSync(path.join(dir, name)) ? readFileSync(path.join(dir, name), 'utf8') : '');
    const lines = (spoolFile('ledger.replay.jsonl') + spoolFile('ledger.spool.jsonl')).trim().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { entry: { responseId: string } }).entry.responseId)).toEqual([...during, before].map((e) => e.responseId));

    // Replay attempts while down change nothing.
    await new Promise((r) => setTimeout(r, 120));
    expect(d.spoolDepth()).toBe(4);

    db.down = false;
    await until(() => d.spoolDepth() === 0);
    // 1 + 10 + 100 + 1000: the spooled duplicate of `before` was not counted again.
    expect(await d.spend({ user: 'alice' })).toBe(1111n);
    for (const e of during) expect((await d.find('openai', e.responseId))?.costNanos).toBe(e.costNanos);
    expect(existsSync(path.join(dir, 'ledger.replay.jsonl'))).toBe(false);
    expect(await d.flush(100)).toBe(0);
  });

  it('a crash mid-replay neither loses nor doubles a row', async () => {
    const rows = [entry({ costNanos: 1n }), entry({ costNanos: 2n }), entry({ costNanos: 4n })];
    const later = entry({ costNanos: 8n });
    // State left by a crash: rows[0] was replayed into the database, then the process died
    // with the batch still in the replay file, and one more row in the active spool.
    {
      const d = await DurableLedger.open({ db, spoolDir: dir, retry: FAST });
      expect(await d.record(rows[0])).toBe('inserted');
      await d.flush(0);
    }
    writeFileSync(path.join(dir, 'ledger.replay.jsonl'), rows.map(spoolLine).join('\n') + '\n');
    // … and a torn last write in the active file (the crash hit mid-append).
    writeFileSync(path.join(dir, 'ledger.spool.jsonl'), spoolLine(later) + '\n' + spoolLine(entry()).slice(0, 40));

    const d = await DurableLedger.open({ db, spoolDir: dir, retry: FAST, logger });
    expect(d.spoolDepth()).toBe(5);
    expect(warnings).toContain('ledger spool holds rows from an earlier run; replaying');
    await until(() => d.spoolDepth() === 0);
    expect(await d.spend({})).toBe(1n + 2n + 4n + 8n);
    // The torn line is kept aside for an operator, not retried.
    expect(readFileSync(path.join(dir, 'ledger.rejected.jsonl'), 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readdirSync(dir).sort()).toEqual(['ledger.rejected.jsonl']);
    await d.flush(0);
  });

  it('sets aside a row the reachable database refuses and replays the rest', async () => {
    const d = await DurableLedger.open({ db, spoolDir: dir, retry: FAST, logger });
    const bad = entry({ costNanos: 5n });
    const good = entry({ costNanos: 7n });
    db.refuse.add(bad.responseId);
    expect(await d.record(bad)).toBe('spooled');
    db.down = true;
    expect(await d.record(good)).toBe('spooled');
    db.down = false;
    await until(() => d.spoolDepth() === 0);
    expect(await d.spend({})).toBe(7n);
    expect(warnings).toContain('ledger refused a spooled row; moved to the rejected file');
    expect(readFileSync(path.join(dir, 'ledger.rejected.jsonl'), 'utf8')).toContain(bad.responseId);
    await d.flush(0);
  });

  it('flush drains on shutdown, and what it cannot drain waits on disk for the next start', async () => {
    const d = await DurableLedger.open({ db, spoolDir: dir, retry: { initialMs: 60_000, maxMs: 60_000 } });
    db.down = true;
    const e = entry({ costNanos: 3n });
    expect(await d.record(e)).toBe('spooled');
    expect(await d.flush(50)).toBe(1);

    const next = await DurableLedger.open({ db, spoolDir: dir, retry: { initialMs: 60_000, maxMs: 60_000 } });
    expect(next.spoolDepth()).toBe(1);
    db.down = false;
    expect(await next.flush(2000)).toBe(0);
    expect(await next.spend({})).toBe(3n);
  });

  it('gives up on a database that hangs and spools; the late write is then a duplicate', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const slow = Object.create(db) as SwitchableDatabase;
    slow.run = async (sql, params) => {
      await gate;
      return db.run(sql, params);
    };
    const d = await DurableLedger.open({ db: slow, spoolDir: dir, retry: { initialMs: 60_000, maxMs: 60_000 }, writeTimeoutMs: 50 });
    const e = entry({ costNanos: 9n });
    expect(await d.record(e)).toBe('spooled');
    release();
    await until(async () => (await db.query('SELECT id FROM usage_ledger')).length === 1);
    expect(await d.flush(2000)).toBe(0);
    expect(await d.spend({})).toBe(9n);
  });
});

describe('DurableLedger through a real PostgreSQL outage', () => {
  let t: TestDatabase;
  let dir: string;
  let dbName: string;

  async function admin(sql: string, params: string[] = []): Promise<void> {
    const c = new Client({ connectionString: TEST_POSTGRES_URL });
    await c.connect();
    try {
      await c.query(sql, params);
    } finally {
      await c.end();
    }
  }

  /** The server stops accepting connections to the database and cuts the open ones. */
  async function outage(): Promise<void> {
    await admin(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS false`);
    await admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName]);
  }

  beforeEach(async () => {
    t = await openTestDatabase('postgres');
    dbName = new URL(t.url).pathname.slice(1);
    await migrate(t.db, ledgerMigrations);
    dir = mkdtempSync(path.join(tmpdir(), 'relay-spool-'));
  });
  afterEach(async () => {
    await admin(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    await t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('spools during the outage and replays into the same pool once the server takes connections again', async () => {
    const d = await DurableLedger.open({ db: t.db, spoolDir: dir, retry: FAST });
    expect(await d.record(entry({ costNanos: 1n }))).toBe('inserted');

    await outage();
    const during = [entry({ costNanos: 20n }), entry({ costNanos: 300n })];
    for (const e of during) expect(await d.record(e)).toBe('spooled');
    expect(d.spoolDepth()).toBe(2);
    await expect(d.spend({})).rejects.toThrow();

    await admin(`ALTER DATABASE ${dbName} ALLOW_CONNECTIONS true`);
    await until(() => d.spoolDepth() === 0);
    expect(await d.spend({ user: 'alice' })).toBe(321n);
    expect((await d.usage({}))[0].responses).toBe(3);
    await d.flush(0);
  });
});
