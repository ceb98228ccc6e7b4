import { ConfigError } from '../config/config';
import { budgetsCommand } from './commands/budgets';
import { keysCommand } from './commands/keys';
import { pricesCommand } from './commands/prices';
import { serveCommand } from './commands/serve';
import { usageCommand } from './commands/usage';
import { asCommand, CliFailure, commandOf, errorMessage, EXIT, UsageError, type CliIo } from './context';

export const MAIN_HELP = `Usage: realtime-relay <command> [options]

Commands:
  serve          Start the relay (settings from the environment or .env)
  keys           Create, list and revoke relay API keys
  usage          Report billed usage from the ledger
  budgets        List, show and set budgets per user or tenant
  prices check   Validate the price file and print the prices in force

keys, usage and budgets work directly on the database named by DATABASE_URL (same settings as serve),
applying its migrations first.

Exit codes: 0 success, 1 failure, 2 usage error, 78 configuration error.
Run 'realtime-relay <command> --help' for a command's options.
`;

type Command = (argv: string[], io: CliIo) => Promise<number | null>;

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  keys: keysCommand,
  usage: usageCommand,
  budgets: budgetsCommand,
  prices: pricesCommand,
};

/**
 * Runs one command line and returns its exit code, or null when the command keeps running
 * (serve). Never throws and never exits the process, so tests can call it in-process.
 */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number | null> {
  let [command, ...rest] = argv;
  if (command === 'help' && rest.length > 0) {
    // `help keys create` is `keys create --help`.
    [command, ...rest] = [...rest, '--help'];
  }
  if (command === undefined) {
    io.stderr(MAIN_HELP);
    return EXIT.usage;
  }
  if (command === '--help' || command === '-h' || command === 'help') {
    io.stdout(MAIN_HELP);
    return EXIT.ok;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) {
    io.stderr(`realtime-relay: unknown command '${command}'\n\n${MAIN_HELP}`);
    return EXIT.usage;
  }
  try {
    return await asCommand(command, () => run(rest, io));
  } catch (err) {
    return report(err, commandOf(err, command), io);
  }
}

function report(err: unknown, command: string, io: CliIo): number {
  if (err instanceof UsageError) {
    io.stderr(`realtime-relay ${command}: ${err.message}\nRun 'realtime-relay ${command} --help' for usage.\n`);
    return EXIT.usage;
  }
  if (err instanceof ConfigError) {
    io.stderr(`realtime-relay ${command}: configuration error: ${err.message}\n`);
    return EXIT.config;
  }
  if (err instanceof CliFailure) {
    io.stderr(`realtime-relay ${command}: ${err.message}\n`);
    return EXIT.failure;
  }
  // Unexpected (database unreachable, disk full…): the message is what an operator can act on.
  io.stderr(`realtime-relay ${command}: ${errorMessage(err)}\n`);
  const stack = typeof err === 'object' && err !== null ? (err as { stack?: unknown }).stack : undefined;
  if (io.env.DEBUG && typeof stack === 'string') io.stderr(`${stack}\n`);
  return EXIT.failure;
}
