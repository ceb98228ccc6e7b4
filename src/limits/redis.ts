import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import { FixedWindowRateLimiter, type RateLimitDecision, type RateLimiter } from '../auth/rate-limit';
import type { Principal } from '../auth/principal';
import { connectionRateExceeded, tooManySessions } from './errors';
import { LocalSlots, subjectKey, type Lease, type SessionLimiter, type SessionLimitSettings } from './session-limiter';

export interface WarnLogger {
  warn(o: object, m: string): void;
}

/*
 * Every script reads the clock from Redis (TIME), never from the instance: windows and lease
 * expiries then mean the same thing to every relay instance, however their clocks drift.
 */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

/**
 * Fixed window aligned to multiples of the window, like FixedWindowRateLimiter. A refused
 * attempt does not count, so a client that keeps retrying is let in once the window turns.
 * KEYS[1] counter; ARGV limit, windowMs. Returns {allowed 0|1, used, ms until the window ends}.
 */
const RATE_SCRIPT = `${NOW}
local limit = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local reset = w - (now % w)
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= limit then return {0, used, reset} end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], reset) end
return {1, used, reset}`;

/*
 * Leases: one sorted set per subject (user, credential) holding lease ids scored by their expiry.
 * A holder refreshes its leases' expiry while the session lives; a crashed holder stops, and its
 * leases fall out of the count once expired. The set itself expires with its last lease, so
 * subjects without sessions leave nothing behind.
 */
const EXTEND = `for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], now + ttl, ARGV[1])
  local top = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(top[2]) - now))
end`;

/** KEYS lease sets (user, then credential); ARGV id, ttlMs, then one max per key. Returns 0, or the 1-based index of the full set. */
const ACQUIRE_SCRIPT = `${NOW}
local ttl = tonumber(ARGV[2])
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
  if redis.call('ZCARD', KEYS[i]) >= tonumber(ARGV[2 + i]) then return i end
end
${EXTEND}
return 0`;

/**
 * Re-adds the lease if it had expired meanwhile (a Redis outage longer than the TTL): the
 * session is still open, so counting it again keeps the count true, even above the limit.
 */
const REFRESH_SCRIPT = `${NOW}
local ttl = tonumber(ARGV[2])
${EXTEND}
return 1`;

export const DEFAULT_KEY_PREFIX = 'realtime-relay:';

/** Logs a failing Redis at most once per interval: every admission would otherwise log it. */
class Complaints {
  private last = 0;
  constructor(
    private readonly logger: WarnLogger | undefined,
    private readonly intervalMs = 10_000,
  ) {}

  warn(err: unknown, what: string): void {
    const t = Date.now();
    if (t - this.last < this.intervalMs) return;
    this.last = t;
    this.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, what);
  }
}

function rateReply(reply: unknown): [number, number, number] {
  if (Array.isArray(reply) && reply.length === 3 && reply.every((v) => typeof v === 'number')) {
    return [reply[0] as number, reply[1] as number, reply[2] as number];
  }
  throw new Error(`unexpected rate script reply ${JSON.stringify(reply)}`);
}

export interface RedisRateLimiterOptions {
  redis: Redis;
  /** Namespace of the counters ("mint", "connect"), so limiters on one Redis stay apart. */
  name: string;
  limit: number;
  windowMs?: number;
  keyPrefix?: string;
  logger?: WarnLogger;
}

/**
 * The RateLimiter shared by every relay instance on one Redis. While Redis is unreachable it
 * falls back to a per-process window, so an outage loosens the limit instead of refusing all.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: Redis;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly prefix: string;
  private readonly fallback: FixedWindowRateLimiter;
  private readonly complaints: Complaints;

  constructor(o: RedisRateLimiterOptions) {
    this.redis = o.redis;
    this.limit = o.limit;
    this.windowMs = o.windowMs ?? 60_000;
    this.prefix = `${o.keyPrefix ?? DEFAULT_KEY_PREFIX}rate:${o.name}:`;
    this.fallback = new FixedWindowRateLimiter({ limit: o.limit, windowMs: this.windowMs });
    this.complaints = new Complaints(o.logger);
  }

  async consume(key: string): Promise<RateLimitDecision> {
    try {
      const [allowed, used, resetMs] = rateReply(await this.redis.eval(RATE_SCRIPT, 1, this.prefix + key, this.limit, this.windowMs));
      return { allowed: allowed === 1, limit: this.limit, remaining: Math.max(0, this.limit - used), resetMs };
    } catch (err) {
      this.complaints.warn(err, 'redis unavailable: rate limits enforced per instance until it is back');
      return this.fallback.consume(key);
    }
  }
}

export interface RedisSessionLimiterOptions {
  redis: Redis;
  limits: SessionLimitSettings;
  keyPrefix?: string;
  /** How long a lease outlives its holder's last heartbeat (a crashed instance's sessions). */
  leaseTtlMs?: number;
  /** How often held leases are refreshed; a third of the TTL by default, so two beats may fail. */
  heartbeatMs?: number;
  logger?: WarnLogger;
}

