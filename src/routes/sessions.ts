/**
 * The spend log and the live view:
 *
 * - `GET /admin/sessions` (scope `admin`): one row per session or call, newest first, filtered
 *   by `user`, `tenant`, `key_id` (not `key`: the relay refuses that query name as a leaked
 *   credential), `model`, `transport`, `from`/`to` (start time, as in the usage
 *   API), `limit` rows (default 50, at most 1000) after `cursor` (the `next_cursor` of the
 *   previous page). JSON, or CSV with `Accept: text/csv` (the next cursor then travels in the
 *   `relay-next-cursor` header).
 * - `GET /v1/sessions` (scope `usage` or `realtime`): the same, restricted to the caller's own
 *   user and tenant.
 * - `GET /admin/sessions/live`: sessions open right now on every instance, with their running cost.
 * - `POST /admin/sessions/:id/close`: closes (hangs up) a live session, on whichever instance holds it.
 *
 * Error codes: 401/403 from the authenticator or insufficient_scope, 400 invalid_request /
 * invalid_date / invalid_range / invalid_cursor, 404 session_not_found.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { hasScope, type Principal } from '../auth/principal';
import { errorBodySchema, HttpError } from '../http/errors';
import { formatUsd } from '../metering/money';
import { sessionsCsv, sessionView, SESSION_CSV_COLUMNS } from '../metering/session-report';
import type { LiveSessionDirectory } from '../relay/live-sessions';
import { decodeCursor, encodeCursor, type SessionFilter, type SessionLogStore } from '../storage/sessions';
import { DATE_PATTERN, range, wantsCsv } from './usage';

export interface SessionRoutesOptions {
  sessionLog: SessionLogStore;
  live: LiveSessionDirectory;
  authenticate: (req: FastifyRequest) => Promise<Principal>;
  authenticateAdmin: (req: FastifyRequest) => Promise<Principal>;
}

const name = { type: 'string', minLength: 1, maxLength: 256 } as const;
const dateParam = { type: 'string', pattern: DATE_PATTERN } as const;
const pageParams = {
  from: dateParam,
  to: dateParam,
  model: name,
  transport: { type: 'string', minLength: 1, maxLength: 32 },
  limit: { type: 'integer', minimum: 1, maximum: 1000 },
  cursor: { type: 'string', minLength: 1, maxLength: 400 },
} as const;

const NUMERIC = new Set(['duration_ms', 'close_code']);
const sessionSchema = {
  type: 'object',
  properties: Object.fromEntries(
    SESSION_CSV_COLUMNS.map((c) => {
      if (c === 'tenant' || c === 'key_id' || c === 'ended_at' || c === 'end_reason') return [c, { type: ['string', 'null'] }];
      if (NUMERIC.has(c)) return [c, { type: ['integer', 'null'] }];
      if (c === 'cost_usd' || c === 'id' || c === 'user' || c === 'provider' || c === 'model' || c === 'transport' || c === 'started_at') return [c, { type: 'string' }];
      return [c, { type: 'integer' }];
    }),
  ),
  required: [...SESSION_CSV_COLUMNS],
} as const;

const listSchema = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['list'] },
    data: { type: 'array', items: { ...sessionSchema, properties: { object: { type: 'string' }, ...sessionSchema.properties } } },
    next_cursor: { type: ['string', 'null'] },
  },
  required: ['object', 'data', 'next_cursor'],
} as const;

const liveSchema = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['list'] },
    data: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          user: { type: 'string' },
          tenant: { type: ['string', 'null'] },
          key_id: { type: ['string', 'null'] },
          model: { type: 'string' },
          transport: { type: 'string' },
          instance: { type: 'string' },
          started_at: { type: 'string' },
          duration_ms: { type: 'integer' },
          responses: { type: 'integer' },
          cost_usd: { type: 'string' },
        },
        required: ['id', 'user', 'tenant', 'key_id', 'model', 'transport', 'instance', 'started_at', 'duration_ms', 'responses', 'cost_usd'],
      },
    },
  },
  required: ['object', 'data'],
} as const;

const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;

interface PageQuery {
  from?: string;
  to?: string;
  model?: string;
  transport?: string;
  limit?: number;
  cursor?: string;
}

interface AdminQuery extends PageQuery {
  user?: string;
  tenant?: string;
  key_id?: string;
}

async function page(req: FastifyRequest, reply: FastifyReply, store: SessionLogStore, filter: SessionFilter, q: PageQuery): Promise<unknown> {
  let after;
  if (q.cursor !== undefined) {
    after = decodeCursor(q.cursor);
    if (!after) throw new HttpError(400, 'invalid_cursor', "'cursor' is not a cursor this API returned.", 'invalid_request_error', 'cursor');
  }
  const { rows, next } = await store.list(filter, { limit: q.limit ?? 50, after: after ?? undefined });
  const data = rows.map(sessionView);
  const nextCursor = next ? encodeCursor(next) : null;
  if (wantsCsv(req)) {
    void reply.header('content-type', 'text/csv; charset=utf-8');
    if (nextCursor) void reply.header('relay-next-cursor', nextCursor);
    return sessionsCsv(data);
  }
  return { object: 'list', data, next_cursor: nextCursor };
}

export const sessionRoutes: FastifyPluginAsync<SessionRoutesOptions> = async (app, opts) => {
  const principals = new WeakMap<FastifyRequest, Principal>();
  const requireAdmin = async (req: FastifyRequest): Promise<void> => {
    const p = await opts.authenticateAdmin(req);
    if (!hasScope(p, 'admin')) throw new HttpError(403, 'insufficient_scope', "This credential lacks the 'admin' scope.");
    principals.set(req, p);
  };

  app.get<{ Querystring: PageQuery }>(
    '/v1/sessions',
    {
      // Authentication before validation: an anonymous caller learns nothing from a 400.
      onRequest: async (req) => {
        const p = await opts.authenticate(req);
        if (!hasScope(p, 'usage') && !hasScope(p, 'realtime')) throw new HttpError(403, 'insufficient_scope', "This credential lacks the 'usage' scope.");
        principals.set(req, p);
      },
      schema: { querystring: { type: 'object', properties: pageParams }, response: { 200: { description: 'JSON, or CSV with Accept: text/csv', ...listSchema }, ...errors } },
    },
    async (req, reply) => {
      const p = principals.get(req);
      if (!p) throw new HttpError(401, 'missing_credential', 'Authentication required.');
      const { from, to } = range(req.query);
      // The tenant narrows the user: two tenants may each have an "alice", and a credential
      // without a tenant sees only tenant-less sessions, not every tenant's "alice".
      return page(req, reply, opts.sessionLog, { user: p.user, tenant: p.tenant ?? null, model: req.query.model, transport: req.query.transport, from, to }, req.query);
    },
  );

  app.get<{ Querystring: AdminQuery }>(
    '/admin/sessions',
    {
      onRequest: requireAdmin,
      schema: {
        querystring: { type: 'object', properties: { user: name, tenant: name, key_id: name, ...pageParams } },
        response: { 200: { description: 'JSON, or CSV with Accept: text/csv', ...listSchema }, ...errors },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const { from, to } = range(q);
      return page(req, reply, opts.sessionLog, { user: q.user, tenant: q.tenant, keyId: q.key_id, model: q.model, transport: q.transport, from, to }, q);
    },
  );

  app.get('/admin/sessions/live', { onRequest: requireAdmin, schema: { response: { 200: liveSchema, ...errors } } }, async () => {
    const live = await opts.live.list();
    const totals = await opts.sessionLog.totals(live.map((s) => s.id));
    const now = Date.now();
    return {
      object: 'list',
      data: live.map((s) => {
        const t = totals.get(s.id);
        return {
          id: s.id,
          user: s.user,
          tenant: s.tenant,
          key_id: s.keyId,
          model: s.model,
          transport: s.transport,
          instance: s.instance,
          started_at: new Date(s.startedAt).toISOString(),
          duration_ms: Math.max(0, now - s.startedAt),
          responses: t?.responses ?? 0,
          cost_usd: formatUsd(t?.cost_nanos ?? 0n),
        };
      }),
    };
  });

  app.post<{ Params: { id: string } }>(
    '/admin/sessions/:id/close',
    {
      onRequest: requireAdmin,
      schema: {
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 200 } }, required: ['id'] },
        response: { 200: { type: 'object', properties: { object: { type: 'string' }, id: { type: 'string' }, closing: { type: 'boolean' } }, required: ['object', 'id', 'closing'] }, ...errors },
      },
    },
    async (req) => {
      const closing = await opts.live.close(req.params.id, 'closed by an administrator');
      if (!closing) throw new HttpError(404, 'session_not_found', `No live session '${req.params.id}'.`, 'invalid_request_error', 'id');
      const p = principals.get(req);
      req.log.info({ by: { kind: p?.kind, keyId: p?.keyId, user: p?.user }, action: 'session.close', session_id: req.params.id }, 'admin action');
      return { object: 'relay.session.close', id: req.params.id, closing: true };
    },
  );
};
