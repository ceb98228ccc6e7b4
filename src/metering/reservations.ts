/**
 * In-flight budget reservations: every response (and input transcription) that may be billing
 * right now holds an estimated cost against its user's and tenant's remaining budget, shared by
 * every session and every relay instance, until its usage is in the ledger.
 *
 * The admission rule, for a response the relay may refuse (a client `response.create`):
 *   1. the hold is added first, atomically with reading the other holds of each subject;
 *   2. then the settled spend is read from the ledger (BudgetGuard);
 *   3. admitted when the subject is under its limit AND either nothing else is held for it
 *      (the one response that may cross the limit) or settled + held + this ≤ limit.
 * Adding before reading settled spend is what makes it sound: a hold is released only after its
 * ledger row is written, so any response is always in the ledger, or in the holds, or it added
 * its own hold after ours and so counted ours. Hence: total spend ≤ limit + one response's cost
 * beyond its reservation (see README, "Metering and budgets").
 *
 * Holds are leases (RESERVATION_TTL_MS, refreshed while held): a crashed instance's holds expire.
 * Stores: Redis (REDIS_URL), else the ledger's own database (SQLite or PostgreSQL).
 */
import { randomUUID } from 'node:crypto';
import type Redis from 'ioredis';
import type { Migration, SqlDatabase } from '../storage/database';
import type { BudgetCheck } from './budget-guard';

/** How long a hold outlives its holder's last refresh. */
export const RESERVATION_TTL_MS = 120_000;
/** Bound on each store or ledger round trip on a session's path; past it, fail open. */
export const RESERVATION_QUERY_TIMEOUT_MS = 2_000;

export interface ReservationStore {
  /**
   * Adds (or replaces) hold `id` of `amount` under each key and returns, per key, the sum of the
   * OTHER live holds, read atomically with the add.
   */
  hold(id: string, amount: bigint, keys: readonly string[], ttlMs: number): Promise<bigint[]>;
  refresh(holds: ReadonlyArray<{ id: string; keys: readonly string[] }>, ttlMs: number): Promise<void>;
  release(id: string, keys: readonly string[]): Promise<void>;
}

// ---- Redis ----------------------------------------------------------------------------------

/*
 * Two keys per subject: a hash id → amount (nanos) and a sorted set id → expiry (Redis TIME),
 * so expired holds are purged in the same script that sums the live ones.
 */
const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

const HOLD_SCRIPT = `${NOW}
local id, amount, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {}
for i = 1, #KEYS, 2 do
  local h, z = KEYS[i], KEYS[i + 1]
  for _, e in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now)) do redis.call('HDEL', h, e) end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  local vals = redis.call('HGETALL', h)
  local sum = 0
  for j = 1, #vals, 2 do
    if vals[j] ~= id then sum = sum + tonumber(vals[j + 1]) end
  end
  redis.call('HSET', h, id, amount)
  redis.call('ZADD', z, now + ttl, id)
  redis.call('PEXPIRE', h, ttl)
  redis.call('PEXPIRE', z, ttl)
  out[#out + 1] = string.format('%.0f', sum)
end
return out`;

const REFRESH_SCRIPT = `${NOW}
local ttl = tonumber(ARGV[1])
for i = 1, #KEYS, 2 do
  local id = ARGV[1 + (i + 1) / 2]
  if redis.call('HEXISTS', KEYS[i], id) == 1 then
    redis.call('ZADD', KEYS[i + 1], now + ttl, id)
    redis.call('PEXPIRE', KEYS[i], ttl)
    redis.call('PEXPIRE', KEYS[i + 1], ttl)
  end
end
return 1`;

const RELEASE_SCRIPT = `for i = 1, #KEYS, 2 do
  redis.call('HDEL', KEYS[i], ARGV[1])
  redis.call('ZREM', KEYS[i + 1], ARGV[1])
end
return 1`;

