/**
 * Administration of relay API keys and ephemeral-key revocation. Authorised by
 * RELAY_ADMIN_TOKEN or any credential with the `admin` scope. Key secrets are shown once, in
 * the creation response; no other answer carries a secret or its hash.
 *
 * Error codes: 401 missing_credential / invalid_api_key / invalid_token / credential_expired /
 * credential_revoked, 403 insufficient_scope, 400 invalid_request / unknown_parameter / invalid_expires_at,
 * 404 key_not_found.
 */
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import { API_KEY_ID_PATTERN_SOURCE, apiKeyView, type ApiKeyStore } from '../auth/api-keys';
import { requireScope, type Authenticator } from '../auth/authenticator';
import { EPHEMERAL_KEY_ID_PATTERN_SOURCE, type EphemeralKeys } from '../auth/ephemeral-keys';
import { SCOPES, type Principal, type Scope } from '../auth/principal';
import { errorBodySchema, HttpError } from '../http/errors';

export interface AdminKeyRoutesOptions {
  authenticator: Authenticator;
  keyStore: ApiKeyStore;
  ephemeralKeys: EphemeralKeys;
}

const name = { type: 'string', minLength: 1, maxLength: 256 } as const;
const nullableName = { type: ['string', 'null'] } as const;
const nullableTime = { type: ['integer', 'null'], description: 'Unix seconds' } as const;

const keySchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    object: { type: 'string', enum: ['relay.api_key'] },
    user: nullableName,
    tenant: nullableName,
    scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
    name: nullableName,
    created_at: { type: 'integer', description: 'Unix seconds' },
    expires_at: nullableTime,
    revoked_at: nullableTime,
  },
  required: ['id', 'object', 'user', 'tenant', 'scopes', 'name', 'created_at', 'expires_at', 'revoked_at'],
} as const;

const createdKeySchema = {
  ...keySchema,
  properties: { ...keySchema.properties, key: { type: 'string', description: 'The API key. Shown only in this response.' } },
  required: [...keySchema.required, 'key'],
} as const;

const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;
const keyIdParams = {
  type: 'object',
  properties: { id: { type: 'string', pattern: API_KEY_ID_PATTERN_SOURCE } },
  required: ['id'],
} as const;

function seconds(ms: number): number;
function seconds(ms: number | null): number | null;
function seconds(ms: number | null): number | null {
  return ms === null ? null : Math.floor(ms / 1000);
}

const view = apiKeyView;

function notFound(id: string): HttpError {
  return new HttpError(404, 'key_not_found', `No API key with id '${id}'.`);
}

const CREATE_FIELDS = new Set(['user', 'tenant', 'scopes', 'name', 'expires_at']);

interface CreateBody {
  user?: string;
  tenant?: string;
  scopes: Scope[];
  name?: string;
  expires_at?: number;
}

