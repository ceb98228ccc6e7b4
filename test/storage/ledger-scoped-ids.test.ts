import { migrate } from '../../src/storage/database';
import { Ledger, ledgerMigrations } from '../../src/storage/ledger';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { entry } from './ledger-fixtures';

describe.each(BACKENDS)('response ids scoped to their upstream session (%s)', (backend) => {
  let t: TestDatabase;
  afterEach(async () => t.cleanup());

  it('keeps rows written before the migration valid and findable, and keys new rows per upstream session', async () => {
    t = await openTestDatabase(backend);
    // A ledger as it was: the first migration only, and a row keyed by the bare response id.
    await migrate(t.db, ledgerMigrations.slice(0, 1));
    await t.db.run(
      `INSERT INTO usage_ledger (id, response_id, session_id, user_id, provider, model, status, cost_nanos, price_version, created_at)
       VALUES ('row-old', 'resp_1', 'sess_1', 'alice', 'openai', 'gpt-realtime', 'completed', 3, 'v1', 1)`,
    );
    await migrate(t.db, ledgerMigrations);
    const ledger = new Ledger(t.db);
    expect(await ledger.find('openai', 'resp_1')).toMatchObject({ id: 'row-old', responseId: 'resp_1', upstreamResponseId: 'resp_1' });

    // The same upstream id from two upstream sessions: two rows, neither replacing the other.
    expect(await ledger.insert(entry({ id: 'row-a', responseId: 'sess_a:resp_2', upstreamResponseId: 'resp_2', user: 'alice', costNanos: 5n }))).toBe('inserted');
    expect(await ledger.insert(entry({ id: 'row-b', responseId: 'sess_b:resp_2', upstreamResponseId: 'resp_2', user: 'bob', costNanos: 7n }))).toBe('inserted');
    expect(await ledger.spend({ user: 'bob' })).toBe(7n);
    expect(await ledger.find('openai', 'sess_b:resp_2')).toMatchObject({ id: 'row-b', user: 'bob' });
    // A repeat within one upstream session is still one row.
    expect(await ledger.insert(entry({ id: 'row-a2', responseId: 'sess_a:resp_2', upstreamResponseId: 'resp_2', user: 'alice', costNanos: 5n }))).toBe('duplicate');
  });
});
