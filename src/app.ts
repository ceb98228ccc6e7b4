import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { openAdminServices, type AdminServices } from './admin/services';
import { Authenticator, requireScope, type CredentialCarrier } from './auth/authenticator';
import { selectSubprotocol } from './auth/credentials';
import { billingKeyId, type Principal } from './auth/principal';
import type { ProtocolError } from './relay/protocol-errors';
import type { RelayConfig } from './config/config';
import { HttpError, installErrorHandler } from './http/errors';
import { installJsonBodyParser } from './http/json-body';
import { admitConnection, createLimits, installHttpHardening } from './limits';
import { createLogger } from './logging';
import { openMetering, type Metering } from './metering';
import { BudgetReservations, MemoryReservationStore, RedisReservationStore, SqlReservationStore } from './metering/reservations';
import { attachMetrics, combineObservers, RelayMetrics } from './metrics';
import { registerToolMetrics } from './metrics/tool-metrics';
import { CallRegistry } from './relay/call-registry';
import { SessionRegistry } from './relay/session-registry';
import { registerCallMetrics } from './metrics/call-metrics';
import { adminBudgetRoutes } from './routes/admin-budgets';
import { adminKeyRoutes } from './routes/admin-keys';
import { adminUiRoutes } from './routes/admin-ui';
import { adminToolCallRoutes } from './routes/admin-tool-calls';
import { installAdminTokenHint } from './auth/admin-token-hint';
import { demoRoutes } from './routes/demo';
import { ensureSelfSignedCert } from './http/self-signed-cert';
import { rootRoutes } from './routes/root';
import { docsRoutes } from './routes/docs';
import { healthRoutes } from './routes/health';
import { mintRoutes, type ProviderMint } from './routes/mint';
import { callRoutes } from './routes/calls';
import { modelRefusal, realtimeRoutes } from './routes/realtime';
import { sessionRoutes } from './routes/sessions';
import { toolApprovalRoutes } from './routes/tool-approvals';
import { usageRoutes } from './routes/usage';
import { createSessionPlanner, type SessionObserver } from './session/plan-session';
import { RealtimeSimulator } from './simulator';
import { openModelPolicy } from './models';
import type { SqlDatabase } from './storage/database';
import { openDatabaseChecked } from './storage/open-checked';
import { ToolService } from './tools/service';
import { createProvider, type UpstreamProvider } from './upstream';

export interface RelayServices {
  config: RelayConfig;
  logger: Logger;
  db: SqlDatabase;
  provider: UpstreamProvider;
  authenticator: Authenticator;
  metering: Metering;
  sessions: SessionRegistry;
  /** Spend log, live sessions across instances, budget alerts (admin console). */
  admin: AdminServices;
  /** Server-side tools (TOOLS_FILE), approvals and their audit trail. */
  tools: ToolService;
  /** In-flight budget reservations (see metering/reservations.ts). */
  reservations: BudgetReservations;
  /** WebRTC calls whose sideband this process holds. */
  calls: CallRegistry;
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

  // TOOLS_FILE is validated first, before anything is started: a bad entry stops the relay naming it.
  const toolDefinitions = ToolService.loadDefinitions(config);

  let simulator: RealtimeSimulator | undefined;
  let provider: UpstreamProvider;
  if (config.upstream.provider === 'simulator') {
    const simKey = `sk-sim-${randomBytes(16).toString('hex')}`;
    simulator = new RealtimeSimulator({ apiKey: simKey, deltaIntervalMs: 20, dialects: config.upstream.dialects });
    await simulator.start();
    provider = createProvider(config.upstream, { baseUrl: simulator.baseUrl, apiKey: simKey });
    logger.warn({ upstream: simulator.baseUrl }, 'no provider key configured: serving from the built-in simulated upstream');
  } else {
    provider = createProvider(config.upstream);
  }

