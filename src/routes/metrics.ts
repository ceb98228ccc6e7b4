import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

export interface MetricsRouteOptions {
  registry: Registry;
}

/** `GET /metrics`: the Prometheus text exposition of the relay's own registry. */
export const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async (app, o) => {
  // Scraped every few seconds: logged only when something is wrong.
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    const body = await o.registry.metrics();
    return reply.header('content-type', o.registry.contentType).header('cache-control', 'no-store').send(body);
  });
};
