#!/usr/bin/env -S node --max-semi-space-size=64 --v8-pool-size=1
import 'dotenv/config';
import { runCli } from './main';

/** Exits only once both streams are flushed: exiting at once can cut piped output short. */
function exitAfterFlush(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

void runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
}).then((code) => {
  if (code !== null) exitAfterFlush(code);
});
