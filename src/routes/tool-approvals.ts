/**
 * Tool approvals (src/tools): `GET /v1/tool_approvals?status=pending` and
 * `POST /v1/tool_approvals/{id}` `{approve, reason}` for the session's own user (scope
 * `realtime`; only approvals of tools with `approval: "user"`), and `GET /admin/tool_approvals`,
 * `POST /admin/tool_approvals/{id}` for operators (scope `admin`; `operator` and `user` tools).
 *
 * Error codes: 404 approval_not_found (also for another user's approval: its existence is not
 * disclosed), 409 approval_already_decided / approval_expired.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal';
import { errorBodySchema, HttpError } from '../http/errors';
import type { ApprovalBroker } from '../tools/approvals';
import type { Approval, ApprovalStatus } from '../tools/store';

export interface ToolApprovalRoutesOptions {
  approvals: ApprovalBroker;
  authenticate: (req: FastifyRequest) => Promise<Principal>;
  authenticateAdmin: (req: FastifyRequest) => Promise<Principal>;
}

const STATUSES: readonly ApprovalStatus[] = ['pending', 'approved', 'rejected', 'expired'];
const name = { type: 'string', minLength: 1, maxLength: 256 } as const;

const approvalSchema = {
  type: 'object',
  properties: {
    object: { type: 'string', enum: ['tool_approval'] },
    id: { type: 'string' },
    session_id: { type: 'string' },
    user: { type: 'string' },
    tenant: { type: ['string', 'null'] },
    call_id: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string', enum: ['function', 'mcp'] },
    approver: { type: 'string', enum: ['user', 'operator'] },
    arguments: { description: 'The arguments the model sent (parsed JSON, or the text when not JSON)' },
    status: { type: 'string', enum: STATUSES },
    reason: { type: ['string', 'null'] },
    decided_by: { type: ['string', 'null'] },
    decided_at: { type: ['string', 'null'] },
    created_at: { type: 'string' },
    expires_at: { type: 'string' },
  },
  required: ['object', 'id', 'session_id', 'user', 'tenant', 'call_id', 'name', 'kind', 'approver', 'status', 'reason', 'decided_by', 'decided_at', 'created_at', 'expires_at'],
} as const;

const listSchema = { type: 'object', properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: approvalSchema } }, required: ['object', 'data'] } as const;
const errors = { '4xx': errorBodySchema, '5xx': errorBodySchema } as const;
const idParams = { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 100 } }, required: ['id'] } as const;
const decisionBody = {
  type: 'object',
  additionalProperties: false,
  properties: { approve: { type: 'boolean' }, reason: { type: ['string', 'null'], maxLength: 1000 } },
  required: ['approve'],
} as const;

interface Decision {
  approve: boolean;
  reason?: string | null;
}

function view(a: Approval): Record<string, unknown> {
  let args: unknown = a.arguments;
  try {
    args = JSON.parse(a.arguments);
  } catch {
    /* shown as the text the model sent */
  }
  const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
  return {
    object: 'tool_approval',
    id: a.id,
    session_id: a.session_id,
    user: a.user,
    tenant: a.tenant,
    call_id: a.call_id,
    name: a.tool,
    kind: a.kind,
    approver: a.approver,
    arguments: args,
    status: a.status,
    reason: a.reason,
    decided_by: a.decided_by,
    decided_at: iso(a.decided_at),
    created_at: new Date(a.created_at).toISOString(),
    expires_at: new Date(a.expires_at).toISOString(),
  };
}

const NOT_FOUND = (): HttpError => new HttpError(404, 'approval_not_found', 'No such tool approval.');

export const toolApprovalRoutes: FastifyPluginAsync<ToolApprovalRoutesOptions> = async (app, opts) => {
  const principals = new WeakMap<FastifyRequest, Principal>();
  const who = (req: FastifyRequest): Principal => {
    const p = principals.get(req);
    if (!p) throw new HttpError(401, 'missing_credential', 'Authentication required.');
    return p;
  };
  // Authentication runs before validation: an anonymous caller learns nothing from a 400.
  const asUser = async (req: FastifyRequest): Promise<void> => {
    principals.set(req, await opts.authenticate(req));
  };
  const asAdmin = async (req: FastifyRequest): Promise<void> => {
    principals.set(req, await opts.authenticateAdmin(req));
  };
  /** The caller's own `user` approvals only. */
  const owns = (p: Principal, a: Approval): boolean => a.approver === 'user' && a.user === p.user && a.tenant === (p.tenant ?? null);

  const decide = async (id: string, body: Decision, decidedBy: string, allowed: (a: Approval) => boolean): Promise<Record<string, unknown>> => {
    const current = await opts.approvals.store.get(id);
    if (!current || !allowed(current)) throw NOT_FOUND();
    const result = await opts.approvals.decide(id, body.approve, body.reason ?? null, decidedBy);
    if (result.ok) return view(result.approval);
    if (result.reason === 'not_found') throw NOT_FOUND();
    if (result.reason === 'expired') throw new HttpError(409, 'approval_expired', 'This approval expired before it was decided.');
    throw new HttpError(409, 'approval_already_decided', `This approval was already ${result.approval?.status ?? 'decided'}.`);
  };

  app.get<{ Querystring: { status?: ApprovalStatus } }>(
    '/v1/tool_approvals',
    { onRequest: asUser, schema: { querystring: { type: 'object', properties: { status: { type: 'string', enum: STATUSES } } }, response: { 200: listSchema, ...errors } } },
    async (req) => {
      const p = who(req);
      const rows = await opts.approvals.store.list({ status: req.query.status, user: p.user, tenant: p.tenant ?? null, approver: 'user' });
      return { object: 'list', data: rows.map(view) };
    },
  );

  app.post<{ Params: { id: string }; Body: Decision }>(
    '/v1/tool_approvals/:id',
    { onRequest: asUser, schema: { params: idParams, body: decisionBody, response: { 200: approvalSchema, ...errors } } },
    async (req) => {
      const p = who(req);
      return decide(req.params.id, req.body, `user:${p.user}`, (a) => owns(p, a));
    },
  );

  app.get<{ Querystring: { status?: ApprovalStatus; user?: string; tenant?: string } }>(
    '/admin/tool_approvals',
    {
      onRequest: asAdmin,
      schema: { querystring: { type: 'object', properties: { status: { type: 'string', enum: STATUSES }, user: name, tenant: name } }, response: { 200: listSchema, ...errors } },
    },
    async (req) => {
      const rows = await opts.approvals.store.list({ status: req.query.status, user: req.query.user, tenant: req.query.tenant });
      return { object: 'list', data: rows.map(view) };
    },
  );

  app.post<{ Params: { id: string }; Body: Decision }>(
    '/admin/tool_approvals/:id',
    { onRequest: asAdmin, schema: { params: idParams, body: decisionBody, response: { 200: approvalSchema, ...errors } } },
    async (req) => {
      const p = who(req);
      return decide(req.params.id, req.body, `operator:${p.keyId ?? p.user}`, () => true);
    },
  );
};
