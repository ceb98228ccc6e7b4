import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type WebSocket from 'ws';
import type { CredentialCarrier } from '../auth/authenticator';
import type { Principal } from '../auth/principal';
import type { ApiDialect, RelayConfig } from '../config/config';
import { HttpError, type ErrorBody } from '../http/errors';
import { CloseCode } from '../relay/close-codes';
import { clientDialectOf, upstreamDialectFor } from '../relay/dialect/client-dialect';
import { DialectTranslator } from '../relay/dialect/translator';
import { errorEvent, type ProtocolError } from '../relay/protocol-errors';
import { RelaySession, type SessionHooks, type SessionSummary } from '../relay/relay-session';
import type { CallControl } from '../relay/call-sideband';
import type { SessionRegistry } from '../relay/session-registry';
import type { UpstreamProvider } from '../upstream';
import type { ModelResolution } from '../models/resolve';

/** What the layers above the relay decide for one session, once the client is known. */
export interface SessionContext {
  sessionId: string;
  principal: Principal;
  /** The model served (and billed). */
  model: string;
  /** The model the client asked for, when an alias (MODEL_ALIASES) serves another in its place. */
  requestedModel?: string;
  provider: UpstreamProvider;
  /** The client's dialect (beta header or subprotocol) and the one spoken upstream; they differ when the relay translates. */
  clientDialect?: ApiDialect;
  upstreamDialect?: ApiDialect;
  /** Re-checks the credential the session was opened with (expiry, revocation). */
  credentialStillValid: () => Promise<boolean>;
  /** How the client reaches the provider: through this relay's socket, or a WebRTC call metered over its sideband. */
  transport?: 'websocket' | 'webrtc';
}

export interface SessionPlan {
  hooks: SessionHooks;
  /** Called once the session exists, before any frame is relayed. */
  onStarted?: (session: RelaySession) => void;
  /** A WebRTC call's counterpart of onStarted, once its sideband is attached (spend log, live view, server tools). */
  onCallStarted?: (control: CallControl) => void;
  /**
   * A WebRTC call's session as the relay POSTs it upstream (server tools added), or why it is
   * refused; the call's locked session.update, when it sets `tools`, goes through it too.
   */
  callSession?: (session: Record<string, unknown>) => { session: Record<string, unknown> } | { error: ProtocolError };
  /** Called after the session has ended on both legs (billing of leftovers, limit release). */
  onEnded?: (summary: SessionSummary) => Promise<void> | void;
}

export interface RealtimeRouteOptions {
  config: RelayConfig;
  provider: UpstreamProvider;
  sessions: SessionRegistry;
  /** Resolves the caller to a principal or throws an HttpError (401/403) before the upgrade. */
  authenticate: (request: CredentialCarrier) => Promise<Principal>;
  /** Admission checks that need only the principal (budgets, connection limits); throw HttpError to refuse. */
  admit?: (principal: Principal, request: FastifyRequest) => Promise<void>;
  /** Checks that the model may be served (prices known, etc.); a ProtocolError refuses it at the upgrade (HTTP 400). */
  checkModel?: (model: string, principal: Principal) => ProtocolError | null;
  /** Lifecycle: a shut-down model is refused or replaced by its alias (src/models). */
  resolveModel?: (model: string) => ModelResolution;
  /** The models this relay serves, listed in a refusal so the client knows what to ask for. */
  servedModels?: () => string[];
  /** Builds the session's hooks: metering, locked configuration, budget guard, metrics. */
  planSession?: (ctx: SessionContext) => Promise<SessionPlan>;
}

const querySchema = {
  type: 'object',
  properties: {
    model: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._:/-]+$' },
    call_id: { type: 'string', maxLength: 200 },
  },
} as const;

interface RealtimeQuery {
  model?: string;
}

/**
 * `GET /v1/realtime?model=…`: the path and auth conventions of OpenAI's own endpoint, so
 * official clients reach the relay by changing only their base URL.
 */
export const realtimeRoutes: FastifyPluginAsync<RealtimeRouteOptions> = async (app, o) => {
  const principals = new WeakMap<FastifyRequest, Principal>();
  const resolutions = new WeakMap<FastifyRequest, ModelResolution>();

  app.get<{ Querystring: RealtimeQuery }>(
    '/v1/realtime',
    {
      websocket: true,
      schema: { querystring: querySchema },
      preValidation: async (request) => {
        if (o.sessions.draining) throw new HttpError(503, 'relay_draining', 'This relay instance is shutting down; reconnect to another.');
        if (request.headers.upgrade?.toLowerCase() !== 'websocket') {
          throw new HttpError(426, 'upgrade_required', 'GET /v1/realtime is a WebSocket endpoint.');
        }
        const principal = await o.authenticate(request);
        await o.admit?.(principal, request);
        principals.set(request, principal);
      },
      // After validation (the query's model is well-formed), before the upgrade: a model this
      // relay cannot serve is an HTTP answer the client can read, not a socket that opens and closes.
      preHandler: async (request: FastifyRequest<{ Querystring: RealtimeQuery }>) => {
        const principal = principals.get(request);
        if (!principal) return;
        const model = request.query.model ?? principal.model ?? o.config.models.default;
        const resolved: ModelResolution = o.resolveModel?.(model) ?? { ok: true, model, requested: model, deprecated: null };
        resolutions.set(request, resolved);
        // Key binding and ALLOWED_MODELS apply to the model asked for; prices to the one served
        // (an alias of a shut-down model); a shut-down model without an alias is refused.
        const refusal = resolved.ok ? modelRefusal(o, principal, model, resolved.model) : resolved.error;
        if (!refusal) return;
        // A key bound to one model may use that one only: a permission, not a bad request.
        if (principal.model && principal.model !== model) throw new ModelRefusedError(403, refusal, [principal.model]);
        throw new ModelRefusedError(400, refusal, o.servedModels?.() ?? []);
      },
    },
    (socket: WebSocket, request: FastifyRequest<{ Querystring: RealtimeQuery }>) => {
      const principal = principals.get(request);
      if (!principal) {
        socket.close(CloseCode.policyViolation, 'unauthenticated');
        return;
      }
      // Resolved and checked before the upgrade (preHandler): a refused model never gets here.
      const resolved = resolutions.get(request);
      if (!resolved?.ok) {
        socket.close(CloseCode.policyViolation, 'model refused');
        return;
      }
      void runSession(o, socket, request, principal, resolved.model, resolved.model !== resolved.requested ? resolved.requested : undefined);
    },
  );
};

