import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCli } from '../../src/cli/main';
import { emptyUsage, type TokenUsage } from '../../src/metering/usage';
import type { LedgerEntry } from '../../src/storage/ledger';

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** Runs one command line in-process, as the entry point would, and captures what it prints. */
export async function cli(argv: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  let out = '';
  let err = '';
  const code = await runCli(argv, {
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
    env,
  });
  return { code, out, err };
}

/** A scratch directory holding a SQLite relay database, and the environment naming it. */
export function scratch(): { dir: string; dbFile: string; env: NodeJS.ProcessEnv; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'relay-cli-'));
  const dbFile = path.join(dir, 'relay.db');
  return {
    dir,
    dbFile,
    env: { NODE_ENV: 'test', DATABASE_URL: `sqlite:${dbFile}`, SPOOL_DIR: path.join(dir, 'spool'), LOG_LEVEL: 'silent' },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export function ledgerEntry(over: Partial<Omit<LedgerEntry, 'usage'>> & { usage?: Partial<TokenUsage> }): LedgerEntry {
  const { usage, ...rest } = over;
  return {
    id: randomUUID(),
    responseId: `resp_${randomUUID()}`,
    sessionId: 'rs_1',
    user: 'alice',
    tenant: 'acme',
    keyId: null,
    provider: 'openai',
    model: 'gpt-realtime',
    status: 'completed',
    usage: { ...emptyUsage(), ...usage },
    costNanos: 0n,
    priceVersion: 'test',
    priceModel: 'gpt-realtime',
    estimated: false,
    createdAt: Date.UTC(2025, 0, 1),
    ...rest,
  };
}
