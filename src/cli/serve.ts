import { loadConfig } from '../config/config';
import { createRelay } from '../app';
import { hasNativeFrameMasking } from '../relay/native-masking';
import { ensureDevAdminKey } from '../auth/dev-admin-key';
import { prettySummary, startSummary } from './start-summary';

/**
 * `realtime-relay serve`: starts the relay and stops it gracefully on SIGTERM/SIGINT
 * (refuse new sessions, let open ones finish up to DRAIN_TIMEOUT_MS, close the rest with 1001,
 * flush the ledger).
 */
export async function serve(): Promise<void> {
  const config = loadConfig();
  const relay = await createRelay(config);
  const url = await relay.listen();
  const nativeMasking = hasNativeFrameMasking();
  const devKey = await ensureDevAdminKey(config, relay.services.authenticator.keyStore);
  const summary = startSummary(config, { url, nativeMasking, devKey });
  if (config.env === 'development') process.stdout.write(prettySummary(summary, devKey));
  // Always the JSON line too: log pipelines and the test harness read the URL from it. The key's secret is never in it.
  relay.services.logger.info(summary, 'relay listening');
  if (!nativeMasking) {
    relay.services.logger.warn('bufferutil did not load: WebSocket frames are masked in JavaScript, which roughly doubles the CPU per audio session');
  }
  let signalled = false;
  const stop = (signal: string): void => {
    if (signalled) return;
    signalled = true;
    relay.services.logger.info({ signal }, 'shutdown requested');
    relay
      .shutdown()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        relay.services.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
