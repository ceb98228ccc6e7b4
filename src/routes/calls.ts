/**
 * WebRTC through the relay, metered (GA unified interface, OpenAI's own paths and body forms):
 *
 *   POST /v1/realtime/calls[?model=]        raw `application/sdp` (ephemeral key / API key / JWT),
 *                                           or multipart `sdp` + `session` (JSON) for backends
 *   POST /v1/realtime/calls/{call_id}/hangup  the call's owner, or an admin key
 *
 * Admission is a WebSocket session's: credential, model allowed and priced, budget (402), the
 * concurrent-session limit (a call holds a slot until it ends), drain (503). The relay posts the
 * offer upstream with the effective session (the client's, under the key's lock) and its own
 * key, answers 201 with the SDP answer, and attaches the sideband (src/session/relay-call.ts).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { CredentialCarrier } from '../auth/authenticator';
import { checkSessionUpdate, renderSession } from '../auth/locked-session';
import type { Principal } from '../auth/principal';
import { hasScope } from '../auth/principal';
import type { RelayConfig } from '../config/config';
import { HttpError, errorBodySchema } from '../http/errors';
import type { SessionLimiter } from '../limits';
import type { CallRegistry } from '../relay/call-registry';
import type { ProtocolError } from '../relay/protocol-errors';
import type { SessionRegistry } from '../relay/session-registry';
import { RelayCall } from '../session/relay-call';
import { callsUnsupportedReason, createUpstreamCall } from '../upstream/calls';
import type { UpstreamProvider } from '../upstream';
import type { SessionContext, SessionPlan } from './realtime';

export interface CallRouteOptions {
  config: RelayConfig;
  provider: UpstreamProvider;
  calls: CallRegistry;
  /** Drain state is shared with WebSocket sessions. */
  sessions: SessionRegistry;
  limiter: SessionLimiter;
  logger: Logger;
  authenticate: (request: CredentialCarrier) => Promise<Principal>;
  /** Budget admission (throws the 402 HttpError). */
  checkBudget: (principal: Principal) => Promise<void>;
  /** Model allowed for this principal and priced; a ProtocolError refuses it. */
  modelRefusal: (model: string, principal: Principal) => ProtocolError | null;
  planSession: (ctx: SessionContext) => Promise<SessionPlan>;
  /** Metrics: a locked field changed by a device. */
  onPolicyIncident?: () => void;
}

const MAX_SDP_BYTES = 64 * 1024;

const querySchema = {
  type: 'object',
  properties: { model: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._:/-]+$' } },
  additionalProperties: false,
} as const;

const hangupParams = {
  type: 'object',
  properties: { call_id: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,200}$' } },
  required: ['call_id'],
} as const;

interface Offer {
  sdp: string;
  session?: Record<string, unknown>;
}

