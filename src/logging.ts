import pino, { type Logger } from 'pino';
import { redactQueryCredentials } from './auth/query-credentials';

/**
 * Paths whose values are credentials. Redacted wherever they appear in a log line, including
 * request headers Fastify or a plugin might log, so no key reaches a log line.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["api-key"]',
  'req.headers["x-api-key"]',
  'req.headers["sec-websocket-protocol"]',
  'req.headers.cookie',
  '*.headers.authorization',
  '*.headers.Authorization',
  '*.headers["api-key"]',
  '*.headers["sec-websocket-protocol"]',
  'headers.authorization',
  'headers.Authorization',
  'headers["api-key"]',
  'headers["sec-websocket-protocol"]',
  '*.apiKey',
  'apiKey',
  '*.secret',
  'secret',
  '*.token',
  'token',
];

/**
 * Query parameters named like a credential, or holding a value shaped like one (relay,
 * ephemeral or provider key, bearer token, JWT), judged after percent-decoding (`%72k_` is
 * `rk_`). The relay refuses such requests (auth/credentials.ts), but Fastify logs the URL of
 * every request before any hook runs.
 */
export function redactUrlCredentials(url: string): string {
  return redactQueryCredentials(url);
}

interface LoggedRequest {
  method?: unknown;
  url?: unknown;
  headers?: Record<string, unknown>;
  host?: unknown;
  ip?: unknown;
  raw?: unknown;
  socket?: { remotePort?: unknown };
}

/** Fastify's own request serializer (same fields), with credentials in the query string masked. */
function serializeRequest(req: unknown): unknown {
  if (typeof req !== 'object' || req === null) return req;
  const r = req as LoggedRequest;
  const url = typeof r.url === 'string' ? redactUrlCredentials(r.url) : r.url;
  // A hand-made object keeps its fields (headers are then masked by REDACT_PATHS).
  if (r.raw === undefined && r.socket === undefined) return { ...r, url };
  return { method: r.method, url, version: r.headers?.['accept-version'], host: r.host, remoteAddress: r.ip, remotePort: r.socket?.remotePort };
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      serializers: { req: serializeRequest },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'realtime-relay' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
