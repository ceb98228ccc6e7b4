/**
 * Ephemeral-key minting, in both of OpenAI's shapes so that server code written against the
 * provider (`POST /v1/realtime/sessions` for beta, `POST /v1/realtime/client_secrets` for GA)
 * works against the relay unchanged.
 *
 * Callers: a key with `mint` scope or an app JWT mints for its own user and tenant; a caller
 * with `admin` scope may name any `user` (and `tenant`, which is then only what the body says)
 * in the body. Relay-only body fields: `user`, `tenant`, `mode` ("relay", the default, or
 * "provider"). Expiry: `expires_after: {anchor: "created_at", seconds}` on both routes (the beta
 * route also reads `client_secret.expires_after`); 10..7200 s like OpenAI, else 400
 * `invalid_expires_after`; clamped to EPHEMERAL_KEY_MAX_TTL_S; default EPHEMERAL_KEY_TTL_S.
 * The `id` (beta) and `session.id` (GA) of a relay key is its ephemeral key id (`eph_…`).
 *
 * Relay mode returns a relay `ek_…` key whose session settings are locked (see
 * auth/locked-session.ts). Provider mode asks the upstream for its own key and returns it as
 * the upstream answered. A provider key talks to the provider directly (typically WebRTC), so
 * **its usage is not metered by the relay**; that is why it needs both PROVIDER_MINT_ENABLED and
 * the `provider_mint` scope. When disabled, the request is refused with 400
 * `provider_mint_disabled` (the route exists; the mode is what is unavailable).
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator';
import { requireScope } from '../auth/authenticator';
import type { EphemeralKeys, MintedEphemeralKey } from '../auth/ephemeral-keys';
import { AuthError } from '../auth/errors';
import { readSessionFields, renderSession, type SessionDialect } from '../auth/locked-session';
import { hasScope, type LockedSessionConfig, type Principal } from '../auth/principal';
import { FixedWindowRateLimiter, type RateLimiter } from '../auth/rate-limit';
import type { ApiDialect, RelayConfig } from '../config/config';
import { betaMintFromGa, gaMintBodyFromBeta } from '../relay/dialect/mint-shapes';
import { errorBodySchema, HttpError } from '../http/errors';

export interface ProviderMint {
  /**
   * POSTs `body` as JSON to the upstream's `<baseUrl><path>` (path is `/realtime/sessions` or
   * `/realtime/client_secrets`) with the relay's own provider credentials.
   */
  fetch: (path: string, body: unknown) => Promise<{ status: number; body: unknown }>;
}

export interface MintRoutesOptions {
  authenticator: Authenticator;
  config: Pick<RelayConfig, 'auth' | 'models'>;
  ephemeralKeys: EphemeralKeys;
  providerMint?: ProviderMint;
  /** Dialects the upstream accepts (default both): without beta, beta provider mints go through the GA endpoint. */
  upstreamDialects?: readonly ApiDialect[];
  /** Defaults to an in-process limiter of config.auth.mintRatePerMinute per principal. */
  rateLimiter?: RateLimiter;
}

type Body = Record<string, unknown>;

/** OpenAI's bounds for `expires_after.seconds`. */
const MIN_TTL_S = 10;
const MAX_TTL_S = 7200;

const relayFields = {
  user: { type: 'string', minLength: 1, maxLength: 256, description: 'Mint for this user (admin scope only).' },
  tenant: { type: 'string', minLength: 1, maxLength: 256, description: 'Tenant of that user (admin scope only).' },
  mode: { type: 'string', enum: ['relay', 'provider'], description: "'provider' returns the upstream's own key (unmetered)." },
} as const;

const expiresAfterSchema = {
  type: 'object',
  properties: {
    anchor: { type: 'string', enum: ['created_at'] },
    seconds: { type: 'integer', description: `${MIN_TTL_S}..${MAX_TTL_S}, clamped by EPHEMERAL_KEY_MAX_TTL_S` },
  },
} as const;

