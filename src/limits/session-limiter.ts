import { FixedWindowRateLimiter, type RateLimiter } from '../auth/rate-limit';
import type { Principal } from '../auth/principal';
import { connectionRateExceeded, tooManySessions } from './errors';

/** A session slot held by one connection. */
export interface Lease {
  /** Frees the slot. Idempotent: later calls resolve at once and free nothing. Never rejects. */
  release(): Promise<void>;
}

export interface SessionLimiter {
  /**
   * Counts one connection attempt against the user's per-minute rate, then takes one session
   * slot for the user and one for the credential (`keyId`), or throws LimitExceededError (429,
   * code `connection_rate_exceeded` or `too_many_sessions`).
   */
  acquire(principal: Principal): Promise<Lease>;
  /** Stops background work (lease heartbeats). Leases still held are left to their owners. */
  close(): Promise<void>;
}

export interface SessionLimitSettings {
  maxSessionsPerUser: number;
  maxSessionsPerKey: number;
  connectionsPerMinutePerUser: number;
}

/**
 * Limits are per user *within a tenant*: two tenants may both have a user "alice". Components
 * are URI-encoded so no choice of tenant and user names can make two subjects share a key.
 */
export function subjectKey(p: Principal): string {
  return `${encodeURIComponent(p.tenant ?? '')}:${encodeURIComponent(p.user)}`;
}

const RELEASED: Promise<void> = Promise.resolve();

/** Concurrent-session counts of this process. */
export class LocalSlots {
  private readonly perUser = new Map<string, number>();
  private readonly perKey = new Map<string, number>();

  constructor(private readonly limits: Pick<SessionLimitSettings, 'maxSessionsPerUser' | 'maxSessionsPerKey'>) {}

  /** Takes a slot or throws `too_many_sessions`; check and increment are one synchronous step. */
  take(principal: Principal): Lease {
    const user = subjectKey(principal);
    const key = principal.keyId;
    if ((this.perUser.get(user) ?? 0) >= this.limits.maxSessionsPerUser) throw tooManySessions('user', this.limits.maxSessionsPerUser);
    if (key !== undefined && (this.perKey.get(key) ?? 0) >= this.limits.maxSessionsPerKey) throw tooManySessions('key', this.limits.maxSessionsPerKey);
    bump(this.perUser, user, 1);
    if (key !== undefined) bump(this.perKey, key, 1);
    let held = true;
    return {
      release: () => {
        if (held) {
          held = false;
          bump(this.perUser, user, -1);
          if (key !== undefined) bump(this.perKey, key, -1);
        }
        return RELEASED;
      },
    };
  }
}

function bump(map: Map<string, number>, k: string, by: number): void {
  const n = (map.get(k) ?? 0) + by;
  // Entries at zero are dropped so the maps hold only subjects with open sessions.
  if (n <= 0) map.delete(k);
  else map.set(k, n);
}

/** One relay instance: limits held in this process only. */
export class MemorySessionLimiter implements SessionLimiter {
  private readonly rate: RateLimiter;
  private readonly slots: LocalSlots;

  constructor(limits: SessionLimitSettings, opts: { now?: () => number } = {}) {
    this.rate = new FixedWindowRateLimiter({ limit: limits.connectionsPerMinutePerUser, windowMs: 60_000, now: opts.now });
    this.slots = new LocalSlots(limits);
  }

  async acquire(principal: Principal): Promise<Lease> {
    const d = await this.rate.consume(subjectKey(principal));
    if (!d.allowed) throw connectionRateExceeded(d);
    return this.slots.take(principal);
  }

  async close(): Promise<void> {
    /* nothing runs in the background */
  }
}
