import type Redis from 'ioredis';
import IORedis from 'ioredis';
import type { Principal } from '../../src/auth/principal';
import { loadConfig } from '../../src/config/config';
import { createLimits } from '../../src/limits';
import { LimitExceededError } from '../../src/limits/errors';
import { RedisRateLimiter, RedisSessionLimiter } from '../../src/limits/redis';
import type { SessionLimitSettings } from '../../src/limits/session-limiter';
import { connectRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from './redis-support';

const who = (user: string, keyId?: string): Principal => ({ user, keyId, scopes: ['realtime'], kind: 'api_key' });
const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function code(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LimitExceededError);
  return (err as LimitExceededError).code;
}

describe('Redis limits', () => {
  let redisA: Redis;
  let redisB: Redis;
  let prefix: string;
  const limiters: RedisSessionLimiter[] = [];

  beforeAll(async () => {
    redisA = await connectRedis();
    redisB = await connectRedis();
  });
  afterAll(async () => {
    await redisA.quit();
    await redisB.quit();
  });
  beforeEach(() => {
    prefix = uniquePrefix();
  });
  afterEach(async () => {
    for (const l of limiters.splice(0)) await l.close();
    await deleteKeys(redisA, prefix);
  });

  /** One limiter per relay instance, each with its own connection, like separate processes. */
  function limiter(redis: Redis, limits: Partial<SessionLimitSettings> = {}, lease: { leaseTtlMs?: number; heartbeatMs?: number } = {}): RedisSessionLimiter {
    const l = new RedisSessionLimiter({
      redis,
      keyPrefix: prefix,
      limits: { maxSessionsPerUser: 2, maxSessionsPerKey: 10, connectionsPerMinutePerUser: 100, ...limits },
      ...lease,
    });
    limiters.push(l);
    return l;
  }

  it('enforces one per-user limit across two instances, and a release frees the slot for either', async () => {
    const a = limiter(redisA);
    const b = limiter(redisB);
    const first = await a.acquire(who('ann', 'ka'));
    await b.acquire(who('ann', 'kb'));
    expect(await code(a.acquire(who('ann', 'ka')))).toBe('too_many_sessions');
    expect(await code(b.acquire(who('ann', 'kb')))).toBe('too_many_sessions');
    await b.acquire(who('bob', 'kb'));
    await first.release();
    await first.release();
    await b.acquire(who('ann', 'kb'));
    expect(await code(a.acquire(who('ann', 'ka')))).toBe('too_many_sessions');
  });

  it('enforces the per-key limit across instances', async () => {
    const a = limiter(redisA, { maxSessionsPerKey: 1 });
    const b = limiter(redisB, { maxSessionsPerKey: 1 });
    await a.acquire(who('u1', 'shared'));
    expect(await code(b.acquire(who('u2', 'shared')))).toBe('too_many_sessions');
  });

  it('never lets concurrent acquisitions overrun the limit (atomic check-and-add)', async () => {
    const a = limiter(redisA, { maxSessionsPerUser: 3 });
    const b = limiter(redisB, { maxSessionsPerUser: 3 });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).acquire(who('race', `k${i}`))));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
  });

  it('frees the leases of a crashed holder once they expire, while a live holder keeps its own', async () => {
    const crashed = limiter(redisA, { maxSessionsPerUser: 1 }, { leaseTtlMs: 400, heartbeatMs: 100 });
    const live = limiter(redisB, { maxSessionsPerUser: 1 }, { leaseTtlMs: 400, heartbeatMs: 100 });
    const other = limiter(redisB, { maxSessionsPerUser: 1 });
    await crashed.acquire(who('cid'));
    await live.acquire(who('liv'));
    // A crash: no release, no heartbeat from then on.
    await crashed.close();
    expect(await code(other.acquire(who('cid')))).toBe('too_many_sessions');
    await delay(900);
    await other.acquire(who('cid'));
    // The live holder's heartbeat kept its lease well past the TTL.
    expect(await code(other.acquire(who('liv')))).toBe('too_many_sessions');
  });

  it('limits connections per minute per user across instances', async () => {
    const a = limiter(redisA, { connectionsPerMinutePerUser: 2 });
    const b = limiter(redisB, { connectionsPerMinutePerUser: 2 });
    await (await a.acquire(who('dee'))).release();
    await (await b.acquire(who('dee'))).release();
    const err = await a.acquire(who('dee')).catch((e: unknown) => e as LimitExceededError);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).code).toBe('connection_rate_exceeded');
    expect((err as LimitExceededError).retryAfterS).toBeGreaterThanOrEqual(1);
    expect((err as LimitExceededError).retryAfterS).toBeLessThanOrEqual(60);
  });

  it('shares a RedisRateLimiter window between instances, per name and key', async () => {
    const a = new RedisRateLimiter({ redis: redisA, name: 'mint', limit: 2, keyPrefix: prefix });
    const b = new RedisRateLimiter({ redis: redisB, name: 'mint', limit: 2, keyPrefix: prefix });
    const other = new RedisRateLimiter({ redis: redisB, name: 'other', limit: 2, keyPrefix: prefix });
    expect(await a.consume('k')).toMatchObject({ allowed: true, remaining: 1, limit: 2 });
    expect(await b.consume('k')).toMatchObject({ allowed: true, remaining: 0 });
    const refused = await a.consume('k');
    expect(refused).toMatchObject({ allowed: false, remaining: 0 });
    expect(refused.resetMs).toBeGreaterThan(0);
    expect(refused.resetMs).toBeLessThanOrEqual(60_000);
    expect((await b.consume('k2')).allowed).toBe(true);
    expect((await other.consume('k')).allowed).toBe(true);
    // The counter expires with its window: nothing is left behind for ever.
    const ttl = await redisA.pttl(`${prefix}rate:mint:k`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('falls back to per-instance limits while Redis is unreachable', async () => {
    const dead = new IORedis('redis://127.0.0.1:1', { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    dead.on('error', () => undefined);
    try {
      const warnings: string[] = [];
      const l = new RedisSessionLimiter({ redis: dead, keyPrefix: prefix, limits: { maxSessionsPerUser: 1, maxSessionsPerKey: 5, connectionsPerMinutePerUser: 5 }, logger: { warn: (_o, m) => warnings.push(m) } });
      limiters.push(l);
      const lease = await l.acquire(who('eve'));
      expect(await code(l.acquire(who('eve')))).toBe('too_many_sessions');
      await lease.release();
      await l.acquire(who('eve'));
      expect(warnings.length).toBeGreaterThan(0);
    } finally {
      dead.disconnect();
    }
  });
});

describe('REDIS_KEY_PREFIX', () => {
  it('puts every key the relay writes under the configured prefix', async () => {
    const redis = await connectRedis();
    const prefix = uniquePrefix();
    const config = loadConfig({ NODE_ENV: 'test', REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix });
    const limits = await createLimits(config);
    try {
      const lease = await limits.sessions.acquire(who('prefix-user', 'key-1'));
      const keys = await redis.keys(`${prefix}*`);
      expect(keys).toContain(`${prefix}leases:key:key-1`);
      expect(keys.some((k) => k.startsWith(`${prefix}leases:user:`) && k.includes('prefix-user'))).toBe(true);
      expect(keys.some((k) => k.startsWith(`${prefix}rate:connect:`))).toBe(true);
      // Nothing under the default prefix came from this user.
      expect((await redis.keys('realtime-relay:*prefix-user*')).length).toBe(0);
      await lease.release();
    } finally {
      await limits.close();
      await deleteKeys(redis, prefix);
      await redis.quit();
    }
  });
});
