import { BudgetGuard } from '../../src/metering/budget-guard';
import { migrate } from '../../src/storage/database';
import { BudgetStore, budgetMigrations } from '../../src/storage/budgets';
import { Ledger, ledgerMigrations } from '../../src/storage/ledger';
import { decodeCursor, encodeCursor, SessionLogStore, sessionLogMigrations } from '../../src/storage/sessions';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { entry, T0 } from './ledger-fixtures';

const USD = 1_000_000_000n;

describe.each(BACKENDS)('spend log and key budgets on %s', (backend) => {
  let t: TestDatabase;
  let ledger: Ledger;
  let log: SessionLogStore;

  beforeEach(async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, [...ledgerMigrations, ...budgetMigrations, ...sessionLogMigrations]);
    ledger = new Ledger(t.db);
    log = new SessionLogStore(t.db);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  const start = (id: string, startedAt: number, over: Partial<Parameters<SessionLogStore['start']>[0]> = {}): Promise<void> =>
    log.start({ id, user: 'alice', tenant: 'acme', keyId: 'k1', provider: 'openai', model: 'gpt-realtime', transport: 'websocket', startedAt, ...over });

  it('starts, completes once, and totals each session from its ledger rows (estimates counted)', async () => {
    await start('s1', T0);
    await start('s1', T0 + 5); // a repeated start changes nothing
    await ledger.insert(entry({ sessionId: 's1', costNanos: 3n * USD, usage: { output_audio: 10, input_text: 4 } }));
    await ledger.insert(entry({ sessionId: 's1', costNanos: 2n, estimated: true, usage: { output_audio: 1 } }));
    await ledger.insert(entry({ sessionId: 'other', costNanos: 99n }));
    await log.end('s1', { endedAt: T0 + 1500, durationMs: 1500, closeCode: 1000, endReason: 'client_closed' });
    await log.end('s1', { endedAt: T0 + 9000, durationMs: 9000, closeCode: 1011, endReason: 'later' });
    const { rows, next } = await log.list({}, { limit: 10 });
    expect(next).toBeNull();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: 's1', startedAt: T0, endedAt: T0 + 1500, durationMs: 1500, closeCode: 1000, endReason: 'client_closed', tenant: 'acme', keyId: 'k1' });
    expect(rows[0].totals).toMatchObject({ responses: 2, estimated_responses: 1, output_audio_tokens: 11, input_text_tokens: 4, cost_nanos: 3n * USD + 2n });
  });

  it('filters and pages newest first, ties broken by id, across equal start times', async () => {
    await start('a', T0);
    await start('b', T0 + 1000, { user: 'bob', tenant: null, keyId: null });
    await start('c', T0 + 1000, { transport: 'webrtc' });
    await start('d', T0 + 2000, { model: 'gpt-realtime-mini' });
    const ids = async (f: Parameters<SessionLogStore['list']>[0]): Promise<string[]> => (await log.list(f, { limit: 100 })).rows.map((r) => r.id);
    expect(await ids({})).toEqual(['d', 'c', 'b', 'a']);
    expect(await ids({ user: 'alice' })).toEqual(['d', 'c', 'a']);
    expect(await ids({ transport: 'webrtc' })).toEqual(['c']);
    expect(await ids({ model: 'gpt-realtime-mini' })).toEqual(['d']);
    expect(await ids({ keyId: 'k1', from: new Date(T0 + 1), to: new Date(T0 + 2000) })).toEqual(['c']);
    expect(await ids({ tenant: null })).toEqual(['b']);
    expect((await log.list({ tenant: null }, { limit: 1, after: { startedAt: T0 + 1001, id: 'z' } })).rows.map((r) => r.id)).toEqual(['b']);
    const seen: string[] = [];
    let after;
    for (;;) {
      const page = await log.list({ user: 'alice' }, { limit: 1, after });
      seen.push(...page.rows.map((r) => r.id));
      if (!page.next) break;
      after = decodeCursor(encodeCursor(page.next)) ?? undefined;
    }
    expect(seen).toEqual(['d', 'c', 'a']);
    const [b] = (await log.list({ user: 'bob' }, { limit: 1 })).rows;
    expect(b).toMatchObject({ tenant: null, keyId: null, endedAt: null, totals: { responses: 0, cost_nanos: 0n } });
  });

  it('decodes only cursors it made', () => {
    expect(decodeCursor(encodeCursor({ startedAt: 17, id: 'rs_ab' }))).toEqual({ startedAt: 17, id: 'rs_ab' });
    expect(decodeCursor('bm9wZQ')).toBeNull();
    expect(decodeCursor(Buffer.from("1:x' OR 1=1").toString('base64url'))).toBeNull();
  });

  it('stores key budgets and the guard refuses a key that reached its limit, not the other keys', async () => {
    const store = new BudgetStore(t.db);
    await store.update('key', 'k1', { total: 5n * USD });
    await ledger.insert(entry({ keyId: 'k1', costNanos: 5n * USD, createdAt: Date.now() }));
    const guard = new BudgetGuard({ budgets: store, ledger });
    expect(await guard.check({ user: 'alice', tenant: 'acme', keyId: 'k1' })).toMatchObject({ ok: false, scope: 'key', period: 'total', limitNanos: 5n * USD, spentNanos: 5n * USD });
    expect(await guard.check({ user: 'alice', tenant: 'acme', keyId: 'k2' })).toEqual({ ok: true, remainingNanos: null });
    // User defaults do not apply to keys.
    const withDefaults = new BudgetGuard({ budgets: store, ledger, defaults: { daily: '100' } });
    expect((await withDefaults.status('key', 'k2')).limits).toEqual({ daily: null, monthly: null, total: null });
    expect((await store.list()).map((b) => [b.scope, b.subject])).toEqual([['key', 'k1']]);
  });
});

describe.each(BACKENDS)('budgets_002 migration on %s', (backend) => {
  it('keeps the user and tenant budgets stored before it', async () => {
    const t = await openTestDatabase(backend);
    try {
      await migrate(t.db, [...ledgerMigrations, budgetMigrations[0]]);
      const store = new BudgetStore(t.db);
      // Rows as the first schema stored them (the store itself speaks the latest schema).
      await t.db.run("INSERT INTO budgets (scope, subject, daily_nanos, updated_at) VALUES ('user', 'alice', 7, 1)");
      await t.db.run("INSERT INTO budgets (scope, subject, monthly_nanos, updated_at) VALUES ('tenant', 'acme', 9, 1)");
      await expect(t.db.run("INSERT INTO budgets (scope, subject, total_nanos, updated_at) VALUES ('key', 'k1', 1, 1)")).rejects.toThrow();
      expect(await migrate(t.db, budgetMigrations)).toEqual(['budgets_002_key_scope', 'budgets_003_tenant']);
      expect(await store.get('user', 'alice')).toEqual({ daily: 7n, monthly: null, total: null });
      expect(await store.get('tenant', 'acme')).toEqual({ daily: null, monthly: 9n, total: null });
      await store.update('key', 'k1', { total: 1n });
      expect(await store.get('key', 'k1')).toEqual({ daily: null, monthly: null, total: 1n });
      await expect(t.db.run("INSERT INTO budgets (scope, subject, updated_at) VALUES ('team', 'x', 1)")).rejects.toThrow();
    } finally {
      await t.cleanup();
    }
  });
});
