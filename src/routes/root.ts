import type { FastifyPluginAsync } from 'fastify';

export interface RootRouteOptions {
  demoEnabled: boolean;
}

const rootSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    docs: { type: 'string' },
    demo: { type: ['string', 'null'] },
    healthz: { type: 'string' },
    readyz: { type: 'string' },
    realtime: { type: 'string' },
  },
  required: ['name', 'docs', 'demo', 'healthz', 'readyz', 'realtime'],
} as const;

/** `GET /`: where to go from here, for someone who opened the relay's address in a browser or curl. */
export const rootRoutes: FastifyPluginAsync<RootRouteOptions> = async (app, o) => {
  app.get('/', { schema: { response: { 200: rootSchema } } }, async () => ({
    name: 'realtime-relay',
    docs: '/docs/json',
    demo: o.demoEnabled ? '/demo' : null,
    healthz: '/healthz',
    readyz: '/readyz',
    realtime: '/v1/realtime',
  }));
};