/**
 * Session limits shared by every relay instance on one Redis: acquisition is one Lua script
 * (purge expired leases, check both counts, add the lease), so two instances never both take
 * the last slot. While Redis is unreachable, slots are counted per process instead.
 */
export class RedisSessionLimiter implements SessionLimiter {
  private readonly redis: Redis;
  private readonly limits: SessionLimitSettings;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly heartbeatMs: number;
  private readonly rate: RedisRateLimiter;
  private readonly local: LocalSlots;
  private readonly complaints: Complaints;
  /** Leases this instance holds in Redis: id → the sets it is in. */
  private readonly held = new Map<string, string[]>();
  private readonly releasing = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private beating = false;
  private closed = false;

  constructor(o: RedisSessionLimiterOptions) {
    this.redis = o.redis;
    this.limits = o.limits;
    this.prefix = o.keyPrefix ?? DEFAULT_KEY_PREFIX;
    this.ttlMs = o.leaseTtlMs ?? 30_000;
    this.heartbeatMs = o.heartbeatMs ?? Math.max(100, Math.floor(this.ttlMs / 3));
    this.rate = new RedisRateLimiter({ redis: o.redis, name: 'connect', limit: o.limits.connectionsPerMinutePerUser, keyPrefix: this.prefix, logger: o.logger });
    this.local = new LocalSlots(o.limits);
    this.complaints = new Complaints(o.logger);
  }

  async acquire(principal: Principal): Promise<Lease> {
    const subject = subjectKey(principal);
    const d = await this.rate.consume(subject);
    if (!d.allowed) throw connectionRateExceeded(d);

    const keys = [`${this.prefix}leases:user:${subject}`];
    if (principal.keyId !== undefined) keys.push(`${this.prefix}leases:key:${encodeURIComponent(principal.keyId)}`);
    const id = randomUUID();
    let full: unknown;
    try {
      full = await this.redis.eval(ACQUIRE_SCRIPT, keys.length, ...keys, id, this.ttlMs, this.limits.maxSessionsPerUser, this.limits.maxSessionsPerKey);
    } catch (err) {
      this.complaints.warn(err, 'redis unavailable: session limits enforced per instance until it is back');
      return this.local.take(principal);
    }
    if (full === 1) throw tooManySessions('user', this.limits.maxSessionsPerUser);
    if (full === 2) throw tooManySessions('key', this.limits.maxSessionsPerKey);

    this.held.set(id, keys);
    this.startHeartbeat();
    let released: Promise<void> | null = null;
    return { release: () => (released ??= this.free(id, keys)) };
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stopHeartbeat();
    await Promise.all([...this.releasing]);
  }

  private free(id: string, keys: string[]): Promise<void> {
    this.held.delete(id);
    if (this.held.size === 0) this.stopHeartbeat();
    const tx = this.redis.multi();
    for (const k of keys) tx.zrem(k, id);
    const p = tx.exec().then(
      () => undefined,
      (err: unknown) => this.complaints.warn(err, `redis unavailable: a released session slot stays counted for up to ${this.ttlMs} ms`),
    );
    this.releasing.add(p);
    void p.finally(() => this.releasing.delete(p));
    return p;
  }

  private startHeartbeat(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.beat(), this.heartbeatMs);
    // Sessions keep the process alive, not their leases' heartbeat.
    this.timer.unref();
  }

  private stopHeartbeat(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async beat(): Promise<void> {
    // A beat slower than the interval (Redis struggling) must not pile up behind itself.
    if (this.beating || this.held.size === 0) return;
    this.beating = true;
    try {
      const pipe = this.redis.pipeline();
      for (const [id, keys] of this.held) pipe.eval(REFRESH_SCRIPT, keys.length, ...keys, id, this.ttlMs);
      const results = (await pipe.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed) throw failed[0];
    } catch (err) {
      this.complaints.warn(err, 'redis unavailable: session leases not refreshed; they expire if it stays away');
    } finally {
      this.beating = false;
    }
  }
}
