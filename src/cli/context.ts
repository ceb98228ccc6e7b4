import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Exit codes, after sysexits(3) where one fits, so scripts and supervisors can branch on them. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 78,
} as const;

/**
 * Where a command writes and which environment it reads. Injected rather than taken from
 * `process` so tests run commands in-process and read exactly what a user would see.
 */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** A command line the command cannot act on (exit 2); the message names what is wrong. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command understood its arguments but could not do the work (exit 1). */
export class CliFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliFailure';
  }
}

const failedIn = new WeakMap<object, string>();

/**
 * Runs a (sub)command, remembering for any error it throws the innermost command it came
 * from (`keys create`), so messages and the `--help` hint name the command the user typed.
 */
export async function asCommand<T>(command: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (typeof err === 'object' && err !== null && !failedIn.has(err)) failedIn.set(err, command);
    throw err;
  }
}

export function commandOf(err: unknown, fallback: string): string {
  return (typeof err === 'object' && err !== null && failedIn.get(err)) || fallback;
}

/**
 * `--help`/`-h` anywhere wins over every other argument, even invalid ones: someone unsure of
 * the syntax should get the help text, not an error about the option they got wrong.
 */
export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** Node's own errors; duck-typed, since they fail `instanceof Error` across realms (jest, vm). */
export function errorMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') return (err as { message: string }).message;
  return String(err);
}

function isParseArgsError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
}

/** `parseArgs` in strict mode, with its errors turned into usage errors (exit 2). */
export function parseCommand<T extends Omit<ParseArgsConfig, 'args' | 'strict'>>(
  argv: readonly string[],
  config: T,
): ReturnType<typeof parseArgs<T & { args: string[]; strict: true }>> {
  try {
    return parseArgs({ ...config, args: [...argv], strict: true });
  } catch (err) {
    if (isParseArgsError(err)) throw new UsageError(errorMessage(err));
    throw err;
  }
}

/** An option the command cannot do without. */
export function required(value: string | undefined, option: string): string {
  if (value === undefined || value.trim() === '') throw new UsageError(`${option} is required`);
  return value;
}

/** `YYYY-MM-DD` (UTC) or a full ISO-8601 timestamp; rejects dates that Date would roll over (2025-02-30). */
export function parseDateOption(value: string, option: string): { date: Date; dateOnly: boolean } {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const timestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(value);
  const t = dateOnly ? Date.parse(`${value}T00:00:00Z`) : timestamp ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(t) || (dateOnly && new Date(t).toISOString().slice(0, 10) !== value)) {
    throw new UsageError(`${option} must be a date (YYYY-MM-DD) or an ISO-8601 timestamp, got '${value}'`);
  }
  return { date: new Date(t), dateOnly };
}
