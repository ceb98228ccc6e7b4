import type { FastifyInstance } from 'fastify';
import { HttpError } from './errors';

/**
 * Depth of a parsed JSON value (a scalar is 0, `{}` is 1), without recursion, stopping as soon
 * as `limit` is passed so a hostile body costs no more than walking `limit` levels of it.
 */
export function exceedsDepth(value: unknown, limit: number): boolean {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }];
  while (stack.length > 0) {
    const { v, depth } = stack.pop() as { v: unknown; depth: number };
    if (v === null || typeof v !== 'object') continue;
    if (depth + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push({ v: child, depth: depth + 1 });
    }
  }
  return false;
}

/**
 * Replaces Fastify's JSON body parser with the same parser (prototype-poisoning protection as
 * before) followed by a depth check: a body nested deeper than `maxDepth` is a 400
 * invalid_request_error, answered before any route code — whose recursive walks (schema
 * validation, locked-session reading) would otherwise overflow the stack and answer 500 with a
 * stack trace in the log. No relay route takes a body deeper than a tool's JSON schema.
 */
export function installJsonBodyParser(app: FastifyInstance, maxDepth: number): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    parse(request, typeof body === 'string' ? body : body.toString('utf8'), (err: Error | null, value?: unknown) => {
      if (err) {
        done(err, undefined);
        return;
      }
      if (exceedsDepth(value, maxDepth)) {
        done(new HttpError(400, 'invalid_request', `The JSON body is nested deeper than ${maxDepth} levels.`, 'invalid_request_error'), undefined);
        return;
      }
      done(null, value);
    });
  });
}
