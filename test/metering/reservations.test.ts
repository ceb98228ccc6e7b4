import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { BudgetReservations, MemoryReservationStore, RedisReservationStore, reservationKeys, reservationMigrations, SqlReservationStore, type ReservationStore, type SettledBudget } from '../../src/metering/reservations';
import { migrate } from '../../src/storage/database';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A settled budget: `limit` for the user, `spent` so far. */
function budget(limit: bigint, spent = 0n): SettledBudget {
  return {
    checkByScope: async () =>
      spent >= limit
        ? { ok: false, scope: 'user', period: 'daily', limitNanos: limit, spentNanos: spent }
        : { ok: true, remainingNanos: limit - spent, remainingByScope: { user: limit - spent, tenant: null } },
  };
}

type StoreFactory = { name: string; open(): Promise<{ store: ReservationStore; close(): Promise<void> }> };

const factories: StoreFactory[] = [
  ...BACKENDS.map((backend) => ({
    name: `sql (${backend})`,
    async open() {
      const t: TestDatabase = await openTestDatabase(backend);
      await migrate(t.db, reservationMigrations);
      return { store: new SqlReservationStore(t.db), close: t.cleanup };
    },
  })),
  {
    name: 'memory',
    async open() {
      return { store: new MemoryReservationStore(), close: async () => undefined };
    },
  },
  {
    name: 'redis',
    async open() {
      const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
      return { store: new RedisReservationStore(redis, `test-res-${randomBytes(4).toString('hex')}:`), close: async () => void (await redis.quit()) };
    },
  },
];

describe.each(factories)('reservation store: $name', (f) => {
  let store: ReservationStore;
  let close: () => Promise<void>;
  beforeEach(async () => {
    ({ store, close } = await f.open());
  });
  afterEach(async () => close());

  it('returns the other holds of each subject, atomically with adding its own', async () => {
    const keys = ['user::alice', 'tenant:acme'];
    expect(await store.hold('a', 100n, keys, 60_000)).toEqual([0n, 0n]);
    expect(await store.hold('b', 30n, keys, 60_000)).toEqual([100n, 100n]);
    expect(await store.hold('c', 5n, ['user::bob', 'tenant:acme'], 60_000)).toEqual([0n, 130n]);
    await store.release('a', keys);
    expect(await store.hold('d', 1n, keys, 60_000)).toEqual([30n, 35n]);
  });

  it('forgets a hold whose lease ran out (a crashed instance), and keeps one that is refreshed', async () => {
    const keys = ['user::carol'];
    await store.hold('crashed', 1_000n, keys, 150);
    await store.hold('alive', 10n, keys, 400);
    // 600 ms in all: past both first leases; the refreshed one is renewed every 100 ms.
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await store.refresh([{ id: 'alive', keys }], 400);
    }
    expect(await store.hold('next', 1n, keys, 60_000)).toEqual([10n]);
  });

  it('admits one response alone past the remaining budget, and no second one beside it', async () => {
    const r = new BudgetReservations({ store, budget: budget(50n) });
    const first = await r.admit({ user: 'dave' }, 262n);
    expect(first).toMatchObject({ ok: true });
    expect(await r.admit({ user: 'dave' }, 262n)).toEqual({ ok: false, reason: 'insufficient_budget' });
    // Another user is not affected.
    expect(await r.admit({ user: 'erin' }, 262n)).toMatchObject({ ok: true });
    if (first.ok) await r.release(first.hold);
    expect(await r.admit({ user: 'dave' }, 20n)).toMatchObject({ ok: true });
    expect(await r.admit({ user: 'dave' }, 20n)).toMatchObject({ ok: true });
    expect(await r.admit({ user: 'dave' }, 20n)).toEqual({ ok: false, reason: 'insufficient_budget' });
    r.close();
  });

  it('refuses outright once settled spend reached the limit', async () => {
    const r = new BudgetReservations({ store, budget: budget(50n, 50n) });
    expect(await r.admit({ user: 'frank' }, 1n)).toEqual({ ok: false, reason: 'over_budget' });
    expect(r.size).toBe(0);
    r.close();
  });
});

describe('BudgetReservations', () => {
  it('keys users by (tenant, user), so alice of tenant A and alice of tenant B never share holds', () => {
    expect(reservationKeys({ user: 'alice', tenant: 'A' })).toEqual(['user:A:alice', 'tenant:A']);
    expect(reservationKeys({ user: 'alice' })).toEqual(['user::alice']);
    expect(reservationKeys({ user: 'a:b', tenant: 'c' })[0]).not.toBe(reservationKeys({ user: 'b', tenant: 'c:a' })[0]);
  });

  it('fails open within its timeout when the store never answers, and when the ledger never answers', async () => {
    const never = new Promise<never>(() => undefined);
    const logs: string[] = [];
    const hung: ReservationStore = { hold: () => never, refresh: () => never, release: () => Promise.resolve() };
    const r = new BudgetReservations({ store: hung, budget: budget(50n), timeoutMs: 100, logger: { warn: (_o, m) => logs.push(m) } });
    expect(await r.admit({ user: 'gina' }, 10n)).toEqual({ ok: true, hold: null });
    expect(logs).toEqual(['budget reservation unavailable; allowing the response without one']);

    const quiet: ReservationStore = { hold: async (_id, _a, keys) => keys.map(() => 0n), refresh: async () => undefined, release: async () => undefined };
    const r2 = new BudgetReservations({ store: quiet, budget: { checkByScope: () => never }, timeoutMs: 100, logger: { warn: (_o, m) => logs.push(m) } });
    expect(await r2.admit({ user: 'gina' }, 10n)).toMatchObject({ ok: true });
    expect(logs[1]).toBe('budget check unavailable; allowing the response');
    r.close();
    r2.close();
  });
});