export class RedisReservationStore implements ReservationStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private pair(key: string): [string, string] {
    return [`${this.prefix}reserve:${key}`, `${this.prefix}reserve-exp:${key}`];
  }

  async hold(id: string, amount: bigint, keys: readonly string[], ttlMs: number): Promise<bigint[]> {
    const k = keys.flatMap((key) => this.pair(key));
    const reply = await this.redis.eval(HOLD_SCRIPT, k.length, ...k, id, amount.toString(), ttlMs);
    if (!Array.isArray(reply) || reply.length !== keys.length) throw new Error(`unexpected reservation reply ${JSON.stringify(reply)}`);
    return reply.map((v) => BigInt(String(v)));
  }

  async refresh(holds: ReadonlyArray<{ id: string; keys: readonly string[] }>, ttlMs: number): Promise<void> {
    const k: string[] = [];
    const ids: string[] = [];
    for (const h of holds) {
      for (const key of h.keys) {
        k.push(...this.pair(key));
        ids.push(h.id);
      }
    }
    if (k.length > 0) await this.redis.eval(REFRESH_SCRIPT, k.length, ...k, ttlMs, ...ids);
  }

  async release(id: string, keys: readonly string[]): Promise<void> {
    const k = keys.flatMap((key) => this.pair(key));
    await this.redis.eval(RELEASE_SCRIPT, k.length, ...k, id);
  }
}

// ---- memory (one process: the SQLite deployment) ----------------------------------------------

/**
 * Holds in this process's memory, for the embedded SQLite ledger: SQLite serves one relay
 * process, and keeping holds out of its file means a write lock held by another process (a
 * backup, the CLI) never delays a response's admission by the query timeout.
 */
export class MemoryReservationStore implements ReservationStore {
  /** subject → (hold id → amount and expiry). */
  private readonly holds = new Map<string, Map<string, { amount: bigint; expiresAt: number }>>();

  constructor(private readonly now: () => number = Date.now) {}

  async hold(id: string, amount: bigint, keys: readonly string[], ttlMs: number): Promise<bigint[]> {
    const now = this.now();
    return keys.map((key) => {
      const byId = this.holds.get(key) ?? new Map<string, { amount: bigint; expiresAt: number }>();
      this.holds.set(key, byId);
      let others = 0n;
      for (const [other, h] of byId) {
        if (h.expiresAt <= now) byId.delete(other);
        else if (other !== id) others += h.amount;
      }
      byId.set(id, { amount, expiresAt: now + ttlMs });
      return others;
    });
  }

  async refresh(holds: ReadonlyArray<{ id: string; keys: readonly string[] }>, ttlMs: number): Promise<void> {
    const until = this.now() + ttlMs;
    for (const h of holds) {
      for (const key of h.keys) {
        const held = this.holds.get(key)?.get(h.id);
        if (held) held.expiresAt = until;
      }
    }
  }

  async release(id: string, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const byId = this.holds.get(key);
      byId?.delete(id);
      if (byId?.size === 0) this.holds.delete(key);
    }
  }
}

// ---- SQL (the ledger's database) -------------------------------------------------------------

export const reservationMigrations: readonly Migration[] = [
  {
    id: 'reservations_001_create',
    sqlite: `
      CREATE TABLE budget_reservations (
        id TEXT NOT NULL,
        subject TEXT NOT NULL,
        amount_nanos INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (id, subject)
      );
      CREATE INDEX budget_reservations_subject ON budget_reservations (subject, expires_at)`,
    postgres: `
      CREATE TABLE budget_reservations (
        id TEXT NOT NULL,
        subject TEXT NOT NULL,
        amount_nanos BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (id, subject)
      );
      CREATE INDEX budget_reservations_subject ON budget_reservations (subject, expires_at)`,
  },
];

/**
 * Holds in a table of the ledger's database. Expiry uses each instance's clock (instances on one
 * database are assumed NTP-synchronised; a skew shortens or lengthens leases by as much). One
 * transaction per hold, serialised per subject: PostgreSQL by an advisory lock on the subject,
 * SQLite by BEGIN IMMEDIATE across processes and a queue within this one.
 */
