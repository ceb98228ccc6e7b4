import { randomUUID } from 'node:crypto';
import type { SqlDatabase, SqlDialect, SqlValue } from '../../src/storage/database';
import type { LedgerEntry } from '../../src/storage/ledger';
import { emptyUsage, type TokenUsage } from '../../src/metering/usage';

export const T0 = Date.UTC(2025, 0, 31, 23, 0, 0); // 2025-01-31 23:00 UTC

/** A ledger row with defaults; `usage` may be partial. */
export function entry(over: Partial<Omit<LedgerEntry, 'usage'>> & { usage?: Partial<TokenUsage> } = {}): LedgerEntry {
  const { usage, ...rest } = over;
  return {
    id: randomUUID(),
    responseId: `resp_${randomUUID()}`,
    sessionId: 'sess_1',
    user: 'alice',
    tenant: 'acme',
    keyId: 'rk_1',
    provider: 'openai',
    model: 'gpt-realtime',
    status: 'completed',
    usage: { ...emptyUsage(), ...usage },
    costNanos: 1000n,
    priceVersion: 'v1',
    priceModel: 'gpt-realtime',
    estimated: false,
    createdAt: T0,
    ...rest,
  };
}

/**
 * A database that can be switched off: every call fails while `down` (as a refused connection
 * would), and `refuse` makes inserts of chosen response ids fail while the database is up, with
 * a data error (the kind the spool sets aside).
 */
export class SwitchableDatabase implements SqlDatabase {
  down = false;
  readonly refuse = new Set<string>();

  constructor(private readonly inner: SqlDatabase) {}

  get dialect(): SqlDialect {
    return this.inner.dialect;
  }

  private check(params?: readonly SqlValue[]): void {
    if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:5432 (simulated)');
    if (params?.some((p) => typeof p === 'string' && this.refuse.has(p))) {
      // A refusal for the row's data, coded as each backend codes it (22001: string_data_right_truncation).
      throw Object.assign(new Error('value too long (simulated)'), { code: this.dialect === 'postgres' ? '22001' : 'SQLITE_CONSTRAINT_CHECK' });
    }
  }

  async query<Row extends object = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<Row[]> {
    this.check(params);
    return this.inner.query<Row>(sql, params);
  }

  async run(sql: string, params?: readonly SqlValue[]): Promise<number> {
    this.check(params);
    return this.inner.run(sql, params);
  }

  async transaction<T>(fn: (tx: SqlDatabase) => Promise<T>): Promise<T> {
    this.check();
    return this.inner.transaction(fn);
  }

  async ping(): Promise<void> {
    this.check();
    await this.inner.ping();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Polls until `cond` holds, failing after `timeoutMs`. */
export async function until(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
