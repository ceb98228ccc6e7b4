/**
 * Budget administration: `PUT|GET|DELETE /admin/budgets/:scope/:id` with scope `user`,
 * `tenant` or `key` (an API key id) (scope `admin`); `GET /admin/budgets` lists every override.
 * Amounts are decimal USD strings with up to nine decimals. A user is named within its tenant:
 * `/admin/budgets/user/alice?tenant=acme` is acme's alice; without `?tenant=` it is the alice of
 * no tenant, a namespace of its own (never "every alice").
 *
 * PUT takes `{daily_usd?, monthly_usd?, total_usd?}`: a string sets that period's limit, null
 * clears the override (a user then falls back to the configured default), an absent field is
 * left as it was. GET answers the limits in force, which of them are overrides, and the current
 * spend per UTC period. DELETE removes every override of the subject.
 *
 * Error codes: 401/403 from the authenticator or insufficient_scope, 400 invalid_request /
 * unknown_parameter / invalid_amount, 404 budget_not_found (DELETE of a subject without one).
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { hasScope, type Principal } from '../auth/principal';
import { errorBodySchema, HttpError } from '../http/errors';
import type { BudgetGuard, BudgetStatus } from '../metering/budget-guard';
import { formatUsd, MoneyError, parseUsd } from '../metering/money';
import { BUDGET_PERIODS, type BudgetLimits, type BudgetPatch, type BudgetScope, type BudgetStore } from '../storage/budgets';

export interface AdminBudgetRoutesOptions {
  budgets: BudgetStore;
  guard: BudgetGuard;
  authenticateAdmin: (req: FastifyRequest) => Promise<Principal>;
}

const AMOUNT_PATTERN = '^\\d{1,12}(\\.\\d{1,9})?$';
const amount = { type: ['string', 'null'], pattern: AMOUNT_PATTERN } as const;
const usd = { type: ['string', 'null'] } as const;
const periods = {
  type: 'object',
  properties: { daily_usd: usd, monthly_usd: usd, total_usd: usd },
  required: ['daily_usd', 'monthly_usd', 'total_usd'],
} as const;

const statusSchema = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['relay.budget'] },
    scope: { type: 'string', enum: ['user', 'tenant', 'key'] },
    id: { type: 'string' },
    tenant: { type: ['string', 'null'], description: "A user's tenant (null: none); null for tenant budgets" },
    limits: periods,
    overrides: periods,
    spent: {
      type: 'object',
      properties: { daily_usd: { type: 'string' }, monthly_usd: { type: 'string' }, total_usd: { type: 'string' } },
      required: ['daily_usd', 'monthly_usd', 'total_usd'],
    },
  },
  required: ['object', 'scope', 'id', 'limits', 'overrides', 'spent'],
} as const;

const params = {
  type: 'object',
  properties: { scope: { type: 'string', enum: ['user', 'tenant', 'key'] }, id: { type: 'string', minLength: 1, maxLength: 256 } },
  required: ['scope', 'id'],
} as const;

const querystring = {
  type: 'object',
  properties: { tenant: { type: 'string', minLength: 1, maxLength: 256 } },
  additionalProperties: false,
} as const;

const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;

interface Params {
  scope: BudgetScope;
  id: string;
}

interface Query {
  tenant?: string;
}

/** The tenant a user subject is named in; a tenant subject takes none. */
function tenantOf(params: Params, query: Query): string | null {
  if (query.tenant === undefined) return null;
  if (params.scope !== 'user') throw new HttpError(400, 'invalid_request', "'tenant' applies to user budgets only.", 'invalid_request_error', 'tenant');
  return query.tenant;
}

type Body = Partial<Record<'daily_usd' | 'monthly_usd' | 'total_usd', string | null>>;
const BODY_FIELDS = new Set(['daily_usd', 'monthly_usd', 'total_usd']);

function limitsView(l: BudgetLimits): Record<string, string | null> {
  return {
    daily_usd: l.daily === null ? null : formatUsd(l.daily),
    monthly_usd: l.monthly === null ? null : formatUsd(l.monthly),
    total_usd: l.total === null ? null : formatUsd(l.total),
  };
}

