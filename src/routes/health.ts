import type { FastifyPluginAsync } from 'fastify';
import type { SessionRegistry } from '../relay/session-registry';

export interface HealthRouteOptions {
  sessions: SessionRegistry;
  /** Each named check throws when its dependency is not usable; a failing one makes /readyz 503. */
  readinessChecks: Record<string, () => Promise<void>>;
  /**
   * The ledger's database. Its failure does NOT make the instance unready: it makes /readyz say
   * `"ledger":"degraded"` (still 200). While the database is away or locked, usage rows go to the
   * fsync'd spool and are replayed, and budget checks fail open by design; sessions keep
   * working. With several instances on one database an outage hits them all alike, so a 503
   * would only let the load balancer take every instance out at once and turn a database outage
   * into a voice outage. Alert on `ledger` and on relay_ledger_spool_depth /
   * relay_ledger_spool_oldest_age_seconds instead.
   */
  ledger?: { check: () => Promise<void>; spoolDepth: () => number };
  /** Each check gets at most this long before it counts as failed (default 2000 ms). */
  checkTimeoutMs?: number;
}

const healthSchema = {
  type: 'object',
  properties: { status: { type: 'string' } },
  required: ['status'],
} as const;

const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'not_ready'] },
    draining: { type: 'boolean' },
    active_sessions: { type: 'integer' },
    ledger: { type: 'string', enum: ['ok', 'degraded'] },
    spooled_rows: { type: 'integer' },
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
  required: ['status', 'draining', 'checks'],
} as const;

/**
 * `/healthz` says the process is alive (for restarts); `/readyz` says it should get traffic
 * (for load balancers): false while draining or when a dependency is down. The ledger's
 * database is reported, not required: see HealthRouteOptions.ledger.
 */
export const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, o) => {
  const timeoutMs = o.checkTimeoutMs ?? 2000;
  app.get('/healthz', { schema: { response: { 200: healthSchema } }, logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: readySchema, 503: readySchema } }, logLevel: 'warn' }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    let ready = !o.sessions.draining;
    let ledgerOk = true;
    const run = async (name: string, check: () => Promise<void>): Promise<boolean> => {
      try {
        await withTimeout(check(), timeoutMs);
        checks[name] = 'ok';
        return true;
      } catch (err) {
        checks[name] = err instanceof Error ? err.message.slice(0, 200) : 'failed';
        return false;
      }
    };
    await Promise.all([
      ...Object.entries(o.readinessChecks).map(async ([name, check]) => {
        if (!(await run(name, check))) ready = false;
      }),
      ...(o.ledger ? [run('database', o.ledger.check).then((ok) => void (ledgerOk = ok))] : []),
    ]);
    void reply.status(ready ? 200 : 503);
    const body = { status: ready ? 'ready' : 'not_ready', draining: o.sessions.draining, active_sessions: o.sessions.size, checks };
    if (!o.ledger) return body;
    // Rows waiting in the spool mean the database is not taking writes, even if it answers a ping.
    const spooled = o.ledger.spoolDepth();
    return { ...body, ledger: ledgerOk && spooled === 0 ? 'ok' : 'degraded', spooled_rows: spooled };
  });
};

/** A check that never answers (a blackholed database) must not hold the probe open. */
function withTimeout(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  p.catch(() => undefined);
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