// anyOf rather than `type: [..]` unions, which ajv's strict mode (Fastify's default) warns about.
const nullableObject = { anyOf: [{ type: 'object' }, { type: 'null' }] } as const;
const stringOrObject = { anyOf: [{ type: 'string' }, { type: 'object' }] } as const;
const tokenLimit = { anyOf: [{ type: 'integer' }, { type: 'string', enum: ['inf'] }] } as const;

const betaBodySchema = {
  type: 'object',
  properties: {
    ...relayFields,
    model: { type: 'string', minLength: 1 },
    instructions: { type: 'string' },
    voice: { type: 'string' },
    modalities: { type: 'array', items: { type: 'string' } },
    tools: { type: 'array', items: { type: 'object' } },
    tool_choice: stringOrObject,
    temperature: { type: 'number' },
    max_response_output_tokens: tokenLimit,
    turn_detection: nullableObject,
    input_audio_format: { type: 'string' },
    output_audio_format: { type: 'string' },
    input_audio_transcription: nullableObject,
    input_audio_noise_reduction: nullableObject,
    speed: { type: 'number' },
    client_secret: { type: 'object', properties: { expires_after: expiresAfterSchema } },
    expires_after: expiresAfterSchema,
  },
} as const;

const gaBodySchema = {
  type: 'object',
  properties: {
    ...relayFields,
    expires_after: expiresAfterSchema,
    session: {
      type: 'object',
      properties: {
        type: { type: 'string' },
        model: { type: 'string', minLength: 1 },
        instructions: { type: 'string' },
        output_modalities: { type: 'array', items: { type: 'string' } },
        audio: { type: 'object' },
        tools: { type: 'array', items: { type: 'object' } },
        tool_choice: stringOrObject,
        max_output_tokens: tokenLimit,
      },
    },
  },
} as const;

const clientSecretSchema = {
  type: 'object',
  additionalProperties: true,
  properties: { value: { type: 'string' }, expires_at: { type: 'integer' } },
} as const;

const errorResponses = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;

const betaResponseSchema = {
  200: {
    type: 'object',
    additionalProperties: true,
    properties: { id: { type: 'string' }, object: { type: 'string' }, model: { type: 'string' }, client_secret: clientSecretSchema },
  },
  ...errorResponses,
} as const;

const gaResponseSchema = {
  200: {
    type: 'object',
    additionalProperties: true,
    properties: {
      value: { type: 'string' },
      expires_at: { type: 'integer' },
      session: { type: 'object', additionalProperties: true },
    },
  },
  ...errorResponses,
} as const;

