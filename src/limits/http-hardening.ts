import type { IncomingMessage } from 'node:http';
import cors from '@fastify/cors';
import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
import type { RelayConfig } from '../config/config';
import { LimitExceededError } from './errors';

type HelmetRouteOptions = Omit<FastifyHelmetOptions, 'global'>;
type CspDirectives = NonNullable<Exclude<NonNullable<FastifyHelmetOptions['contentSecurityPolicy']>, boolean>['directives']>;

/** Every route answers JSON (or is a WebSocket): nothing may load, frame or submit anything. */
const API_CSP: CspDirectives = {
  defaultSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
};

/*
 * Older Safari and Chrome do not let 'self' match ws:/wss: URLs of the page's own host, so the
 * host is named explicitly. Only a syntactically plain host is echoed: a Host header is the
 * client's to choose, and a `;` in it would add directives.
 */
function sameHostSocket(scheme: 'ws' | 'wss'): (req: IncomingMessage) => string {
  return (req) => {
    const host = req.headers.host ?? '';
    return /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) ? `${scheme}://${host}` : "'self'";
  };
}

/**
 * The demo page (`/demo`, `/demo/…`) loads its own script and styles, plays audio from blobs,
 * may run an AudioWorklet from a blob, and talks to this relay over HTTP and WebSocket.
 * Exported so the demo's route may extend it rather than start over.
 */
export const DEMO_CSP: CspDirectives = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  mediaSrc: ["'self'", 'data:', 'blob:'],
  workerSrc: ["'self'", 'blob:'],
  connectSrc: ["'self'", sameHostSocket('ws'), sameHostSocket('wss')],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
};

const DEMO_HELMET: HelmetRouteOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: DEMO_CSP },
  // The page fetches blobs it made itself, and may be opened from another origin's link.
  crossOriginEmbedderPolicy: false,
};

/**
 * The admin console (`/admin/ui…`): its own scripts and styles only (uPlot included, served from
 * this relay), canvases for charts, and fetches to this relay's admin API. No inline script.
 */
export const ADMIN_UI_CSP: CspDirectives = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  fontSrc: ["'self'"],
  connectSrc: ["'self'"],
  objectSrc: ["'none'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
};

const ADMIN_UI_HELMET: HelmetRouteOptions = {
  contentSecurityPolicy: { useDefaults: false, directives: ADMIN_UI_CSP },
};

function isAdminUiPath(url: string): boolean {
  return /^\/admin\/ui($|\/)/.test(url);
}

function isDemoPath(url: string): boolean {
  return /^\/demo($|[/*])/.test(url);
}

/**
 * Security headers on every HTTP answer (a locked-down CSP for the JSON API, a page-friendly
 * one on `/demo*`), CORS only for the configured origins, and the Retry-After of a refused
 * session. Register before any route: route-level settings are taken when a route is added.
 */
export async function installHttpHardening(app: FastifyInstance, limits: Pick<RelayConfig['limits'], 'corsOrigins'>): Promise<void> {
  // Runs before helmet's own onRoute hook (added next), which reads `routeOptions.helmet`.
  app.addHook('onRoute', (route) => {
    if (route.helmet === undefined && isDemoPath(route.url ?? '')) route.helmet = DEMO_HELMET;
    if (route.helmet === undefined && isAdminUiPath(route.url ?? '')) route.helmet = ADMIN_UI_HELMET;
  });
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: API_CSP },
    frameguard: { action: 'deny' },
  });

  if (limits.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: limits.corsOrigins.includes('*') ? '*' : limits.corsOrigins,
      methods: ['GET', 'POST', 'PUT', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'openai-beta'],
      exposedHeaders: ['retry-after'],
      // Credentials travel in the Authorization header, never in cookies.
      credentials: false,
      maxAge: 600,
    });
  }

  app.addHook('onError', async (_request, reply, error) => {
    if (error instanceof LimitExceededError && error.retryAfterS !== undefined) void reply.header('retry-after', String(error.retryAfterS));
  });
}
