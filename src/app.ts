import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { Authenticator, requireScope, type CredentialCarrier } from './auth/authenticator';
import { selectSubprotocol } from './auth/credentials';
import type { Principal } from './auth/principal';
import type { RelayConfig } from './config/config';
import { HttpError, installErrorHandler } from './http/errors';
import { admitConnection, createLimits, installHttpHardening } from './limits';
import { createLogger } from './logging';
import { openMetering, type Metering } from './metering';
import { attachMetrics, combineObservers, RelayMetrics } from './metrics';
import { SessionRegistry } from './relay/session-registry';
import { adminBudgetRoutes } from './routes/admin-budgets';
import { adminKeyRoutes } from './routes/admin-keys';
import { installAdminTokenHint } from './auth/admin-token-hint';
import { demoRoutes } from './routes/demo';
import { ensureSelfSignedCert } from './http/self-signed-cert';
import { rootRoutes } from './routes/root';
import { docsRoutes } from './routes/docs';
import { healthRoutes } from './routes/health';
import { mintRoutes, type ProviderMint } from './routes/mint';
import { realtimeRoutes } from './routes/realtime';
import { usageRoutes } from './routes/usage';
import { createSessionPlanner, type SessionObserver } from './session/plan-session';
import { RealtimeSimulator } from './simulator';
import type { SqlDatabase } from './storage/database';
import { openDatabaseChecked } from './storage/open-checked';
import { createProvider, type UpstreamProvider } from './upstream';

export interface RelayServices {
  config: RelayConfig;
  logger: Logger;
  db: SqlDatabase;
  provider: UpstreamProvider;
  authenticator: Authenticator;
  metering: Metering;
  sessions: SessionRegistry;
  /** Present when UPSTREAM_PROVIDER=simulator: the built-in upstream. */
  simulator?: RealtimeSimulator;
}

export interface Relay {
  app: FastifyInstance;
  services: RelayServices;
  /** Starts listening; resolves with the base URL (http(s)://host:port). */
  listen(): Promise<string>;
  /** Graceful stop: refuse new sessions, drain, flush the ledger, close everything. */
  shutdown(): Promise<void>;
}

export interface CreateRelayOptions {
  logger?: Logger;
  /** Extra per-session observers (metrics). */
  observer?: SessionObserver;
}

/**
 * Builds the relay from its configuration: storage, identity, metering, the upstream provider
 * (or the built-in simulator) and every route, each a Fastify plugin with its own state.
 */
