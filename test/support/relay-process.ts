import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { delay } from './ws-client';

const REPO = path.resolve(__dirname, '..', '..');

export interface RelayProcess {
  child: ChildProcess;
  baseUrl: string;
  wsUrl: string;
  logs(): string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * A relay as operators run it: `realtime-relay serve` in its own process (from source),
 * configured only through the environment. Resolves once /readyz answers 200.
 */
export async function startRelayProcess(
  env: Record<string, string>,
  /** How to ask /readyz (a relay with a certificate the test process does not trust needs its own). */
  isReady: (baseUrl: string) => Promise<boolean> = (baseUrl) => fetch(`${baseUrl}/readyz`).then((r) => r.ok, () => false),
): Promise<RelayProcess> {
  // tsx as a loader inside one node process (not the tsx CLI, which runs a child): signals
  // reach the relay itself, as they do in production.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'src', 'cli', 'index.ts'), 'serve'], {
    cwd: REPO,
    // Port 0: the relay picks a free port and logs its URL, so parallel tests never collide.
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', ...env, PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const listening = (): string | null => {
    for (const line of output.split('\n')) {
      if (!line.includes('"relay listening"')) continue;
      try {
        return (JSON.parse(line) as { url: string }).url;
      } catch {
        /* a partial line: read again later */
      }
    }
    return null;
  };
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) break;
    const baseUrl = listening();
    if (baseUrl && (await isReady(baseUrl))) {
      return {
        child,
        baseUrl,
        wsUrl: `${baseUrl.replace(/^http/, 'ws')}/v1/realtime`,
        logs: () => output,
        exited,
        stop: async (signal = 'SIGTERM') => {
          if (child.exitCode === null) child.kill(signal);
          const t = setTimeout(() => child.kill('SIGKILL'), 10000);
          const code = await exited;
          clearTimeout(t);
          return code;
        },
      };
    }
    await delay(100);
  }
  child.kill('SIGKILL');
  throw new Error(`relay process did not become ready:\n${output}`);
}