export const callRoutes: FastifyPluginAsync<CallRouteOptions> = async (app, o) => {
  // Both body forms arrive as bytes; parsed in the handler (encapsulated: only these routes).
  app.addContentTypeParser(['application/sdp', 'multipart/form-data'], { parseAs: 'buffer', bodyLimit: MAX_SDP_BYTES * 2 }, (_req, body, done) => done(null, body));
  const principals = new WeakMap<FastifyRequest, Principal>();

  app.post<{ Querystring: { model?: string } }>(
    '/v1/realtime/calls',
    {
      schema: {
        querystring: querySchema,
        response: { '4xx': errorBodySchema, '5xx': errorBodySchema },
      },
      preValidation: async (request) => {
        if (o.sessions.draining) throw new HttpError(503, 'relay_draining', 'This relay instance is shutting down; call another.');
        const unsupported = callsUnsupportedReason(o.provider);
        if (unsupported) throw new HttpError(501, 'webrtc_not_supported', unsupported, 'invalid_request_error');
        const principal = await o.authenticate(request);
        await o.checkBudget(principal);
        principals.set(request, principal);
      },
    },
    async (request, reply) => {
      const principal = principals.get(request);
      if (!principal) throw new HttpError(401, 'unauthenticated', 'Missing credentials.');
      const offer = await readOffer(request);
      const model = request.query.model ?? (typeof offer.session?.model === 'string' ? offer.session.model : undefined) ?? principal.model ?? o.config.models.default;
      const refusal = o.modelRefusal(model, principal);
      if (refusal) throw new HttpError(400, refusal.code, refusal.message, refusal.type, refusal.param ?? null);

      // The client's session under the key's lock, exactly as a session.update would be checked.
      const locked = principal.lockedSession;
      const clientSession = offer.session ?? {};
      const lockErr = checkSessionUpdate(locked, { type: 'session.update', session: clientSession });
      if (lockErr) throw new HttpError(400, lockErr.code, lockErr.message, 'invalid_request_error', `session.${lockErr.param.replace(/^session\./, '')}`);
      const session: Record<string, unknown> = { ...clientSession, ...(locked ? renderSession(locked, 'ga') : {}), type: 'realtime', model };

      const lease = await o.limiter.acquire(principal);
      const sessionId = `rs_${randomUUID().replace(/-/g, '')}`;
      let plan: SessionPlan;
      try {
        plan = await o.planSession({ sessionId, principal, model, provider: o.provider, credentialStillValid: async () => true, transport: 'webrtc' });
      } catch (err) {
        await lease.release();
        request.log.error({ err }, 'call setup failed');
        throw new HttpError(500, 'relay_error', 'The relay could not set up the call.');
      }
      const notOpened = async (endReason: string): Promise<void> => {
        await lease.release();
        await plan.onEnded?.({ sessionId, durationMs: 0, clientFrames: 0, clientBytes: 0, upstreamFrames: 0, upstreamBytes: 0, clientCloseCode: null, upstreamCloseCode: null, endReason, unfinishedResponses: [], unacknowledgedRequests: 0, unacknowledgedRequestIds: [] });
      };
      // Server tools (TOOLS_FILE) join the session the call is created with.
      const withTools = plan.callSession?.(session) ?? { session };
      if ('error' in withTools) {
        await notOpened('refused');
        const e = withTools.error;
        throw new HttpError(400, e.code, e.message, e.type, e.param ? `session.${e.param}` : null);
      }
      const result = await createUpstreamCall(o.provider, { sdp: offer.sdp, session: withTools.session }, o.config.upstream.connectTimeoutMs);
      if (!result.ok) {
        await notOpened('handshake_failed');
        // As a WebSocket handshake failure: 44xx/45xx close codes are 4000 + the HTTP status.
        const f = result.failure;
        const status = f.closeCode >= 4400 && f.closeCode < 4600 ? f.closeCode - 4000 : 502;
        throw new HttpError(status, f.error.code, f.error.message, f.error.type);
      }
      const log = o.logger.child({ call_id: result.callId, session_id: sessionId, user: principal.user, tenant: principal.tenant, key_id: principal.keyId, model, provider: o.provider.name });
      const call = new RelayCall({
        callId: result.callId,
        sessionId,
        principal,
        model,
        provider: o.provider,
        config: o.config,
        plan,
        lease,
        logger: log,
        onEnded: (c) => o.calls.delete(c),
        ...(o.onPolicyIncident ? { onPolicyIncident: o.onPolicyIncident } : {}),
      });
      o.calls.add(call);
      log.info({ event: 'call_open', setup_ms: Math.round(result.setupMs) }, 'call open');
      // Attach now, answer now: the device needs the answer before any media can flow, and a
      // sideband that fails to attach hangs the call up.
      void call.start();
      return reply.status(201).header('content-type', 'application/sdp').header('location', `/v1/realtime/calls/${result.callId}`).send(result.answerSdp);
    },
  );

  app.post<{ Params: { call_id: string } }>(
    '/v1/realtime/calls/:call_id/hangup',
    { schema: { params: hangupParams, response: { '4xx': errorBodySchema } } },
    async (request, reply) => {
      const principal = await o.authenticate(request);
      const call = o.calls.get(request.params.call_id);
      const owner = call !== undefined && call.principal.user === principal.user && call.principal.tenant === principal.tenant;
      // Someone else's call answers like a missing one: call ids are not an oracle.
      if (!call || !(owner || hasScope(principal, 'admin'))) throw new HttpError(404, 'call_not_found', `No call '${request.params.call_id}' on this relay.`);
      await call.end('client_hangup');
      return reply.status(200).send({});
    },
  );
};

async function readOffer(request: FastifyRequest): Promise<Offer> {
  const body = request.body;
  const contentType = request.headers['content-type'] ?? '';
  if (!Buffer.isBuffer(body)) throw new HttpError(415, 'unsupported_content_type', 'Send the SDP offer as application/sdp, or multipart/form-data with fields sdp and session.');
  if (contentType.toLowerCase().startsWith('application/sdp')) return { sdp: checkSdp(body.toString('utf8')) };
  let form: FormData;
  try {
    // undici's multipart parser (Node's own fetch): no hand-written parsing.
    form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
  } catch {
    throw new HttpError(400, 'invalid_multipart', 'The multipart/form-data body could not be parsed.');
  }
  const sdp = await text(form.get('sdp'));
  if (sdp === undefined) throw new HttpError(400, 'missing_required_parameter', "Missing required parameter: 'sdp'.", 'invalid_request_error', 'sdp');
  const raw = await text(form.get('session'));
  if (raw === undefined) return { sdp: checkSdp(sdp) };
  let session: unknown;
  try {
    session = JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'invalid_json', "'session' is not valid JSON.", 'invalid_request_error', 'session');
  }
  if (session === null || typeof session !== 'object' || Array.isArray(session)) {
    throw new HttpError(400, 'invalid_type', "'session' must be a JSON object.", 'invalid_request_error', 'session');
  }
  return { sdp: checkSdp(sdp), session: session as Record<string, unknown> };
}

function checkSdp(sdp: string): string {
  if (!sdp.startsWith('v=0') || sdp.length > MAX_SDP_BYTES) throw new HttpError(400, 'invalid_offer', 'The SDP offer is not valid.', 'invalid_request_error', 'sdp');
  return sdp;
}

async function text(v: ReturnType<FormData['get']>): Promise<string | undefined> {
  if (v === null) return undefined;
  return typeof v === 'string' ? v : await v.text();
}