/**
 * A model refused before the upgrade: the OpenAI-shaped error, plus `models`, the models this
 * relay serves (for a key bound to one model, that model only).
 */
class ModelRefusedError extends HttpError {
  constructor(
    status: 400 | 403,
    refusal: ProtocolError,
    private readonly models: string[],
  ) {
    const list = models.length > 0 ? ` Models served: ${models.join(', ')}.` : '';
    super(status, refusal.code, `${refusal.message}${list}`, refusal.type, refusal.param ?? 'model');
  }

  override toBody(): ErrorBody & { models: string[] } {
    return { ...super.toBody(), models: this.models };
  }
}

/** Whether `model` may be served to `principal` (`served`: what an alias resolves it to); shared with WebRTC calls (routes/calls.ts). */
export function modelRefusal(o: Pick<RealtimeRouteOptions, 'config' | 'checkModel'>, principal: Principal, model: string, served = model): ProtocolError | null {
  if (principal.model && principal.model !== model) {
    return { type: 'invalid_request_error', code: 'model_not_allowed', message: `This key is bound to model ${principal.model}.`, param: 'model' };
  }
  const allowed = o.config.models.allowed;
  if (allowed && !allowed.includes(model)) {
    return { type: 'invalid_request_error', code: 'model_not_allowed', message: `Model ${model} is not served by this relay.`, param: 'model' };
  }
  return o.checkModel?.(served, principal) ?? null;
}

async function runSession(
  o: RealtimeRouteOptions,
  socket: WebSocket,
  request: FastifyRequest,
  principal: Principal,
  model: string,
  requestedModel?: string,
): Promise<void> {
  const sessionId = `rs_${randomUUID().replace(/-/g, '')}`;
  const clientDialect = clientDialectOf(request.headers);
  const upstreamDialect = upstreamDialectFor(clientDialect, o.provider.dialects);
  const log = request.log.child({ session_id: sessionId, user: principal.user, tenant: principal.tenant, key_id: principal.keyId, model, ...(requestedModel ? { requested_model: requestedModel } : {}), provider: o.provider.name, ...(clientDialect !== upstreamDialect ? { client_dialect: clientDialect, upstream_dialect: upstreamDialect } : {}) });
  // Frames can arrive while the plan is being built (a DB round trip): hold them in order.
  const early: Buffer[] = [];
  const holdEarly = (data: Buffer): void => {
    early.push(data);
  };
  socket.on('message', holdEarly);

  let plan: SessionPlan;
  try {
    // Only the credential-bearing parts: the closure lives as long as the session, and holding
    // the request would keep Fastify's request, reply and raw HTTP objects alive with it.
    const credentials: CredentialCarrier = { headers: request.headers, url: request.url };
    const credentialStillValid = (): Promise<boolean> =>
      o.authenticate(credentials).then(
        () => true,
        () => false,
      );
    plan = o.planSession ? await o.planSession({ sessionId, principal, model, ...(requestedModel ? { requestedModel } : {}), provider: o.provider, clientDialect, upstreamDialect, credentialStillValid }) : { hooks: {} };
  } catch (err) {
    log.error({ err }, 'session setup failed');
    socket.send(errorEvent({ type: 'server_error', code: 'relay_error', message: 'The relay could not set up the session.' }));
    socket.close(CloseCode.internalError, 'session setup failed');
    return;
  }
  socket.off('message', holdEarly);

  const session = new RelaySession({
    sessionId,
    client: socket,
    upstream: o.provider.realtimeTarget(model, sessionId, upstreamDialect),
    limits: o.config.relay,
    connectTimeoutMs: o.config.upstream.connectTimeoutMs,
    hooks: plan.hooks,
    ...(clientDialect !== upstreamDialect ? { translator: new DialectTranslator(clientDialect, upstreamDialect) } : {}),
  });
  o.sessions.add(session);
  plan.onStarted?.(session);
  log.info({ event: 'session_open' }, 'session open');
  const done = session.run();
  for (const frame of early) socket.emit('message', frame, false);
  const summary = await done;
  o.sessions.delete(session);
  try {
    await plan.onEnded?.(summary);
  } catch (err) {
    log.error({ err }, 'session end handling failed');
  }
  log.info(
    {
      event: 'session_close',
      duration_ms: summary.durationMs,
      frames_in: summary.clientFrames,
      bytes_in: summary.clientBytes,
      frames_out: summary.upstreamFrames,
      bytes_out: summary.upstreamBytes,
      client_close_code: summary.clientCloseCode,
      upstream_close_code: summary.upstreamCloseCode,
      end_reason: summary.endReason,
      unfinished_responses: summary.unfinishedResponses.length,
    },
    'session closed',
  );
}
