/**
 * `GET /admin/tool_calls` (scope `admin`): the server-side tool audit trail (src/tools), JSON by
 * default, CSV when the request accepts `text/csv`. Filters: user, tenant, tool, session_id,
 * from (inclusive) and to (exclusive) as ISO timestamps or dates, limit (default 1000).
 */
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../auth/principal';
import { errorBodySchema, HttpError } from '../http/errors';
import { csvCell } from '../metering/usage-report';
import { TOOL_CALL_FIELDS, type ToolCallRow, type ToolCallStore } from '../tools/store';

export interface AdminToolCallRoutesOptions {
  calls: Pick<ToolCallStore, 'list'>;
  authenticateAdmin: (req: FastifyRequest) => Promise<Principal>;
}

const DATE_PATTERN = '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|[+-]\\d{2}:\\d{2}))?$';
const name = { type: 'string', minLength: 1, maxLength: 256 } as const;
const nullableString = { type: ['string', 'null'] } as const;
const nullableInteger = { type: ['integer', 'null'] } as const;

const rowSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    created_at: { type: 'string' },
    session_id: { type: 'string' },
    user: { type: 'string' },
    tenant: nullableString,
    tool: { type: 'string' },
    kind: { type: 'string' },
    call_id: { type: 'string' },
    arguments: nullableString,
    arguments_sha256: { type: 'string' },
    outcome: { type: 'string' },
    approval_id: nullableString,
    approval_decision: nullableString,
    approval_by: nullableString,
    approval_at: nullableInteger,
    webhook_status: nullableInteger,
    latency_ms: nullableInteger,
    output_bytes: { type: 'integer' },
  },
  required: [...TOOL_CALL_FIELDS],
} as const;

interface Query {
  user?: string;
  tenant?: string;
  tool?: string;
  session_id?: string;
  from?: string;
  to?: string;
  limit?: number;
}

function parseDate(value: string | undefined, param: string): Date | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value.includes('T') ? value : `${value}T00:00:00Z`);
  if (Number.isNaN(t)) throw new HttpError(400, 'invalid_date', `'${param}' is not a valid date: ${value}`, 'invalid_request_error', param);
  return new Date(t);
}

function toCsv(rows: readonly ToolCallRow[]): string {
  const lines = [TOOL_CALL_FIELDS.join(',')];
  for (const r of rows) lines.push(TOOL_CALL_FIELDS.map((f) => csvCell(r[f])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

export const adminToolCallRoutes: FastifyPluginAsync<AdminToolCallRoutesOptions> = async (app, opts) => {
  app.get<{ Querystring: Query }>(
    '/admin/tool_calls',
    {
      onRequest: async (req) => {
        await opts.authenticateAdmin(req);
      },
      schema: {
        querystring: {
          type: 'object',
          properties: {
            user: name,
            tenant: name,
            tool: name,
            session_id: name,
            from: { type: 'string', pattern: DATE_PATTERN },
            to: { type: 'string', pattern: DATE_PATTERN },
            limit: { type: 'integer', minimum: 1, maximum: 10000 },
          },
        },
        response: {
          200: { description: 'JSON list, or CSV with Accept: text/csv', type: 'object', properties: { object: { type: 'string', enum: ['list'] }, data: { type: 'array', items: rowSchema } }, required: ['object', 'data'] },
          '4xx': errorBodySchema,
          '5xx': errorBodySchema,
        },
      },
    },
    async (req: FastifyRequest<{ Querystring: Query }>, reply: FastifyReply) => {
      const q = req.query;
      const rows = await opts.calls.list({ user: q.user, tenant: q.tenant, tool: q.tool, session_id: q.session_id, from: parseDate(q.from, 'from'), to: parseDate(q.to, 'to'), limit: q.limit });
      if (/(^|,)\s*text\/csv\b/i.test(req.headers.accept ?? '')) {
        void reply.header('content-type', 'text/csv; charset=utf-8');
        return toCsv(rows);
      }
      return { object: 'list', data: rows };
    },
  );
};