export class SqlReservationStore implements ReservationStore {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => number = Date.now,
  ) {}

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  hold(id: string, amount: bigint, keys: readonly string[], ttlMs: number): Promise<bigint[]> {
    return this.serial(() =>
      this.db.transaction(async (tx) => {
        const now = this.now();
        // Sorted, so two holds on the same subjects never wait on each other's locks in opposite order.
        const sorted = [...keys].sort();
        if (tx.dialect === 'postgres') {
          for (const key of sorted) await tx.query('SELECT pg_advisory_xact_lock(hashtext($1)) AS locked', [`budget_reservation:${key}`]);
        }
        const sums = new Map<string, bigint>();
        for (const key of sorted) {
          await tx.run('DELETE FROM budget_reservations WHERE subject = $1 AND expires_at <= $2', [key, now]);
          const rows = await tx.query<{ s: unknown }>('SELECT CAST(COALESCE(SUM(amount_nanos), 0) AS TEXT) AS s FROM budget_reservations WHERE subject = $1 AND id <> $2', [key, id]);
          sums.set(key, BigInt(String(rows[0]?.s ?? '0')));
          await tx.run(
            'INSERT INTO budget_reservations (id, subject, amount_nanos, expires_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id, subject) DO UPDATE SET amount_nanos = excluded.amount_nanos, expires_at = excluded.expires_at',
            [id, key, amount, now + ttlMs],
          );
        }
        return keys.map((key) => sums.get(key) ?? 0n);
      }),
    );
  }

  async refresh(holds: ReadonlyArray<{ id: string; keys: readonly string[] }>, ttlMs: number): Promise<void> {
    const until = this.now() + ttlMs;
    for (const h of holds) await this.db.run('UPDATE budget_reservations SET expires_at = $1 WHERE id = $2', [until, h.id]);
  }

  async release(id: string): Promise<void> {
    await this.db.run('DELETE FROM budget_reservations WHERE id = $1', [id]);
  }
}

// ---- the budget side -------------------------------------------------------------------------

export interface BudgetSubject {
  user: string;
  tenant?: string;
}

type ScopedCheck = BudgetCheck & { remainingByScope?: Record<'user' | 'tenant', bigint | null> };

/** Reads settled spend; BudgetGuard in production. */
export interface SettledBudget {
  checkByScope(who: BudgetSubject): Promise<ScopedCheck>;
}

export type Admission =
  | { ok: true; hold: Hold | null }
  | { ok: false; reason: 'over_budget' | 'insufficient_budget' };

export interface Hold {
  readonly id: string;
  readonly keys: readonly string[];
  readonly amount: bigint;
}

interface WarnLogger {
  warn(o: object, m: string): void;
}

/** Subject keys: (tenant, user) for the user, so alice of tenant A and alice of B never share; and the tenant. */
export function reservationKeys(who: BudgetSubject): string[] {
  const keys = [`user:${encodeURIComponent(who.tenant ?? '')}:${encodeURIComponent(who.user)}`];
  if (who.tenant !== undefined) keys.push(`tenant:${encodeURIComponent(who.tenant)}`);
  return keys;
}

