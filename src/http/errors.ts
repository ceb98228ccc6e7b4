import type { FastifyError, FastifyInstance } from 'fastify';

/**
 * Errors on every HTTP route use OpenAI's body shape, `{"error": {message, type, code, param}}`,
 * so clients written against the provider read ours unchanged. `code` is stable; tests and
 * clients branch on it, never on the message.
 */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly type: string = defaultType(statusCode),
    readonly param: string | null = null,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

export interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

function defaultType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 402) return 'insufficient_quota';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** JSON schema of the error body, for route `response` schemas. */
export const errorBodySchema = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: {
        message: { type: 'string' },
        type: { type: 'string' },
        code: { type: 'string' },
        param: { type: ['string', 'null'] },
      },
      required: ['message', 'type', 'code'],
    },
  },
  required: ['error'],
} as const;

/** Maps HttpError, Fastify's validation errors and anything unexpected to the error body. */
export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | HttpError, request, reply) => {
    if (err instanceof HttpError) {
      void reply.status(err.statusCode).send(err.toBody());
      return;
    }
    if (err.validation) {
      void reply.status(400).send(new HttpError(400, 'invalid_request', err.message, 'invalid_request_error').toBody());
      return;
    }
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status === 413) {
      void reply.status(413).send(new HttpError(413, 'request_too_large', err.message).toBody());
      return;
    }
    if (status >= 500) request.log.error({ err }, 'request failed');
    const code = status >= 500 ? 'internal_error' : (err.code ?? 'invalid_request').toLowerCase();
    const message = status >= 500 ? 'internal server error' : err.message;
    void reply.status(status).send(new HttpError(status, code, message).toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send(new HttpError(404, 'not_found', `no route for ${request.method} ${request.url.split('?')[0]}`).toBody());
  });
}