export const adminKeyRoutes: FastifyPluginAsync<AdminKeyRoutesOptions> = async (app: FastifyInstance, opts: AdminKeyRoutesOptions) => {
  const { authenticator, keyStore, ephemeralKeys } = opts;
  const principals = new WeakMap<FastifyRequest, Principal>();

  app.addHook('onRequest', async (req) => {
    const p = await authenticator.authenticateRequest(req);
    requireScope(p, 'admin');
    principals.set(req, p);
  });

  function audit(req: FastifyRequest, action: string, fields: Record<string, unknown>): void {
    const p = principals.get(req);
    req.log.info({ by: { kind: p?.kind, keyId: p?.keyId, user: p?.user }, action, ...fields }, 'admin action');
  }

  app.post<{ Body: CreateBody }>(
    '/admin/keys',
    {
      schema: {
        body: {
          type: 'object',
          properties: {
            user: name,
            tenant: name,
            scopes: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', enum: [...SCOPES] } },
            name,
            expires_at: { type: 'integer', description: 'Unix seconds; must be in the future' },
          },
          required: ['scopes'],
        },
        response: { 201: createdKeySchema, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      // Checked here, not with additionalProperties:false, which Fastify's ajv strips silently:
      // a misspelt `expire_at` must not yield a key that never expires.
      const unknown = Object.keys(b).find((k) => !CREATE_FIELDS.has(k));
      if (unknown !== undefined) {
        throw new HttpError(400, 'unknown_parameter', `Unknown parameter: '${unknown}'.`, 'invalid_request_error', unknown);
      }
      if (b.expires_at !== undefined && b.expires_at * 1000 <= Date.now()) {
        throw new HttpError(400, 'invalid_expires_at', "'expires_at' must be in the future (unix seconds).", 'invalid_request_error', 'expires_at');
      }
      const created = await keyStore.create({
        user: b.user,
        tenant: b.tenant,
        scopes: b.scopes,
        name: b.name,
        expiresAt: b.expires_at === undefined ? undefined : b.expires_at * 1000,
      });
      audit(req, 'api_key.create', { keyId: created.record.id, user: b.user, tenant: b.tenant, scopes: created.record.scopes });
      void reply.status(201);
      return { ...view(created.record), key: created.key };
    },
  );

  app.get<{ Querystring: { user?: string; tenant?: string; limit?: number } }>(
    '/admin/keys',
    {
      schema: {
        querystring: {
          type: 'object',
          properties: { user: name, tenant: name, limit: { type: 'integer', minimum: 1, maximum: 1000 } },
        },
        response: {
          200: { type: 'object', properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: keySchema } }, required: ['object', 'data'] },
          ...errors,
        },
      },
    },
    async (req) => {
      const rows = await keyStore.list({ user: req.query.user, tenant: req.query.tenant, limit: req.query.limit });
      return { object: 'list', data: rows.map(view) };
    },
  );

  app.get<{ Params: { id: string } }>('/admin/keys/:id', { schema: { params: keyIdParams, response: { 200: keySchema, ...errors } } }, async (req) => {
    const rec = await keyStore.get(req.params.id);
    if (!rec) throw notFound(req.params.id);
    return view(rec);
  });

  app.delete<{ Params: { id: string } }>('/admin/keys/:id', { schema: { params: keyIdParams, response: { 200: keySchema, ...errors } } }, async (req) => {
    const rec = await keyStore.revoke(req.params.id);
    if (!rec) throw notFound(req.params.id);
    audit(req, 'api_key.revoke', { keyId: rec.id });
    return view(rec);
  });

  app.post<{ Params: { id: string } }>(
    '/admin/ephemeral-keys/:id/revoke',
    {
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', pattern: EPHEMERAL_KEY_ID_PATTERN_SOURCE } }, required: ['id'] },
        response: {
          200: {
            type: 'object',
            properties: { id: { type: 'string' }, object: { type: 'string', enum: ['relay.ephemeral_key'] }, revoked: { type: 'boolean' }, revoked_at: { type: 'integer' } },
            required: ['id', 'object', 'revoked', 'revoked_at'],
          },
          ...errors,
        },
      },
    },
    async (req) => {
      const r = await ephemeralKeys.revoke(req.params.id);
      audit(req, 'ephemeral_key.revoke', { ephemeralKeyId: r.id });
      return { id: r.id, object: 'relay.ephemeral_key', revoked: true, revoked_at: seconds(r.revokedAt) };
    },
  );

  app.get<{ Params: { user: string } }>(
    '/admin/principals/:user',
    {
      schema: {
        params: { type: 'object', properties: { user: name }, required: ['user'] },
        response: {
          200: {
            type: 'object',
            properties: {
              object: { type: 'string', enum: ['relay.principal'] },
              user: { type: 'string' },
              tenant: { ...nullableName, description: "The user's tenant when all its keys agree, else null" },
              tenants: { type: 'array', items: { type: 'string' } },
              keys: { type: 'array', items: keySchema },
            },
            required: ['object', 'user', 'tenant', 'tenants', 'keys'],
          },
          ...errors,
        },
      },
    },
    async (req) => {
      // Users authenticated by JWT have no stored keys; an empty list is an answer, not a 404.
      const keys = await keyStore.list({ user: req.params.user, limit: 1000 });
      const tenants = [...new Set(keys.map((k) => k.tenant).filter((t): t is string => t !== null))].sort();
      return { object: 'relay.principal', user: req.params.user, tenant: tenants.length === 1 ? tenants[0] : null, tenants, keys: keys.map(view) };
    },
  );
};
