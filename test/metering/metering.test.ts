import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openMetering, meteringMigrations, type Metering } from '../../src/metering';
import { migrate } from '../../src/storage/database';
import type { MeterLogger } from '../../src/storage/ledger-durable';
import { createLogger } from '../../src/logging';
import { openTestDatabase, type TestDatabase } from '../support/databases';
import { responseDone } from './fixtures/usage';

describe('openMetering', () => {
  let t: TestDatabase;
  let dir: string;
  let metering: Metering;

  async function open(policy: 'refuse' | 'fallback'): Promise<Metering> {
    const logger: MeterLogger = createLogger('silent'); // the relay's pino logger fits
    return openMetering({
      db: t.db,
      logger,
      config: {
        pricing: { pricesFile: path.resolve(__dirname, '../../config/prices.json'), unpricedPolicy: policy, fallbackModel: 'gpt-realtime' },
        budgets: { exceededAction: 'refuse', defaults: { daily: '0.01' } },
        storage: { databaseUrl: t.url, spoolDir: dir },
      },
    });
  }

  beforeEach(async () => {
    t = await openTestDatabase('sqlite');
    dir = mkdtempSync(path.join(tmpdir(), 'relay-metering-'));
  });
  afterEach(async () => {
    expect(await metering.close(100)).toBe(0);
    await t.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it('migrates, meters a session and enforces the default budget', async () => {
    metering = await open('refuse');
    expect(await migrate(t.db, meteringMigrations)).toEqual([]);
    expect(metering.pricing('openai', 'gpt-realtime-2025-08-28')).toEqual({ status: 'priced', priceModel: 'gpt-realtime' });
    expect(metering.pricing('azure', 'my-deployment')).toEqual({ status: 'unpriced' });

    expect(await metering.guard.check({ user: 'alice' })).toEqual({ ok: true, remainingNanos: 10_000_000n });
    const meter = metering.newSessionMeter({ sessionId: 's', user: 'alice', provider: 'openai', model: 'gpt-realtime' });
    await meter.onResponseDone(responseDone('resp_1'));
    await meter.onSessionEnd();
    // $0.034419200 spent against a $0.01 daily default.
    expect(await metering.guard.check({ user: 'alice' })).toMatchObject({ ok: false, period: 'daily', spentNanos: 34_419_200n });
  });

  it('uses the fallback model only under the fallback policy', async () => {
    metering = await open('fallback');
    expect(metering.pricing('azure', 'my-deployment')).toEqual({ status: 'fallback', priceModel: 'gpt-realtime' });
  });
});
