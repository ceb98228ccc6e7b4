import { randomUUID } from 'node:crypto';
import { migrate } from '../../src/storage/database';
import { Ledger, ledgerMigrations } from '../../src/storage/ledger';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { entry, T0 } from './ledger-fixtures';

describe.each(BACKENDS)('Ledger on %s', (backend) => {
  let t: TestDatabase;
  let ledger: Ledger;
  beforeEach(async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, ledgerMigrations);
    ledger = new Ledger(t.db);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  it('stores a row and reads it back unchanged', async () => {
    const e = entry({ usage: { input_text: 1, input_audio: 2, input_image: 3, cached_text: 1, cached_audio: 2, cached_image: 3, output_text: 7, output_audio: 8, duration_ms: 9 }, costNanos: 9_007_199_254_740_993n, keyId: null, tenant: null });
    expect(await ledger.insert(e)).toBe('inserted');
    expect(await ledger.find('openai', e.responseId)).toEqual(e);
  });

  it('stores reasoning tokens (a part of text output) and the requested model of an aliased session', async () => {
    const e = entry({ model: 'gpt-realtime-2.1', requestedModel: 'gpt-realtime', usage: { output_text: 130, output_reasoning: 30 } });
    expect(await ledger.insert(e)).toBe('inserted');
    const back = await ledger.find('openai', e.responseId);
    expect(back).toMatchObject({ model: 'gpt-realtime-2.1', requestedModel: 'gpt-realtime' });
    expect(back?.usage).toMatchObject({ output_text: 130, output_reasoning: 30 });
    const [totals] = await ledger.usage({});
    expect(totals).toMatchObject({ output_text_tokens: 130, output_reasoning_tokens: 30 });
  });

  it('keeps one row per (provider, response id): a replay is a duplicate', async () => {
    const e = entry({ responseId: 'resp_A' });
    expect(await ledger.insert(e)).toBe('inserted');
    expect(await ledger.insert(e)).toBe('duplicate');
    // A retry built afresh (new row id, same upstream response) is a duplicate too.
    expect(await ledger.insert(entry({ responseId: 'resp_A', costNanos: 5n }))).toBe('duplicate');
    // The same response id from another provider is another response.
    expect(await ledger.insert(entry({ responseId: 'resp_A', provider: 'cometapi' }))).toBe('inserted');
    expect(await ledger.spend({ user: 'alice' })).toBe(2000n);
  });

  it('lets an exact row replace an estimate, never the reverse', async () => {
    const estimate = entry({ responseId: 'resp_cut', estimated: true, status: 'in_progress', costNanos: 300n });
    const exact = entry({ responseId: 'resp_cut', costNanos: 700n, usage: { output_audio: 35 } });
    expect(await ledger.insert(estimate)).toBe('inserted');
    expect(await ledger.insert(exact)).toBe('replaced');
    expect(await ledger.insert(exact)).toBe('duplicate');
    expect(await ledger.insert({ ...estimate, id: randomUUID() })).toBe('duplicate');
    const row = await ledger.find('openai', 'resp_cut');
    expect(row).toMatchObject({ id: estimate.id, estimated: false, costNanos: 700n, status: 'completed', usage: { output_audio: 35 } });
    expect(await ledger.spend({})).toBe(700n);
  });

  it('sums spend exactly past 2^53 nano-dollars', async () => {
    const big = 9_007_199_254_740_993n; // 2^53 + 1
    await ledger.insert(entry({ costNanos: big }));
    await ledger.insert(entry({ costNanos: big }));
    await ledger.insert(entry({ costNanos: 1n, user: 'bob', tenant: 'acme' }));
    expect(await ledger.spend({ user: 'alice' })).toBe(2n * big);
    expect(await ledger.spend({ tenant: 'acme' })).toBe(2n * big + 1n);
    expect(await ledger.spend({ user: 'nobody' })).toBe(0n);
  });

  it('filters spend by time', async () => {
    await ledger.insert(entry({ createdAt: T0 - 1, costNanos: 1n }));
    await ledger.insert(entry({ createdAt: T0, costNanos: 10n }));
    await ledger.insert(entry({ createdAt: T0 + 1, costNanos: 100n }));
    expect(await ledger.spend({ user: 'alice', since: new Date(T0) })).toBe(110n);
    const s = await ledger.spendSummary({ user: 'alice', tenant: 'acme' }, { daily: new Date(T0 + 1), monthly: new Date(T0) });
    expect(s).toEqual({ daily: 100n, monthly: 110n, total: 111n });
    expect(await ledger.spendSummary({ tenant: 'other' }, { daily: new Date(T0), monthly: new Date(T0) })).toEqual({ daily: 0n, monthly: 0n, total: 0n });
  });

  describe('usage reports', () => {
    const HOUR = 3_600_000;
    beforeEach(async () => {
      // alice: two responses on 2025-01-31 (one estimated), one on 2025-02-01; bob: one on 2025-02-01 with another model.
      await ledger.insert(entry({ createdAt: T0, costNanos: 100n, usage: { input_text: 10, cached_text: 4, output_audio: 20 } }));
      await ledger.insert(entry({ createdAt: T0 + 30 * 60_000, costNanos: 50n, estimated: true, usage: { input_audio: 5 } }));
      await ledger.insert(entry({ createdAt: T0 + 2 * HOUR, costNanos: 7n, usage: { output_text: 3 } }));
      await ledger.insert(entry({ createdAt: T0 + 2 * HOUR, costNanos: 1000n, user: 'bob', tenant: 'globex', model: 'gpt-realtime-mini', usage: { duration_ms: 1500 } }));
    });

    it('totals without grouping', async () => {
      const rows = await ledger.usage({});
      expect(rows).toEqual([
        {
          key: null,
          responses: 4,
          estimated_responses: 1,
          input_text_tokens: 10,
          input_audio_tokens: 5,
          input_image_tokens: 0,
          cached_text_tokens: 4,
          cached_audio_tokens: 0,
          cached_image_tokens: 0,
          output_text_tokens: 3,
          output_audio_tokens: 20,
          output_reasoning_tokens: 0,
          audio_duration_ms: 1500,
          cost_nanos: 1157n,
        },
      ]);
    });

    it('groups by UTC day', async () => {
      const rows = await ledger.usage({ user: 'alice' }, 'day');
      expect(rows.map((r) => [r.key, r.responses, r.cost_nanos])).toEqual([
        ['2025-01-31', 2, 150n],
        ['2025-02-01', 1, 7n],
      ]);
    });

    it('groups by model and by user', async () => {
      expect((await ledger.usage({}, 'model')).map((r) => [r.key, r.cost_nanos])).toEqual([
        ['gpt-realtime', 157n],
        ['gpt-realtime-mini', 1000n],
      ]);
      expect((await ledger.usage({ tenant: 'acme' }, 'user')).map((r) => [r.key, r.responses])).toEqual([['alice', 3]]);
    });

    it('filters by model and a half-open time range', async () => {
      const feb = { from: new Date(Date.UTC(2025, 1, 1)), to: new Date(Date.UTC(2025, 1, 2)) };
      expect((await ledger.usage(feb))[0].cost_nanos).toBe(1007n);
      expect((await ledger.usage({ ...feb, model: 'gpt-realtime-mini' }))[0].responses).toBe(1);
      expect((await ledger.usage({ to: new Date(T0) }))[0]).toMatchObject({ responses: 0, cost_nanos: 0n });
      expect(await ledger.usage({ user: 'nobody' }, 'day')).toEqual([]);
    });
  });
});
