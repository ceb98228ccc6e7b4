/**
 * Standalone simulator: `PORT=8090 SIM_API_KEY=sk-test node dist/src/simulator/cli.js`.
 * Env: PORT (8090), HOST (127.0.0.1), SIM_API_KEY, SIM_AUDIO_CHUNK_MS, SIM_DELTA_INTERVAL_MS, SIM_SEED.
 */
import { RealtimeSimulator } from './simulator';

function envNumber(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${name} must be a number, got '${v}'`);
  return n;
}

async function main(): Promise<void> {
  const apiKey = process.env.SIM_API_KEY;
  const audioChunkMs = envNumber('SIM_AUDIO_CHUNK_MS');
  const deltaIntervalMs = envNumber('SIM_DELTA_INTERVAL_MS');
  const seed = envNumber('SIM_SEED');
  const sim = new RealtimeSimulator({
    port: envNumber('PORT') ?? 8090,
    host: process.env.HOST ?? '127.0.0.1',
    ...(apiKey ? { apiKey } : {}),
    ...(audioChunkMs !== undefined ? { audioChunkMs } : {}),
    // Standalone runs are for humans and dev clients, so stream at roughly real-time speed by default.
    deltaIntervalMs: deltaIntervalMs ?? audioChunkMs ?? 100,
    ...(seed !== undefined ? { seed } : {}),
    logger: {
      info: (...a: unknown[]) => process.stdout.write(`${a.map(String).join(' ')}\n`),
      warn: (...a: unknown[]) => process.stderr.write(`${a.map(String).join(' ')}\n`),
    },
  });
  const { url } = await sim.start();
  process.stdout.write(`realtime simulator listening on ${url} (ws: ${url.replace(/^http/, 'ws')}/realtime?model=gpt-realtime)\n`);
  const shutdown = (): void => {
    sim.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((e: unknown) => {
  process.stderr.write(`simulator failed to start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
