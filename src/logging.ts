import pino, { type Logger } from 'pino';

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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: 'realtime-relay' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
