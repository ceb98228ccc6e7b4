import {
  Ledger,
  type InsertResult,
  type LedgerEntry,
  type LedgerReader,
  type SpendFilter,
  type SpendSubject,
  type SpendSummary,
  type UsageFilter,
  type UsageGroupBy,
  type UsageRow,
} from './ledger';
import { Spool } from './spool';
import type { SqlDatabase } from './database';
import { emptyUsage, TOKEN_FIELDS } from '../metering/usage';

export interface MeterLogger {
  warn(o: object, m: string): void;
}

/** 'spooled': the database was away; the row is on disk and will be replayed. */
export type RecordResult = InsertResult | 'spooled';

export interface DurableLedgerOptions {
  db: SqlDatabase;
  spoolDir: string;
  logger?: MeterLogger;
  /** Replay backoff: first retry after initialMs, doubling up to maxMs. */
  retry?: { initialMs?: number; maxMs?: number };
  /**
   * A database write slower than this is given up and spooled. Safe even if the write then
   * lands: the replay meets the existing row and counts it as a duplicate.
   */
  writeTimeoutMs?: number;
}

interface SpoolLine {
  v: 1;
  entry: Omit<LedgerEntry, 'costNanos'> & { costNanos: string };
}

function encode(entry: LedgerEntry): string {
  const line: SpoolLine = { v: 1, entry: { ...entry, costNanos: entry.costNanos.toString() } };
  return JSON.stringify(line);
}

function decode(text: string): LedgerEntry {
  const line = JSON.parse(text) as Partial<SpoolLine>;
  const e = line.entry;
  if (line.v !== 1 || !e || typeof e.responseId !== 'string' || typeof e.id !== 'string' || !/^\d+$/.test(String(e.costNanos))) {
    throw new Error('not a spooled ledger row');
  }
  const usage = emptyUsage();
  for (const f of [...TOKEN_FIELDS, 'duration_ms'] as const) usage[f] = Number(e.usage?.[f] ?? 0);
  return { ...e, usage, costNanos: BigInt(e.costNanos) };
}

class TimeoutError extends Error {}

/**
 * The ledger as the relay uses it: `record` writes a row at once and, when the database is
 * unreachable, appends it to the on-disk spool instead; a background replayer puts spooled rows
 * into the database, oldest first, with bounded exponential backoff. Rows are independent and
 * the insert is idempotent, so replay order and repetition never change what is billed.
 *
 * Reads (spend, usage) go to the database only: while rows sit in the spool, budgets do not
 * see them — a bounded lag the size of the outage.
 */
export class DurableLedger implements LedgerReader {
  readonly ledger: Ledger;
  private readonly spool: Spool<LedgerEntry>;
  private readonly logger?: MeterLogger;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly writeTimeoutMs: number;
  private delayMs: number;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  private constructor(private readonly db: SqlDatabase, opts: DurableLedgerOptions) {
    this.ledger = new Ledger(db);
    this.spool = new Spool<LedgerEntry>(opts.spoolDir, 'ledger', encode, decode);
    this.logger = opts.logger;
    this.initialMs = opts.retry?.initialMs ?? 500;
    this.maxMs = opts.retry?.maxMs ?? 30_000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 5_000;
    this.delayMs = this.initialMs;
  }

  /** Opens the spool and, if an earlier run left rows in it, schedules their replay. */
  static async open(opts: DurableLedgerOptions): Promise<DurableLedger> {
    const d = new DurableLedger(opts.db, opts);
    const left = await d.spool.init();
    if (left > 0) {
      d.logger?.warn({ spooled: left, dir: opts.spoolDir }, 'ledger spool holds rows from an earlier run; replaying');
      d.schedule(0);
    }
    return d;
  }

  /** Writes a row, or spools it when the database fails. Rejects only if the spool disk fails too. */
  async record(entry: LedgerEntry): Promise<RecordResult> {
    try {
      return await this.withTimeout(this.ledger.insert(entry));
    } catch (err) {
      await this.spool.append(entry);
      this.logger?.warn(
        { err: errorMessage(err), responseId: entry.responseId, spooled: this.spool.depth() },
        'ledger write failed; row spooled for replay',
      );
      this.schedule(this.delayMs);
      return 'spooled';
    }
  }

  spoolDepth(): number {
    return this.spool.depth();
  }

  /** One replay pass now; true when the spool is empty afterwards. */
  async replay(): Promise<boolean> {
    if (this.spool.depth() === 0) return true;
    if (!(await this.reachable())) return false;
    return this.spool.drain(async (entry) => {
      try {
        await this.withTimeout(this.ledger.insert(entry));
        return 'done';
      } catch (err) {
        // Reachable but refusing this row (a constraint, a bad value): retrying forever would
        // block every row behind it, so it is set aside for an operator.
        if (await this.reachable()) {
          this.logger?.warn({ err: errorMessage(err), responseId: entry.responseId }, 'ledger refused a spooled row; moved to the rejected file');
          return 'reject';
        }
        return 'retry';
      }
    });
  }

  /**
   * For shutdown: stops the background replayer and tries to drain the spool until `timeoutMs`
   * elapses. Returns the rows still spooled (they stay on disk for the next start).
   */
  async flush(timeoutMs = 5_000): Promise<number> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const deadline = Date.now() + timeoutMs;
    let pause = Math.min(this.initialMs, 200);
    while (this.spool.depth() > 0 && Date.now() < deadline) {
      if (await this.replay().catch(() => false)) break;
      await new Promise((r) => setTimeout(r, Math.min(pause, Math.max(0, deadline - Date.now()))));
      pause = Math.min(pause * 2, 1_000);
    }
    return this.spool.depth();
  }

  spend(filter: SpendFilter): Promise<bigint> {
    return this.ledger.spend(filter);
  }

  spendSummary(subject: SpendSubject, starts: { daily: Date; monthly: Date }): Promise<SpendSummary> {
    return this.ledger.spendSummary(subject, starts);
  }

  usage(filter: UsageFilter, groupBy: UsageGroupBy = null): Promise<UsageRow[]> {
    return this.ledger.usage(filter, groupBy);
  }

  find(provider: string, responseId: string): Promise<LedgerEntry | null> {
    return this.ledger.find(provider, responseId);
  }

  private schedule(delayMs: number): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.replay()
        .catch((err: unknown) => {
          this.logger?.warn({ err: errorMessage(err) }, 'ledger replay failed');
          return false;
        })
        .then((empty) => {
          if (empty) {
            this.delayMs = this.initialMs;
            // Rows spooled while this pass ran may remain in the active file.
            if (this.spool.depth() > 0) this.schedule(0);
          } else {
            this.delayMs = Math.min(this.delayMs * 2, this.maxMs);
            this.schedule(this.delayMs);
          }
        });
    }, delayMs);
    // The replayer must never keep a finished process alive; flush() covers shutdown.
    this.timer.unref();
  }

  private async reachable(): Promise<boolean> {
    try {
      await this.withTimeout(this.db.ping());
      return true;
    } catch {
      return false;
    }
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new TimeoutError(`database did not answer within ${this.writeTimeoutMs} ms`)), this.writeTimeoutMs);
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(t));
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
