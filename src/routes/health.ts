import type { FastifyPluginAsync } from 'fastify';
import type { SessionRegistry } from '../relay/session-registry';

export interface HealthRouteOptions {
  sessions: SessionRegistry;
  /** Each named check throws when its dependency is not usable (e.g. the database). */
  readinessChecks: Record<string, () => Promise<void>>;
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
    checks: { type: 'object', additionalProperties: { type: 'string' } },
  },
  required: ['status', 'draining', 'checks'],
} as const;

/**
 * `/healthz` says the process is alive (for restarts); `/readyz` says it should get traffic
 * (for load balancers): false while draining or when a dependency is down.
 */
export const healthRoutes: FastifyPluginAsync<HealthRouteOptions> = async (app, o) => {
  app.get('/healthz', { schema: { response: { 200: healthSchema } }, logLevel: 'warn' }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { response: { 200: readySchema, 503: readySchema } }, logLevel: 'warn' }, async (_req, reply) => {
    const checks: Record<string, string> = {};
    let ready = !o.sessions.draining;
    await Promise.all(
      Object.entries(o.readinessChecks).map(async ([name, check]) => {
        try {
          await check();
          checks[name] = 'ok';
        } catch (err) {
          ready = false;
          checks[name] = err instanceof Error ? err.message.slice(0, 200) : 'failed';
        }
      }),
    );
    void reply.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not_ready', draining: o.sessions.draining, active_sessions: o.sessions.size, checks };
  });
};