class Timeout extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Timeout(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

/**
 * The relay-wide reservation service: admits or refuses responses against the remaining budget,
 * keeps held leases alive, releases them once settled. A store or ledger that is down or slow
 * fails open within RESERVATION_QUERY_TIMEOUT_MS (a warning is logged), like the budget check.
 */
export class BudgetReservations {
  private readonly held = new Map<string, Hold>();
  private timer: NodeJS.Timeout | null = null;
  private readonly ttlMs: number;
  private readonly timeoutMs: number;
  private lastWarn = 0;

  constructor(
    private readonly o: {
      store: ReservationStore;
      budget: SettledBudget;
      logger?: WarnLogger;
      ttlMs?: number;
      timeoutMs?: number;
    },
  ) {
    this.ttlMs = o.ttlMs ?? RESERVATION_TTL_MS;
    this.timeoutMs = o.timeoutMs ?? RESERVATION_QUERY_TIMEOUT_MS;
  }

  /** Holds currently kept by this instance (for tests and metrics). */
  get size(): number {
    return this.held.size;
  }

  /**
   * For a response the relay may still refuse. Over budget: refused. Under budget but the
   * remaining budget cannot cover this plus what is already held: refused. Otherwise held.
   */
  async admit(who: BudgetSubject, amount: bigint): Promise<Admission> {
    const keys = reservationKeys(who);
    const id = randomUUID();
    let others: bigint[];
    let verdict: ScopedCheck;
    try {
      others = await withTimeout(this.o.store.hold(id, amount, keys, this.ttlMs), this.timeoutMs, 'reservation');
    } catch (err) {
      this.warn(err, 'budget reservation unavailable; allowing the response without one');
      void this.o.store.release(id, keys).catch(() => undefined);
      return { ok: true, hold: null };
    }
    const hold: Hold = { id, keys, amount };
    this.track(hold);
    try {
      verdict = await withTimeout(this.o.budget.checkByScope(who), this.timeoutMs, 'budget check');
    } catch (err) {
      this.warn(err, 'budget check unavailable; allowing the response');
      return { ok: true, hold };
    }
    if (!verdict.ok) {
      await this.release(hold);
      return { ok: false, reason: 'over_budget' };
    }
    const remaining = [verdict.remainingByScope?.user ?? verdict.remainingNanos, verdict.remainingByScope?.tenant ?? null];
    for (let i = 0; i < keys.length; i++) {
      const left = remaining[i] ?? null;
      if (left === null) continue;
      const other = others[i] ?? 0n;
      // Nothing else in flight: this is the one response allowed to cross the limit.
      if (other === 0n) continue;
      if (other + amount > left) {
        await this.release(hold);
        return { ok: false, reason: 'insufficient_budget' };
      }
    }
    return { ok: true, hold };
  }

  /** For a response the relay cannot refuse (server VAD created it): held whatever the budget. */
  async holdAnyway(who: BudgetSubject, amount: bigint): Promise<Hold | null> {
    const keys = reservationKeys(who);
    const id = randomUUID();
    try {
      await withTimeout(this.o.store.hold(id, amount, keys, this.ttlMs), this.timeoutMs, 'reservation');
    } catch (err) {
      this.warn(err, 'budget reservation unavailable');
      void this.o.store.release(id, keys).catch(() => undefined);
      return null;
    }
    const hold: Hold = { id, keys, amount };
    this.track(hold);
    return hold;
  }

  async release(hold: Hold | null | undefined): Promise<void> {
    if (!hold || !this.held.delete(hold.id)) return;
    if (this.held.size === 0) this.stopRefresh();
    try {
      await withTimeout(this.o.store.release(hold.id, hold.keys), this.timeoutMs, 'reservation release');
    } catch (err) {
      // The lease expires on its own; until then it only makes admission stricter.
      this.warn(err, 'releasing a budget reservation failed; it expires with its lease');
    }
  }

  close(): void {
    this.stopRefresh();
  }

  private track(hold: Hold): void {
    this.held.set(hold.id, hold);
    if (this.timer) return;
    this.timer = setInterval(() => {
      const holds = [...this.held.values()];
      if (holds.length === 0) return;
      void withTimeout(this.o.store.refresh(holds, this.ttlMs), this.timeoutMs, 'reservation refresh').catch((err: unknown) =>
        this.warn(err, 'refreshing budget reservations failed'),
      );
    }, Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private stopRefresh(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One warning per 10 s: every response.create would otherwise log the same outage. */
  private warn(err: unknown, m: string): void {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) return;
    this.lastWarn = now;
    this.o.logger?.warn({ err: err instanceof Error ? err.message : String(err) }, m);
  }
}
