/**
 * Usage reports from the ledger: `GET /v1/usage` for the caller's own usage (scope `usage` or
 * `realtime`), and `GET /admin/usage` across users (scope `admin`). JSON by default, CSV when
 * the request accepts `text/csv`. Costs are decimal USD strings with nine decimals (exact
 * nano-dollars); token counts are integers.
 *
 * Dates: `from` and `to` take an ISO date (UTC) or timestamp. `from` is inclusive; `to` is
 * exclusive as a timestamp and inclusive as a date (`to=2025-01-31` covers that whole day).
 *
 * `group_by`: day, model, key or session on /v1/usage; also user and tenant on /admin/usage.
 *
 * Error codes: 401/403 from the authenticator or insufficient_scope, 400 invalid_request /
 * invalid_date / invalid_range.
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { hasScope, type Principal } from '../auth/principal';
import { errorBodySchema, HttpError } from '../http/errors';
import { sumUsageRows, USAGE_COUNT_FIELDS, usageCsv, usageTotalsView } from '../metering/usage-report';
import type { LedgerReader, UsageFilter, UsageGroupBy } from '../storage/ledger';

export interface UsageRoutesOptions {
  ledger: Pick<LedgerReader, 'usage'>;
  authenticate: (req: FastifyRequest) => Promise<Principal>;
  /** Without it, /admin/usage is not served. */
  authenticateAdmin?: (req: FastifyRequest) => Promise<Principal>;
}

export const DATE_PATTERN = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$';
const dateParam = { type: 'string', pattern: DATE_PATTERN } as const;
const name = { type: 'string', minLength: 1, maxLength: 256 } as const;

const COUNT_FIELDS = USAGE_COUNT_FIELDS;

const totalsSchema = {
  type: 'object',
  properties: {
    ...Object.fromEntries(COUNT_FIELDS.map((f) => [f, { type: 'integer' }])),
    cost_usd: { type: 'string', description: 'Decimal USD, nine decimals' },
  },
  required: [...COUNT_FIELDS, 'cost_usd'],
} as const;

const rowSchema = {
  type: 'object',
  properties: {
    key: { type: ['string', 'null'] },
    tenant: { type: ['string', 'null'], description: "group_by=user: the user's tenant (null: none)" },
    ...totalsSchema.properties,
  },
  required: ['key', ...totalsSchema.required],
} as const;

const reportSchema = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['usage.report'] },
    user: { type: ['string', 'null'] },
    tenant: { type: ['string', 'null'] },
    model: { type: ['string', 'null'] },
    from: { type: ['string', 'null'] },
    to: { type: ['string', 'null'] },
    group_by: { type: ['string', 'null'] },
    data: { type: 'array', items: rowSchema },
    total: totalsSchema,
  },
  required: ['object', 'user', 'tenant', 'model', 'from', 'to', 'group_by', 'data', 'total'],
} as const;

const responses = {
  200: { description: 'JSON report, or CSV with Accept: text/csv', ...reportSchema },
  '4xx': errorBodySchema,
  '5xx': errorBodySchema,
} as const;

interface OwnQuery {
  from?: string;
  to?: string;
  group_by?: 'day' | 'model' | 'key' | 'session';
}

interface AdminQuery {
  user?: string;
  tenant?: string;
  model?: string;
  from?: string;
  to?: string;
  group_by?: 'day' | 'model' | 'user' | 'key' | 'tenant' | 'session';
}

function parseDate(value: string | undefined, param: 'from' | 'to'): Date | undefined {
  if (value === undefined) return undefined;
  const dateOnly = !value.includes('T');
  const t = Date.parse(dateOnly ? `${value}T00:00:00Z` : value);
  // Date.parse rolls 2025-02-30 over into March instead of refusing it.
  if (Number.isNaN(t) || (dateOnly && new Date(t).toISOString().slice(0, 10) !== value)) throw new HttpError(400, 'invalid_date', `'${param}' is not a valid date: ${value}`, 'invalid_request_error', param);
  // A date-only `to` means "through that day".
  return new Date(dateOnly && param === 'to' ? t + 86_400_000 : t);
}

