#!/usr/bin/env node
import 'dotenv/config';
import { ConfigError } from '../config/config';
import { serve } from './serve';

const USAGE = `Usage: realtime-relay <command> [options]

Commands:
  serve                 Start the relay (settings from the environment or .env)

Run 'realtime-relay <command> --help' for a command's options.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return command ? 0 : 2;
  }
  if (command === 'serve') {
    if (rest.includes('--help')) {
      console.log('Usage: realtime-relay serve\n\nStarts the relay. Every setting is an environment variable; see .env.example.');
      return 0;
    }
    await serve();
    return -1; // keeps running
  }
  console.error(`Unknown command: ${command}\n\n${USAGE}`);
  return 2;
}

main(process.argv.slice(2))
  .then((code) => {
    if (code >= 0) process.exit(code);
  })
  .catch((err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`realtime-relay: ${err.message}`);
      process.exit(78); // EX_CONFIG
    }
    console.error(err);
    process.exit(1);
  });