export async function createRelay(config: RelayConfig, opts: CreateRelayOptions = {}): Promise<Relay> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  if (config.auth.tokenSecretGenerated) {
    logger.warn('RELAY_TOKEN_SECRET is not set: ephemeral keys are signed with a per-process secret and will not survive a restart or work on other instances');
  }
  for (const warning of config.warnings ?? []) logger.warn(warning);
  if (config.tls?.selfSigned) await ensureSelfSignedCert(config.tls);

  let simulator: RealtimeSimulator | undefined;
  let provider: UpstreamProvider;
  if (config.upstream.provider === 'simulator') {
    const simKey = `sk-sim-${randomBytes(16).toString('hex')}`;
    simulator = new RealtimeSimulator({ apiKey: simKey, deltaIntervalMs: 20 });
    await simulator.start();
    provider = createProvider(config.upstream, { baseUrl: simulator.baseUrl, apiKey: simKey });
    logger.warn({ upstream: simulator.baseUrl }, 'no provider key configured: serving from the built-in simulated upstream');
  } else {
    provider = createProvider(config.upstream);
  }

  const db = await openDatabaseChecked(config.storage.databaseUrl);
  const authenticator = new Authenticator({ config, db, logger });
  await authenticator.init();
  const metering = await openMetering({ db, config, logger });
  const sessions = new SessionRegistry();

  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: config.limits.bodyLimitBytes,
    // Errors Fastify raises before routing (a malformed percent-encoding in the path) bypass
    // setErrorHandler; without this they answer in Fastify's shape, not OpenAI's.
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400;
      void reply.status(status).send(new HttpError(status, 'invalid_request', err.message, 'invalid_request_error').toBody());
    },
    ...(config.tls ? { https: { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) } } : {}),
  }) as unknown as FastifyInstance;
  installErrorHandler(app);
  installAdminTokenHint(app, Boolean(config.auth.adminToken));
  // Before any route: swagger documents only the routes registered after it.
  await app.register(docsRoutes);
  // >>> limits, HTTP hardening, metrics (src/limits, src/metrics): before any route.
  await installHttpHardening(app, config.limits);
  const limits = await createLimits(config, logger);
  app.addHook('onClose', () => limits.close());
  const metrics = new RelayMetrics({ activeSessions: () => sessions.size, spoolDepth: () => metering.ledger.spoolDepth() });
  metrics.instrumentLedger(metering.ledger);
  await attachMetrics(app, metrics, { port: config.metricsPort, host: config.host });
  // <<< limits, HTTP hardening, metrics

  await app.register(websocket, {
    options: {
      // ws closes the socket (1009) past this; frames between MAX_FRAME_BYTES and it get an error event and the session goes on.
      maxPayload: config.relay.maxFrameBytes * 2 + 1024 * 1024,
      perMessageDeflate: config.relay.compression,
      handleProtocols: (offered: Set<string>) => selectSubprotocol(offered),
    },
  });

  const authenticate = (scope: 'realtime' | 'usage') => async (request: CredentialCarrier): Promise<Principal> => {
    const principal = await authenticator.authenticateRequest(request);
    requireScope(principal, scope);
    return principal;
  };
  const authenticateAdmin = async (request: FastifyRequest): Promise<Principal> => {
    const principal = await authenticator.authenticateRequest(request);
    requireScope(principal, 'admin');
    return principal;
  };

  const providerMint: ProviderMint = {
    fetch: async (path, body) => {
      const target = provider.httpTarget(path);
      const res = await fetch(target.url, { method: 'POST', headers: target.headers, body: JSON.stringify(body), signal: AbortSignal.timeout(config.upstream.connectTimeoutMs) });
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { error: { message: 'upstream answered with a non-JSON body', type: 'server_error', code: 'upstream_error' } };
      }
      return { status: res.status, body: parsed };
    },
  };

  await app.register(healthRoutes, {
    sessions,
    readinessChecks: { database: () => db.ping() },
  });
  await app.register(realtimeRoutes, {
    config,
    provider,
    sessions,
    authenticate: authenticate('realtime'),
    admit: async (principal, request) => {
      const verdict = await metering.guard.check({ user: principal.user, tenant: principal.tenant });
      if (!verdict.ok) {
        throw new HttpError(402, 'insufficient_quota', `The ${verdict.period} spending limit of this ${verdict.scope} has been reached.`, 'insufficient_quota');
      }
      // Last, so no later refusal leaves a slot taken; held until the connection closes.
      await admitConnection(limits.sessions, principal, request);
    },
    checkModel: (model) =>
      metering.pricing(provider.name, model).status === 'unpriced'
        ? { type: 'invalid_request_error', code: 'model_not_priced', message: `Model ${model} has no price configured on this relay.`, param: 'model' }
        : null,
    servedModels: () => config.models.allowed ?? metering.prices.models(provider.name),
    planSession: metrics.instrumentPlanner(createSessionPlanner({ config, metering, logger, observer: combineObservers(metrics.observer, opts.observer) })),
  });
  await app.register(mintRoutes, { authenticator, config, ephemeralKeys: authenticator.ephemeralKeys, providerMint, rateLimiter: limits.mintRateLimiter });
  await app.register(adminKeyRoutes, { authenticator, keyStore: authenticator.keyStore, ephemeralKeys: authenticator.ephemeralKeys });
  await app.register(usageRoutes, { ledger: metering.ledger, authenticate: authenticate('usage'), authenticateAdmin });
  await app.register(adminBudgetRoutes, { budgets: metering.budgets, guard: metering.guard, authenticateAdmin });
  await app.register(demoRoutes, { enabled: config.demoEnabled });
  await app.register(rootRoutes, { demoEnabled: config.demoEnabled });

  const services: RelayServices = { config, logger, db, provider, authenticator, metering, sessions, simulator };
  let stopping: Promise<void> | null = null;

  return {
    app,
    services,
    async listen() {
      return app.listen({ port: config.port, host: config.host });
    },
    shutdown() {
      stopping ??= (async () => {
        logger.info({ active_sessions: sessions.size, drain_timeout_ms: config.relay.drainTimeoutMs }, 'draining');
        const { closedByRelay } = await sessions.drain(config.relay.drainTimeoutMs, config.relay.cancelWaitMs);
        await app.close();
        const leftInSpool = await metering.close(5000);
        await db.close();
        await simulator?.stop();
        logger.info({ closed_by_relay: closedByRelay, spooled_rows_left: leftInSpool }, 'stopped');
      })();
      return stopping;
    },
  };
}