/** The admin API's budget object; the CLI prints the same. */
export function budgetView(s: BudgetStatus, tenant: string | null = null): Record<string, unknown> {
  return {
    object: 'relay.budget',
    scope: s.scope,
    id: s.subject,
    tenant,
    limits: limitsView(s.limits),
    overrides: limitsView(s.overrides),
    spent: { daily_usd: formatUsd(s.spent.daily), monthly_usd: formatUsd(s.spent.monthly), total_usd: formatUsd(s.spent.total) },
  };
}

export const adminBudgetRoutes: FastifyPluginAsync<AdminBudgetRoutesOptions> = async (app, opts) => {
  app.addHook('onRequest', async (req) => {
    const p = await opts.authenticateAdmin(req);
    if (!hasScope(p, 'admin')) throw new HttpError(403, 'insufficient_scope', "This credential lacks the 'admin' scope.");
  });

  const path = '/admin/budgets/:scope/:id';

  app.put<{ Params: Params; Body: Body; Querystring: Query }>(
    path,
    {
      schema: {
        params,
        querystring,
        body: { type: 'object', properties: { daily_usd: amount, monthly_usd: amount, total_usd: amount } },
        response: { 200: statusSchema, ...errors },
      },
    },
    async (req) => {
      const body = req.body ?? {};
      const tenant = tenantOf(req.params, req.query);
      // Fastify's ajv drops unknown properties silently; a misspelt `daily` must not be a no-op.
      const unknown = Object.keys(body).find((k) => !BODY_FIELDS.has(k));
      if (unknown !== undefined) {
        throw new HttpError(400, 'unknown_parameter', `Unknown parameter: '${unknown}'.`, 'invalid_request_error', unknown);
      }
      const patch: BudgetPatch = {};
      for (const period of BUDGET_PERIODS) {
        const key = `${period}_usd` as const;
        const v = body[key];
        if (v === undefined) continue;
        try {
          patch[period] = v === null ? null : parseUsd(v);
        } catch (err) {
          if (err instanceof MoneyError) throw new HttpError(400, 'invalid_amount', err.message, 'invalid_request_error', key);
          throw err;
        }
      }
      await opts.budgets.update(req.params.scope, req.params.id, patch, tenant);
      req.log.info({ action: 'budget.update', scope: req.params.scope, subject: req.params.id, tenant, body }, 'admin action');
      return budgetView(await opts.guard.status(req.params.scope, req.params.id, tenant), tenant);
    },
  );

  app.get(
    '/admin/budgets',
    { schema: { response: { 200: { type: 'object', properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: statusSchema } }, required: ['object', 'data'] }, ...errors } } },
    async () => {
      const stored = await opts.budgets.list();
      const data = [];
      for (const b of stored) data.push(budgetView(await opts.guard.status(b.scope, b.subject, b.tenant), b.tenant));
      return { object: 'list', data };
    },
  );

  app.get<{ Params: Params; Querystring: Query }>(path, { schema: { params, querystring, response: { 200: statusSchema, ...errors } } }, async (req) => {
    const tenant = tenantOf(req.params, req.query);
    return budgetView(await opts.guard.status(req.params.scope, req.params.id, tenant), tenant);
  });

  app.delete<{ Params: Params; Querystring: Query }>(path, { schema: { params, querystring, response: { 200: statusSchema, ...errors } } }, async (req) => {
    const tenant = tenantOf(req.params, req.query);
    if (!(await opts.budgets.remove(req.params.scope, req.params.id, tenant))) {
      throw new HttpError(404, 'budget_not_found', `No budget override for ${req.params.scope} '${req.params.id}'${tenant === null ? '' : ` of tenant '${tenant}'`}.`);
    }
    req.log.info({ action: 'budget.delete', scope: req.params.scope, subject: req.params.id, tenant }, 'admin action');
    return budgetView(await opts.guard.status(req.params.scope, req.params.id, tenant), tenant);
  });
};
