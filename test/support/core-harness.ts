import Fastify, { type FastifyInstance } from 'fastify';
import websocket from '@fastify/websocket';
import type { Principal } from '../../src/auth/principal';
import { loadConfig, type RelayConfig } from '../../src/config/config';
import { installErrorHandler } from '../../src/http/errors';
import { SessionRegistry } from '../../src/relay/session-registry';
import { realtimeRoutes, type RealtimeRouteOptions } from '../../src/routes/realtime';
import { RealtimeSimulator } from '../../src/simulator';
import { createProvider } from '../../src/upstream';

export const SIM_KEY = 'sk-sim-upstream-key-0123456789';

export interface CoreHarness {
  simulator: RealtimeSimulator;
  app: FastifyInstance;
  sessions: SessionRegistry;
  config: RelayConfig;
  url: string;
  close(): Promise<void>;
}

/**
 * The relay core alone (no identity or metering layers): the realtime route in front of the
 * simulator, with every caller admitted as one test principal.
 */
export async function startCoreHarness(
  env: Record<string, string> = {},
  extra: Partial<Pick<RealtimeRouteOptions, 'planSession' | 'checkModel' | 'servedModels'>> = {},
  /** Another upstream (an http://…/v1 base) instead of the simulator, for tests that need a misbehaving peer. */
  upstreamBaseUrl?: string,
): Promise<CoreHarness> {
  const config = loadConfig({ NODE_ENV: 'test', UPSTREAM_PROVIDER: 'simulator', LOG_LEVEL: 'silent', PING_INTERVAL_MS: '0', ...env });
  // The simulator serves the dialects the relay is told the upstream accepts (UPSTREAM_DIALECTS).
  const simulator = new RealtimeSimulator({ apiKey: SIM_KEY, deltaIntervalMs: 2, dialects: config.upstream.dialects });
  await simulator.start();
  const provider = createProvider(config.upstream, { baseUrl: upstreamBaseUrl ?? simulator.baseUrl, apiKey: SIM_KEY });
  const sessions = new SessionRegistry();
  const app = Fastify({ logger: false });
  installErrorHandler(app);
  await app.register(websocket, { options: { maxPayload: config.relay.maxFrameBytes * 2 + 1024 * 1024, perMessageDeflate: false } });
  const principal: Principal = { user: 'user-1', scopes: ['realtime'], kind: 'api_key', keyId: 'key-1' };
  await app.register(realtimeRoutes, { config, provider, sessions, authenticate: async () => principal, ...extra });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    simulator,
    app,
    sessions,
    config,
    url: `ws://127.0.0.1:${port}/v1/realtime`,
    close: async () => {
      await app.close();
      await simulator.stop();
    },
  };
}
