import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Principal, Scope } from '../../src/auth/principal';
import { BudgetGuard } from '../../src/metering/budget-guard';
import { HttpError, installErrorHandler } from '../../src/http/errors';
import { adminBudgetRoutes } from '../../src/routes/admin-budgets';
import { usageRoutes } from '../../src/routes/usage';
import { migrate } from '../../src/storage/database';
import { BudgetStore, budgetMigrations } from '../../src/storage/budgets';
import { Ledger, ledgerMigrations } from '../../src/storage/ledger';
import { openTestDatabase, type TestDatabase } from '../support/databases';
import { entry } from '../storage/ledger-fixtures';

/** Test credentials: `Authorization: Bearer <user>[@tenant]:<scope,scope>`. */
async function authenticate(req: FastifyRequest): Promise<Principal> {
  const m = /^Bearer ([^:@]+)(?:@([^:]+))?:(.*)$/.exec(req.headers.authorization ?? '');
  if (!m) throw new HttpError(401, 'missing_credential', 'No credential.');
  return { user: m[1], tenant: m[2], scopes: m[3].split(',').filter(Boolean) as Scope[], kind: 'api_key' };
}

const ADMIN = { authorization: 'Bearer root:admin' };

/** The fields these tests read from the routes' JSON answers. */
interface Body {
  [key: string]: unknown;
  error: { code: string; param: string | null };
  data: { key: string | null; tenant?: string | null; responses: number; cost_usd: string }[];
  total: { cost_usd: string };
  limits: Record<string, string | null>;
  overrides: Record<string, string | null>;
  from: string | null;
  to: string | null;
}

interface Reply {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): Body;
}

/**
 * Real HTTP against the listening app: app.inject cannot run under Jest on Node 20 (its
 * light-my-request needs the ESM-only cookie@2).
 */
function client(base: string) {
  return async (req: { method: string; url: string; headers?: Record<string, string>; payload?: object }): Promise<Reply> => {
    const res = await fetch(base + req.url, {
      method: req.method,
      headers: req.payload === undefined ? req.headers : { 'content-type': 'application/json', ...req.headers },
      body: req.payload === undefined ? undefined : JSON.stringify(req.payload),
    });
    const body = await res.text();
    return { statusCode: res.status, headers: Object.fromEntries(res.headers.entries()), body, json: () => JSON.parse(body) as Body };
  };
}
const DAY = 86_400_000;
const JAN31 = Date.UTC(2025, 0, 31, 12);

