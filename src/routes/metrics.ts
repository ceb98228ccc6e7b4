import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';

export interface MetricsRouteOptions {
  registry: Registry;
}

const metricsSchema = {
  description: 'Prometheus text exposition of the relay\'s metrics (never labelled by user).',
  response: { 200: { description: 'Prometheus text format 0.0.4', type: 'string' } },
} as const;

/** `GET /metrics`: the Prometheus text exposition of the relay's own registry. */
export const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async (app, o) => {
  // Scraped every few seconds: logged only when something is wrong.
  app.get('/metrics', { logLevel: 'warn', schema: metricsSchema }, async (_request, reply) => {
    const body = await o.registry.metrics();
    return reply.header('content-type', o.registry.contentType).header('cache-control', 'no-store').send(body);
  });
};