export function range(q: { from?: string; to?: string }): { from?: Date; to?: Date } {
  const from = parseDate(q.from, 'from');
  const to = parseDate(q.to, 'to');
  if (from && to && from.getTime() > to.getTime()) {
    throw new HttpError(400, 'invalid_range', "'from' is after 'to'", 'invalid_request_error', 'from');
  }
  return { from, to };
}

const sumRows = sumUsageRows;
const view = usageTotalsView;
const toCsv = usageCsv;

export function wantsCsv(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return /(^|,)\s*text\/csv\b/i.test(accept);
}

async function report(
  req: FastifyRequest,
  reply: FastifyReply,
  ledger: Pick<LedgerReader, 'usage'>,
  filter: UsageFilter,
  groupBy: UsageGroupBy,
): Promise<unknown> {
  const rows = await ledger.usage(filter, groupBy);
  if (wantsCsv(req)) {
    void reply.header('content-type', 'text/csv; charset=utf-8');
    return toCsv(groupBy, rows);
  }
  return {
    object: 'usage.report',
    user: filter.user ?? null,
    tenant: filter.tenant ?? null,
    model: filter.model ?? null,
    from: filter.from?.toISOString() ?? null,
    to: filter.to?.toISOString() ?? null,
    group_by: groupBy,
    data: rows.map((r) => ({ key: r.key, ...(r.tenant !== undefined ? { tenant: r.tenant } : {}), ...view(r) })),
    total: view(sumRows(rows)),
  };
}

export const usageRoutes: FastifyPluginAsync<UsageRoutesOptions> = async (app, opts) => {
  const principals = new WeakMap<FastifyRequest, Principal>();

  app.get<{ Querystring: OwnQuery }>(
    '/v1/usage',
    {
      // Authentication runs before validation: an anonymous caller learns nothing from a 400.
      onRequest: async (req) => {
        const p = await opts.authenticate(req);
        if (!hasScope(p, 'usage') && !hasScope(p, 'realtime')) {
          throw new HttpError(403, 'insufficient_scope', "This credential lacks the 'usage' scope.");
        }
        principals.set(req, p);
      },
      schema: {
        querystring: {
          type: 'object',
          properties: { from: dateParam, to: dateParam, group_by: { type: 'string', enum: ['day', 'model', 'key', 'session'] } },
        },
        response: responses,
      },
    },
    async (req, reply) => {
      const p = principals.get(req);
      if (!p) throw new HttpError(401, 'missing_credential', 'Authentication required.');
      const { from, to } = range(req.query);
      // The tenant narrows the user: two tenants may each have a user called "alice", and a
      // user of no tenant sees only the rows of no tenant (null), never every tenant's alice.
      const filter: UsageFilter = { user: p.user, tenant: p.tenant || null, from, to };
      return report(req, reply, opts.ledger, filter, req.query.group_by ?? null);
    },
  );

  const authenticateAdmin = opts.authenticateAdmin;
  if (!authenticateAdmin) return;

  app.get<{ Querystring: AdminQuery }>(
    '/admin/usage',
    {
      onRequest: async (req) => {
        const p = await authenticateAdmin(req);
        if (!hasScope(p, 'admin')) throw new HttpError(403, 'insufficient_scope', "This credential lacks the 'admin' scope.");
      },
      schema: {
        querystring: {
          type: 'object',
          properties: {
            user: name,
            tenant: name,
            model: name,
            from: dateParam,
            to: dateParam,
            group_by: { type: 'string', enum: ['day', 'model', 'user', 'key', 'tenant', 'session'] },
          },
        },
        response: responses,
      },
    },
    async (req, reply) => {
      const { from, to } = range(req.query);
      const filter: UsageFilter = { user: req.query.user, tenant: req.query.tenant, model: req.query.model, from, to };
      return report(req, reply, opts.ledger, filter, req.query.group_by ?? null);
    },
  );
};
