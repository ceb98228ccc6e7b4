import type Redis from 'ioredis';
import { LimitExceededError } from './errors';
import type { WarnLogger } from './redis';

/**
 * Throttles credential guessing: once one client address has failed authentication
 * `limit` times within a window, every request from it is refused with 429 (and Retry-After)
 * until the window ends — before its credential is even looked at, so a valid guess cannot be
 * told from an invalid one meanwhile. Other addresses are not affected, and valid credentials
 * never count. With Redis the counts are shared by every relay instance.
 *
 * The window starts at an address's first failure (not aligned to the clock), so an attacker
 * gets at most `limit` guesses per window whatever their timing.
 */
export interface AuthFailureCounter {
  /** Failures counted for the address in its current window, and ms until that window ends. */
  peek(address: string): Promise<{ count: number; resetMs: number }>;
  /** Counts one failure for the address. */
  record(address: string): Promise<void>;
}

export interface AuthFailureSettings {
  /** Failures per address per window before it is refused; 0 turns the throttle off. */
  limit: number;
  windowMs: number;
}

/** Most addresses tracked by one process; past it the oldest windows are dropped first. */
const MAX_TRACKED = 100_000;

/** Counts in this process only. */
export class MemoryAuthFailureCounter implements AuthFailureCounter {
  private readonly entries = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async peek(address: string): Promise<{ count: number; resetMs: number }> {
    const e = this.live(address);
    return e ? { count: e.count, resetMs: e.resetAt - this.now() } : { count: 0, resetMs: 0 };
  }

  async record(address: string): Promise<void> {
    const e = this.live(address);
    if (e) {
      e.count++;
      return;
    }
    if (this.entries.size >= MAX_TRACKED) this.prune();
    this.entries.set(address, { count: 1, resetAt: this.now() + this.windowMs });
  }

  private live(address: string): { count: number; resetAt: number } | undefined {
    const e = this.entries.get(address);
    if (e && e.resetAt <= this.now()) {
      this.entries.delete(address);
      return undefined;
    }
    return e;
  }

  /** Drops expired windows; if none were, the oldest tenth (insertion order is window order). */
  private prune(): void {
    const t = this.now();
    for (const [k, e] of this.entries) if (e.resetAt <= t) this.entries.delete(k);
    if (this.entries.size < MAX_TRACKED) return;
    let drop = Math.ceil(MAX_TRACKED / 10);
    for (const k of this.entries.keys()) {
      if (drop-- <= 0) break;
      this.entries.delete(k);
    }
  }
}

/** KEYS[1] counter. Returns {count, ms left} (0, 0 when there is none). */
const PEEK_SCRIPT = `local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c == 0 then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {c, ttl}`;

/** KEYS[1] counter; ARGV windowMs. The first failure opens the window. */
const RECORD_SCRIPT = `local c = redis.call('INCR', KEYS[1])
if c == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return c`;

/**
 * Counts shared through Redis. While Redis is unreachable the counts of this process are used
 * (the throttle loosens per instance rather than refusing or admitting everyone).
 */
export class RedisAuthFailureCounter implements AuthFailureCounter {
  private readonly fallback: MemoryAuthFailureCounter;
  private lastComplaint = 0;

  constructor(
    private readonly o: { redis: Redis; windowMs: number; keyPrefix: string; logger?: WarnLogger },
  ) {
    this.fallback = new MemoryAuthFailureCounter(o.windowMs);
  }

  private key(address: string): string {
    return `${this.o.keyPrefix}authfail:${encodeURIComponent(address)}`;
  }

  async peek(address: string): Promise<{ count: number; resetMs: number }> {
    try {
      const reply = await this.o.redis.eval(PEEK_SCRIPT, 1, this.key(address));
      if (Array.isArray(reply) && reply.length === 2 && reply.every((v) => typeof v === 'number')) {
        return { count: reply[0] as number, resetMs: reply[1] as number };
      }
      throw new Error(`unexpected reply ${JSON.stringify(reply)}`);
    } catch (err) {
      this.complain(err);
      return this.fallback.peek(address);
    }
  }

  async record(address: string): Promise<void> {
    // Counted here too, so the fallback knows this instance's failures if Redis goes away.
    await this.fallback.record(address);
    try {
      await this.o.redis.eval(RECORD_SCRIPT, 1, this.key(address), this.o.windowMs);
    } catch (err) {
      this.complain(err);
    }
  }

  private complain(err: unknown): void {
    const t = Date.now();
    if (t - this.lastComplaint < 10_000) return;
    this.lastComplaint = t;
    this.o.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, 'redis unavailable: failed-authentication throttle counted per instance until it is back');
  }
}

/** The throttle the authenticator consults: refuses blocked addresses, counts failures. */
export class AuthFailureThrottle {
  constructor(
    private readonly counter: AuthFailureCounter,
    private readonly settings: AuthFailureSettings,
  ) {}

  get enabled(): boolean {
    return this.settings.limit > 0;
  }

  /** Throws 429 `too_many_failed_authentications` while the address is over the limit. */
  async assertAllowed(address: string): Promise<void> {
    if (!this.enabled) return;
    const { count, resetMs } = await this.counter.peek(address);
    if (count < this.settings.limit) return;
    throw new LimitExceededError(
      'too_many_failed_authentications',
      `Too many failed authentications from this address: at most ${this.settings.limit} per ${Math.round(this.settings.windowMs / 1000)} s. Retry later.`,
      Math.max(1, Math.ceil(resetMs / 1000)),
    );
  }

  async recordFailure(address: string): Promise<void> {
    if (this.enabled) await this.counter.record(address);
  }
}
