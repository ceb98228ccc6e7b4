import type { FastifyRequest } from 'fastify';
import Redis from 'ioredis';
import type { RateLimiter } from '../auth/rate-limit';
import type { Principal } from '../auth/principal';
import type { RelayConfig } from '../config/config';
import { AuthFailureThrottle, MemoryAuthFailureCounter, RedisAuthFailureCounter } from './auth-failures';
import { RedisRateLimiter, RedisSessionLimiter, type WarnLogger } from './redis';
import { MemorySessionLimiter, type Lease, type SessionLimiter } from './session-limiter';

export interface Limits {
  sessions: SessionLimiter;
  /** Shared minting limit when Redis is configured; undefined leaves the mint route's own. */
  mintRateLimiter?: RateLimiter;
  /** The shared Redis connection and key prefix when REDIS_URL is set (budget reservations use it too). */
  redis?: { client: Redis; keyPrefix: string };
  /** Failed authentications per client address (AUTH_FAILURE_LIMIT per AUTH_FAILURE_WINDOW_MS). */
  authFailures: AuthFailureThrottle;
  close(): Promise<void>;
}

/**
 * Session and rate limits: in this process, or shared through Redis when REDIS_URL is set so
 * that several relay instances enforce one limit. Connects at once, so a wrong REDIS_URL stops
 * the start instead of surfacing at the first session.
 */
export async function createLimits(config: Pick<RelayConfig, 'limits' | 'auth'>, logger?: WarnLogger, opts: { keyPrefix?: string } = {}): Promise<Limits> {
  const { limits } = config;
  const authFailureSettings = { limit: limits.authFailureLimit, windowMs: limits.authFailureWindowMs };
  if (!limits.redisUrl) {
    const sessions = new MemorySessionLimiter(limits);
    const authFailures = new AuthFailureThrottle(new MemoryAuthFailureCounter(limits.authFailureWindowMs), authFailureSettings);
    return { sessions, authFailures, close: () => sessions.close() };
  }
  const redis = new Redis(limits.redisUrl, {
    lazyConnect: true,
    connectTimeout: 5_000,
    // Admission waits on these calls: a slow or absent Redis must fail fast to the per-instance fallback.
    commandTimeout: 1_000,
    maxRetriesPerRequest: 1,
  });
  // Without a listener ioredis prints every reconnect failure; the limiters report outages themselves.
  redis.on('error', () => undefined);
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`REDIS_URL: cannot connect (${err instanceof Error ? err.message : String(err)})`);
  }
  const keyPrefix = opts.keyPrefix ?? limits.redisKeyPrefix;
  const sessions = new RedisSessionLimiter({ redis, limits, keyPrefix, logger });
  const mintRateLimiter = new RedisRateLimiter({ redis, name: 'mint', limit: config.auth.mintRatePerMinute, keyPrefix, logger });
  const authFailures = new AuthFailureThrottle(new RedisAuthFailureCounter({ redis, windowMs: limits.authFailureWindowMs, keyPrefix, logger }), authFailureSettings);
  return {
    sessions,
    mintRateLimiter,
    redis: { client: redis, keyPrefix },
    authFailures,
    async close() {
      await sessions.close();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * Takes a session slot for the connection behind `request` (throws 429 when none is free) and
 * holds it until the connection's socket closes. Tied to the socket rather than to the session,
 * the slot is freed on every path: a session that ends, a refused model, a failed setup, an
 * upgrade that never completed.
 */
export async function admitConnection(limiter: SessionLimiter, principal: Principal, request: FastifyRequest): Promise<Lease> {
  const lease = await limiter.acquire(principal);
  const socket = request.raw.socket;
  const release = (): void => void lease.release();
  // The client may have left while we waited on the limiter: 'close' may already be behind us.
  if (socket.destroyed) release();
  else socket.once('close', release);
  return lease;
}

export { installHttpHardening, DEMO_CSP } from './http-hardening';
export { LimitExceededError, type LimitCode } from './errors';
export { AuthFailureThrottle, MemoryAuthFailureCounter, RedisAuthFailureCounter } from './auth-failures';
export { RedisRateLimiter, RedisSessionLimiter, DEFAULT_KEY_PREFIX } from './redis';
export { MemorySessionLimiter, type Lease, type SessionLimiter, type SessionLimitSettings } from './session-limiter';