  const db = await openDatabaseChecked(config.storage.databaseUrl, { queryTimeoutMs: config.storage.queryTimeoutMs });
  const authenticator = new Authenticator({ config, db, logger });
  await authenticator.init();
  const metering = await openMetering({ db, config, logger });
  const sessions = new SessionRegistry();
  const tools = await ToolService.open({ config, db, logger, definitions: toolDefinitions });

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
  installJsonBodyParser(app, config.limits.bodyMaxDepth);
  installAdminTokenHint(app, Boolean(config.auth.adminToken));
  // Before any route: swagger documents only the routes registered after it.
  await app.register(docsRoutes);
  // >>> limits, HTTP hardening, metrics (src/limits, src/metrics): before any route.
  await installHttpHardening(app, config.limits);
  const limits = await createLimits(config, logger);
  app.addHook('onClose', () => limits.close());
  authenticator.useFailureThrottle(limits.authFailures);
  const metrics = new RelayMetrics({
    activeSessions: () => sessions.size,
    spoolDepth: () => metering.ledger.spoolDepth(),
    spoolOldestAgeSeconds: () => metering.ledger.spoolOldestAgeSeconds(),
  });
  metrics.instrumentLedger(metering.ledger);
  tools.metrics = registerToolMetrics(metrics.registry, () => tools.approvals.store.countPending());
  await attachMetrics(app, metrics, { port: config.metricsPort, host: config.host });
  // <<< limits, HTTP hardening, metrics
  const admin = await openAdminServices({ config, db, guard: metering.guard, logger, registry: metrics.registry });
  app.addHook('onClose', () => admin.close());
  // In-flight budget reservations: in Redis when configured (shared by instances), else in
  // PostgreSQL (shared by instances on it), else in memory (SQLite serves one process).
  const reservations = new BudgetReservations({
    store: limits.redis
      ? new RedisReservationStore(limits.redis.client, limits.redis.keyPrefix)
      : db.dialect === 'postgres'
        ? new SqlReservationStore(db)
        : new MemoryReservationStore(),
    budget: metering.guard,
    logger,
  });
  app.addHook('onClose', () => reservations.close());

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
    // The database degrades /readyz rather than failing it: usage spools meanwhile (see health.ts).
    readinessChecks: {},
    ledger: { check: () => db.ping(), spoolDepth: () => metering.ledger.spoolDepth() },
    checkTimeoutMs: config.storage.queryTimeoutMs,
  });
  const models = openModelPolicy({ file: config.models.lifecycleFile, provider: provider.name, aliases: config.models.aliases, logger, registry: metrics.registry });
  // Shared by WebSocket sessions and WebRTC calls: one admission, one planner.
  const checkBudget = async (principal: Principal): Promise<void> => {
    const verdict = await metering.guard.check({ user: principal.user, tenant: principal.tenant, keyId: billingKeyId(principal) });
    if (!verdict.ok) {
      throw new HttpError(402, 'insufficient_quota', `The ${verdict.period} spending limit of this ${verdict.scope} has been reached.`, 'insufficient_quota');
    }
  };
  const checkModel = (model: string): ProtocolError | null =>
    metering.pricing(provider.name, model).status === 'unpriced'
      ? { type: 'invalid_request_error', code: 'model_not_priced', message: `Model ${model} has no price configured on this relay.`, param: 'model' }
      : null;
  const planSession = metrics.instrumentPlanner(
    createSessionPlanner({
      config,
      metering,
      logger,
      reservations,
      observer: combineObservers(metrics.observer, opts.observer),
      tracking: { sessionLog: admin.sessionLog, live: admin.live },
      alerts: admin.alerts,
      tools,
    }),
  );
  await app.register(realtimeRoutes, {
    config,
    provider,
    sessions,
    resolveModel: (model) => models.resolve(model),
    authenticate: authenticate('realtime'),
    admit: async (principal, request) => {
      await checkBudget(principal);
      // Last, so no later refusal leaves a slot taken; held until the connection closes.
      await admitConnection(limits.sessions, principal, request);
    },
    checkModel,
    servedModels: () => config.models.allowed ?? metering.prices.models(provider.name),
    planSession,
  });
  const calls = new CallRegistry();
  const callMetrics = registerCallMetrics(metrics.registry, () => calls.size);
  await app.register(callRoutes, {
    config,
    provider,
    calls,
    sessions,
    limiter: limits.sessions,
    logger,
    authenticate: authenticate('realtime'),
    checkBudget,
    modelRefusal: (model, principal) => modelRefusal({ config, checkModel }, principal, model),
    planSession,
    onPolicyIncident: callMetrics.policyIncident,
  });
  await app.register(mintRoutes, { authenticator, config, ephemeralKeys: authenticator.ephemeralKeys, providerMint, rateLimiter: limits.mintRateLimiter, upstreamDialects: provider.dialects });
  await app.register(adminKeyRoutes, { authenticator, keyStore: authenticator.keyStore, ephemeralKeys: authenticator.ephemeralKeys });
  await app.register(usageRoutes, { ledger: metering.ledger, authenticate: authenticate('usage'), authenticateAdmin });
  await app.register(adminBudgetRoutes, { budgets: metering.budgets, guard: metering.guard, authenticateAdmin });
  await app.register(toolApprovalRoutes, { approvals: tools.approvals, authenticate: authenticate('realtime'), authenticateAdmin });
  await app.register(adminToolCallRoutes, { calls: tools.calls, authenticateAdmin });
  await app.register(demoRoutes, { enabled: config.demoEnabled });
  // The route itself admits `usage` or `realtime` (a realtime-only backend may read its own log).
  await app.register(sessionRoutes, { sessionLog: admin.sessionLog, live: admin.live, authenticate: (req) => authenticator.authenticateRequest(req), authenticateAdmin });
  await app.register(adminUiRoutes);
  await app.register(rootRoutes, { demoEnabled: config.demoEnabled });

  const services: RelayServices = { config, logger, db, provider, authenticator, metering, sessions, admin, tools, reservations, calls, simulator };
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
        const [{ closedByRelay }] = await Promise.all([sessions.drain(config.relay.drainTimeoutMs, config.relay.cancelWaitMs), calls.drain(config.relay.drainTimeoutMs)]);
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
