/**
 * Rate limiting behind an interface so a shared (Redis) implementation can replace the
 * in-memory one when several relay instances must share one budget.
 */
export interface RateLimitDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the current window ends (when a refused caller may retry). */
  resetMs: number;
}

export interface RateLimiter {
  /** Counts one event for `key` and says whether it is within the limit. */
  consume(key: string): Promise<RateLimitDecision>;
}

export interface FixedWindowOptions {
  limit: number;
  windowMs?: number;
  now?: () => number;
}

/**
 * Fixed windows aligned to multiples of windowMs, per process. Alignment means every entry
 * belongs to the same window, so the whole table is dropped when the window turns over and
 * memory stays bounded by the keys seen in one window.
 */
export class FixedWindowRateLimiter implements RateLimiter {
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private window = -1;
  private counts = new Map<string, number>();

  constructor(opts: FixedWindowOptions) {
    this.limit = opts.limit;
    this.windowMs = opts.windowMs ?? 60_000;
    this.now = opts.now ?? Date.now;
  }

  async consume(key: string): Promise<RateLimitDecision> {
    const t = this.now();
    const window = Math.floor(t / this.windowMs);
    if (window !== this.window) {
      this.window = window;
      this.counts = new Map();
    }
    const used = (this.counts.get(key) ?? 0) + 1;
    const resetMs = (window + 1) * this.windowMs - t;
    if (used > this.limit) return { allowed: false, limit: this.limit, remaining: 0, resetMs };
    this.counts.set(key, used);
    return { allowed: true, limit: this.limit, remaining: this.limit - used, resetMs };
  }
}
