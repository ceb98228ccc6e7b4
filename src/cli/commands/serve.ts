import { serve } from '../serve';
import { EXIT, parseCommand, wantsHelp, type CliIo } from '../context';

export const SERVE_HELP = `Usage: realtime-relay serve

Starts the relay. Every setting is an environment variable (or a line in .env); see
.env.example. SIGTERM or SIGINT drains it: new sessions are refused, open ones get up to
DRAIN_TIMEOUT_MS to finish, the ledger is flushed.

Exit codes: 78 on an invalid configuration, 1 when startup fails.

Options:
  -h, --help    Show this help
`;

/** Resolves once listening; `null` tells the entry point not to exit while the relay runs. */
export async function serveCommand(argv: string[], io: CliIo): Promise<number | null> {
  if (wantsHelp(argv)) {
    io.stdout(SERVE_HELP);
    return EXIT.ok;
  }
  // No options: a typo such as `serve --port 80` must fail rather than be silently ignored.
  parseCommand(argv, { options: {} });
  await serve();
  return null;
}
