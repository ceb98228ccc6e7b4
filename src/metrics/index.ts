import Fastify, { type FastifyInstance } from 'fastify';
import { HttpError, installErrorHandler } from '../http/errors';
import { metricsRoutes } from '../routes/metrics';
import type { SessionObserver } from '../session/plan-session';
import type { RelayMetrics } from './relay-metrics';

export interface MetricsEndpointOptions {
  /** METRICS_PORT: serve /metrics on this port (a listener of its own) instead of the relay's. */
  port?: number;
  host: string;
}

/**
 * Serves /metrics, and counts refused realtime connections (401, 402, 429, …) as relay errors.
 * With a port of its own, /metrics stays off the public listener, so it can be left
 * unauthenticated behind a network boundary; that listener opens and closes with the relay.
 */
export async function attachMetrics(app: FastifyInstance, metrics: RelayMetrics, o: MetricsEndpointOptions): Promise<void> {
  app.addHook('onError', async (request, _reply, error) => {
    if (request.routeOptions.url === '/v1/realtime' && error instanceof HttpError) metrics.relayError(error.code);
  });

  if (o.port === undefined) {
    await app.register(metricsRoutes, { registry: metrics.registry });
    return;
  }
  const server = Fastify();
  installErrorHandler(server);
  await server.register(metricsRoutes, { registry: metrics.registry });
  app.addHook('onReady', async () => {
    await server.listen({ port: o.port, host: o.host });
  });
  app.addHook('onClose', async () => {
    await server.close();
  });
}

/** Both observers, each told of every event; the metrics one alone when there is no other. */
export function combineObservers(a: SessionObserver, b?: SessionObserver): SessionObserver {
  if (!b) return a;
  return {
    onClientFrame(type, bytes) {
      a.onClientFrame?.(type, bytes);
      b.onClientFrame?.(type, bytes);
    },
    onUpstreamFrame(type, bytes) {
      a.onUpstreamFrame?.(type, bytes);
      b.onUpstreamFrame?.(type, bytes);
    },
    onUpstreamOpen(ms) {
      a.onUpstreamOpen?.(ms);
      b.onUpstreamOpen?.(ms);
    },
    onHandshakeFailure(status) {
      a.onHandshakeFailure?.(status);
      b.onHandshakeFailure?.(status);
    },
    onUpstreamError(event) {
      a.onUpstreamError?.(event);
      b.onUpstreamError?.(event);
    },
    onRelayEvent(event) {
      a.onRelayEvent?.(event);
      b.onRelayEvent?.(event);
    },
    onBilled(provider, model) {
      a.onBilled?.(provider, model);
      b.onBilled?.(provider, model);
    },
  };
}

export { RelayMetrics, type RelayMetricsOptions } from './relay-metrics';
export { BoundedLabel } from './bounded-label';
