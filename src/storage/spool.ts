import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';

/**
 * An append-only, fsync'd file of JSON lines that holds ledger rows while the database is
 * unreachable, so a billed response is never lost.
 *
 * Files in `dir` (one spool per relay instance: instances must not share a spool directory):
 *   <name>.spool.jsonl     active file; appends go here.
 *   <name>.replay.jsonl    a batch being replayed. Replay renames the active file to this name
 *                          (atomic) and deletes it only after every line has been handled, so a
 *                          crash mid-replay leaves it in place and the next start replays it again.
 *                          That repeats rows the database already has, which is safe only
 *                          because the ledger's insert is idempotent on (provider, response_id).
 *   <name>.rejected.jsonl  lines that do not parse (a torn last write) or whose data the
 *                          database refused (a constraint or type error, never a transient
 *                          condition); kept for an operator, never retried.
 */
/**
 * 'done': handled, move on. 'reject': the database refused the row for its data; keep it aside,
 * never retry. 'retry': the database cannot take it now (away, busy, locked, timing out, full);
 * stop and keep the batch, in order, for the next attempt.
 */
export type SpoolHandler<T> = (record: T) => Promise<'done' | 'retry' | 'reject'>;

export class Spool<T> {
  private readonly activeFile: string;
  private readonly replayFile: string;
  private readonly rejectedFile: string;
  private depthCount = 0;
  private replayCount = 0;
  /** When the oldest row still waiting was spooled (Unix ms); null while the spool is empty. */
  private oldestAt: number | null = null;
  private lock: Promise<void> = Promise.resolve();
  private draining: Promise<boolean> | null = null;

  constructor(
    readonly dir: string,
    name: string,
    private readonly encode: (record: T) => string,
    private readonly decode: (line: string) => T,
    /** When a record was spooled (Unix ms), for `oldestAgeMs`; records carry it themselves so it survives a restart. */
    private readonly spooledAt: (record: T) => number = () => Date.now(),
  ) {
    this.activeFile = path.join(dir, `${name}.spool.jsonl`);
    this.replayFile = path.join(dir, `${name}.replay.jsonl`);
    this.rejectedFile = path.join(dir, `${name}.rejected.jsonl`);
  }

  /** Creates the directory, repairs a torn last line and counts what an earlier run left. */
  async init(): Promise<number> {
    await mkdir(this.dir, { recursive: true });
    await this.terminateTornLine(this.activeFile);
    this.replayCount = await countLines(this.replayFile);
    this.depthCount = this.replayCount + (await countLines(this.activeFile));
    if (this.depthCount > 0) this.oldestAt = (await this.firstTime(this.replayFile)) ?? (await this.firstTime(this.activeFile)) ?? Date.now();
    return this.depthCount;
  }

  /** Rows waiting to be replayed (active + batch in replay). */
  depth(): number {
    return this.depthCount;
  }

  /** How long the oldest waiting row has waited, in ms; 0 when the spool is empty. */
  oldestAgeMs(now = Date.now()): number {
    return this.depthCount === 0 || this.oldestAt === null ? 0 : Math.max(0, now - this.oldestAt);
  }

  /** Appends one record and fsyncs before resolving: once this resolves the row survives a crash. */
  append(record: T): Promise<void> {
    const line = `${this.encode(record)}\n`;
    return this.exclusive(async () => {
      await appendDurably(this.activeFile, line);
      if (this.depthCount === 0 || this.oldestAt === null) this.oldestAt = this.spooledAt(record);
      this.depthCount += 1;
    });
  }

  /**
   * Feeds every spooled record, oldest first, to `handler`. Returns true when the spool is empty
   * afterwards, false when the handler asked to retry later. Concurrent calls share one run.
   */
  drain(handler: SpoolHandler<T>): Promise<boolean> {
    if (!this.draining) {
      this.draining = this.drainOnce(handler).finally(() => {
        this.draining = null;
      });
    }
    return this.draining;
  }

  private async drainOnce(handler: SpoolHandler<T>): Promise<boolean> {
    for (;;) {
      if (!(await exists(this.replayFile))) {
        const moved = await this.exclusive(async () => {
          if (!(await exists(this.activeFile))) return false;
          const pending = this.depthCount - this.replayCount;
          await rename(this.activeFile, this.replayFile);
          await fsyncDir(this.dir);
          this.replayCount = pending;
          return true;
        });
        if (!moved) {
          if (this.depthCount === 0) this.oldestAt = null;
          return true;
        }
      }
      if (!(await this.replayBatch(handler))) return false;
      await unlink(this.replayFile);
      await fsyncDir(this.dir);
      this.depthCount -= this.replayCount;
      this.replayCount = 0;
    }
  }

  private async replayBatch(handler: SpoolHandler<T>): Promise<boolean> {
    const lines = createInterface({ input: createReadStream(this.replayFile, 'utf8'), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        if (line.trim() === '') continue;
        let record: T;
        try {
          record = this.decode(line);
        } catch {
          await this.reject(line);
          continue;
        }
        // Lines are in spool order: the one being tried is the oldest still waiting.
        this.oldestAt = this.spooledAt(record);
        const outcome = await handler(record);
        if (outcome === 'retry') return false;
        if (outcome === 'reject') await this.reject(line);
      }
      return true;
    } finally {
      lines.close();
    }
  }

  /** The spool time of a file's first readable record, or null. */
  private async firstTime(file: string): Promise<number | null> {
    if (!(await exists(file))) return null;
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    try {
      for await (const line of lines) {
        try {
          return this.spooledAt(this.decode(line));
        } catch {
          /* a torn or foreign line: try the next */
        }
      }
      return null;
    } finally {
      lines.close();
    }
  }

  private async reject(line: string): Promise<void> {
    await appendDurably(this.rejectedFile, `${line}\n`);
  }

  /** A crash mid-append can leave a line without its newline; the next append would fuse with it. */
  private async terminateTornLine(file: string): Promise<void> {
    let fh: FileHandle | null = null;
    try {
      fh = await open(file, 'r');
      const { size } = await fh.stat();
      if (size === 0) return;
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      await fh.close();
      fh = null;
      if (last[0] !== 0x0a) await appendDurably(file, '\n');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    } finally {
      await fh?.close();
    }
  }

  private exclusive<R>(fn: () => Promise<R>): Promise<R> {
    const run = this.lock.then(fn);
    this.lock = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}

async function appendDurably(file: string, text: string): Promise<void> {
  const fh = await open(file, 'a');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** A rename or unlink is durable only once the directory entry itself is synced. */
async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | null = null;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms cannot fsync a directory; the rename is still atomic there.
  } finally {
    await fh?.close();
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

async function countLines(file: string): Promise<number> {
  if (!(await exists(file))) return 0;
  let n = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim() !== '') n += 1;
  return n;
}