describe('usage and budget routes', () => {
  let t: TestDatabase;
  let app: FastifyInstance;
  let ledger: Ledger;
  let inject: ReturnType<typeof client>;

  beforeEach(async () => {
    t = await openTestDatabase('sqlite');
    await migrate(t.db, [...ledgerMigrations, ...budgetMigrations]);
    ledger = new Ledger(t.db);
    const budgets = new BudgetStore(t.db);
    const guard = new BudgetGuard({ budgets, ledger, defaults: { daily: '5' } });
    app = Fastify();
    installErrorHandler(app);
    await app.register(usageRoutes, { ledger, authenticate, authenticateAdmin: authenticate });
    await app.register(adminBudgetRoutes, { budgets, guard, authenticateAdmin: authenticate });
    inject = client(await app.listen({ port: 0, host: '127.0.0.1' }));

    await ledger.insert(entry({ createdAt: JAN31, costNanos: 12_345_678n, usage: { input_text: 100, cached_text: 40, output_audio: 200 } }));
    await ledger.insert(entry({ createdAt: JAN31 + DAY, costNanos: 1n, model: 'gpt-realtime-mini', usage: { output_text: 5 }, estimated: true }));
    await ledger.insert(entry({ createdAt: JAN31, costNanos: 1_000_000_000n, user: 'bob', tenant: 'globex', usage: { input_audio: 9 } }));
    // Another tenant's "alice" must not show in acme's alice's report.
    await ledger.insert(entry({ createdAt: JAN31, costNanos: 777n, user: 'alice', tenant: 'other' }));
  });
  afterEach(async () => {
    await app.close();
    await t.cleanup();
  });

  describe('GET /v1/usage', () => {
    it("reports the caller's own usage in JSON", async () => {
      const res = await inject({ method: 'GET', url: '/v1/usage', headers: { authorization: 'Bearer alice@acme:realtime' } });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).toMatchObject({ object: 'usage.report', user: 'alice', tenant: 'acme', group_by: null, from: null, to: null });
      expect(body.total).toEqual({
        responses: 2,
        estimated_responses: 1,
        input_text_tokens: 100,
        input_audio_tokens: 0,
        input_image_tokens: 0,
        cached_text_tokens: 40,
        cached_audio_tokens: 0,
        cached_image_tokens: 0,
        output_text_tokens: 5,
        output_audio_tokens: 200,
        output_reasoning_tokens: 0,
        audio_duration_ms: 0,
        cost_usd: '0.012345679', // 12_345_678 + 1 nanos
      });
    });

    it('groups by day within a date range (a date-only `to` includes that day)', async () => {
      const res = await inject({ method: 'GET', url: '/v1/usage?from=2025-01-31&to=2025-01-31&group_by=day', headers: { authorization: 'Bearer alice@acme:usage' } });
      const body = res.json();
      expect(body.from).toBe('2025-01-31T00:00:00.000Z');
      expect(body.to).toBe('2025-02-01T00:00:00.000Z');
      expect(body.data.map((r) => [r.key, r.cost_usd])).toEqual([['2025-01-31', '0.012345678']]);
      const feb = await inject({ method: 'GET', url: '/v1/usage?from=2025-02-01T00:00:00Z&group_by=model', headers: { authorization: 'Bearer alice@acme:usage' } });
      expect(feb.json().data.map((r) => r.key)).toEqual(['gpt-realtime-mini']);
    });

    it('answers CSV when asked', async () => {
      const res = await inject({ method: 'GET', url: '/v1/usage?group_by=day', headers: { authorization: 'Bearer alice@acme:usage', accept: 'text/csv' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(res.body.split('\r\n')).toEqual([
        'day,responses,estimated_responses,input_text_tokens,input_audio_tokens,input_image_tokens,cached_text_tokens,cached_audio_tokens,cached_image_tokens,output_text_tokens,output_audio_tokens,audio_duration_ms,output_reasoning_tokens,cost_usd',
        '2025-01-31,1,0,100,0,0,40,0,0,0,200,0,0,0.012345678',
        '2025-02-01,1,1,0,0,0,0,0,0,5,0,0,0,0.000000001',
        '',
      ]);
    });

    it('refuses the unauthenticated, the unscoped and bad dates', async () => {
      expect((await inject({ method: 'GET', url: '/v1/usage?from=nonsense' })).statusCode).toBe(401);
      const forbidden = await inject({ method: 'GET', url: '/v1/usage', headers: { authorization: 'Bearer alice:mint' } });
      expect(forbidden.statusCode).toBe(403);
      expect(forbidden.json().error.code).toBe('insufficient_scope');
      const bad = await inject({ method: 'GET', url: '/v1/usage?from=2025-99-99', headers: { authorization: 'Bearer alice:usage' } });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().error).toMatchObject({ code: 'invalid_date', param: 'from' });
      const rolled = await inject({ method: 'GET', url: '/v1/usage?to=2025-02-30', headers: { authorization: 'Bearer alice:usage' } });
      expect(rolled.json().error).toMatchObject({ code: 'invalid_date', param: 'to' });
      const reversed = await inject({ method: 'GET', url: '/v1/usage?from=2025-02-01&to=2025-01-01', headers: { authorization: 'Bearer alice:usage' } });
      expect(reversed.json().error.code).toBe('invalid_range');
      const grouped = await inject({ method: 'GET', url: '/v1/usage?group_by=user', headers: { authorization: 'Bearer alice:usage' } });
      expect(grouped.statusCode).toBe(400);
    });
  });

  describe('GET /admin/usage', () => {
    it('reports across users, grouped by user', async () => {
      const res = await inject({ method: 'GET', url: '/admin/usage?group_by=user', headers: ADMIN });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      // A user id is unique only within its tenant: each (user, tenant) is its own row.
      expect(body.data.map((r) => [r.key, r.tenant, r.responses, r.cost_usd])).toEqual([
        ['alice', 'acme', 2, '0.012345679'], // 12_345_678 + 1
        ['alice', 'other', 1, '0.000000777'],
        ['bob', 'globex', 1, '1.000000000'],
      ]);
      expect(body.total.cost_usd).toBe('1.012346456');
    });

    it('filters by tenant, user and model', async () => {
      const res = await inject({ method: 'GET', url: '/admin/usage?tenant=acme&user=alice&model=gpt-realtime', headers: ADMIN });
      expect(res.json()).toMatchObject({ tenant: 'acme', user: 'alice', model: 'gpt-realtime', total: { responses: 1, cost_usd: '0.012345678' } });
    });

    it('escapes CSV cells', async () => {
      await ledger.insert(entry({ user: '=cmd,"x"', costNanos: 5n }));
      const res = await inject({ method: 'GET', url: '/admin/usage?group_by=user', headers: { ...ADMIN, accept: 'text/csv' } });
      expect(res.body).toContain(`"'=cmd,""x""",acme,1,`);
    });

    it('is for admins only', async () => {
      const res = await inject({ method: 'GET', url: '/admin/usage', headers: { authorization: 'Bearer alice:usage,realtime' } });
      expect(res.statusCode).toBe(403);
    });
  });

  describe('/admin/budgets', () => {
    it('sets, reads and clears limits, with spend per period', async () => {
      const put = await inject({ method: 'PUT', url: '/admin/budgets/user/bob?tenant=globex', headers: ADMIN, payload: { daily_usd: '2.5', total_usd: '100' } });
      expect(put.statusCode).toBe(200);
      expect(put.json()).toEqual({
        object: 'relay.budget',
        scope: 'user',
        id: 'bob',
        tenant: 'globex',
        limits: { daily_usd: '2.500000000', monthly_usd: null, total_usd: '100.000000000' },
        overrides: { daily_usd: '2.500000000', monthly_usd: null, total_usd: '100.000000000' },
        spent: { daily_usd: '0.000000000', monthly_usd: '0.000000000', total_usd: '1.000000000' },
      });

      const cleared = await inject({ method: 'PUT', url: '/admin/budgets/user/bob?tenant=globex', headers: ADMIN, payload: { daily_usd: null } });
      // Cleared: the configured default ($5/day) applies again.
      expect(cleared.json().limits).toEqual({ daily_usd: '5.000000000', monthly_usd: null, total_usd: '100.000000000' });
      expect(cleared.json().overrides.daily_usd).toBeNull();

      const get = await inject({ method: 'GET', url: '/admin/budgets/user/bob?tenant=globex', headers: ADMIN });
      expect(get.json().limits.total_usd).toBe('100.000000000');

      const del = await inject({ method: 'DELETE', url: '/admin/budgets/user/bob?tenant=globex', headers: ADMIN });
      expect(del.statusCode).toBe(200);
      expect(del.json().overrides).toEqual({ daily_usd: null, monthly_usd: null, total_usd: null });
      const again = await inject({ method: 'DELETE', url: '/admin/budgets/user/bob?tenant=globex', headers: ADMIN });
      expect(again.statusCode).toBe(404);
      expect(again.json().error.code).toBe('budget_not_found');
    });

    it('has no defaults for tenants', async () => {
      const res = await inject({ method: 'GET', url: '/admin/budgets/tenant/acme', headers: ADMIN });
      expect(res.json().limits).toEqual({ daily_usd: null, monthly_usd: null, total_usd: null });
    });

    it('refuses bad amounts, unknown fields, unknown scopes and non-admins', async () => {
      const cases: [object, number, string][] = [
        [{ daily_usd: '-1' }, 400, 'invalid_request'],
        [{ daily_usd: '1.0000000001' }, 400, 'invalid_request'],
        [{ daily_usd: 'ten' }, 400, 'invalid_request'],
        [{ daily: '1' }, 400, 'unknown_parameter'],
      ];
      for (const [payload, status, code] of cases) {
        const res = await inject({ method: 'PUT', url: '/admin/budgets/user/bob', headers: ADMIN, payload });
        expect([res.statusCode, res.json().error.code]).toEqual([status, code]);
      }
      expect((await inject({ method: 'GET', url: '/admin/budgets/team/x', headers: ADMIN })).statusCode).toBe(400);
      expect((await inject({ method: 'GET', url: '/admin/budgets/user/bob', headers: { authorization: 'Bearer bob:usage' } })).statusCode).toBe(403);
      expect((await inject({ method: 'GET', url: '/admin/budgets/user/bob' })).statusCode).toBe(401);
    });
  });
});