function isObject(v: unknown): v is Body {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optString(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Whom the key is for: the caller itself, or, for admins, whoever the body names. */
function mintTarget(principal: Principal, user: string | undefined, tenant: string | undefined): { user: string; tenant?: string } {
  const admin = hasScope(principal, 'admin');
  const other = (user !== undefined && user !== principal.user) || (tenant !== undefined && tenant !== principal.tenant);
  if (!other) return { user: principal.user, tenant: principal.tenant };
  if (!admin) throw new AuthError(403, 'cannot_mint_for_other_user', 'Only a credential with the admin scope may mint keys for another user or tenant.');
  return { user: user ?? principal.user, tenant };
}

function rateLimitKey(p: Principal): string {
  return p.kind === 'api_key' && p.keyId ? `api_key:${p.keyId}` : `${p.kind}:${p.tenant ?? ''}:${p.user}`;
}

export const mintRoutes: FastifyPluginAsync<MintRoutesOptions> = async (app: FastifyInstance, opts: MintRoutesOptions) => {
  const { authenticator, config, ephemeralKeys, providerMint } = opts;
  const limiter = opts.rateLimiter ?? new FixedWindowRateLimiter({ limit: config.auth.mintRatePerMinute });
  const principals = new WeakMap<FastifyRequest, Principal>();

  app.addHook('onRequest', async (req) => {
    principals.set(req, await authenticator.authenticateRequest(req));
  });

  function callerOf(req: FastifyRequest): Principal {
    const p = principals.get(req);
    if (!p) throw new HttpError(500, 'internal_error', 'request was not authenticated');
    requireScope(p, 'mint');
    return p;
  }

  function checkModel(model: string, param: string): void {
    const allowed = config.models.allowed;
    if (allowed && !allowed.includes(model)) {
      throw new HttpError(400, 'model_not_allowed', `Model '${model}' is not allowed on this relay.`, 'invalid_request_error', param);
    }
  }

  function ttlSeconds(expiresAfter: unknown, param: string): number {
    if (!isObject(expiresAfter) || expiresAfter.seconds === undefined) return config.auth.ephemeralTtlS;
    const s = expiresAfter.seconds;
    if (typeof s !== 'number' || !Number.isInteger(s) || s < MIN_TTL_S || s > MAX_TTL_S) {
      throw new HttpError(
        400,
        'invalid_expires_after',
        `'${param}.seconds' must be an integer between ${MIN_TTL_S} and ${MAX_TTL_S}.`,
        'invalid_request_error',
        `${param}.seconds`,
      );
    }
    return Math.min(s, config.auth.ephemeralMaxTtlS);
  }

  function lockedFrom(session: Body, dialect: SessionDialect, prefix: string): LockedSessionConfig {
    const read = readSessionFields(session, dialect);
    if (read.unknown.length > 0) {
      const param = prefix + read.unknown[0];
      // Refused rather than ignored: the caller would otherwise believe the setting is locked.
      throw new HttpError(400, 'unknown_parameter', `Unknown parameter: '${param}'.`, 'invalid_request_error', param);
    }
    const locked: LockedSessionConfig = {};
    for (const [k, { value }] of read.fields) if (k !== 'model') locked[k] = value;
    return locked;
  }

  async function consumeRate(principal: Principal, reply: FastifyReply): Promise<void> {
    const d = await limiter.consume(rateLimitKey(principal));
    if (d.allowed) return;
    void reply.header('retry-after', String(Math.max(1, Math.ceil(d.resetMs / 1000))));
    throw new HttpError(429, 'rate_limit_exceeded', `Too many keys minted: at most ${d.limit} per minute. Retry later.`);
  }

  async function viaProvider(
    req: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    target: { user: string; tenant?: string },
    path: '/realtime/sessions' | '/realtime/client_secrets',
    body: unknown,
    model: string,
  ): Promise<unknown> {
    if (!config.auth.providerMintEnabled || !providerMint) {
      throw new HttpError(400, 'provider_mint_disabled', "Provider-minted keys are disabled on this relay (PROVIDER_MINT_ENABLED); omit 'mode'.", 'invalid_request_error', 'mode');
    }
    requireScope(principal, 'provider_mint');
    await consumeRate(principal, reply);
    let res: { status: number; body: unknown };
    try {
      res = await providerMint.fetch(path, body);
    } catch (err) {
      req.log.warn({ err: err instanceof Error ? err.message : String(err), path }, 'provider mint failed');
      throw new HttpError(502, 'upstream_error', 'The provider could not be reached to mint a key.');
    }
    const b = isObject(res.body) ? res.body : {};
    if (res.status < 200 || res.status >= 300) {
      const e = isObject(b.error) ? b.error : {};
      // The provider rejecting *our* key is the relay's fault, not the caller's credential.
      const status = res.status === 401 || res.status === 403 || res.status >= 500 ? 502 : res.status;
      const code = status === 502 ? 'upstream_error' : optString(e.code) ?? 'upstream_error';
      throw new HttpError(status, code, optString(e.message) ?? `The provider refused to mint a key (HTTP ${res.status}).`);
    }
    const session = isObject(b.session) ? b.session : b;
    const secret = isObject(b.client_secret) ? b.client_secret : b;
    req.log.info(
      {
        by: { kind: principal.kind, keyId: principal.keyId, user: principal.user },
        user: target.user,
        tenant: target.tenant,
        model,
        providerSessionId: optString(session.id),
        expiresAt: typeof secret.expires_at === 'number' ? secret.expires_at : undefined,
      },
      'provider ephemeral key minted (unmetered)',
    );
    return res.body;
  }

  /** A relay ephemeral key, counted against the caller's minting rate and logged by id. */
  async function mintRelayKey(
    req: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    target: { user: string; tenant?: string },
    model: string,
    session: LockedSessionConfig,
    ttlS: number,
  ): Promise<MintedEphemeralKey> {
    await consumeRate(principal, reply);
    const minted = await ephemeralKeys.mint({
      user: target.user,
      tenant: target.tenant,
      model,
      session,
      ttlS,
      // Sessions on the minted key count against the minting API key's budget.
      parentKeyId: principal.kind === 'api_key' ? principal.keyId : undefined,
    });
    req.log.info(
      { by: { kind: principal.kind, keyId: principal.keyId, user: principal.user }, ephemeralKeyId: minted.id, user: target.user, tenant: target.tenant, model, expiresAt: minted.expiresAt },
      'ephemeral key minted',
    );
    return minted;
  }

  app.post('/v1/realtime/sessions', { schema: { body: betaBodySchema, response: betaResponseSchema } }, async (req, reply) => {
    const principal = callerOf(req);
    const { user, tenant, mode, expires_after: expiresAfter, ...session } = (req.body ?? {}) as Body;
    const target = mintTarget(principal, optString(user), optString(tenant));
    const model = optString(session.model) ?? config.models.default;
    checkModel(model, 'model');
    const clientSecret = isObject(session.client_secret) ? session.client_secret : {};
    const expiryParam = expiresAfter !== undefined ? 'expires_after' : 'client_secret.expires_after';
    const ttlS = ttlSeconds(expiresAfter ?? clientSecret.expires_after, expiryParam);
    if (mode === 'provider') {
      if (opts.upstreamDialects && !opts.upstreamDialects.includes('beta')) {
        // The upstream removed the beta endpoint (OpenAI answers it with beta_api_shape_disabled):
        // mint through its GA endpoint and answer in the beta shape the caller asked for.
        const ga = await viaProvider(req, reply, principal, target, '/realtime/client_secrets', gaMintBodyFromBeta({ ...session, model }, expiresAfter), model);
        return betaMintFromGa(ga);
      }
      return viaProvider(req, reply, principal, target, '/realtime/sessions', { ...session, model }, model);
    }
    const locked = lockedFrom(session, 'beta', '');
    const minted = await mintRelayKey(req, reply, principal, target, model, locked, ttlS);
    return {
      id: minted.id,
      object: 'realtime.session',
      model,
      ...renderSession(locked, 'beta'),
      client_secret: { value: minted.value, expires_at: minted.expiresAt },
    };
  });

  app.post('/v1/realtime/client_secrets', { schema: { body: gaBodySchema, response: gaResponseSchema } }, async (req, reply) => {
    const principal = callerOf(req);
    const body = (req.body ?? {}) as Body;
    const session = isObject(body.session) ? body.session : {};
    const target = mintTarget(principal, optString(body.user), optString(body.tenant));
    if (session.type !== undefined && session.type !== 'realtime') {
      throw new HttpError(400, 'unsupported_session_type', "Only 'realtime' sessions can be minted here.", 'invalid_request_error', 'session.type');
    }
    const model = optString(session.model) ?? config.models.default;
    checkModel(model, 'session.model');
    const ttlS = ttlSeconds(body.expires_after, 'expires_after');
    if (body.mode === 'provider') {
      const forwarded = { expires_after: { anchor: 'created_at', seconds: ttlS }, session: { ...session, type: 'realtime', model } };
      return viaProvider(req, reply, principal, target, '/realtime/client_secrets', forwarded, model);
    }
    const locked = lockedFrom(session, 'ga', 'session.');
    const minted = await mintRelayKey(req, reply, principal, target, model, locked, ttlS);
    return {
      value: minted.value,
      expires_at: minted.expiresAt,
      // `id` is the ephemeral key id, the handle for POST /admin/ephemeral-keys/:id/revoke.
      session: { type: 'realtime', object: 'realtime.session', id: minted.id, model, ...renderSession(locked, 'ga') },
    };
  });
};
